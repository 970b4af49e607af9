/**
 * The built `dcp` against the EC2 fake, as a user in CI would run it: the SDK finds the fake
 * through AWS_ENDPOINT_URL_EC2 and credentials in the environment, and "my address" comes from
 * the fake's /checkip.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEED, startFakeEc2, type FakeEc2 } from '../fakes/ec2/index.js';
import { dcp, json, tempDir } from '../helpers/cli.js';

let fake: FakeEc2;
let env: Record<string, string>;

beforeAll(async () => {
  fake = await startFakeEc2({ shuttingDownMs: 50 });
  env = {
    AWS_ENDPOINT_URL_EC2: fake.url,
    AWS_ACCESS_KEY_ID: 'AKIDFAKE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret',
    DCP_MY_IP_URL: `${fake.url}/checkip`,
  };
});

afterAll(async () => {
  await fake?.close();
});

interface UpJson {
  name: string;
  provider: string;
  scheduler_address: string;
  dashboard_url: string;
  workers: number;
  tls: { ca_file: string; client_cert: string; client_key: string };
  snippet: string;
}

describe('dcp up --provider aws against the fake', () => {
  it('up --no-wait --json prints the cluster with its addresses; list finds it by tag; down leaves nothing', async () => {
    const home = tempDir('dcp-aws-cli-');
    const up = await dcp(
      [
        'up',
        '--provider',
        'aws',
        '--region',
        'us-east-1',
        '--name',
        'cli-aws',
        '--workers',
        '3',
        '--image',
        'ghcr.io/dask/dask:2022.12.1-py3.11',
        '--ingress',
        'me',
        '--ingress',
        '2001:db8::/48',
        '--no-wait',
        '--json',
      ],
      { home, env },
    );
    expect(up.exitCode, up.stderr).toBe(0);
    // dcp's EC2 instances get no IPv6 address: such a rule is said to reach nothing.
    expect(up.stderr).toContain('warning: 2001:db8::/48: IPv6 rules reach nothing here');
    const cluster = json<UpJson>(up.stdout);
    const scheduler = fake
      .instances()
      .find((i) => i.tags['dcp:cluster'] === 'cli-aws' && i.tags['dcp:role'] === 'scheduler')!;
    expect(cluster).toMatchObject({
      name: 'cli-aws',
      provider: 'aws',
      workers: 3,
      scheduler_address: `tls://${scheduler.publicIp}:8786`,
      dashboard_url: `https://${scheduler.publicIp}:8787/status`,
    });
    expect(cluster.snippet).toContain(`Client("tls://${scheduler.publicIp}:8786", security=security)`);
    expect(existsSync(cluster.tls.client_key)).toBe(true);
    // Progress went to stderr, the document alone to stdout.
    expect(up.stderr).toContain('launch workers');
    expect(up.stderr).not.toContain('NodeVersionSupportWarning');
    expect(readFileSync(join(home, '.config', 'dask', 'dcp-client.yaml'), 'utf8')).toContain(
      cluster.tls.ca_file,
    );

    const listed = await dcp(['list', '--provider', 'aws', '--json'], {
      home,
      env: { ...env, AWS_REGION: 'us-east-1' },
    });
    expect(listed.exitCode, listed.stderr).toBe(0);
    const found = json<{ clusters: { name: string; here: boolean; members: unknown[] }[] }>(
      listed.stdout,
    ).clusters.find((c) => c.name === 'cli-aws');
    expect(found).toMatchObject({ here: true });
    expect(found!.members).toHaveLength(4);
    // One shape for one thing: this machine's list and the cloud's name the same keys, and agree.
    const local = json<{ clusters: Record<string, unknown>[] }>(
      (await dcp(['list', '--json'], { home, env })).stdout,
    ).clusters[0]!;
    expect(Object.keys(local).sort()).toEqual(Object.keys(found!).sort());
    expect(found).toMatchObject({
      scheduler_address: cluster.scheduler_address,
      provider: 'aws',
      location: 'us-east-1',
      workers: 3,
    });
    expect(local).toMatchObject({ scheduler_address: cluster.scheduler_address, location: 'us-east-1' });
    const table = await dcp(['list', '--provider', 'aws', '--region', 'us-east-1'], {
      home: tempDir('dcp-elsewhere-'),
      env,
    });
    expect(table.stdout).toMatch(
      /^cli-aws\s+us-east-1\s+running\s+\S+\s+\d\/4\s+security group sg-\w+\s+no$/m,
    );

    const down = await dcp(['down', 'cli-aws', '--yes', '--json'], { home, env });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(json<{ clusters: { found: boolean }[] }>(down.stdout).clusters[0]!.found).toBe(true);
    expect(fake.leftovers('cli-aws')).toEqual({ instances: [], securityGroups: [] });
    expect(existsSync(join(home, '.config', 'dask', 'dcp-client.yaml'))).toBe(false);
  });

  it('down from another machine: --provider aws finds the cluster by its tags', async () => {
    const made = await dcp(
      [
        'up',
        '--provider',
        'aws',
        '--region',
        'us-east-1',
        '--name',
        'cli-elsewhere',
        '--image',
        'x',
        '--no-wait',
        '--json',
      ],
      { env },
    );
    expect(made.exitCode, made.stderr).toBe(0);
    const other = tempDir('dcp-other-machine-');
    const without = await dcp(['down', 'cli-elsewhere', '--yes'], { home: other, env });
    expect(without.exitCode).toBe(1);
    expect(without.stderr).toContain('there is no cluster named cli-elsewhere on this machine');
    expect(without.stderr).toContain('dcp down cli-elsewhere --provider aws|gcp|azure|digitalocean');
    const asked = await dcp(['down', 'cli-elsewhere', '--provider', 'aws'], {
      home: other,
      env: { ...env, AWS_REGION: 'us-east-1' },
    });
    expect(asked.exitCode).toBe(2);
    expect(asked.stderr).toContain('--yes');
    const down = await dcp(['down', 'cli-elsewhere', '--provider', 'aws', '--region', 'us-east-1', '--yes'], {
      home: other,
      env,
    });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toMatch(
      /cli-elsewhere is gone \(removed instances i-\w+, i-\w+, i-\w+, security group sg-\w+\)/,
    );
    expect(fake.leftovers('cli-elsewhere')).toEqual({ instances: [], securityGroups: [] });
  });

  it('status asks AWS for the members and the scheduler for itself (in the loopback subnet: nothing leaves this machine)', async () => {
    const home = tempDir('dcp-aws-status-');
    const up = await dcp(
      [
        'up',
        '--provider',
        'aws',
        '--region',
        'us-east-1',
        '--name',
        'cli-status',
        '--private',
        '--subnet',
        SEED.loopbackSubnetId,
        '--image',
        'x',
        '--no-wait',
        '--json',
      ],
      { home, env },
    );
    expect(up.exitCode, up.stderr).toBe(0);
    expect(json<UpJson>(up.stdout).scheduler_address).toMatch(/^tls:\/\/127\.77\.0\.\d+:8786$/);
    const status = await dcp(['status', 'cli-status', '--json'], { home, env });
    // Nothing listens there: not reachable, exit 1; the members are what EC2 says.
    expect(status.exitCode).toBe(1);
    const report = json<{ reachable: boolean; members: { role: string; id: string; running: boolean }[] }>(
      status.stdout,
    );
    expect(report.reachable).toBe(false);
    expect(report.members.map((m) => m.role).sort()).toEqual(['scheduler', 'worker', 'worker']);
    expect(report.members.every((m) => /^i-[0-9a-f]{17}$/.test(m.id))).toBe(true);
    expect((await dcp(['down', 'cli-status', '--yes'], { home, env })).exitCode).toBe(0);
    expect(fake.leftovers('cli-status')).toEqual({ instances: [], securityGroups: [] });
  });

  it('says what is missing before anything is made: region, credentials', async () => {
    const noRegion = await dcp(['up', '--provider', 'aws', '--image', 'x'], { env });
    expect(noRegion.exitCode).toBe(2);
    expect(noRegion.stderr).toMatch(/^error: no region is known for aws\n\s+hint: pass --region/);
    const noCredentials = await dcp(['up', '--provider', 'aws', '--region', 'us-east-1', '--image', 'x'], {
      env: { AWS_ENDPOINT_URL_EC2: fake.url },
    });
    expect(noCredentials.exitCode).toBe(2);
    expect(noCredentials.stderr).toMatch(/error: no AWS credentials found.*\n\s+hint: run `aws configure`/);
    // AWS_DEFAULT_REGION, which the AWS CLI reads and SDK v3 does not, counts too.
    const cliStyle = await dcp(
      ['up', '--provider', 'aws', '--name', 'cli-default-region', '--image', 'x', '--no-wait', '--json'],
      { env: { ...env, AWS_DEFAULT_REGION: 'us-east-1' } },
    );
    expect(cliStyle.exitCode, cliStyle.stderr).toBe(0);
    expect(
      (
        await dcp(['down', 'cli-default-region', '--provider', 'aws', '--yes'], {
          env: { ...env, AWS_DEFAULT_REGION: 'us-east-1' },
        })
      ).exitCode,
    ).toBe(0);
    expect(fake.leftovers('cli-default-region')).toEqual({ instances: [], securityGroups: [] });
    // A region from the AWS profile, as the SDK reads it.
    const home = tempDir('dcp-aws-profile-');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(join(home, '.aws'));
    writeFileSync(join(home, '.aws', 'config'), '[default]\nregion = us-east-1\n');
    writeFileSync(
      join(home, '.aws', 'credentials'),
      '[default]\naws_access_key_id = AKIDFAKE\naws_secret_access_key = fake\n',
    );
    const profile = await dcp(
      ['up', '--provider', 'aws', '--name', 'cli-profile', '--image', 'x', '--no-wait', '--json'],
      { home, env: { AWS_ENDPOINT_URL_EC2: fake.url, DCP_MY_IP_URL: `${fake.url}/checkip` } },
    );
    expect(profile.exitCode, profile.stderr).toBe(0);
    expect(fake.leftovers('cli-profile').instances).toHaveLength(3);
    expect(
      (await dcp(['down', 'cli-profile', '--yes'], { home, env: { AWS_ENDPOINT_URL_EC2: fake.url } }))
        .exitCode,
    ).toBe(0);
    expect(fake.leftovers('cli-profile')).toEqual({ instances: [], securityGroups: [] });
    expect(fake.calls.some((c) => c.action === 'RunInstances' && c.error)).toBe(false);
  });
});
