/**
 * What `up` and `down` must get right about what they read and what they leave, with real Dask
 * processes and real handshakes: combined certificate + key files, the user's own TLS floor, a
 * Dask folder dcp may not write, two clusters, damaged state, and Ctrl-C right after ready.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, expect, it } from 'vitest';
import { isRunning } from '../../src/providers/local/process.js';
import { CLI, cliEnv, dcp, json, lastStart, tempDir } from '../helpers/cli.js';
import { describeWithDask, python, runPython } from '../helpers/dask.js';
import { makeCert } from '../helpers/openssl.js';
import { asNobody, dcpAsNobody, giveToNobody, isRoot } from '../helpers/users.js';

interface UpJson {
  name: string;
  status: string;
  scheduler_address: string;
  tls: { ca_file: string; client_cert: string; client_key: string | null } | null;
  dask_config_file: string | null;
  snippet: string;
}

interface Journaled {
  data: { role: string; pid: number; startTime: string; attempt?: number };
}

/** A private HOME per test; whatever a test leaves running (it failed half way) goes at the end. */
const homes: string[] = [];
function freshHome(): string {
  const home = tempDir('dcp-home-');
  homes.push(home);
  return home;
}
afterAll(async () => {
  await Promise.all(homes.map((home) => dcp(['down', '--all', '--yes'], { home }).catch(() => undefined)));
});

const stateOf = (home: string, name: string) => join(home, '.local', 'state', 'dcp', 'clusters', name);

function journal(home: string, name: string): Journaled[] {
  const path = join(stateOf(home, name), 'journal.jsonl');
  return existsSync(path)
    ? readFileSync(path, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Journaled)
    : [];
}

/** Whether each process of the cluster's last start runs. */
async function running(home: string, name: string): Promise<boolean[]> {
  return Promise.all(lastStart(journal(home, name)).map((entry) => isRunning(entry.data)));
}

/**
 * The built `dcp up ARGS` in `home`, running on; `seen` resolves with the first stderr match of
 * `until` (null when dcp ended first), so a test can act at that moment.
 */
function upUntil(home: string, args: string[], until: RegExp) {
  const child = execa(process.execPath, [CLI, 'up', ...args], {
    reject: false,
    stdin: 'ignore',
    extendEnv: false,
    env: cliEnv(home),
  });
  let stderr = '';
  const seen = new Promise<RegExpExecArray | null>((resolve) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = until.exec(stderr);
      if (match) resolve(match);
    });
    void child.then(() => resolve(null));
  });
  return { child, seen, stderr: () => stderr };
}

/** `dcp up --json` for a one-worker local cluster in `home`. */
async function up(home: string, args: string[], env: Record<string, string> = {}) {
  const result = await dcp(['up', '--workers', '1', '--python', python(), '--json', ...args], {
    home,
    env,
    timeoutMs: 120_000,
  });
  return { ...result, cluster: result.exitCode === 0 ? json<UpJson>(result.stdout) : undefined };
}

/** A Python snippet, then a computation on the cluster, run with `env`. */
async function computes(snippet: string, env: Record<string, string>): Promise<string> {
  const result = await runPython(`${snippet}\nprint(client.submit(sum, [20, 22]).result())\nclient.close()`, {
    env,
  });
  return `${result.stdout.trim()}${result.exitCode === 0 ? '' : `\n${result.all}`}`;
}

/** The certs gen layout with each role's key inside its certificate file, and no key files. */
async function combinedDir(home: string, mode = 0o600): Promise<string> {
  const dir = join(tempDir(), 'tls');
  expect((await dcp(['certs', 'gen', '--out', dir], { home })).exitCode).toBe(0);
  for (const role of ['scheduler', 'worker', 'client']) {
    const key = join(dir, `${role}-key.pem`);
    writeFileSync(
      join(dir, `${role}.pem`),
      readFileSync(join(dir, `${role}.pem`), 'utf8') + readFileSync(key, 'utf8'),
    );
    chmodSync(join(dir, `${role}.pem`), mode);
    rmSync(key);
  }
  return dir;
}

