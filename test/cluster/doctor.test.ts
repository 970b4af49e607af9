/**
 * `dcp doctor` against a real local cluster: every door holds on a healthy one (exit 0); then
 * made unhealthy on purpose, one way at a time (a key file others can read, a dashboard without
 * the gate, plain TCP in the scheduler's place), it exits 1 naming each door that does not hold.
 */
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stopProcess } from '../../src/providers/local/process.js';
import { readJournal } from '../../src/cluster/state.js';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, startPython, stop } from '../helpers/dask.js';

interface DoctorJson {
  name: string;
  holds: boolean;
  checks: { door: string; verdict: 'holds' | 'open' | 'warn' | 'skip'; detail: string; fix?: string }[];
}

interface UpJson {
  name: string;
  scheduler_address: string;
  dashboard_url: string;
  tls: { ca_file: string; client_cert: string; client_key: string };
}

let home: string;
let cluster: UpJson;
const state = () => join(home, '.local', 'state', 'dcp', 'clusters', cluster.name);
const doctor = async () => {
  const result = await dcp(['doctor', cluster.name, '--json'], { home, timeoutMs: 60_000 });
  return { exitCode: result.exitCode, report: json<DoctorJson>(result.stdout), stderr: result.stderr };
};
const openDoors = (report: DoctorJson) => report.checks.filter((check) => check.verdict === 'open');
const port = (url: string) => new URL(url.replace(/^tls:/, 'https:')).port;

describeWithDask('dcp doctor', () => {
  beforeAll(async () => {
    home = tempDir('dcp-home-');
    const up = await dcp(['up', '--workers', '1', '--json'], { home, timeoutMs: 120_000 });
    expect(up.exitCode, up.stderr).toBe(0);
    cluster = json<UpJson>(up.stdout);
  }, 150_000);

  afterAll(async () => {
    if (cluster) await dcp(['down', cluster.name, '--yes'], { home });
  });

  it('on a healthy cluster: every door holds, each named, exit 0', async () => {
    const { exitCode, report, stderr } = await doctor();
    expect(exitCode, JSON.stringify(report, null, 1) + stderr).toBe(0);
    expect(report.holds).toBe(true);
    const doors = report.checks.map((check) => check.door);
    for (const door of [
      'scheduler: the client certificate',
      'scheduler: no certificate',
      "scheduler: another CA's certificate",
      'scheduler: plain TCP',
      'dashboard: no certificate',
      'dashboard: the client certificate',
      'certificate: the CA',
      'certificate: strict X.509 (client)',
      'listening: loopback only',
    ])
      expect(doors).toContain(door);
    expect(doors.some((door) => /^worker 127\.0\.0\.1:\d+: no certificate$/.test(door))).toBe(true);
    expect(doors.some((door) => /^scheduler: TLS 1\.0\/1\.1$/.test(door))).toBe(true);
    expect(report.checks.filter((check) => check.verdict === 'open')).toEqual([]);
    const text = await dcp(['doctor', cluster.name], { home, timeoutMs: 60_000 });
    expect(text.stdout).toContain(`every door of ${cluster.name} holds`);
  }, 90_000);

  it('a key file others can read: exit 1, naming it, with chmod 600', async () => {
    chmodSync(cluster.tls.client_key, 0o644);
    try {
      const { exitCode, report } = await doctor();
      expect(exitCode).toBe(1);
      expect(openDoors(report)).toEqual([
        expect.objectContaining({
          door: `key file: ${cluster.tls.client_key}`,
          fix: `chmod 600 ${cluster.tls.client_key}`,
        }),
      ]);
    } finally {
      chmodSync(cluster.tls.client_key, 0o600);
    }
  }, 90_000);

  it('a scheduler in its place whose dashboard has no gate, then one on plain TCP: exit 1, each door named', async () => {
    // The cluster's scheduler goes; a hand-started one takes its ports.
    const scheduler = (await readJournal(state())).find(
      (r) => (r.data as { role: string }).role === 'scheduler',
    )!;
    await stopProcess(scheduler.data as { pid: number; startTime: string });
    const tls = join(state(), 'tls');
    const common = [
      '-m',
      'dask',
      'scheduler',
      '--host',
      '127.0.0.1',
      '--port',
      port(cluster.scheduler_address),
    ];
    const dashboard = ['--dashboard-address', `127.0.0.1:${port(cluster.dashboard_url)}`];
    const files = [
      '--tls-ca-file',
      join(tls, 'ca.pem'),
      '--tls-cert',
      join(tls, 'scheduler.pem'),
      '--tls-key',
      join(tls, 'scheduler-key.pem'),
    ];
    // HTTPS with the cluster's own certificate, as Dask alone does it: no client certificate asked.
    const ungated = await startPython(
      [...common, ...dashboard, '--protocol', 'tls', ...files],
      /Scheduler at/,
      30_000,
      {
        DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT: join(tls, 'scheduler.pem'),
        DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY: join(tls, 'scheduler-key.pem'),
        DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CA_FILE: join(tls, 'ca.pem'),
      },
    );
    try {
      const { exitCode, report } = await doctor();
      expect(exitCode).toBe(1);
      expect(openDoors(report).map((check) => check.door)).toEqual(['dashboard: no certificate']);
      expect(openDoors(report)[0]!.detail).toMatch(/answers without a certificate/);
    } finally {
      await stop(ungated.process);
    }

    const plain = await startPython([...common, ...dashboard, '--protocol', 'tcp'], /Scheduler at/);
    try {
      const { exitCode, report } = await doctor();
      expect(exitCode).toBe(1);
      const open = openDoors(report).map((check) => check.door);
      expect(open).toEqual(
        expect.arrayContaining([
          'scheduler: the client certificate',
          'scheduler: plain TCP',
          'dashboard: no certificate',
        ]),
      );
      expect(openDoors(report).find((check) => check.door === 'scheduler: plain TCP')!.detail).toMatch(
        /speaks Dask in the clear/,
      );
    } finally {
      await stop(plain.process);
    }
  }, 150_000);
});
