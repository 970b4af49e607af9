/**
 * TLS parameters from Dask's TLS page (minimum and maximum version, ciphers, require_encryption):
 * validated like every setting, taken from the user's own Dask configuration by default, and
 * reaching every member of a real local cluster and every client form dcp prints.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, python, runPython } from '../helpers/dask.js';

interface UpJson {
  name: string;
  scheduler_address: string;
  dashboard_url: string;
  tls: { ca_file: string; client_cert: string; client_key: string };
  dask_config_file: string;
  snippet: string;
}

const up = async (home: string, args: string[]) => {
  const result = await dcp(['up', '--workers', '1', '--json', ...args], { home, timeoutMs: 120_000 });
  expect(result.exitCode, result.stderr).toBe(0);
  return { cluster: json<UpJson>(result.stdout), stderr: result.stderr };
};

/** `openssl s_client` with the client certificate, limited to a version and maybe a cipher. */
function shake(cluster: UpJson, url: string, limits: string[]) {
  const { hostname, port } = new URL(url.replace(/^tls:/, 'https:'));
  return execa(
    'openssl',
    [
      's_client',
      '-connect',
      `${hostname}:${port || 443}`,
      ...limits,
      '-CAfile',
      cluster.tls.ca_file,
      '-cert',
      cluster.tls.client_cert,
      '-key',
      cluster.tls.client_key,
    ],
    { input: '', reject: false, timeout: 20_000 },
  );
}

const computes = async (code: string, env: Record<string, string>) => {
  const result = await runPython(`${code}\nprint(client.submit(sum, [40, 2]).result())\nclient.close()`, {
    env,
    timeoutMs: 60_000,
  });
  expect(result.exitCode, result.all).toBe(0);
  return result.stdout.trim().split('\n').at(-1);
};

