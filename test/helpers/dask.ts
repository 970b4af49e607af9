/**
 * Real Dask for tests: finds a Python that imports `distributed`, picks free loopback ports,
 * starts Dask processes in their own process groups, and always kills what it started (the
 * group, so a nanny's worker goes too); and one cluster made by `dcp up` for a file's tests.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe } from 'vitest';
import { dcp, json, tempDir } from './cli.js';

/** Debian's python3-distributed lives under /usr/bin/python3; a pyenv `python3` first on PATH may lack it. */
function findDaskPython(): string | null {
  for (const candidate of [process.env.DCP_TEST_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!candidate) continue;
    const probe = spawnSync(candidate, ['-c', 'import distributed'], { stdio: 'ignore', timeout: 30_000 });
    if (probe.status === 0) return candidate;
  }
  return null;
}

export const daskPython = findDaskPython();

/**
 * `describe` for tests that need real Dask. In CI a missing Dask is a failure, not a skip;
 * elsewhere the skip is announced loudly.
 */
export function describeWithDask(name: string, body: () => void): void {
  if (!daskPython) {
    if (process.env.CI)
      throw new Error(
        'python3-distributed is not installed, and CI must run the real-Dask tests: apt-get install -y python3-distributed',
      );
    console.warn(
      `\n*** SKIPPING "${name}": no python3 with distributed (apt-get install -y python3-distributed) ***\n`,
    );
  }
  describe.skipIf(!daskPython)(name, body);
}

export function python(): string {
  if (!daskPython) throw new Error('no python3 with distributed');
  return daskPython;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface Started {
  process: ResultPromise;
  /** Everything it printed so far, stdout and stderr interleaved. */
  log(): string;
}

const running = new Set<ResultPromise>();

function killGroup(child: ResultPromise, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM to the whole group, SIGKILL after `graceMs`. */
export async function stop(child: ResultPromise, graceMs = 5_000): Promise<void> {
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await child.catch(() => undefined);
  clearTimeout(timer);
  killGroup(child, 'SIGKILL');
  running.delete(child);
}

afterAll(async () => {
  await Promise.all([...running].map((child) => stop(child, 2_000)));
});

/** Starts `python3 args...` in its own process group, and waits for `ready` in its output. */
export async function startPython(
  args: string[],
  ready: RegExp,
  timeoutMs = 30_000,
  env: Record<string, string> = {},
): Promise<Started> {
  const child = execa(python(), args, {
    detached: true,
    reject: false,
    all: true,
    stdin: 'ignore',
    env: { PYTHONUNBUFFERED: '1', ...env },
  });
  running.add(child);
  let output = '';
  child.all?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`not ready after ${timeoutMs} ms: ${args.join(' ')}\n${output}`)),
      timeoutMs,
    );
    const check = () => {
      if (ready.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.all?.on('data', check);
    void child.then(() => {
      clearTimeout(timer);
      reject(new Error(`exited before it was ready: ${args.join(' ')}\n${output}`));
    });
  });
  return { process: child, log: () => output };
}

/**
 * `python -m dask scheduler` arguments on 127.0.0.1: over TLS with the files of a `certs gen`
 * folder (`tlsDir`), or plain TCP without one.
 */
export function schedulerArgs(options: { port: string; dashboard: string; tlsDir?: string }): string[] {
  const { port, dashboard, tlsDir } = options;
  return [
    '-m',
    'dask',
    'scheduler',
    '--host',
    '127.0.0.1',
    '--port',
    port,
    '--dashboard-address',
    `127.0.0.1:${dashboard}`,
    '--protocol',
    tlsDir ? 'tls' : 'tcp',
    ...(tlsDir
      ? [
          '--tls-ca-file',
          join(tlsDir, 'ca.pem'),
          '--tls-cert',
          join(tlsDir, 'scheduler.pem'),
          '--tls-key',
          join(tlsDir, 'scheduler-key.pem'),
        ]
      : []),
  ];
}

/** The test Python's distributed release (without a distribution's suffix) and its `X.Y`, asked of it directly. */
export async function localVersions(): Promise<{ distributed: string; python: string }> {
  const { stdout } = await execa(python(), [
    '-c',
    'import sys, importlib.metadata as m; print(m.version("distributed").split("+")[0], "%d.%d" % sys.version_info[:2])',
  ]);
  const [distributed = '', version = ''] = stdout.trim().split(' ');
  return { distributed, python: version };
}

/** Runs Python code; never throws for a non-zero exit. */
export function runPython(code: string, options: { timeoutMs?: number; env?: Record<string, string> } = {}) {
  return execa(python(), ['-c', code], {
    reject: false,
    all: true,
    timeout: options.timeoutMs ?? 60_000,
    env: { PYTHONUNBUFFERED: '1', ...options.env },
  });
}

/** What `dcp up --json` says of a local TLS cluster, as far as the tests read it. */
export interface LocalClusterJson {
  name: string;
  scheduler_address: string;
  dashboard_url: string;
  tls: { ca_file: string; client_cert: string; client_key: string };
}

/**
 * One local cluster made by `dcp up` (TLS, one worker) for the tests of a file, in a home of its
 * own, torn down after them. Call inside a describe; read `home` and `cluster` in the tests.
 */
export function sharedLocalCluster(): { home: string; cluster: LocalClusterJson } {
  const shared = {} as { home: string; cluster: LocalClusterJson };
  beforeAll(async () => {
    shared.home = tempDir('dcp-home-');
    const up = await dcp(['up', '--workers', '1', '--json'], { home: shared.home, timeoutMs: 120_000 });
    if (up.exitCode !== 0) throw new Error(`dcp up failed:\n${up.stderr}`);
    shared.cluster = json<LocalClusterJson>(up.stdout);
  }, 150_000);
  afterAll(async () => {
    if (shared.cluster) await dcp(['down', shared.cluster.name, '--yes'], { home: shared.home });
  });
  return shared;
}
