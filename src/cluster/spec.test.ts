import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isDaskMemoryLimit, planUp, type UpFlags } from './spec.js';

const env = {
  DASK_CONFIG: mkdtempSync(join(tmpdir(), 'dcp-spec-')),
  HOME: mkdtempSync(join(tmpdir(), 'dcp-home-')),
};
const cwd = mkdtempSync(join(tmpdir(), 'dcp-cwd-'));
const plan = (flags: Partial<UpFlags>) => planUp({ wait: true, insecure: false, ...flags }, env, cwd);

describe('planUp refuses what it would otherwise ignore, naming the flag', () => {
  it('--tls off (or auto) with files of your own', async () => {
    await expect(plan({ tls: 'off', tlsDir: '/tls' })).rejects.toThrow(
      '--tls off uses no certificates; --tls-dir is for --tls byo',
    );
    await expect(plan({ tls: 'auto', tlsCa: '/ca.pem', tlsCert: '/c.pem' })).rejects.toThrow(
      '--tls auto makes its own certificates; --tls-ca, --tls-cert are for --tls byo',
    );
  });

  it('--tls-key without --tls-ca and --tls-cert; --tls-cert without its CA', async () => {
    await expect(plan({ tlsKey: '/k.pem' })).rejects.toThrow('--tls-ca and --tls-cert go together');
    await expect(plan({ tlsCert: '/c.pem' })).rejects.toThrow('--tls-ca and --tls-cert go together');
  });

  it('--tls-ca and --tls-cert alone: the key is in the certificate file', async () => {
    expect((await plan({ tlsCa: '/ca.pem', tlsCert: '/both.pem' })).tls).toEqual({
      mode: 'byo',
      ca: '/ca.pem',
      cert: '/both.pem',
    });
  });
});

describe('what an Azure cluster cannot be', () => {
  const azure = { provider: 'azure', region: 'westeurope' } as const;
  it('preinstalled (no image setting), a subnet without its VNet, private in a VNet of its own', async () => {
    await expect(plan({ ...azure, runtime: 'preinstalled' })).rejects.toThrow(/no Azure image setting/);
    await expect(plan({ ...azure, subnet: 'workers' })).rejects.toThrow(/it goes with --vpc/);
    await expect(plan({ ...azure, private: true })).rejects.toThrow(/would be reached by nobody/);
    expect((await plan({ ...azure, private: true, vpc: 'net-rg/dask-vnet' })).spec.networking).toBe(
      'private',
    );
  });
});

describe('memory limits, as Dask reads them', () => {
  it.each(['4GiB', '1PiB', '500M', '1e9', '2.5 GB', '0.5', '1', '0', 'auto', '100', '16gb', '1kiB', '3T'])(
    'takes %s',
    (value) => expect(isDaskMemoryLimit(value)).toBe(true),
  );
  it.each(['lots', '4 foos', '', '-1GB', '1GiBs', 'GB'])('refuses %j', (value) =>
    expect(isDaskMemoryLimit(value)).toBe(false),
  );
});

describe('ingress that reaches much of the internet', () => {
  it('saved in dcp.yaml (asked for by name once): allowed, and said at every up', async () => {
    const { writeFileSync } = await import('node:fs');
    const dask = mkdtempSync(join(tmpdir(), 'dcp-spec-dask-'));
    writeFileSync(join(dask, 'dcp.yaml'), 'dcp:\n  ingress: [{ports: [8786], cidr: 0.0.0.0/0}]\n');
    const planned = await planUp(
      { wait: true, insecure: false, provider: 'aws', region: 'eu-west-1' },
      { ...env, DASK_CONFIG: dask },
      cwd,
    );
    expect(planned.warnings).toContain(
      'ingress 0.0.0.0/0 opens ports 8786 to much of the internet (TLS still guards the scheduler)',
    );
  });
});