describe('validation: exit 2, one line, nothing written', () => {
  it.each([
    [
      ['config', 'set', 'tls_ciphers', 'NOPE'],
      /tls_ciphers: "NOPE" selects no cipher \(OpenSSL: no cipher match\)/,
    ],
    [['config', 'set', 'tls_ciphers', 'TLS_AES_256_GCM_SHA384'], /TLS 1\.3 suites only/],
    [['config', 'set', 'tls_min_version', '1.1'], /must be 1\.2 or 1\.3/],
    [['config', 'set', 'tls_ciphers', 'eNULL'], /selects eNULL, which lets traffic go unencrypted/],
    [['up', '--tls-ciphers', 'ECDHE+AESGCM:@SECLEVEL=0'], /selects @SECLEVEL=0/],
    [['up', '--tls-ciphers', 'ALL:aNULL'], /selects aNULL/],
    [['config', 'set', 'require_encryption', 'maybe'], /must be true or false/],
    [['up', '--tls-ciphers', '!ALL'], /--tls-ciphers: "!ALL" selects no cipher/],
    [['up', '--tls-min-version', 'TLSv1.3'], /--tls-min-version: "TLSv1\.3" must be 1\.2 or 1\.3/],
    [
      ['up', '--tls-min-version', '1.3', '--tls-max-version', '1.2'],
      /tls_max_version 1\.2 is below tls_min_version 1\.3/,
    ],
    [['up', '--tls', 'off', '--tls-min-version', '1.3'], /--tls off has no TLS for --tls-min-version to set/],
  ])('%j', async (args, message) => {
    const home = tempDir('dcp-home-');
    const result = await dcp(args, { home });
    expect(result.exitCode, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')[0]).toMatch(message);
    expect(existsSync(join(home, '.config', 'dask', 'dcp.yaml'))).toBe(false);
    expect(existsSync(join(home, '.local', 'state', 'dcp', 'clusters'))).toBe(false);
  });

  it('takes good values, and a bare YAML 1.3 as Dask files write it', async () => {
    const home = tempDir('dcp-home-');
    expect((await dcp(['config', 'set', 'tls_ciphers', 'ECDHE+AESGCM:!aNULL'], { home })).exitCode).toBe(0);
    expect((await dcp(['config', 'set', 'require_encryption', 'false'], { home })).exitCode).toBe(0);
    expect((await dcp(['config', 'get', 'require_encryption'], { home })).stdout.trim()).toBe('false');
    const file = join(home, '.config', 'dask', 'dcp.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}  tls_min_version: 1.3\n`);
    const got = await dcp(['config', 'get', 'tls_min_version'], { home });
    expect(got.exitCode, got.stderr).toBe(0);
    expect(got.stdout.trim()).toBe('1.3');
  });
});

describeWithDask('TLS parameters on a real cluster', () => {
  it('TLS 1.3 only: a 1.2 handshake is refused by the scheduler and the dashboard, 1.3 taken; snippet, env and YAML forms connect', async () => {
    const home = tempDir('dcp-home-');
    const { cluster } = await up(home, ['--tls-min-version', '1.3']);
    for (const url of [cluster.scheduler_address, cluster.dashboard_url]) {
      const old = await shake(cluster, url, ['-tls1_2']);
      expect(old.exitCode, url).not.toBe(0);
      expect(old.stderr).toMatch(/protocol version/);
      const current = await shake(cluster, url, ['-tls1_3']);
      expect(current.stdout, current.stderr).toMatch(/New, TLSv1\.3, Cipher is TLS_/);
    }
    // The worker took the same floor: its Dask port, named by the scheduler.
    const workers = await runPython(
      `${cluster.snippet}\nprint(*[w for w in client.scheduler_info()["workers"]])\nclient.close()`,
      { env: { HOME: tempDir() } },
    );
    const worker = workers.stdout.trim().split('\n').at(-1)!;
    expect(worker).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    expect((await shake(cluster, worker, ['-tls1_2'])).exitCode).not.toBe(0);

    expect(cluster.snippet).toContain('tls_min_version=ssl.TLSVersion.TLSv1_3');
    expect(await computes(cluster.snippet, { HOME: tempDir() })).toBe('42');

    const env = (await dcp(['snippet', cluster.name, '--format', 'env'], { home })).stdout;
    expect(env).toContain('export DASK_DISTRIBUTED__COMM__TLS__MIN_VERSION=1.3');
    const viaEnv = await execa(
      'bash',
      [
        '-c',
        `eval "$(cat)"; exec "$0" -c 'import dask; from distributed import Client; print(dask.config.get("distributed.comm.tls.min-version"), Client(timeout=10).submit(sum, [1, 2]).result())'`,
        python(),
      ],
      { input: env, reject: false, env: { HOME: tempDir(), PATH: process.env.PATH } },
    );
    expect(viaEnv.stdout.trim(), viaEnv.stderr).toBe('1.3 3');

    // The YAML form, as a Dask config folder of its own.
    const yamlDir = tempDir();
    writeFileSync(
      join(yamlDir, 'tls.yaml'),
      (await dcp(['snippet', cluster.name, '--format', 'yaml'], { home })).stdout,
    );
    expect(readFileSync(join(yamlDir, 'tls.yaml'), 'utf8')).toMatch(/min-version: 1\.3/);
    expect(
      await computes(
        `from distributed import Client\nclient = Client(${JSON.stringify(cluster.scheduler_address)})`,
        {
          HOME: tempDir(),
          DASK_CONFIG: yamlDir,
        },
      ),
    ).toBe('42');
    expect(readFileSync(cluster.dask_config_file, 'utf8')).toMatch(/min-version: 1\.3/);
    expect((await dcp(['down', '--all', '--yes'], { home })).exitCode).toBe(0);
  }, 240_000);

  it('a cipher list reaches the members: under TLS 1.2 a cipher outside it fails, one inside it works', async () => {
    const home = tempDir('dcp-home-');
    // dcp's own certificates have EC keys: ECDSA suites.
    const { cluster } = await up(home, ['--tls-ciphers', 'ECDHE-ECDSA-AES256-GCM-SHA384']);
    for (const url of [cluster.scheduler_address, cluster.dashboard_url]) {
      const outside = await shake(cluster, url, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
      expect(outside.exitCode, url).not.toBe(0);
      expect(outside.stdout).toContain('Cipher is (NONE)');
      const inside = await shake(cluster, url, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES256-GCM-SHA384']);
      expect(inside.stdout, inside.stderr).toMatch(/Cipher is ECDHE-ECDSA-AES256-GCM-SHA384/);
    }
    expect(cluster.snippet).toContain('tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"');
    expect(await computes(cluster.snippet, { HOME: tempDir() })).toBe('42');

    // dcp-client.yaml now names those ciphers: a next cluster's members, which read the user's
    // Dask folder too, still keep to their own (Dask's defaults here), and its doctor agrees.
    const next = (await up(home, [])).cluster;
    const other = await shake(next, next.scheduler_address, [
      '-tls1_2',
      '-cipher',
      'ECDHE-ECDSA-AES128-GCM-SHA256',
    ]);
    expect(other.stdout, other.stderr).toMatch(/Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/);
    expect((await shake(next, next.scheduler_address, ['-tls1_3'])).stdout).toMatch(/New, TLSv1\.3/);
    expect((await dcp(['down', '--all', '--yes'], { home })).exitCode).toBe(0);
  }, 180_000);

  it("defaults come from the user's Dask configuration, and dcp never goes below its minimum", async () => {
    const home = tempDir('dcp-home-');
    mkdirSync(join(home, '.config', 'dask'), { recursive: true });
    writeFileSync(
      join(home, '.config', 'dask', 'mine.yaml'),
      'distributed:\n  comm:\n    tls:\n      min-version: 1.3\n      ciphers: ECDHE-ECDSA-AES256-GCM-SHA384\n',
    );
    const { cluster, stderr } = await up(home, ['--tls-min-version', '1.2']);
    expect(stderr).toContain('tls_min_version 1.2 is below the 1.3 of your Dask configuration: 1.3 is kept');
    expect(cluster.snippet).toContain('tls_min_version=ssl.TLSVersion.TLSv1_3');
    expect(cluster.snippet).toContain('tls_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384"');
    expect((await shake(cluster, cluster.scheduler_address, ['-tls1_2'])).exitCode).not.toBe(0);
    expect((await dcp(['down', '--all', '--yes'], { home })).exitCode).toBe(0);
  }, 180_000);
});
