/**
 * `dcp doctor` against a real local cluster: every door holds on a healthy one (exit 0); then
 * made unhealthy on purpose, one way at a time (a key file others can read, a dashboard without
 * the gate, plain TCP in the scheduler's place), it exits 1 naming each door that does not hold.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { generateCertificateSet } from '../../src/certs/gen.js';
import { examine } from '../../src/cluster/doctor.js';
import { localProvider } from '../../src/providers/local/index.js';
import { expect, it } from 'vitest';
import { dcp, json, tempDir } from '../helpers/cli.js';
import {
  describeWithDask,
  freePort,
  schedulerArgs,
  sharedLocalCluster,
  startPython,
  stop,
} from '../helpers/dask.js';

interface DoctorJson {
  name: string;
  holds: boolean;
  checks: { door: string; verdict: 'holds' | 'open' | 'warn' | 'skip'; detail: string; fix?: string }[];
}

let shared: ReturnType<typeof sharedLocalCluster>;
const state = () => join(shared.home, '.local', 'state', 'dcp', 'clusters', shared.cluster.name);
const doctor = async () => {
  const result = await dcp(['doctor', shared.cluster.name, '--json'], {
    home: shared.home,
    timeoutMs: 60_000,
  });
  return { exitCode: result.exitCode, report: json<DoctorJson>(result.stdout), stderr: result.stderr };
};
const openDoors = (report: DoctorJson) => report.checks.filter((check) => check.verdict === 'open');

describeWithDask('dcp doctor', () => {
  shared = sharedLocalCluster();

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
      'scheduler: no encryption (NULL ciphers)',
      'dashboard: no certificate',
      "dashboard: another CA's certificate",
      'dashboard: the client certificate',
      'certificate: the CA',
      'certificate: strict X.509 (client)',
      'listening: loopback only',
    ])
      expect(doors).toContain(door);
    expect(doors.some((door) => /^worker 127\.0\.0\.1:\d+: no certificate$/.test(door))).toBe(true);
    expect(doors.some((door) => /^scheduler: TLS 1\.0\/1\.1$/.test(door))).toBe(true);
    expect(report.checks.filter((check) => check.verdict === 'open')).toEqual([]);
    const text = await dcp(['doctor', shared.cluster.name], { home: shared.home, timeoutMs: 60_000 });
    expect(text.stdout).toContain(`every door of ${shared.cluster.name} holds`);
  }, 90_000);

  it('a key file others can read: exit 1, naming it, with chmod 600', async () => {
    chmodSync(shared.cluster.tls.client_key, 0o644);
    try {
      const { exitCode, report } = await doctor();
      expect(exitCode).toBe(1);
      expect(openDoors(report)).toEqual([
        expect.objectContaining({
          door: `key file: ${shared.cluster.tls.client_key}`,
          fix: `chmod 600 ${shared.cluster.tls.client_key}`,
        }),
      ]);
    } finally {
      chmodSync(shared.cluster.tls.client_key, 0o600);
    }
  }, 90_000);

  it('a scheduler in its place whose dashboard has no gate, then one on plain TCP: exit 1, each door named', async () => {
    // A hand-started scheduler on ports of its own, and the cluster's record pointed at it, as
    // if it had taken the cluster's place (freeing the real ports would let another test's up
    // take them meanwhile).
    const ports = { port: String(await freePort()), dashboard: String(await freePort()) };
    const file = join(state(), 'cluster.json');
    const record = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      record
        .replace(shared.cluster.scheduler_address, `tls://127.0.0.1:${ports.port}`)
        .replace(shared.cluster.dashboard_url, `https://127.0.0.1:${ports.dashboard}/status`),
    );
    const tls = join(state(), 'tls');
    // HTTPS with the cluster's own certificate, as Dask alone does it: no client certificate asked.
    const ungated = await startPython(schedulerArgs({ ...ports, tlsDir: tls }), /Scheduler at/, 30_000, {
      DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT: join(tls, 'scheduler.pem'),
      DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY: join(tls, 'scheduler-key.pem'),
      DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CA_FILE: join(tls, 'ca.pem'),
    });
    try {
      const { exitCode, report } = await doctor();
      expect(exitCode).toBe(1);
      expect(openDoors(report).map((check) => check.door)).toEqual([
        'dashboard: no certificate',
        "dashboard: another CA's certificate",
      ]);
      expect(openDoors(report)[0]!.detail).toMatch(/answers without a certificate/);
    } finally {
      await stop(ungated.process);
    }

    // One whose ciphers let a handshake through that encrypts nothing (set by hand: dcp refuses them).
    const clear = await startPython(schedulerArgs({ ...ports, tlsDir: tls }), /Scheduler at/, 30_000, {
      DASK_DISTRIBUTED__COMM__TLS__CIPHERS: '"ECDHE-ECDSA-AES256-GCM-SHA384;@SECLEVEL=0;aNULL;eNULL"',
    });
    try {
      const { exitCode, report } = await doctor();
      expect(exitCode).toBe(1);
      expect(openDoors(report).map((check) => check.door)).toContain(
        'scheduler: no encryption (NULL ciphers)',
      );
    } finally {
      await stop(clear.process);
    }

    const plain = await startPython(schedulerArgs(ports), /Scheduler at/);
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
      writeFileSync(file, record);
    }
  }, 150_000);
});

it('a peer that never answers, or answers a byte a second, ends in skips and an open door, not a hang', async () => {
  const dir = tempDir('dcp-doctor-');
  const certs = await generateCertificateSet({
    out: join(dir, 'tls'),
    san: [],
    days: 30,
    caDays: 60,
    force: false,
    keyType: 'ec',
  });
  // The scheduler's port takes connections and says nothing; the dashboard trickles one byte a second.
  const silent = createServer(() => undefined);
  const trickle = createServer((socket) => {
    const timer = setInterval(() => socket.write('H'), 1_000);
    socket.once('close', () => clearInterval(timer));
    socket.on('error', () => undefined);
  });
  const listen = (server: ReturnType<typeof createServer>) =>
    new Promise<number>((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
    );
  const [schedulerPort, dashboardPort] = [await listen(silent), await listen(trickle)];
  try {
    const started = Date.now();
    const checks = await examine({
      record: {
        name: 'ghost',
        provider: 'local',
        status: 'ready',
        created_at: new Date().toISOString(),
        workers: 1,
        scheduler_address: `tls://127.0.0.1:${schedulerPort}`,
        dashboard_url: `https://127.0.0.1:${dashboardPort}/status`,
        tls: {
          caFile: certs.files.ca,
          clientCert: certs.files.cert.client,
          clientKey: certs.files.key.client,
          minVersion: 1.2,
          requireEncryption: true,
        },
        dask_config_file: null,
        details: {},
      },
      dir,
      resources: [],
      provider: localProvider,
    });
    expect(Date.now() - started).toBeLessThan(45_000);
    const verdict = (door: string) => checks.find((check) => check.door === door)?.verdict;
    expect(verdict('scheduler: the client certificate')).toBe('open');
    // Nothing was there to refuse anything: not "holds".
    expect(verdict('scheduler: no certificate')).toBe('skip');
    expect(verdict('dashboard: no certificate')).not.toBe('holds');
    expect(verdict('listening: loopback only')).toBe('skip');
  } finally {
    silent.close();
    trickle.close();
  }
}, 60_000);
