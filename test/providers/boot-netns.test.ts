/**
 * The boot scripts, run for real: network namespaces stand in for the scheduler's VM and two
 * workers' (runtime `preinstalled`, Debian's Dask): one as on GCE (gzip user data, the scheduler
 * by an internal DNS name), one as on DigitalOcean (plain-text user data, the scheduler by its
 * private IP). A Client on the host computes on the workers over mutual TLS; the scheduler's
 * idle timeout then powers its "VM" off, and the workers' with it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateCertificateSet } from '../../src/certs/gen.js';
import { bootScript, userData, type BootOptions } from '../../src/providers/boot/index.js';
import { memberGet } from '../../src/cluster/readiness.js';
import { tempDir } from '../helpers/cli.js';
import { daskPython, describeWithDask, runPython } from '../helpers/dask.js';
import { describeWithNetns, makeNetwork, type Network } from '../helpers/netns.js';

const IDLE_SECONDS = 20;
/** A GCE internal DNS name, the way dcp's GCP provider hands the scheduler's to its workers. */
const SCHEDULER_NAME = 'netns-test-scheduler.us-central1-a.c.dcp-test-project.internal';

describeWithDask('boot scripts in network namespaces', () => {
  describeWithNetns('a scheduler VM and a worker VM', () => {
    let network: Network;
    let dir: string;
    let certs: Awaited<ReturnType<typeof generateCertificateSet>>;
    const vm = (host: string) => join(dir, `${host}-vm`);
    /** Each VM: its role, and how its cloud hands it the boot script. */
    const VMS = { scheduler: 'scheduler', worker: 'worker', droplet: 'worker' } as const;
    let hostsDir: string | undefined;

    beforeAll(async () => {
      dir = tempDir('dcp-boot-');
      certs = await generateCertificateSet({
        out: join(dir, 'certs'),
        san: [],
        days: 1,
        caDays: 2,
        force: false,
        keyType: 'ec',
      });
      network = await makeNetwork(Object.keys(VMS));
      const pem = (file: string) => readFileSync(file, 'utf8');
      const common = {
        cluster: 'netns-test',
        runtime: 'preinstalled',
        image: 'unused',
        idleTimeoutSeconds: IDLE_SECONDS,
        threads: 2,
      } as const;
      const boot = async (host: keyof typeof VMS, extra: Partial<BootOptions>, plain = false) => {
        const role = VMS[host];
        // cloud-init's own folder, where the script leaves its start-at-every-boot link.
        mkdirSync(join(vm(host), 'cloud', 'scripts'), { recursive: true });
        const script = bootScript({
          ...common,
          role,
          tls: {
            ca: pem(certs.files.ca),
            cert: pem(certs.files.cert[role]),
            key: pem(certs.files.key[role]),
            // The cluster's TLS parameters reach both VMs: TLS 1.3 only, here.
            params: { minVersion: 1.3, requireEncryption: true },
          },
          stateDir: join(vm(host), 'var/lib/dcp'),
          powerOff: `touch ${join(vm(host), 'powered-off')}`,
          perBootDir: join(vm(host), 'cloud', 'scripts', 'per-boot'),
          console: join(vm(host), 'console'),
          ...extra,
        });
        // What the cloud would run: the user data, as a file, by root.
        const file = join(vm(host), 'user-data');
        writeFileSync(file, plain ? script : userData(script), { mode: 0o700 });
        const result = await network.exec(host, ['/bin/bash', file]);
        expect(result.exitCode, result.all).toBe(0);
        expect(result.all).toContain(`started the dask ${role}`);
      };
      await boot('scheduler', {});
      // As on GCE, the worker knows the scheduler by a name its network's DNS resolves (made
      // up before the scheduler exists), here through the worker namespace's own hosts file.
      hostsDir = join('/etc/netns', network.hosts.worker!.namespace);
      mkdirSync(hostsDir, { recursive: true });
      writeFileSync(
        join(hostsDir, 'hosts'),
        `127.0.0.1 localhost\n${network.hosts.scheduler!.ip} ${SCHEDULER_NAME}\n`,
      );
      await boot('worker', { schedulerHost: SCHEDULER_NAME });
      // As on DigitalOcean: plain-text user data, and the scheduler by its private IP.
      await boot('droplet', { schedulerHost: network.hosts.scheduler!.ip }, true);
    }, 120_000);

    afterAll(async () => {
      if (hostsDir) rmSync(hostsDir, { recursive: true, force: true });
      await network?.remove();
    });

    it('gives each VM its own role only, in a root-only folder', () => {
      for (const [host, role] of Object.entries(VMS)) {
        const state = join(vm(host), 'var/lib/dcp');
        expect(statSync(state).mode & 0o777).toBe(0o700);
        expect(statSync(join(state, 'tls')).mode & 0o777).toBe(0o700);
        // (Python may leave the gate's bytecode cache beside it: no key material.)
        expect(
          readdirSync(join(state, 'tls'))
            .filter((f) => f !== '__pycache__')
            .sort(),
        ).toEqual([`${role}-key.pem`, `${role}.pem`, 'ca.pem', 'dcp_dashboard_gate.py'].sort());
        expect(statSync(join(state, 'tls', `${role}-key.pem`)).mode & 0o777).toBe(0o600);
        const data = readFileSync(join(vm(host), 'user-data'));
        // gzip (0x1f 0x8b) as AWS and GCP get it, plain text as DigitalOcean does.
        const script = (data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data).toString('utf8');
        expect(script).toContain(readFileSync(certs.files.key[role], 'utf8').trim());
        expect(script).not.toContain(readFileSync(certs.files.caKey, 'utf8').trim());
        const other = role === 'scheduler' ? 'worker' : 'scheduler';
        expect(script).not.toContain(readFileSync(certs.files.key[other], 'utf8').trim());
      }
    });

    const compute = () =>
      runPython(
        [
          'from distributed import Client',
          'from distributed.security import Security',
          `security = Security(tls_ca_file=${JSON.stringify(certs.files.ca)}, tls_client_cert=${JSON.stringify(certs.files.cert.client)}, tls_client_key=${JSON.stringify(certs.files.key.client)}, require_encryption=True)`,
          `with Client("tls://${network.hosts.scheduler!.ip}:8786", security=security, timeout=60) as client:`,
          '    client.wait_for_workers(2, timeout=90)',
          '    print("workers", sorted(w["host"] for w in client.scheduler_info()["workers"].values()))',
          '    print("answer", client.submit(lambda x: x + 1, 41).result())',
        ].join('\n'),
        { timeoutMs: 120_000 },
      );

    it('serves a Client on the host over mutual TLS, computing on the worker through the private network', async () => {
      const result = await compute();
      const logs = Object.keys(VMS)
        .map((host) => readFileSync(join(vm(host), 'var/lib/dcp/dask.log'), 'utf8'))
        .join('\n---\n');
      expect(result.exitCode, `${result.all}\n${logs}`).toBe(0);
      expect(result.stdout).toContain(
        `workers ${JSON.stringify([network.hosts.worker!.ip, network.hosts.droplet!.ip].sort()).replaceAll('"', "'").replace(',', ', ')}`,
      );
      expect(result.stdout).toContain('answer 42');
      // Both listen with TLS: the scheduler's log names its tls:// address.
      expect(logs).toMatch(/Scheduler at:\s+tls:\/\//);
      expect(daskPython).toBeTruthy();
    }, 150_000);

    it("serves the scheduler's dashboard from the host to the client certificate only", async () => {
      const url = `https://${network.hosts.scheduler!.ip}:8787/json/identity.json`;
      const client = {
        caFile: certs.files.ca,
        clientCert: certs.files.cert.client,
        clientKey: certs.files.key.client,
      };
      const answer = await memberGet(url, client);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ type: 'Scheduler' });
      // Without a certificate the handshake itself fails: nothing of the dashboard is served.
      const refused = await execa(
        'curl',
        ['-sS', '--max-time', '10', '--cacert', certs.files.ca, '-o', '/dev/null', url],
        { reject: false },
      );
      expect(refused.exitCode, refused.stderr).not.toBe(0);
      expect(refused.exitCode).not.toBe(28);
      // The cluster's TLS parameters reached the VM: TLS 1.2 is refused on the Dask port and the dashboard.
      for (const port of [8786, 8787]) {
        const old = await execa(
          'openssl',
          [
            's_client',
            '-connect',
            `${network.hosts.scheduler!.ip}:${port}`,
            '-tls1_2',
            '-CAfile',
            certs.files.ca,
            '-cert',
            certs.files.cert.client,
            '-key',
            certs.files.key.client,
          ],
          { input: '', reject: false, timeout: 20_000 },
        );
        expect(old.exitCode, `${port}: ${old.stdout}`).not.toBe(0);
        expect(old.stderr).toMatch(/protocol version/);
      }
      // Nor over plain HTTP.
      const plain = await execa(
        'curl',
        ['-sS', '--max-time', '10', '-o', '/dev/null', url.replace('https', 'http')],
        {
          reject: false,
        },
      );
      expect(plain.exitCode).not.toBe(0);
    }, 60_000);

    it('powers the scheduler VM off once it has been idle for the idle timeout, and the worker VM with it', async () => {
      const poweredOff = (role: string) => existsSync(join(vm(role), 'powered-off'));
      const deadline = Date.now() + (IDLE_SECONDS + 60) * 1000;
      const all = () => Object.keys(VMS).every(poweredOff);
      while (!all() && Date.now() < deadline) await sleep(500);
      const log = (role: string) => readFileSync(join(vm(role), 'var/lib/dcp/dask.log'), 'utf8');
      expect(poweredOff('scheduler'), log('scheduler')).toBe(true);
      expect(log('scheduler')).toMatch(/dask scheduler exited with status \d+ .*; powering off/);
      expect(log('scheduler')).toMatch(/idle/i);
      // The scheduler closing ends its workers (they never reconnect), and so their VMs.
      expect(poweredOff('worker'), log('worker')).toBe(true);
      expect(poweredOff('droplet'), log('droplet')).toBe(true);
      // Why Dask stopped is on the console, where the cloud's console output shows it.
      expect(readFileSync(join(vm('scheduler'), 'console'), 'utf8')).toMatch(/idle/i);
    }, 120_000);

    it('starts Dask again when the VM boots again, once only however often it is started', async () => {
      // cloud-init runs each per-boot script once a boot; twice here shows the second one yields.
      for (const host of ['scheduler', 'scheduler', 'worker', 'droplet']) {
        expect(
          (await network.exec(host, [join(vm(host), 'cloud', 'scripts', 'per-boot', 'dcp-dask')])).exitCode,
        ).toBe(0);
      }
      const result = await compute();
      expect(result.exitCode, result.all).toBe(0);
      expect(result.stdout).toContain('answer 42');
      const { stdout } = await execa('ip', ['netns', 'pids', network.hosts.scheduler!.namespace]);
      const commands = await Promise.all(
        stdout
          .split('\n')
          .filter(Boolean)
          .map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')),
      );
      expect(commands.filter((c) => c.includes('dask\0scheduler'))).toHaveLength(1);
    }, 120_000);
  });
});
