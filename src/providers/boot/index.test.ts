import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DcpError } from '../../errors.js';
import {
  bootScript,
  daskInvocation,
  readRoleTls,
  USER_DATA_LIMIT,
  userData,
  type BootOptions,
} from './index.js';

const PEM = (label: string, body = 'QUJD') => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
const tls = {
  ca: PEM('CERTIFICATE', 'Q0E='),
  cert: PEM('CERTIFICATE', 'V09SS0VS'),
  key: PEM('PRIVATE KEY', 'S0VZ'),
  params: { minVersion: 1.2, requireEncryption: true } as const,
};
const base: BootOptions = {
  role: 'scheduler',
  cluster: 'c1',
  runtime: 'preinstalled',
  image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
  tls,
  idleTimeoutSeconds: 3600,
};

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('dask arguments', () => {
  it('starts the scheduler on TLS with the idle timeout and a dashboard', () => {
    expect(daskInvocation(base, '/t').args).toEqual([
      'scheduler',
      '--protocol',
      'tls',
      '--port',
      '8786',
      '--dashboard-address',
      ':8787',
      '--idle-timeout',
      '3600s',
      '--tls-ca-file',
      '/t/ca.pem',
      '--tls-cert',
      '/t/scheduler.pem',
      '--tls-key',
      '/t/scheduler-key.pem',
      '--preload',
      '/t/dcp_dashboard_gate.py',
    ]);
  });

  it('points a worker at the private address, with its own files and a death timeout', () => {
    const { args } = daskInvocation(
      { ...base, role: 'worker', schedulerHost: '10.0.0.5', threads: 4, memoryLimit: '8GiB' },
      '/t',
    );
    expect(args.slice(0, 2)).toEqual(['worker', 'tls://10.0.0.5:8786']);
    expect(args).toEqual(
      expect.arrayContaining([
        '--death-timeout',
        '--nthreads',
        '4',
        '--memory-limit',
        '8GiB',
        '/t/worker.pem',
        '/t/worker-key.pem',
      ]),
    );
    expect(args.join(' ')).not.toContain('scheduler');
  });

  it('uses plain TCP when TLS is off, and refuses a worker without a scheduler', () => {
    expect(daskInvocation({ ...base, tls: null }, '/t').args).not.toContain('--tls-ca-file');
    expect(
      daskInvocation({ ...base, role: 'worker', tls: null, schedulerHost: '10.0.0.5' }, '/t').args[1],
    ).toBe('tcp://10.0.0.5:8786');
    expect(() => daskInvocation({ ...base, role: 'worker' }, '/t')).toThrow(/scheduler address/);
  });
});