describeWithDask('combined certificate + key files, as Dask allows them', () => {
  it('--tls-dir with <role>.pem holding the key: up works, and the snippet, the env form and dcp-client.yaml connect', async () => {
    const home = freshHome();
    const dir = await combinedDir(home);
    const made = await up(home, ['--name', 'combined-dir', '--tls-dir', dir]);
    expect(made.exitCode, made.stderr).toBe(0);
    const cluster = made.cluster!;
    expect(cluster.tls).toEqual({
      ca_file: join(dir, 'ca.pem'),
      client_cert: join(dir, 'client.pem'),
      client_key: null,
    });
    expect(cluster.snippet).not.toContain('tls_client_key');
    // The snippet, verbatim, in a HOME without dcp-client.yaml.
    expect(await computes(cluster.snippet, { HOME: tempDir() })).toBe('42');
    // dcp-client.yaml names no key file: Dask reads the key from the certificate file.
    const clientYaml = readFileSync(cluster.dask_config_file!, 'utf8');
    expect(clientYaml).not.toMatch(/^\s+key:/m);
    expect(
      await computes(
        `from distributed import Client\nclient = Client(${JSON.stringify(cluster.scheduler_address)})`,
        {
          HOME: home,
        },
      ),
    ).toBe('42');
    // The env form: exports only, then Client() with no arguments.
    const env = await dcp(['snippet', 'combined-dir', '--format', 'env'], { home });
    expect(env.stdout).not.toContain('export DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY');
    // One left by an earlier eval would pair another cluster's key with this certificate.
    expect(env.stdout).toContain('unset DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY');
    const viaEnv = await execa(
      'bash',
      [
        '-c',
        `export DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=/stale/key.pem; eval "$(cat)"; exec "$0" -c 'from distributed import Client; print(Client(timeout=10).submit(sum, [1, 2]).result())'`,
        python(),
      ],
      { reject: false, input: env.stdout, env: { HOME: tempDir(), PATH: process.env.PATH } },
    );
    expect(viaEnv.stdout.trim(), viaEnv.stderr).toBe('3');
    expect((await dcp(['down', 'combined-dir', '--yes'], { home })).exitCode).toBe(0);
  });

  it('--tls-ca with a combined --tls-cert and no --tls-key: up works; a key file others can read is named', async () => {
    const home = freshHome();
    const dir = await combinedDir(home, 0o644);
    const made = await up(home, [
      '--name',
      'combined-pair',
      '--tls-ca',
      join(dir, 'ca.pem'),
      '--tls-cert',
      join(dir, 'scheduler.pem'),
    ]);
    expect(made.exitCode, made.stderr).toBe(0);
    expect(made.stderr).toContain(
      `warning: ${join(dir, 'scheduler.pem')} holds a private key and is open to other users (mode 644)`,
    );
    expect(made.stderr).toContain(`chmod 600 ${join(dir, 'scheduler.pem')}`);
    expect(await computes(made.cluster!.snippet, { HOME: tempDir() })).toBe('42');
    expect((await dcp(['down', 'combined-pair', '--yes'], { home })).exitCode).toBe(0);
  });

  it('a certificate with no key anywhere: exit 2 naming the flag, nothing started', async () => {
    const home = freshHome();
    const dir = join(tempDir(), 'tls');
    expect((await dcp(['certs', 'gen', '--out', dir], { home })).exitCode).toBe(0);
    const made = await up(home, [
      '--name',
      'keyless',
      '--tls-ca',
      join(dir, 'ca.pem'),
      '--tls-cert',
      join(dir, 'client.pem'),
    ]);
    expect(made.exitCode).toBe(2);
    expect(made.stderr).toContain(
      `${join(dir, 'client.pem')} holds no private key, and no key file was given`,
    );
    expect(made.stderr).toContain('pass its key with --tls-key');
    expect(existsSync(stateOf(home, 'keyless'))).toBe(false);
  });

  it('a leaf issued by another CA given as the CA: refused at once, in the words of the flags typed', async () => {
    const home = freshHome();
    const dir = tempDir();
    const ca = await makeCert(dir, 'root', {
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
    });
    const leaf = await makeCert(dir, 'leaf', {
      ca,
      extensions: [
        'basicConstraints = CA:FALSE',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
      ],
    });
    const started = Date.now();
    const made = await up(home, [
      '--name',
      'leaf-ca',
      '--tls-ca',
      leaf.cert,
      '--tls-cert',
      leaf.cert,
      '--tls-key',
      leaf.key,
    ]);
    expect(made.exitCode).toBe(2);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(made.stderr).toContain('holds the certificate itself');
    expect(made.stderr).toContain('pass the CA that issued it with --tls-ca');
    const missing = await up(home, ['--tls-ca', join(dir, 'nope.pem'), '--tls-cert', leaf.cert]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`cannot read --tls-ca ${join(dir, 'nope.pem')}: no such file`);
  });
});

