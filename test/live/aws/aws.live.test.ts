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
import { expect } from 'vitest';
import { liveSuite } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_AWS === '1';

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

liveSuite({
  title: 'AWS',
  provider: 'aws',
  enabled: live,
  env: awsEnv(),
  flags: [
    '--provider',
    'aws',
    '--instance-type',
    process.env.DCP_LIVE_AWS_INSTANCE_TYPE ?? 't3.small',
    ...(process.env.DCP_LIVE_AWS_IMAGE ? ['--image', process.env.DCP_LIVE_AWS_IMAGE] : []),
  ],
  leftovers,
  // Only this machine's address may reach the cluster.
  async whileUp(cluster) {
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
  },
});