describe('the script', () => {
  it('is valid bash for every role, runtime and TLS mode', () => {
    for (const role of ['scheduler', 'worker'] as const) {
      for (const runtime of ['docker', 'preinstalled'] as const) {
        for (const files of [tls, null]) {
          const script = bootScript({ ...base, role, runtime, tls: files, schedulerHost: '10.0.0.5' });
          expect(() => execFileSync('bash', ['-n'], { input: script })).not.toThrow();
          expect(script.startsWith('#!/bin/bash\n')).toBe(true);
        }
      }
    }
  });

  it('carries only its own role: the CA certificate, its certificate and its key', () => {
    const script = bootScript({ ...base, role: 'worker', schedulerHost: '10.0.0.5' });
    expect(script).toContain(tls.ca.trim());
    expect(script).toContain('worker-key.pem');
    expect(script).not.toContain('scheduler-key.pem');
    expect(script).not.toContain('ca-key');
  });

  it('runs the image through docker with the files read-only, whatever the names hold', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcp-boot-docker-'));
    dirs.push(dir);
    // A stand-in `docker` that records how it was called.
    writeFileSync(join(dir, 'docker'), `#!/bin/bash\nprintf '%s\\n' "$@" > ${dir}/docker-args\n`);
    chmodSync(join(dir, 'docker'), 0o755);
    const image = `registry.example/odd'name:$(touch ${dir}/pwned)`;
    const script = bootScript({
      ...base,
      runtime: 'docker',
      image,
      cluster: "it's",
      stateDir: join(dir, 'state'),
      powerOff: `touch ${dir}/off`,
      console: join(dir, 'console'),
      perBootDir: join(dir, 'per-boot'),
    });
    // stdin not a socket: bash would read ~/.bashrc, as if started by rshd.
    execFileSync('bash', ['-c', script], {
      env: { PATH: `${dir}:/usr/bin:/bin` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (let i = 0; i < 100 && !existsSync(join(dir, 'off')); i++) await sleep(50);
    const args = readFileSync(join(dir, 'docker-args'), 'utf8').trimEnd().split('\n');
    expect(args.slice(0, 12)).toEqual([
      'run',
      '--rm',
      '--name',
      'dcp-dask',
      '--network',
      'host',
      // No capabilities: client code runs here as root, and must not get past the host's firewall.
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '-v',
      `${join(dir, 'state')}/tls:/dcp-tls:ro`,
    ]);
    // The cluster's TLS parameters, and the dashboard's certificate for the HTTP server.
    expect(args.slice(12, 26)).toEqual([
      '-e',
      'DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True',
      '-e',
      'DASK_DISTRIBUTED__COMM__TLS__MIN_VERSION=1.2',
      '-e',
      'DASK_DISTRIBUTED__COMM__TLS__MAX_VERSION=None',
      '-e',
      'DASK_DISTRIBUTED__COMM__TLS__CIPHERS=None',
      '-e',
      'DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CA_FILE=/dcp-tls/ca.pem',
      '-e',
      'DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT=/dcp-tls/scheduler.pem',
      '-e',
      'DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY=/dcp-tls/scheduler-key.pem',
    ]);
    expect(args[26]).toBe(image);
    expect(args.slice(27, 29)).toEqual(['dask', 'scheduler']);
    expect(args).toContain('/dcp-tls/scheduler-key.pem');
    expect(args.slice(-2)).toEqual(['--preload', '/dcp-tls/dcp_dashboard_gate.py']);
    expect(readFileSync(join(dir, 'state', 'tls', 'dcp_dashboard_gate.py'), 'utf8')).toContain(
      'CERT_REQUIRED',
    );
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    // Dask (here the stand-in) exited, so the VM powers off.
    expect(existsSync(join(dir, 'off'))).toBe(true);
    expect(readFileSync(join(dir, 'state', 'dask.log'), 'utf8')).toMatch(
      /dask scheduler exited with status 0 .*powering off/,
    );
    expect(readFileSync(join(dir, 'console'), 'utf8')).toContain(
      "the last lines of the dask scheduler's log",
    );
  });

  it('powers the VM off when Dask cannot even be installed, and when the script itself fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcp-boot-fail-'));
    dirs.push(dir);
    // No docker, and an apt-get that fails as it would without a route to the mirrors.
    writeFileSync(
      join(dir, 'apt-get'),
      '#!/bin/bash\necho "E: Unable to fetch some archives" >&2\nexit 100\n',
    );
    chmodSync(join(dir, 'apt-get'), 0o755);
    for (const name of [
      'bash',
      'cat',
      'mkdir',
      'chmod',
      'dirname',
      'ln',
      'setsid',
      'flock',
      'date',
      'tail',
      'touch',
    ]) {
      execFileSync('ln', [
        '-s',
        execFileSync('bash', ['-c', `command -v ${name}`])
          .toString()
          .trim(),
        join(dir, name),
      ]);
    }
    const script = bootScript({
      ...base,
      runtime: 'docker',
      stateDir: join(dir, 'state'),
      powerOff: `touch ${dir}/off`,
      console: join(dir, 'console'),
      perBootDir: join(dir, 'per-boot'),
    });
    execFileSync(join(dir, 'bash'), ['-c', script], {
      env: { PATH: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (let i = 0; i < 100 && !existsSync(join(dir, 'off')); i++) await sleep(50);
    expect(existsSync(join(dir, 'off'))).toBe(true);
    expect(readFileSync(join(dir, 'state', 'dask.log'), 'utf8')).toContain('Unable to fetch some archives');

    const broken = mkdtempSync(join(tmpdir(), 'dcp-boot-broken-'));
    dirs.push(broken);
    // A state folder that cannot be made: the script fails before Dask, and still powers off.
    writeFileSync(join(broken, 'file'), '');
    const failing = bootScript({
      ...base,
      stateDir: join(broken, 'file', 'state'),
      powerOff: `touch ${broken}/off`,
      perBootDir: join(broken, 'per-boot'),
      console: join(broken, 'console'),
    });
    expect(() => execFileSync('bash', ['-c', failing], { stdio: ['ignore', 'pipe', 'pipe'] })).toThrow();
    expect(existsSync(join(broken, 'off'))).toBe(true);
  });
});

describe('when Dask exits', () => {
  /** Runs a scheduler's script whose Dask exits at once, with stand-ins for `systemctl` and `curl`. */
  async function exitOnce(
    systemState: string,
    selfDelete?: BootOptions['selfDelete'],
    dask = 'echo "distributed.scheduler - INFO - Scheduler closing after being idle for 1h"; exit 0',
    iptablesExit = 0,
  ) {
    const dir = mkdtempSync(join(tmpdir(), 'dcp-boot-exit-'));
    dirs.push(dir);
    const tool = (name: string, body: string) => {
      writeFileSync(join(dir, name), `#!/bin/bash\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    };
    tool('systemctl', `touch ${dir}/asked; echo ${systemState}`);
    tool('dask', dask);
    tool('iptables', `echo "$*" >> ${dir}/iptables-args; exit ${iptablesExit}`);
    // A stand-in curl: the token endpoint answers a token, the DELETE records what it was sent.
    tool(
      'curl',
      [
        `printf '%s\\n' "$@" >> ${dir}/curl-args`,
        'if [[ " $* " == *" -X DELETE "* ]]; then cat > ' + `${dir}/curl-stdin; exit 0; fi`,
        `echo '{"access_token": "eyJ0.secret-token", "token_type": "Bearer"}'`,
      ].join('\n'),
    );
    const script = bootScript({
      ...base,
      tls: null,
      stateDir: join(dir, 'state'),
      powerOff: `touch ${dir}/off`,
      console: join(dir, 'console'),
      perBootDir: join(dir, 'per-boot'),
      ...(selfDelete ? { selfDelete } : {}),
    });
    execFileSync('bash', ['-c', script], {
      env: { PATH: `${dir}:/usr/bin:/bin` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = join(dir, 'state', 'dask.log');
    for (let i = 0; i < 100 && !existsSync(join(dir, 'off')) && !existsSync(join(dir, 'asked')); i++)
      await sleep(50);
    await sleep(300);
    return {
      dir,
      log: read(log),
      off: existsSync(join(dir, 'off')),
      curl: read(join(dir, 'curl-args')),
      iptables: read(join(dir, 'iptables-args')),
    };
  }
  const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  const selfDelete = {
    tokenUrl: 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x',
    resourceUrl: 'https://management.azure.com/subscriptions/s/resourceGroups/dcp-c1?api-version=2021-04-01',
  };

  it('deletes the resource group through the VM identity, the token never on a command line, then powers off', async () => {
    const { dir, log, off, curl, iptables } = await exitOnce('running', selfDelete);
    expect(off).toBe(true);
    expect(log).toContain('dask scheduler exited with status 0');
    // The metadata service was kept from everything while Dask ran, and opened after.
    expect(iptables.split('\n').filter(Boolean)).toEqual([
      '-w -I OUTPUT -d 169.254.169.254 -p tcp --dport 80 -m comment --comment dcp-metadata -j REJECT',
      '-w -D OUTPUT -d 169.254.169.254 -p tcp --dport 80 -m comment --comment dcp-metadata -j REJECT',
    ]);
    expect(curl).toContain(selfDelete.tokenUrl);
    expect(curl).toContain('Metadata:true');
    expect(curl).toContain(selfDelete.resourceUrl);
    expect(curl).not.toContain('secret-token');
    expect(read(join(dir, 'curl-stdin'))).toBe('Authorization: Bearer eyJ0.secret-token\n');
    expect(log).not.toContain('secret-token');
    expect(log).toContain('asked Azure to delete this cluster');
  });

  it('neither powers off nor deletes anything when Dask was stopped by a reboot or shutdown', async () => {
    const { off, curl, log } = await exitOnce('stopping', selfDelete);
    expect(off).toBe(false);
    expect(curl).toBe('');
    expect(log).not.toContain('powering off');
  });

  it('only powers off when Dask did not end for being idle: a crash, or a restart of Docker', async () => {
    for (const dask of ['exit 3', 'echo "Stopped scheduler"; exit 0']) {
      const { off, curl, log } = await exitOnce('running', selfDelete, dask);
      expect(off).toBe(true);
      expect(curl).toBe('');
      expect(log).toContain('did not end for being idle');
    }
  });

  it('does not start Dask when the metadata service cannot be kept from it', async () => {
    const { off, curl, log } = await exitOnce('running', selfDelete, undefined, 4);
    expect(off).toBe(true);
    expect(curl).toBe('');
    expect(log).toContain('could not keep Dask off the instance metadata service: not starting it');
    expect(log).not.toContain('Scheduler closing');
  });

  it('only powers off where there is nothing to delete', async () => {
    const { off, curl } = await exitOnce('running');
    expect(off).toBe(true);
    expect(curl).toBe('');
  });
});

describe('what a VM is given of the TLS files', () => {
  it('certificates only from the CA file, and a key kept in the certificate file split off', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcp-role-tls-'));
    const { generateCertificateSet } = await import('../../certs/gen.js');
    const set = await generateCertificateSet({
      out: dir,
      san: [],
      days: 30,
      caDays: 60,
      force: false,
      keyType: 'ec',
    });
    const text = (path: string) => readFileSync(path, 'utf8');
    const caWithKey = join(dir, 'ca-and-key.pem');
    writeFileSync(caWithKey, text(set.files.ca) + text(set.files.caKey));
    const combined = join(dir, 'worker-combined.pem');
    writeFileSync(combined, text(set.files.cert.worker) + text(set.files.key.worker));
    const files = {
      caFile: caWithKey,
      cert: { ...set.files.cert, worker: combined },
      key: { ...set.files.key, worker: null },
      params: tls.params,
    };
    const worker = (await readRoleTls(files, 'worker'))!;
    expect(worker.ca).toBe(text(set.files.ca));
    expect(worker.cert).toBe(text(set.files.cert.worker));
    expect(worker.key).toBe(text(set.files.key.worker));
    const scheduler = (await readRoleTls(files, 'scheduler'))!;
    expect(scheduler.ca).not.toContain('PRIVATE KEY');
    expect(scheduler.key).toBe(text(set.files.key.scheduler));
    expect(await readRoleTls(null, 'worker')).toBeNull();
  });
});

describe('user data', () => {
  it('stays plain text while it fits, and is gzipped when it does not', () => {
    const small = bootScript(base);
    expect(userData(small).toString()).toBe(small);
    const chain = Array.from({ length: 40 }, (_, i) =>
      PEM('CERTIFICATE', Buffer.from(`intermediate ${i} `.repeat(30)).toString('base64')),
    ).join('');
    const big = bootScript({ ...base, tls: { ...tls, ca: chain } });
    expect(Buffer.byteLength(big)).toBeGreaterThan(USER_DATA_LIMIT);
    const packed = userData(big);
    expect(packed.length).toBeLessThanOrEqual(USER_DATA_LIMIT);
    expect(packed.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gunzipSync(packed).toString()).toBe(big);
  });

  it('refuses a script too big even compressed, saying why', () => {
    const random = Array.from({ length: 30 }, () =>
      PEM('CERTIFICATE', Buffer.from(crypto.getRandomValues(new Uint8Array(1024))).toString('base64')),
    ).join('');
    expect(() => userData(bootScript({ ...base, tls: { ...tls, ca: random } }))).toThrow(DcpError);
  });
});