describeWithDask('the user’s own Dask settings are never weakened', () => {
  it('min-version 1.3 in their dask.yaml: dcp-client.yaml keeps 1.3, and the next cluster refuses TLS 1.2', async () => {
    const home = freshHome();
    const daskDir = join(home, '.config', 'dask');
    mkdirSync(daskDir, { recursive: true });
    // Sorted before dcp-client.yaml, which Dask reads after it: a 1.2 there would win.
    writeFileSync(join(daskDir, 'dask.yaml'), 'distributed:\n  comm:\n    tls:\n      min-version: 1.3\n');
    const first = await up(home, ['--name', 'floor-a']);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(readFileSync(join(daskDir, 'dcp-client.yaml'), 'utf8')).toMatch(/^\s+min-version: 1\.3$/m);
    const merged = await runPython(
      'import dask, distributed; print(dask.config.get("distributed.comm.tls.min-version"))',
      {
        env: { HOME: home },
      },
    );
    expect(merged.stdout.trim(), merged.all).toBe('1.3');

    const second = await up(home, ['--name', 'floor-b']);
    expect(second.exitCode, second.stderr).toBe(0);
    const { ca_file, client_cert, client_key } = second.cluster!.tls!;
    const port = new URL(second.cluster!.scheduler_address.replace('tls:', 'http:')).port;
    const shake = (version: string) =>
      execa(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${port}`,
          version,
          '-CAfile',
          ca_file,
          '-cert',
          client_cert,
          '-key',
          client_key!,
        ],
        {
          input: '',
          reject: false,
          timeout: 20_000,
        },
      );
    const old = await shake('-tls1_2');
    expect(old.exitCode).not.toBe(0);
    expect(old.stdout).toContain('Cipher is (NONE)');
    const current = await shake('-tls1_3');
    expect(current.stdout, current.stderr).toMatch(/New, TLSv1\.3, Cipher is TLS_/);
    expect((await dcp(['down', '--all', '--yes'], { home })).exitCode).toBe(0);
  });

  it('the same from a DASK_ variable, as Dask reads it', async () => {
    const home = freshHome();
    const made = await up(home, ['--name', 'floor-env'], { DASK_DISTRIBUTED__COMM__TLS__MIN_VERSION: '1.3' });
    expect(made.exitCode, made.stderr).toBe(0);
    expect(readFileSync(made.cluster!.dask_config_file!, 'utf8')).toMatch(/^\s+min-version: 1\.3$/m);
    expect((await dcp(['snippet', 'floor-env', '--format', 'yaml'], { home })).stdout).toMatch(
      /min-version: 1\.3/,
    );
    expect((await dcp(['down', 'floor-env', '--yes'], { home })).exitCode).toBe(0);
  });
});

describeWithDask('two clusters, and damaged state', () => {
  it('down of the newest points dcp-client.yaml at the one still running; down of that removes it', async () => {
    const home = freshHome();
    const older = await up(home, ['--name', 'older']);
    const newer = await up(home, ['--name', 'newer']);
    expect(older.exitCode, older.stderr).toBe(0);
    expect(newer.exitCode, newer.stderr).toBe(0);
    const file = newer.cluster!.dask_config_file!;
    expect(readFileSync(file, 'utf8')).toContain(newer.cluster!.tls!.ca_file);
    expect(readFileSync(file, 'utf8')).not.toContain('min-version');
    // The user raises their floor meanwhile: the file pointed at the older cluster keeps it.
    writeFileSync(
      join(home, '.config', 'dask', 'dask.yaml'),
      'distributed:\n  comm:\n    tls:\n      min-version: 1.3\n',
    );
    const down = await dcp(['down', 'newer', '--yes'], { home });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stderr).toContain(`${file} now points at older`);
    expect(readFileSync(file, 'utf8')).toContain(older.cluster!.tls!.ca_file);
    expect(readFileSync(file, 'utf8')).toMatch(/^\s+min-version: 1\.3$/m);
    expect(
      await computes(
        `from distributed import Client\nclient = Client(${JSON.stringify(older.cluster!.scheduler_address)})`,
        {
          HOME: home,
        },
      ),
    ).toBe('42');
    // The only cluster left: down takes it without its name.
    expect((await dcp(['down', '--yes'], { home })).exitCode).toBe(0);
    expect(existsSync(file)).toBe(false);
  });

  it('a corrupt cluster.json: list shows it damaged, status says how to remove it, down removes it from its journal', async () => {
    const home = freshHome();
    const made = await up(home, ['--name', 'broken']);
    expect(made.exitCode, made.stderr).toBe(0);
    writeFileSync(join(stateOf(home, 'broken'), 'cluster.json'), '{"name": "broken", "provi');
    const listed = await dcp(['list', '--json'], { home });
    expect(listed.exitCode).toBe(0);
    expect(json<{ clusters: unknown[] }>(listed.stdout).clusters).toEqual([
      expect.objectContaining({
        name: 'broken',
        status: 'damaged',
        problem: 'cluster.json is not valid JSON',
      }),
    ]);
    expect((await dcp(['list'], { home })).stdout).toContain(
      '! broken: cluster.json is not valid JSON; dcp down broken removes it',
    );
    const status = await dcp(['status', 'broken'], { home });
    expect(status.exitCode).toBe(1);
    expect(status.stderr).toContain('the state of cluster broken is damaged');
    expect(status.stderr).toContain('hint: dcp down broken removes what its journal lists');
    expect((await running(home, 'broken')).every(Boolean)).toBe(true);
    const processes = journal(home, 'broken');
    const down = await dcp(['down', 'broken', '--yes'], { home });
    expect(down.exitCode, down.stderr).toBe(0);
    expect((await Promise.all(processes.map((p) => isRunning(p.data)))).some(Boolean)).toBe(false);
    expect(existsSync(stateOf(home, 'broken'))).toBe(false);
    // Its client config went with it: it named the cluster's own CA.
    expect(existsSync(join(home, '.config', 'dask', 'dcp-client.yaml'))).toBe(false);
  });
});

describeWithDask('Ctrl-C right after ready: kept and exit 0, or rolled back and 130, never both', () => {
  it.each([0, 5, 15, 40, 100])('SIGINT %i ms after the workers are in', async (delay) => {
    const home = freshHome();
    const { child, seen, stderr } = upUntil(
      home,
      ['--name', 'late', '--workers', '1', '--python', python()],
      /✓ workers: 1\/1 connected/,
    );
    await seen;
    await sleep(delay);
    child.kill('SIGINT');
    const result = await child;
    const listed = json<{ clusters: { name: string; status: string }[] }>(
      (await dcp(['list', '--json'], { home })).stdout,
    ).clusters;
    if (result.exitCode === 0) {
      expect(listed).toEqual([expect.objectContaining({ name: 'late', status: 'ready' })]);
      expect((await running(home, 'late')).every(Boolean)).toBe(true);
      expect(String(result.stdout)).toContain('Cluster late is ready');
      // A signal dcp saw after ready (it may also have come after dcp had exited) is answered so.
      if (String(result.stderr).includes('interrupted'))
        expect(String(result.stderr)).toContain('interrupted after late was ready: it is kept');
    } else {
      expect(result.exitCode, `${stderr()}${String(result.stderr)}`).toBe(130);
      expect(listed).toEqual([]);
      expect(String(result.stderr)).toContain('rolled back');
    }
    await dcp(['down', '--all', '--yes'], { home });
  });
});

describeWithDask('a Dask config folder dcp may not write', () => {
  it.skipIf(!isRoot)(
    'up is ready with a warning, list is right, the snippet works, down is clean',
    async () => {
      const home = freshHome();
      const daskDir = join(home, '.config', 'dask');
      mkdirSync(daskDir, { recursive: true });
      giveToNobody(home);
      // One cluster made while the folder can be written, then it cannot.
      const first = await dcpAsNobody(
        ['up', '--name', 'first', '--workers', '1', '--python', python()],
        home,
      );
      expect(first.exitCode, first.stderr).toBe(0);
      chmodSync(daskDir, 0o555);
      const made = await dcpAsNobody(
        ['up', '--name', 'readonly', '--workers', '1', '--python', python(), '--json'],
        home,
      );
      expect(made.exitCode, made.stderr).toBe(0);
      const cluster = json<UpJson>(made.stdout);
      expect(cluster).toMatchObject({ status: 'ready', dask_config_file: null });
      expect(made.stderr).toContain(
        `warning: cannot write ${join(daskDir, 'dcp-client.yaml')}: permission denied`,
      );
      expect(made.stderr).not.toContain('another process');
      const listed = await dcpAsNobody(['list', '--json'], home);
      expect(json<{ clusters: { status: string }[] }>(listed.stdout).clusters[0]!.status).toBe('ready');
      const snippet = `${cluster.snippet}\nprint(client.submit(sum, [20, 22]).result())`;
      const [command, ...args] = asNobody([python(), '-c', snippet]);
      const computed = await execa(command!, args, { reject: false, cwd: home, env: { HOME: home } });
      expect(String(computed.stdout).trim(), String(computed.stderr)).toBe('42');
      // dcp-client.yaml still names the first cluster: down of it cannot change the file, and says so.
      const down = await dcpAsNobody(['down', 'first', '--yes'], home);
      expect(down.exitCode, down.stderr).toBe(0);
      expect(down.stderr).toContain(`cannot write ${join(daskDir, 'dcp-client.yaml')}: permission denied`);
      expect(down.stderr).not.toContain('now points at');
      expect(existsSync(stateOf(home, 'first'))).toBe(false);
      // Once the folder can be written again, the next down mends the file that names a gone CA.
      chmodSync(daskDir, 0o755);
      const last = await dcpAsNobody(['down', 'readonly', '--yes'], home);
      expect(last.exitCode, last.stderr).toBe(0);
      expect(existsSync(stateOf(home, 'readonly'))).toBe(false);
      expect(existsSync(join(daskDir, 'dcp-client.yaml'))).toBe(false);
    },
    // Three clusters made and removed as another user.
    180_000,
  );
});

describeWithDask('what other local users leave lying around', () => {
  it('a json.py planted in the temp folder and the working folder never runs; workers keep their files in the cluster’s folder', async () => {
    const home = freshHome();
    const shared = tempDir('dcp-shared-tmp-');
    chmodSync(shared, 0o1777);
    const marker = join(shared, 'ran');
    for (const name of ['json.py', 'csv.py'])
      writeFileSync(join(shared, name), `open(${JSON.stringify(marker)}, 'w').write('ran')\n`);
    const made = await dcp(['up', '--name', 'planted', '--workers', '1', '--python', python(), '--json'], {
      home,
      cwd: shared,
      env: { TMPDIR: shared },
      timeoutMs: 120_000,
    });
    expect(made.exitCode, made.stderr).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(shared, 'dask-worker-space'))).toBe(false);
    expect(existsSync(join(stateOf(home, 'planted'), 'work', 'dask-worker-space'))).toBe(true);
    expect((await dcp(['down', 'planted', '--yes'], { home })).exitCode).toBe(0);
  });

  it('a port taken by another process between dcp’s choice and the scheduler’s bind: another port, never theirs', async () => {
    const home = freshHome();
    const { child, seen } = upUntil(
      home,
      ['--name', 'raced', '--workers', '1', '--python', python(), '--json'],
      /start scheduler: pid \d+, on tls:\/\/127\.0\.0\.1:(\d+)/,
    );
    // Someone else binds the port the moment dcp names it, while Python is still starting.
    const squatter = createServer((socket) => {
      // The worker that reaches it gives up with a reset: expected here, not a failure.
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 200 OK\r\n\r\n{"workers": 1, "cores": 99}');
    });
    const taken = Number((await seen)![1]);
    await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
    try {
      const result = await child;
      expect(result.exitCode, String(result.stderr)).toBe(0);
      expect(String(result.stderr)).toContain(
        `${taken} was taken meanwhile by another process: trying another`,
      );
      const cluster = json<UpJson>(String(result.stdout));
      expect(cluster.scheduler_address).not.toBe(`tls://127.0.0.1:${taken}`);
      expect(await computes(cluster.snippet, { HOME: home })).toBe('42');
    } finally {
      squatter.close();
    }
  });

  it('a state folder other users can write: up refuses to keep keys there, and makes nothing', async () => {
    const home = freshHome();
    const state = join(tempDir('dcp-state-'), 'open');
    mkdirSync(join(state, 'dcp'), { recursive: true });
    chmodSync(join(state, 'dcp'), 0o777);
    const made = await dcp(['up', '--name', 'open-state', '--workers', '1', '--python', python()], {
      home,
      env: { XDG_STATE_HOME: state },
    });
    expect(made.exitCode).toBe(2);
    expect(made.stderr).toContain(
      `${join(state, 'dcp')} is writable by every user: dcp keeps cluster keys there`,
    );
    expect(existsSync(join(state, 'dcp', 'clusters', 'open-state'))).toBe(false);
  });

  it('SIGHUP (the terminal closed) while up waits: rolled back like Ctrl-C', async () => {
    const home = freshHome();
    const hang = join(tempDir(), 'python-hang');
    writeFileSync(
      hang,
      `#!/bin/sh\nif [ "$3" = "worker" ]; then exec sleep 300; fi\nexec ${python()} "$@"\n`,
    );
    chmodSync(hang, 0o755);
    const { child, seen } = upUntil(
      home,
      ['--name', 'hangup', '--workers', '1', '--python', hang],
      /workers: 0\/1/,
    );
    await seen;
    const processes = journal(home, 'hangup');
    child.kill('SIGHUP');
    const result = await child;
    expect(result.exitCode, String(result.stderr)).toBe(130);
    expect(String(result.stderr)).toContain('rolled back');
    expect((await Promise.all(processes.map((p) => isRunning(p.data)))).some(Boolean)).toBe(false);
    expect(existsSync(stateOf(home, 'hangup'))).toBe(false);
  });
});
