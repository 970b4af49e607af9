/**
 * dcp against real AWS: it bills. Runs only with DCP_LIVE_AWS=1 and credentials the SDK finds
 * (AWS_PROFILE, ~/.aws or AWS_ACCESS_KEY_ID...), and a region (AWS_REGION or the profile's):
 *
 *   DCP_LIVE_AWS=1 AWS_PROFILE=sandbox AWS_REGION=eu-west-1 npm run test:live
 *
 * Optional: DCP_LIVE_AWS_INSTANCE_TYPE (default t3.small), DCP_LIVE_AWS_IMAGE (default: the image
 * matching this machine's distributed). Each test tears down what it made, and checks with the
 * SDK that nothing tagged with its cluster is left.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EC2 } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { dcp, json, tempDir } from '../../helpers/cli.js';
import { runPython } from '../../helpers/dask.js';
import { liveClusters } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_AWS === '1';
if (!live)
  console.warn(
    '\n*** SKIPPING the live AWS tests: set DCP_LIVE_AWS=1 (they create real, billed resources) ***\n',
  );

/** The caller's AWS configuration, passed through to dcp's private HOME. */
function awsEnv(): Record<string, string> {
  const env: Record<string, string> = {
    AWS_CONFIG_FILE: process.env.AWS_CONFIG_FILE ?? join(homedir(), '.aws', 'config'),
    AWS_SHARED_CREDENTIALS_FILE:
      process.env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials'),
    AWS_EC2_METADATA_DISABLED: process.env.AWS_EC2_METADATA_DISABLED ?? 'false',
    DCP_MY_IP_URL: process.env.DCP_MY_IP_URL ?? 'https://checkip.amazonaws.com',
  };
  for (const [key, value] of Object.entries(process.env))
    if (key.startsWith('AWS_') && value !== undefined) env[key] = value;
  return env;
}

async function leftovers(cluster: string) {
  const ec2 = new EC2({});
  const filter = [{ Name: 'tag:dcp:cluster', Values: [cluster] }];
  const { Reservations = [] } = await ec2.describeInstances({
    Filters: [
      ...filter,
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
    ],
  });
  const { SecurityGroups = [] } = await ec2.describeSecurityGroups({ Filters: filter });
  return {
    instances: Reservations.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId),
    groups: SecurityGroups.map((g) => g.GroupId),
  };
}

describe.skipIf(!live)('AWS, live', () => {
  const env = awsEnv();
  const common = [
    '--provider',
    'aws',
    '--instance-type',
    process.env.DCP_LIVE_AWS_INSTANCE_TYPE ?? 't3.small',
    ...(process.env.DCP_LIVE_AWS_IMAGE ? ['--image', process.env.DCP_LIVE_AWS_IMAGE] : []),
  ];

  const name = liveClusters('aws', env);

  it('up waits for a real TLS cluster, the snippet computes on it, only this address may connect, down leaves nothing', async () => {
    const home = tempDir('dcp-live-');
    const cluster = name('up');
    const up = await dcp(
      ['up', ...common, '--name', cluster, '--workers', '2', '--timeout', '15m', '--json'],
      { home, env, timeoutMs: 20 * 60_000 },
    );
    expect(up.exitCode, up.stderr).toBe(0);
    const record = json<{ scheduler_address: string; snippet: string }>(up.stdout);
    expect(record.scheduler_address).toMatch(/^tls:\/\//);

    const result = await runPython(
      `${record.snippet}\nclient.wait_for_workers(2, timeout=300)\nprint("answer", client.submit(lambda x: x + 1, 41).result())`,
      { timeoutMs: 6 * 60_000 },
    );
    expect(result.all).toContain('answer 42');

    const ec2 = new EC2({});
    const { SecurityGroups = [] } = await ec2.describeSecurityGroups({
      Filters: [{ Name: 'tag:dcp:cluster', Values: [cluster] }],
    });
    const sources = SecurityGroups.flatMap((g) => g.IpPermissions ?? []).flatMap((p) => [
      ...(p.IpRanges ?? []).map((r) => r.CidrIp),
      ...(p.Ipv6Ranges ?? []).map((r) => r.CidrIpv6),
    ]);
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.every((cidr) => cidr?.endsWith('/32') || cidr?.endsWith('/128'))).toBe(true);

    const down = await dcp(['down', cluster, '--yes'], { home, env, timeoutMs: 20 * 60_000 });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(cluster)).toEqual({ instances: [], groups: [] });
  });

  it('down from another machine finds a cluster by its tags', async () => {
    const cluster = name('elsewhere');
    const up = await dcp(['up', ...common, '--name', cluster, '--workers', '1', '--no-wait', '--json'], {
      env,
      timeoutMs: 10 * 60_000,
    });
    expect(up.exitCode, up.stderr).toBe(0);
    const down = await dcp(['down', cluster, '--provider', 'aws', '--yes'], {
      home: tempDir('dcp-live-other-'),
      env,
      timeoutMs: 20 * 60_000,
    });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(cluster)).toEqual({ instances: [], groups: [] });
  });
});
