/** The AWS provider through the real SDK against the EC2 fake, held to what every cloud must show. */
import { awsProvider } from '../../src/providers/aws/index.js';
import { SEED, startFakeEc2, type FakeEc2 } from '../fakes/ec2/index.js';
import { awsEnvironment } from './cloud-env.js';
import { conformance } from './conformance.js';

let fake: FakeEc2;

conformance({
  name: 'aws',
  provider: awsProvider,
  async start() {
    // Instances stay pending for a minute: a worker launched before its scheduler ran shows.
    fake = await startFakeEc2({ pendingMs: 60_000, shuttingDownMs: 50 });
    delete process.env.AWS_PROFILE;
    return awsEnvironment(fake);
  },
  stop: async () => fake?.close(),
  flags: {},
  myIp: () => fake.myIp,
  members: (cluster) =>
    fake
      .instances()
      .filter((i) => i.tags['dcp:cluster'] === cluster && i.state !== 'terminated')
      .map((i) => ({
        role: i.tags['dcp:role']!,
        privateIp: i.privateIp,
        publicIp: i.publicIp,
        boot: i.userData,
        requestedAt: i.launchedAt,
        runningAt: i.state === 'running' ? i.launchedAt + 60_000 : undefined,
      })),
  ingress: (cluster) =>
    fake
      .securityGroups()
      .filter((g) => g.tags['dcp:cluster'] === cluster)
      .flatMap((g) => g.ingress)
      .filter((rule) => rule.cidrIp || rule.cidrIpv6)
      .flatMap((rule) =>
        Array.from(
          { length: rule.toPort! - rule.fromPort! + 1 },
          (_, i) => `${rule.cidrIp ?? rule.cidrIpv6}:${rule.fromPort! + i}`,
        ),
      ),
  membersReachEachOther: (cluster) =>
    fake
      .securityGroups()
      .filter((g) => g.tags['dcp:cluster'] === cluster)
      .some((g) => g.ingress.some((rule) => rule.sourceGroupId === g.id && rule.protocol === '-1')),
  leftovers: (cluster) => {
    const { instances, securityGroups } = fake.leftovers(cluster);
    return [
      ...instances.map((i) => `instance ${i.id}`),
      ...securityGroups.map((g) => `security group ${g.id}`),
    ];
  },
  clearCalls: () => void (fake.calls.length = 0),
  mutatingCalls: () => fake.mutatingCalls().map((call) => call.action),
  upCalls: () => ['CreateSecurityGroup', 'AuthorizeSecurityGroupIngress', 'RunInstances', 'RunInstances'],
  refuse: (action, skip) =>
    fake.fail(
      action,
      { code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.' },
      { skip },
    ),
  refusal: { message: /AWS refused \w+: UnauthorizedOperation/, hint: /permissions/ },
  steps: ['find network', 'security group', 'launch scheduler', 'launch workers', 'public address'],
  privateNetwork: { flags: { subnet: SEED.customSubnetId }, cidr: '10.1.0.0/16' },
  callsFor50: 10,
  elsewhere: { provider: 'aws', location: 'us-east-1' },
});
