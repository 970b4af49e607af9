/** What dcp writes, read back by the real Dask (Debian's python3-dask) with dask.config.get. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, expect, it } from 'vitest';
import { writeDaskTlsConfig } from '../../src/config/dask-tls.js';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, runPython } from '../helpers/dask.js';

let home: string;
let daskDir: string;

const run = (args: string[]) => dcp(args, { home, env: { DASK_CONFIG: daskDir } });

/** `dask.config.get(key)` for each key, as JSON, from a Python that sees only our folder. */
async function daskGet(keys: string[]): Promise<unknown[]> {
  const code = `import json, dask.config\nprint(json.dumps([dask.config.get(k, default="<missing>") for k in ${JSON.stringify(keys)}]))`;
  const result = await runPython(code, { env: { HOME: home, DASK_CONFIG: daskDir } });
  expect(result.exitCode, result.all).toBe(0);
  return JSON.parse(result.stdout) as unknown[];
}

beforeEach(() => {
  home = tempDir('dcp-home-');
  daskDir = join(home, 'dask-config');
});

describeWithDask('dask.config reads what dcp writes', () => {
  it('the ingress list, in Coiled shape, under dcp.ingress', async () => {
    expect(
      (await run(['config', 'set', 'ingress', '--cidr', '10.1.0.2/16', '--ports', '8786,8787'])).exitCode,
    ).toBe(0);
    expect(
      (await run(['config', 'set', 'ingress', '--cidr', '10.32.0.0/16', '--ports', '8787', '--append']))
        .exitCode,
    ).toBe(0);
    expect((await run(['config', 'set', 'workers', '5'])).exitCode).toBe(0);
    // YAML 1.1, as PyYAML reads it: a bare `off` would come back as False.
    expect((await run(['config', 'set', 'tls', 'off'])).exitCode).toBe(0);
    expect(await daskGet(['dcp.ingress', 'dcp.workers', 'dcp.tls'])).toEqual([
      [
        { ports: [8786, 8787], cidr: '10.1.0.0/16' },
        { ports: [8787], cidr: '10.32.0.0/16' },
      ],
      5,
      'off',
    ]);
  });

  it('the exported cloudprovider.ec2 keys, with the user’s own keys and comments still there', async () => {
    mkdirSync(daskDir, { recursive: true });
    const original = [
      '# my dask-cloudprovider setup',
      'cloudprovider:',
      '  ec2:',
      '    key_name: my-ssh-key  # so I can log in',
      '    region: us-east-1',
      '    filesystem_size: 80',
      '  gcp:',
      '    projectid: my-project',
      '',
    ].join('\n');
    const file = join(daskDir, 'cloudprovider.yaml');
    writeFileSync(file, original);
    for (const [key, value] of [
      ['provider', 'aws'],
      ['networking', 'private'],
      ['aws.region', 'eu-west-1'],
      ['aws.vpc', 'vpc-0abc'],
      ['aws.subnet', 'subnet-0def'],
      ['aws.instance_type', 't3.large'],
      ['aws.ami', 'ami-0123'],
      ['image', 'ghcr.io/dask/dask:2022.12.1'],
    ]) {
      expect((await run(['config', 'set', key!, value!])).exitCode).toBe(0);
    }
    const exported = await run(['config', 'export', 'cloudprovider', '--json']);
    expect(exported.exitCode, exported.stderr).toBe(0);
    expect(json(exported.stdout)).toMatchObject({ file, provider: 'aws', changed: true });

    const keys = [
      'region',
      'vpc',
      'subnet_id',
      'use_private_ip',
      'instance_type',
      'scheduler_instance_type',
      'worker_instance_type',
      'docker_image',
      'ami',
      'key_name',
      'filesystem_size',
    ];
    expect(
      await daskGet([...keys.map((k) => `cloudprovider.ec2.${k}`), 'cloudprovider.gcp.projectid']),
    ).toEqual([
      'eu-west-1',
      'vpc-0abc',
      'subnet-0def',
      true,
      't3.large',
      't3.large',
      't3.large',
      'ghcr.io/dask/dask:2022.12.1',
      'ami-0123',
      'my-ssh-key',
      80,
      'my-project',
    ]);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('# my dask-cloudprovider setup');
    expect(text).toMatch(/key_name: my-ssh-key\s+# so I can log in/);
    expect(text.indexOf('key_name')).toBeLessThan(text.indexOf('region')); // order kept
    expect(readFileSync(`${file}.bak`, 'utf8')).toBe(original);
  });

  it('the TLS keys dcp up writes, which distributed.Security picks up by itself', async () => {
    const file = join(daskDir, 'dcp-tls.yaml');
    await writeDaskTlsConfig(file, {
      caFile: '/x/ca.pem',
      clientCert: '/x/client.pem',
      clientKey: '/x/client-key.pem',
      minVersion: 1.3,
    });
    expect(
      await daskGet([
        'distributed.comm.require-encryption',
        'distributed.comm.tls.ca-file',
        'distributed.comm.tls.client.cert',
        'distributed.comm.tls.client.key',
        'distributed.comm.tls.min-version',
      ]),
    ).toEqual([true, '/x/ca.pem', '/x/client.pem', '/x/client-key.pem', 1.3]);
    const code = [
      'import dask.config',
      'from distributed.security import Security',
      'c = dask.config.get("distributed.comm.tls.min-version")',
      's = Security()',
      'print(type(c).__name__, s.require_encryption, s.tls_ca_file, s.tls_client_cert, s.tls_client_key)',
    ].join('\n');
    const result = await runPython(code, { env: { HOME: home, DASK_CONFIG: daskDir } });
    expect(result.stdout.trim(), result.all).toBe('float True /x/ca.pem /x/client.pem /x/client-key.pem');
  });
});
