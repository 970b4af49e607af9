/**
 * The cluster lifecycle with the local provider and real Dask processes. The tests in this file
 * run one after another: they use the machine's real ports 8786/8787 when free.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { beforeAll, expect, it } from 'vitest';
import { isRunning } from '../../src/providers/local/process.js';
import { memberGet } from '../../src/cluster/readiness.js';
import { CLI, dcp, json, lastStart, tempDir } from '../helpers/cli.js';
import { describeWithDask, python, runPython } from '../helpers/dask.js';
import { makeCert } from '../helpers/openssl.js';

interface UpJson {
  name: string;
  provider: string;
  status: string;
  scheduler_address: string;
  dashboard_url: string;
  dashboard_command: string;
  workers: number;
  tls: { ca_file: string; client_cert: string; client_key: string } | null;
  dask_config_file: string | null;
  snippet: string;
}

interface Journaled {
  kind: string;
  data: { role: string; pid: number; startTime: string; attempt?: number };
}

let home: string;
const run = (args: string[], env: Record<string, string> = {}) =>
  dcp(args, { home, env, timeoutMs: 120_000 });
const stateOf = (name: string) => join(home, '.local', 'state', 'dcp', 'clusters', name);

function journal(name: string): Journaled[] {
  const path = join(stateOf(name), 'journal.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Journaled);
}

function current(name: string): Journaled[] {
  return lastStart(journal(name));
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function anyRunning(processes: Journaled[]): Promise<boolean> {
  return (await Promise.all(processes.map((p) => isRunning(p.data)))).some(Boolean);
}

/** A Python that passes dcp's check but whose `dask worker` misbehaves: fails, or hangs. */
function fakePython(dir: string, worker: 'fail' | 'hang'): string {
  const path = join(dir, `python-${worker}`);
  const misbehave =
    worker === 'fail' ? 'echo "fake failure: this worker cannot start" >&2; exit 3' : 'exec sleep 300';
  writeFileSync(
    path,
    `#!/bin/sh\nif [ "$1" = "-m" ] && [ "$2" = "dask" ] && [ "$3" = "worker" ]; then ${misbehave}; fi\nexec ${python()} "$@"\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

beforeAll(() => {
  home = tempDir('dcp-home-');
});

describeWithDask('dcp up / status / down with the local provider', () => {
  it('with nothing configured and no TTY, up makes a local TLS cluster of 2 workers; the snippet works verbatim; down leaves nothing', async () => {
    const up = await run(['up', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const cluster = json<UpJson>(up.stdout);
    expect(cluster).toMatchObject({ provider: 'local', status: 'ready', workers: 2 });
    expect(cluster.name).toMatch(/^dask-[a-z]+-[a-z]+$/);
    expect(cluster.scheduler_address).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    expect(cluster.dashboard_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/status$/);
    expect(cluster.dashboard_command).toBe(`dcp dashboard ${cluster.name}`);
    expect(cluster.tls).toEqual({
      ca_file: join(stateOf(cluster.name), 'tls', 'ca.pem'),
      client_cert: join(stateOf(cluster.name), 'tls', 'client.pem'),
      client_key: join(stateOf(cluster.name), 'tls', 'client-key.pem'),
    });
    expect(up.stderr).toMatch(/workers: 2\/2 connected/);

    // The snippet, verbatim, then work spread over the workers.
    const check = `${cluster.snippet}\nprint(len(client.run(lambda: 1)), client.submit(sum, [20, 22]).result())\nclient.close()\n`;
    const computed = await runPython(check, { env: { HOME: home } });
    expect(computed.stdout.trim(), computed.all).toBe('2 42');

    // The dcp-owned Dask config makes a plain Client("tls://...") work too.
    expect(cluster.dask_config_file).toBe(join(home, '.config', 'dask', 'dcp-client.yaml'));
    const plain = await runPython(
      `from distributed import Client\nclient = Client(${JSON.stringify(cluster.scheduler_address)}, timeout=10)\nprint(client.submit(sum, [1, 2]).result())`,
      { env: { HOME: home } },
    );
    expect(plain.stdout.trim(), plain.all).toBe('3');

    const status = await run(['status', '--json']);
    expect(status.exitCode, status.stderr).toBe(0);
    expect(json(status.stdout)).toMatchObject({
      name: cluster.name,
      reachable: true,
      workers: 2,
      expected_workers: 2,
    });

    // The dashboard answers the client certificate only (test/cluster/dashboard.test.ts has the rest).
    await expect(fetch(cluster.dashboard_url)).rejects.toThrow();
    const client = {
      caFile: cluster.tls!.ca_file,
      clientCert: cluster.tls!.client_cert,
      clientKey: cluster.tls!.client_key,
    };
    expect((await memberGet(cluster.dashboard_url, client)).status).toBe(200);

    // The env form holds nothing but exports, so it can be eval'ed; then Client() connects.
    const env = await run(['snippet', '--format', 'env']);
    expect(
      env.stdout
        .trimEnd()
        .split('\n')
        .every((line) => /^(export|unset) DASK_/.test(line)),
    ).toBe(true);
    expect(env.stderr).toContain('Client() with no arguments connects');
    const viaEnv = await execa(
      'bash',
      [
        '-c',
        `eval "$(cat)"; exec "$0" -c 'from distributed import Client; print(Client(timeout=10))'`,
        python(),
      ],
      // A HOME without dcp-client.yaml: the variables alone must do it.
      { reject: false, input: env.stdout, env: { HOME: tempDir('dcp-bare-home-'), PATH: process.env.PATH } },
    );
    expect(viaEnv.stdout, viaEnv.stderr).toMatch(/<Client: 'tls:\/\/127\.0\.0\.1:\d+' processes=2/);
    const yamlForm = (await run(['snippet', '--format', 'yaml'])).stdout;
    expect(yamlForm).toContain(`ca-file: ${cluster.tls!.ca_file}`);
    expect(yamlForm).toContain('require-encryption: true');

    const list = await run(['list', '--json']);
    expect(json<{ clusters: { name: string }[] }>(list.stdout).clusters.map((c) => c.name)).toEqual([
      cluster.name,
    ]);

    const processes = current(cluster.name);
    expect(processes.map((p) => p.data.role)).toEqual(['scheduler', 'worker-1', 'worker-2']);

    // Every socket any process of the cluster (nannies' children too) listens on is on loopback.
    const members = (await execa('ps', ['-e', '-o', 'pid=,pgid='])).stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/).map(Number))
      .filter(([, pgid]) => processes.some((p) => p.data.pid === pgid))
      .map(([pid]) => pid);
    expect(members.length).toBeGreaterThanOrEqual(5); // scheduler, and a nanny and a worker each
    const listening = (await execa('ss', ['-H', '-ltnp'])).stdout
      .split('\n')
      .filter((line) => members.some((pid) => line.includes(`pid=${pid},`)));
    expect(listening.length).toBeGreaterThanOrEqual(5);
    for (const line of listening) expect(line.split(/\s+/)[3], line).toMatch(/^127\.0\.0\.1:\d+$/);
    const [schedulerPort, dashboardPort] = [cluster.scheduler_address, cluster.dashboard_url].map((url) =>
      Number(new URL(url.replace('tls:', 'http:')).port),
    );

    const refused = await run(['down', cluster.name]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('pass --yes');

    const down = await run(['down', cluster.name, '--yes']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await anyRunning(processes)).toBe(false);
    expect(await portFree(schedulerPort!)).toBe(true);
    expect(await portFree(dashboardPort!)).toBe(true);
    expect(existsSync(stateOf(cluster.name))).toBe(false);
    expect(existsSync(cluster.dask_config_file!)).toBe(false);

    // A second down harms nothing, and says there is nothing of that name (exit 1: maybe a typo).
    const again = await run(['down', cluster.name, '--yes', '--json']);
    expect(again.exitCode).toBe(1);
    expect(json<{ error: { message: string } }>(again.stdout).error.message).toContain(
      `there is no cluster named ${cluster.name} on this machine`,
    );
  });

  it('status counts the workers live: one killed with SIGKILL shows', async () => {
    const up = await run(['up', '--name', 'killtest', '--workers', '3', '--threads', '1', '--json']);
    expect(up.exitCode, up.stderr).toBe(0);
    const victim = current('killtest').find((p) => p.data.role === 'worker-2')!;
    process.kill(-victim.data.pid, 'SIGKILL'); // the nanny and its worker
    let report: { workers: number; members: { role: string; running: boolean }[] } = {
      workers: -1,
      members: [],
    };
    for (let i = 0; i < 40 && report.workers !== 2; i++) {
      report = json((await run(['status', 'killtest', '--json'])).stdout);
      await sleep(250);
    }
    expect(report.workers).toBe(2);
    expect(report.members.find((m) => m.role === 'worker-2')?.running).toBe(false);
    const human = await run(['status', 'killtest']);
    expect(human.stdout).toMatch(/workers\s+2\/3 connected, 2 threads/);
    expect(human.stdout).toMatch(/worker-2\s+pid \d+ not running/);
    expect((await run(['down', 'killtest', '--yes'])).exitCode).toBe(0);
  });

  it('two ups at once get a port each, and both become ready', async () => {
    const [a, b] = await Promise.all([
      run(['up', '--name', 'race-a', '--workers', '1', '--json']),
      run(['up', '--name', 'race-b', '--workers', '1', '--json']),
    ]);
    expect(a.exitCode, a.stderr).toBe(0);
    expect(b.exitCode, b.stderr).toBe(0);
    const [first, second] = [json<UpJson>(a.stdout), json<UpJson>(b.stdout)];
    expect(first.scheduler_address).not.toBe(second.scheduler_address);
    const status = await Promise.all(
      ['race-a', 'race-b'].map(
        async (name) => json<{ workers: number }>((await run(['status', name, '--json'])).stdout).workers,
      ),
    );
    expect(status).toEqual([1, 1]);
    expect((await run(['down', '--all', '--yes'])).exitCode).toBe(0);
  });

  it('a name in use is a usage error, and the first cluster is untouched', async () => {
    const first = await run(['up', '--name', 'dup', '--no-wait', '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(json<UpJson>(first.stdout).status).toBe('running');
    const second = await run(['up', '--name', 'dup']);
    expect(second.exitCode).toBe(2);
    expect(second.stderr).toMatch(/^error: a cluster named dup already exists/m);
    expect(await anyRunning(journal('dup'))).toBe(true);
    expect((await run(['down', 'dup', '--yes'])).exitCode).toBe(0);
  });

  it('no Python with distributed: exit 1 with pip and apt hints, nothing started; a --python that is not one: exit 2', async () => {
    const emptyPath = tempDir('dcp-path-');
    const result = await dcp(['up', '--name', 'nopython'], { home, env: { PATH: emptyPath } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^error: no Python with Dask's distributed found/m);
    expect(result.stderr).toMatch(/pip install/);
    expect(result.stderr).toMatch(/apt-get install python3-distributed/);
    expect(existsSync(stateOf('nopython'))).toBe(false);

    const named = await run(['up', '--name', 'nopython', '--python', join(emptyPath, 'python9')]);
    expect(named.exitCode).toBe(2);
    expect(named.stderr).toMatch(/^error: --python .*python9 cannot run Dask: not found/m);
  });

  it('a worker that dies at start: rollback, with its log lines, and nothing left running', async () => {
    const dir = tempDir();
    fakePython(dir, 'fail');
    // A relative --python is the user's folder's, though Dask runs from the state folder.
    const result = await dcp(['up', '--name', 'dies', '--python', './python-fail'], { home, cwd: dir });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^error: the worker-\d process exited during start-up/m);
    expect(result.stderr).toContain('fake failure: this worker cannot start');
    expect(result.stderr).toMatch(/rolled back: removed .*scheduler \(pid \d+\)/);
    expect(existsSync(stateOf('dies'))).toBe(false);
    // Its scheduler is gone. (Not "its port is free": another test's cluster may take it at once.)
    const pid = /start scheduler: pid (\d+)/.exec(result.stderr)?.[1];
    expect(pid, result.stderr).toBeDefined();
    expect(() => process.kill(Number(pid), 0)).toThrow(/ESRCH/);
  });

  it('a timeout: the scheduler and worker logs, then rollback', async () => {
    const fake = fakePython(tempDir(), 'hang');
    const result = await run(['up', '--name', 'slow', '--python', fake, '--timeout', '6s']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/^error: slow was not ready within 6s/m);
    expect(result.stderr).toMatch(/--- scheduler: the last lines of its log ---/);
    expect(result.stderr).toMatch(/Scheduler at:/);
    expect(result.stderr).toMatch(/rolled back: removed .*worker-1 \(pid \d+\).*scheduler/);
    expect(result.stderr).toContain('longer --timeout');
    expect(existsSync(stateOf('slow'))).toBe(false);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s during up: rollback, exit 130, nothing left running',
    async (signal) => {
      const fake = fakePython(tempDir(), 'hang');
      const name = `stopped-${signal.toLowerCase()}`;
      const child = execa(process.execPath, [CLI, 'up', '--name', name, '--python', fake], {
        reject: false,
        stdin: 'ignore',
        env: { HOME: home, XDG_STATE_HOME: join(home, '.local', 'state'), CI: 'true' },
        extendEnv: false,
      });
      // Wait until the scheduler and both workers are journaled: the middle of `up`.
      for (let i = 0; i < 200 && journal(name).length < 3; i++) await sleep(50);
      const processes = journal(name);
      expect(processes).toHaveLength(3);
      child.kill(signal);
      const result = await child;
      expect(result.exitCode).toBe(130);
      expect(result.stderr).toMatch(/interrupted/);
      expect(result.stderr).toMatch(/rolled back: removed/);
      expect(await anyRunning(processes)).toBe(false);
      expect(existsSync(stateOf(name))).toBe(false);
    },
  );

  it('bring-your-own files: a certs gen folder, and the one-pair setup blog posts use', async () => {
    const dir = tempDir();
    expect((await run(['certs', 'gen', '--out', join(dir, 'tls')])).exitCode).toBe(0);
    const fromDir = await run([
      'up',
      '--name',
      'byo-dir',
      '--tls-dir',
      join(dir, 'tls'),
      '--workers',
      '1',
      '--json',
    ]);
    expect(fromDir.exitCode, fromDir.stderr).toBe(0);
    expect(json<UpJson>(fromDir.stdout).tls?.ca_file).toBe(join(dir, 'tls', 'ca.pem'));
    expect((await run(['down', 'byo-dir', '--yes'])).exitCode).toBe(0);

    // openssl req -newkey rsa:2048 -nodes -x509: one self-signed pair as CA, scheduler, worker and client.
    const pair = await makeCert(dir, 'dask-cluster', {
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
      ],
    });
    const onePair = await run([
      'up',
      '--name',
      'byo-pair',
      '--tls-ca',
      pair.cert,
      '--tls-cert',
      pair.cert,
      '--tls-key',
      pair.key,
      '--workers',
      '1',
      '--json',
    ]);
    expect(onePair.exitCode, onePair.stderr).toBe(0);
    const cluster = json<UpJson>(onePair.stdout);
    const computed = await runPython(`${cluster.snippet}\nprint(client.submit(sum, [2, 3]).result())`, {
      env: { HOME: home },
    });
    expect(computed.stdout.trim(), computed.all).toBe('5');
    expect((await run(['down', 'byo-pair', '--yes'])).exitCode).toBe(0);
  });

  it('bring-your-own files that Dask would reject: exit 2 with the reasons, nothing started', async () => {
    const dir = tempDir();
    expect((await run(['certs', 'gen', '--out', join(dir, 'a')])).exitCode).toBe(0);
    expect((await run(['certs', 'gen', '--out', join(dir, 'b')])).exitCode).toBe(0);
    const result = await run([
      'up',
      '--name',
      'bad-byo',
      '--tls-ca',
      join(dir, 'a', 'ca.pem'),
      '--tls-cert',
      join(dir, 'b', 'scheduler.pem'),
      '--tls-key',
      join(dir, 'a', 'scheduler-key.pem'),
    ]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/would not work with Dask/);
    expect(result.stderr).toMatch(/was not signed by the CA/);
    expect(result.stderr).toMatch(/does not belong to the certificate/);
    expect(result.stderr).toMatch(/rolled back: nothing had been created yet/);
    expect(existsSync(stateOf('bad-byo'))).toBe(false);
  });

  it('--tls off: plain TCP, with a warning', async () => {
    const result = await run(['up', '--name', 'plain', '--tls', 'off', '--workers', '1', '--save', '--json']);
    expect(result.exitCode, result.stderr).toBe(0);
    // --save kept the choices (not the name, which is no setting) as defaults, the Dask way.
    expect(readFileSync(join(home, '.config', 'dask', 'dcp.yaml'), 'utf8')).toBe(
      'dcp:\n  workers: 1\n  tls: "off"\n',
    );
    const cluster = json<UpJson>(result.stdout);
    expect(cluster.tls).toBeNull();
    expect(cluster.scheduler_address).toMatch(/^tcp:\/\//);
    expect(result.stderr).toContain('warning: TLS is off');
    // The dashboard stays plain HTTP, as asked, and the summary says so.
    expect(cluster.dashboard_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/status$/);
    expect((await fetch(cluster.dashboard_url)).status).toBe(200);
    const summary = await run(['status', 'plain']);
    expect(summary.exitCode, summary.stderr).toBe(0);
    const doctor = await run(['doctor', 'plain', '--json']);
    expect(doctor.exitCode).toBe(1);
    expect(
      json<{ checks: { door: string; verdict: string; detail: string }[] }>(doctor.stdout).checks,
    ).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          door: 'dashboard: no certificate',
          verdict: 'open',
          detail: expect.stringMatching(/TLS is off/),
        }),
      ]),
    );
    const computed = await runPython(`${cluster.snippet}\nprint(client.submit(sum, [2, 3]).result())`, {
      env: { HOME: home },
    });
    expect(computed.stdout.trim(), computed.all).toBe('5');
    expect((await run(['down', '--all', '--yes'])).exitCode).toBe(0);
    expect(json<{ clusters: unknown[] }>((await run(['list', '--json'])).stdout).clusters).toEqual([]);
  });
});

it('snippet, dashboard and status name the cluster they need', async () => {
  const empty = tempDir('dcp-home-');
  mkdirSync(join(empty, '.local'), { recursive: true });
  for (const command of ['status', 'snippet', 'dashboard']) {
    const result = await dcp([command], { home: empty });
    expect(result.exitCode, command).toBe(2);
    expect(result.stderr).toContain('there are no clusters on this machine');
  }
  const unknown = await dcp(['status', 'nope'], { home: empty });
  expect(unknown.stderr).toContain('no cluster named nope');
  for (const command of [
    ['down', '../..', '--yes'],
    ['status', '../x'],
    ['snippet', '/etc'],
  ]) {
    const result = await dcp(command, { home: empty });
    expect(result.exitCode, command.join(' ')).toBe(2);
    // The NAME argument is not the --name flag: the message does not speak of one.
    expect(result.stderr).toContain('is not a cluster name');
    expect(result.stderr).not.toContain('--name');
  }
});

it('the ports lock is no cluster; a cluster still being made has no snippet yet', async () => {
  const home = tempDir('dcp-home-');
  const clusters = join(home, '.local', 'state', 'dcp', 'clusters');
  mkdirSync(join(clusters, 'local-ports.lock'), { recursive: true, mode: 0o700 });
  mkdirSync(join(clusters, 'half'), { mode: 0o700 });
  writeFileSync(
    join(clusters, 'half', 'cluster.json'),
    JSON.stringify({
      name: 'half',
      provider: 'local',
      status: 'creating',
      created_at: new Date().toISOString(),
      workers: 1,
      scheduler_address: null,
      dashboard_url: null,
      tls: null,
      dask_config_file: null,
      details: {},
    }),
  );
  const listed = json<{ clusters: { name: string }[] }>((await dcp(['list', '--json'], { home })).stdout);
  expect(listed.clusters.map((c) => c.name)).toEqual(['half']);
  const snippet = await dcp(['snippet', '--format', 'env'], { home });
  expect(snippet.exitCode).toBe(1);
  expect(snippet.stdout).toBe('');
  expect(snippet.stderr).toContain('half has no scheduler address yet (it is creating)');
});
