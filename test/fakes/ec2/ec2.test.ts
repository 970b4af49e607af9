import { gzipSync } from 'node:zlib';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  GetConsoleOutputCommand,
  paginateDescribeInstances,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2ClientConfig,
  type Instance,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { fastRetryStrategy, SEED, startFakeEc2, type FakeEc2, type FakeEc2Options } from './index.js';
import { decodeQuery } from './xml.js';

const open: FakeEc2[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});

async function setup(options: FakeEc2Options = {}, config: Partial<EC2ClientConfig> = {}) {
  const fake = await startFakeEc2({ pendingMs: 20, shuttingDownMs: 20, ...options });
  open.push(fake);
  const ec2 = new EC2Client({
    region: 'us-east-1',
    endpoint: fake.url,
    credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake' },
    retryStrategy: fastRetryStrategy(),
    ...config,
  });
  return { fake, ec2 };
}

/** The rejection of `promise`, which must reject. */
async function failure(
  promise: Promise<unknown>,
): Promise<Error & { $metadata?: { httpStatusCode?: number; attempts?: number } }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tagsOf = (i: Instance | undefined) => Object.fromEntries((i?.Tags ?? []).map((t) => [t.Key, t.Value]));

async function describe1(ec2: EC2Client, id: string): Promise<Instance> {
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  const inst = out.Reservations?.[0]?.Instances?.[0];
  if (!inst) throw new Error(`no ${id}`);
  return inst;
}

async function clusterGroup(
  ec2: EC2Client,
  name: string,
  vpcId: string = SEED.defaultVpcId,
): Promise<string> {
  const { GroupId } = await ec2.send(
    new CreateSecurityGroupCommand({
      GroupName: `dcp-${name}`,
      Description: `dcp cluster ${name}`,
      VpcId: vpcId,
      TagSpecifications: [{ ResourceType: 'security-group', Tags: [{ Key: 'dcp:cluster', Value: name }] }],
    }),
  );
  return GroupId!;
}

function launchInput(
  groupId: string,
  cluster: string,
  extra: Partial<RunInstancesCommandInput> = {},
): RunInstancesCommandInput {
  const tags = [
    { Key: 'dcp:cluster', Value: cluster },
    { Key: 'dcp:role', Value: 'worker' },
  ];
  return {
    ImageId: SEED.images.nobleAmd64New,
    InstanceType: 't3.medium',
    MinCount: 1,
    MaxCount: 1,
    NetworkInterfaces: [
      {
        DeviceIndex: 0,
        SubnetId: SEED.defaultSubnetIds['us-east-1a'],
        Groups: [groupId],
        AssociatePublicIpAddress: true,
        DeleteOnTermination: true,
      },
    ],
    TagSpecifications: (['instance', 'volume', 'network-interface'] as const).map((ResourceType) => ({
      ResourceType,
      Tags: tags,
    })),
    ...extra,
  };
}

describe('Query decoding', () => {
  it('turns numbered parameters into lists and dotted ones into objects', () => {
    const params = decodeQuery(
      new URLSearchParams(
        'Filter.1.Name=tag%3Adcp%3Acluster&Filter.1.Value.1=a&Filter.1.Value.2=b&Filter.2.Name=x&MetadataOptions.HttpTokens=required&InstanceId.2=i-2&InstanceId.1=i-1',
      ),
    );
    expect(params).toEqual({
      Filter: [{ Name: 'tag:dcp:cluster', Value: ['a', 'b'] }, { Name: 'x' }],
      MetadataOptions: { HttpTokens: 'required' },
      InstanceId: ['i-1', 'i-2'],
    });
  });
});

describe('fake EC2 seed data', () => {
  it('has a default VPC with a default subnet per zone, and a custom VPC', async () => {
    const { ec2 } = await setup();
    const vpcs = await ec2.send(
      new DescribeVpcsCommand({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }),
    );
    expect(vpcs.Vpcs).toEqual([
      expect.objectContaining({
        VpcId: SEED.defaultVpcId,
        CidrBlock: '172.31.0.0/16',
        IsDefault: true,
        State: 'available',
      }),
    ]);
    const subnets = await ec2.send(
      new DescribeSubnetsCommand({
        Filters: [
          { Name: 'vpc-id', Values: [SEED.defaultVpcId] },
          { Name: 'default-for-az', Values: ['true'] },
        ],
      }),
    );
    expect(
      subnets.Subnets?.map((s) => [
        s.AvailabilityZone,
        s.CidrBlock,
        s.MapPublicIpOnLaunch,
        s.AvailableIpAddressCount,
      ]),
    ).toEqual([
      ['us-east-1a', '172.31.0.0/20', true, 4091],
      ['us-east-1b', '172.31.16.0/20', true, 4091],
      ['us-east-1c', '172.31.32.0/20', true, 4091],
    ]);
    const custom = await ec2.send(new DescribeSubnetsCommand({ SubnetIds: [SEED.customSubnetId] }));
    expect(custom.Subnets?.[0]).toMatchObject({
      VpcId: SEED.customVpcId,
      CidrBlock: '10.1.1.0/24',
      MapPublicIpOnLaunch: false,
      DefaultForAz: false,
    });
    const missing = await failure(ec2.send(new DescribeVpcsCommand({ VpcIds: ['vpc-0123456789abcdef0'] })));
    expect(missing.name).toBe('InvalidVpcID.NotFound');
  });

  it('finds Canonical images by owner, name wildcard and architecture, never the look-alike', async () => {
    const { ec2 } = await setup();
    const images = await ec2.send(
      new DescribeImagesCommand({
        Owners: [SEED.canonicalOwnerId],
        Filters: [
          { Name: 'name', Values: ['ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*'] },
          { Name: 'architecture', Values: ['x86_64'] },
          { Name: 'state', Values: ['available'] },
        ],
      }),
    );
    const newest = [...(images.Images ?? [])].sort((a, b) =>
      (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''),
    )[0];
    expect(images.Images?.map((i) => i.ImageId).sort()).toEqual(
      [SEED.images.nobleAmd64Old, SEED.images.nobleAmd64New].sort(),
    );
    expect(newest).toMatchObject({
      ImageId: SEED.images.nobleAmd64New,
      OwnerId: SEED.canonicalOwnerId,
      RootDeviceName: '/dev/sda1',
      State: 'available',
    });
    const anyone = await ec2.send(
      new DescribeImagesCommand({
        Filters: [{ Name: 'name', Values: ['*ubuntu-noble-24.04-amd64-server-*'] }],
      }),
    );
    expect(anyone.Images?.map((i) => i.ImageId)).toContain(SEED.images.impostorNobleAmd64);
    const arm = await ec2.send(
      new DescribeImagesCommand({
        Owners: [SEED.canonicalOwnerId],
        Filters: [{ Name: 'architecture', Values: ['arm64'] }],
      }),
    );
    expect(arm.Images).toHaveLength(2);
    expect(
      (await failure(ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-0123456789abcdef0'] })))).name,
    ).toBe('InvalidAMIID.NotFound');
  });

  it('can start without a default VPC', async () => {
    const { ec2 } = await setup({ noDefaultVpc: true });
    const vpcs = await ec2.send(new DescribeVpcsCommand({}));
    expect(vpcs.Vpcs?.map((v) => v.VpcId)).toEqual([SEED.customVpcId, SEED.loopbackVpcId]);
    const noVpc = await failure(
      ec2.send(new CreateSecurityGroupCommand({ GroupName: 'x', Description: 'x' })),
    );
    expect(noVpc.name).toBe('VPCIdNotSpecified');
  });
});

describe('fake EC2 security groups', () => {
  it('creates, tags, authorizes and describes, refusing duplicates', async () => {
    const { ec2, fake } = await setup();
    const groupId = await clusterGroup(ec2, 'c1');
    expect(groupId).toMatch(/^sg-[0-9a-f]{17}$/);
    const dup = await failure(
      ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: 'dcp-c1',
          Description: 'again',
          VpcId: SEED.defaultVpcId,
        }),
      ),
    );
    expect(dup.name).toBe('InvalidGroup.Duplicate');
    // The same name in another VPC is fine.
    await clusterGroup(ec2, 'c1', SEED.customVpcId);

    const permissions = [
      {
        IpProtocol: 'tcp',
        FromPort: 8786,
        ToPort: 8787,
        IpRanges: [{ CidrIp: '203.0.113.7/32', Description: 'me' }],
        Ipv6Ranges: [{ CidrIpv6: '2001:db8::/64' }],
      },
      { IpProtocol: '-1', UserIdGroupPairs: [{ GroupId: groupId, Description: 'cluster' }] },
    ];
    const auth = await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: permissions }),
    );
    expect(auth.Return).toBe(true);
    expect(auth.SecurityGroupRules).toHaveLength(3);

    const again = await failure(
      ec2.send(
        new AuthorizeSecurityGroupIngressCommand({ GroupId: groupId, IpPermissions: [permissions[0]!] }),
      ),
    );
    expect(again.name).toBe('InvalidPermission.Duplicate');
    const unknown = await failure(
      ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: 'sg-0123456789abcdef0',
          IpPermissions: [permissions[0]!],
        }),
      ),
    );
    expect(unknown.name).toBe('InvalidGroup.NotFound');
    expect(unknown.message).toBe("The security group 'sg-0123456789abcdef0' does not exist");
    const badCidr = await failure(
      ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: groupId,
          IpPermissions: [{ IpProtocol: 'tcp', FromPort: 1, ToPort: 1, IpRanges: [{ CidrIp: '1.2.3.4' }] }],
        }),
      ),
    );
    expect(badCidr.name).toBe('InvalidParameterValue');

    const found = await ec2.send(
      new DescribeSecurityGroupsCommand({
        Filters: [
          { Name: 'tag:dcp:cluster', Values: ['c1'] },
          { Name: 'vpc-id', Values: [SEED.defaultVpcId] },
        ],
      }),
    );
    expect(found.SecurityGroups).toHaveLength(1);
    expect(found.SecurityGroups?.[0]).toMatchObject({
      GroupId: groupId,
      GroupName: 'dcp-c1',
      Description: 'dcp cluster c1',
      VpcId: SEED.defaultVpcId,
      Tags: [{ Key: 'dcp:cluster', Value: 'c1' }],
      IpPermissions: [
        {
          IpProtocol: 'tcp',
          FromPort: 8786,
          ToPort: 8787,
          IpRanges: [{ CidrIp: '203.0.113.7/32', Description: 'me' }],
          Ipv6Ranges: [{ CidrIpv6: '2001:db8::/64' }],
          UserIdGroupPairs: [],
        },
        {
          IpProtocol: '-1',
          UserIdGroupPairs: [expect.objectContaining({ GroupId: groupId, Description: 'cluster' })],
          IpRanges: [],
        },
      ],
    });
    expect(fake.securityGroups().find((g) => g.id === groupId)?.ingress).toHaveLength(3);
    const byKey = await ec2.send(
      new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'tag-key', Values: ['dcp:cluster'] }] }),
    );
    expect(byKey.SecurityGroups).toHaveLength(2);
    const nonAscii = await failure(
      ec2.send(
        new CreateSecurityGroupCommand({
          GroupName: 'x',
          Description: 'dcp — cluster',
          VpcId: SEED.defaultVpcId,
        }),
      ),
    );
    expect(nonAscii.message).toMatch(/beyond ASCII/);
  });
});

describe('fake EC2 instances', () => {
  it('round-trips RunInstances with a network interface, tags, metadata options and user data', async () => {
    const { ec2, fake } = await setup();
    const groupId = await clusterGroup(ec2, 'rt');
    const script = '#!/bin/sh\necho hello\n';
    const run = await ec2.send(
      new RunInstancesCommand(
        launchInput(groupId, 'rt', {
          ClientToken: 'token-rt',
          UserData: gzipSync(script).toString('base64'),
          InstanceInitiatedShutdownBehavior: 'terminate',
          MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
        }),
      ),
    );
    const launched = run.Instances?.[0];
    expect(launched?.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
    expect(launched?.State).toEqual({ Code: 0, Name: 'pending' });
    expect(launched?.PrivateIpAddress).toBe('172.31.0.4'); // .0–.3 are AWS's
    expect(launched?.PublicIpAddress).toBeUndefined(); // attached after RunInstances answers, as in AWS

    const inst = await describe1(ec2, launched!.InstanceId!);
    expect(inst).toMatchObject({
      ImageId: SEED.images.nobleAmd64New,
      InstanceType: 't3.medium',
      SubnetId: SEED.defaultSubnetIds['us-east-1a'],
      VpcId: SEED.defaultVpcId,
      PrivateIpAddress: '172.31.0.4',
      Placement: { AvailabilityZone: 'us-east-1a' },
      SecurityGroups: [{ GroupId: groupId, GroupName: 'dcp-rt' }],
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
      ClientToken: 'token-rt',
      NetworkInterfaces: [
        expect.objectContaining({
          SubnetId: SEED.defaultSubnetIds['us-east-1a'],
          Attachment: expect.objectContaining({ DeviceIndex: 0, DeleteOnTermination: true }),
        }),
      ],
    });
    expect(inst.PublicIpAddress).toMatch(/^(198\.51\.100|203\.0\.113)\.\d+$/);
    expect(inst.LaunchTime).toBeInstanceOf(Date);
    expect(tagsOf(inst)).toEqual({ 'dcp:cluster': 'rt', 'dcp:role': 'worker' });

    const [record] = fake.instances();
    expect(record).toMatchObject({
      userData: script,
      shutdownBehavior: 'terminate',
      volumeTags: { 'dcp:cluster': 'rt' },
      networkInterfaceTags: { 'dcp:role': 'worker' },
    });
    expect(record?.userDataRaw.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(fake.calls.find((c) => c.action === 'RunInstances')?.params).toMatchObject({
      NetworkInterface: [{ DeviceIndex: '0', SecurityGroupId: [groupId], AssociatePublicIpAddress: 'true' }],
      MetadataOptions: { HttpTokens: 'required' },
    });

    // Without a network interface, the subnet decides about the public address.
    const priv = await ec2.send(
      new RunInstancesCommand({
        ImageId: SEED.images.nobleAmd64New,
        InstanceType: 't3.micro',
        MinCount: 2,
        MaxCount: 2,
        SubnetId: SEED.customSubnetId,
      }),
    );
    expect(priv.Instances?.map((i) => i.PrivateIpAddress)).toEqual(['10.1.1.4', '10.1.1.5']);
    const privIds = priv.Instances!.map((i) => i.InstanceId!);
    expect(
      fake
        .instances()
        .filter((i) => privIds.includes(i.id))
        .map((i) => i.publicIp),
    ).toEqual([undefined, undefined]);
  });

  it('moves pending → running and shutting-down → terminated, releasing the public address', async () => {
    // Wide enough that a busy machine still sees `pending` and `shutting-down` first.
    const { ec2, fake } = await setup({ pendingMs: 200, shuttingDownMs: 200 });
    const groupId = await clusterGroup(ec2, 'life');
    const run = await ec2.send(new RunInstancesCommand(launchInput(groupId, 'life')));
    const id = run.Instances![0]!.InstanceId!;
    expect((await describe1(ec2, id)).State?.Name).toBe('pending');
    await sleep(210);
    const running = await describe1(ec2, id);
    expect(running.State).toEqual({ Code: 16, Name: 'running' });
    expect(running.StateReason).toBeUndefined();

    const term = await ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(term.TerminatingInstances).toEqual([
      {
        InstanceId: id,
        PreviousState: { Code: 16, Name: 'running' },
        CurrentState: { Code: 32, Name: 'shutting-down' },
      },
    ]);
    expect((await describe1(ec2, id)).PublicIpAddress).toBeUndefined();
    await sleep(210);
    const gone = await describe1(ec2, id);
    expect(gone.State).toEqual({ Code: 48, Name: 'terminated' });
    expect(gone.StateReason?.Code).toBe('Client.UserInitiatedShutdown');
    expect(fake.instances()[0]?.state).toBe('terminated');

    const unknown = await failure(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })),
    );
    expect(unknown.name).toBe('InvalidInstanceID.NotFound');
    expect(unknown.message).toBe("The instance ID 'i-0123456789abcdef0' does not exist");
  });

  it('filters by tag, tag key, state and id, and pages with MaxResults', async () => {
    const { ec2, fake } = await setup();
    const a = await clusterGroup(ec2, 'alpha');
    const b = await clusterGroup(ec2, 'beta');
    await ec2.send(new RunInstancesCommand(launchInput(a, 'alpha', { MinCount: 3, MaxCount: 3 })));
    const beta = await ec2.send(
      new RunInstancesCommand(launchInput(b, 'beta', { MinCount: 4, MaxCount: 4 })),
    );
    const count = async (Filters: { Name: string; Values: string[] }[]) =>
      ((await ec2.send(new DescribeInstancesCommand({ Filters }))).Reservations ?? []).flatMap(
        (r) => r.Instances ?? [],
      ).length;
    expect(await count([{ Name: 'tag:dcp:cluster', Values: ['alpha'] }])).toBe(3);
    expect(await count([{ Name: 'tag:dcp:cluster', Values: ['al*', 'beta'] }])).toBe(7);
    expect(await count([{ Name: 'tag-key', Values: ['dcp:cluster'] }])).toBe(7);
    expect(await count([{ Name: 'instance-id', Values: [beta.Instances![0]!.InstanceId!] }])).toBe(1);
    expect(await count([{ Name: 'vpc-id', Values: [SEED.customVpcId] }])).toBe(0);

    fake.setInstanceState(beta.Instances![0]!.InstanceId!, 'terminated', {
      code: 'Server.InternalError',
      message: 'Server.InternalError: Internal error on launch',
    });
    expect(
      await count([
        { Name: 'tag:dcp:cluster', Values: ['beta'] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ]),
    ).toBe(3);
    const dead = await describe1(ec2, beta.Instances![0]!.InstanceId!);
    expect(dead.StateReason).toEqual({
      Code: 'Server.InternalError',
      Message: 'Server.InternalError: Internal error on launch',
    });
    expect(fake.leftovers('beta').instances).toHaveLength(3);

    const bad = await failure(
      ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag-name', Values: ['x'] }] })),
    );
    expect(bad.name).toBe('InvalidParameterValue');

    const pages: number[] = [];
    for await (const page of paginateDescribeInstances({ client: ec2, pageSize: 5 }, {})) {
      pages.push((page.Reservations ?? []).flatMap((r) => r.Instances ?? []).length);
    }
    expect(pages).toEqual([5, 2]);
  });

  it('refuses to delete a security group until its instances are terminated', async () => {
    const { ec2, fake } = await setup({ shuttingDownMs: 200 });
    const groupId = await clusterGroup(ec2, 'dv');
    const run = await ec2.send(
      new RunInstancesCommand(launchInput(groupId, 'dv', { MinCount: 2, MaxCount: 2 })),
    );
    const ids = run.Instances!.map((i) => i.InstanceId!);
    const busy = await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })));
    expect(busy.name).toBe('DependencyViolation');
    expect(busy.$metadata?.httpStatusCode).toBe(400);
    expect(fake.leftovers('dv')).toMatchObject({
      instances: [{ id: ids[0] }, { id: ids[1] }],
      securityGroups: [{ id: groupId }],
    });

    await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })))).name).toBe(
      'DependencyViolation',
    ); // shutting-down still holds it
    await sleep(210);
    await ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId }));
    expect(fake.leftovers('dv')).toEqual({ instances: [], securityGroups: [] });
    expect((await failure(ec2.send(new DeleteSecurityGroupCommand({ GroupId: groupId })))).name).toBe(
      'InvalidGroup.NotFound',
    );
    expect(fake.mutatingCalls().map((c) => [c.action, c.error])).toEqual([
      ['CreateSecurityGroup', undefined],
      ['RunInstances', undefined],
      ['DeleteSecurityGroup', 'DependencyViolation'],
      ['TerminateInstances', undefined],
      ['DeleteSecurityGroup', 'DependencyViolation'],
      ['DeleteSecurityGroup', undefined],
      ['DeleteSecurityGroup', 'InvalidGroup.NotFound'],
    ]);
  });

  it('answers a repeated ClientToken with the first reservation, creating nothing', async () => {
    const { ec2, fake } = await setup();
    const groupId = await clusterGroup(ec2, 'idem');
    const input = launchInput(groupId, 'idem', { MinCount: 2, MaxCount: 2, ClientToken: 'same-token' });
    const first = await ec2.send(new RunInstancesCommand(input));
    const second = await ec2.send(new RunInstancesCommand(input));
    expect(second.ReservationId).toBe(first.ReservationId);
    expect(second.Instances?.map((i) => i.InstanceId)).toEqual(first.Instances?.map((i) => i.InstanceId));
    expect(fake.instances()).toHaveLength(2);
    const other = await failure(ec2.send(new RunInstancesCommand({ ...input, InstanceType: 't3.large' })));
    expect(other.name).toBe('IdempotentParameterMismatch');
  });

  it('launches what capacity allows, and refuses below MinCount', async () => {
    const { ec2, fake } = await setup({ capacity: 3 });
    const groupId = await clusterGroup(ec2, 'cap');
    const partial = await ec2.send(
      new RunInstancesCommand(launchInput(groupId, 'cap', { MinCount: 1, MaxCount: 5 })),
    );
    expect(partial.Instances).toHaveLength(3);
    const none = await failure(ec2.send(new RunInstancesCommand(launchInput(groupId, 'cap'))));
    expect(none.name).toBe('InsufficientInstanceCapacity');
    expect(none.message).toMatch(/do not have sufficient t3\.medium capacity/);
    expect(fake.instances()).toHaveLength(3);
  });

  it('validates what AWS validates', async () => {
    const { ec2, fake } = await setup();
    const groupId = await clusterGroup(ec2, 'v');
    const err = async (extra: Partial<RunInstancesCommandInput>) =>
      failure(ec2.send(new RunInstancesCommand(launchInput(groupId, 'v', extra))));

    const big = await err({ UserData: Buffer.alloc(16385, 'a').toString('base64') });
    expect([big.name, big.message]).toEqual(['InvalidParameterValue', 'User data is limited to 16384 bytes']);
    await ec2.send(
      new RunInstancesCommand(
        launchInput(groupId, 'v', { UserData: Buffer.alloc(16384, 'a').toString('base64') }),
      ),
    ); // exactly the limit fits
    expect((await err({ MinCount: 3, MaxCount: 2 })).name).toBe('InvalidParameterValue');
    expect((await err({ ImageId: 'ami-0123456789abcdef0' })).name).toBe('InvalidAMIID.NotFound');
    expect((await err({ InstanceType: 't4g.medium' })).message).toMatch(
      /architecture 'arm64' of the specified instance type/,
    );
    const nic = (patch: object) => ({
      NetworkInterfaces: [{ ...launchInput(groupId, 'v').NetworkInterfaces![0], ...patch }],
    });
    expect((await err(nic({ SubnetId: 'subnet-0123456789abcdef0' }))).name).toBe('InvalidSubnetID.NotFound');
    expect((await err(nic({ Groups: ['sg-0123456789abcdef0'] }))).name).toBe('InvalidGroup.NotFound');
    expect((await err(nic({ SubnetId: SEED.customSubnetId }))).message).toMatch(
      /belong to different networks/,
    );
    expect(fake.instances()).toHaveLength(1);
  });

  it('serves console output as base64, absent until there is some', async () => {
    const { ec2, fake } = await setup();
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: SEED.images.nobleArm64New,
        InstanceType: 't4g.small',
        MinCount: 1,
        MaxCount: 1,
      }),
    );
    const id = run.Instances![0]!.InstanceId!;
    expect(run.Instances![0]!.SubnetId).toBe(SEED.defaultSubnetIds['us-east-1a']); // no subnet: a default one
    expect((await ec2.send(new GetConsoleOutputCommand({ InstanceId: id }))).Output).toBeUndefined();
    fake.setConsoleOutput(id, 'dcp: scheduler ready\n');
    const out = await ec2.send(new GetConsoleOutputCommand({ InstanceId: id }));
    expect(Buffer.from(out.Output!, 'base64').toString()).toBe('dcp: scheduler ready\n');
    expect(out.Timestamp).toBeInstanceOf(Date);
  });
});

describe('fake EC2 faults and protocol', () => {
  it('injects errors once, after skipping, and always', async () => {
    const { ec2, fake } = await setup();
    fake.fail('DescribeVpcs', {
      code: 'UnauthorizedOperation',
      message: 'You are not authorized to perform this operation.',
    });
    const once = await failure(ec2.send(new DescribeVpcsCommand({})));
    expect([once.name, once.message, once.$metadata?.httpStatusCode]).toEqual([
      'UnauthorizedOperation',
      'You are not authorized to perform this operation.',
      400,
    ]);
    expect(once.$metadata).toMatchObject({
      attempts: 1,
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    await ec2.send(new DescribeVpcsCommand({}));

    fake.fail('DescribeSubnets', { code: 'InvalidParameterValue' }, { skip: 1 });
    await ec2.send(new DescribeSubnetsCommand({}));
    expect((await failure(ec2.send(new DescribeSubnetsCommand({})))).name).toBe('InvalidParameterValue');
    await ec2.send(new DescribeSubnetsCommand({}));

    fake.fail('RunInstances', { code: 'InsufficientInstanceCapacity' }, { times: Infinity });
    for (let n = 0; n < 3; n++) {
      expect(
        (
          await failure(
            ec2.send(
              new RunInstancesCommand({ ImageId: SEED.images.nobleAmd64New, MinCount: 1, MaxCount: 1 }),
            ),
          )
        ).name,
      ).toBe('InsufficientInstanceCapacity');
    }
    expect(fake.instances()).toHaveLength(0);
    fake.fail('RunInstances', { code: 'InsufficientInstanceCapacity' }, { times: 0 }); // stops it
    await ec2.send(new RunInstancesCommand({ ImageId: SEED.images.nobleAmd64New, MinCount: 1, MaxCount: 1 }));
  });

  it('lets the SDK retry a lost RunInstances answer without launching twice', async () => {
    const { ec2, fake } = await setup();
    fake.fail(
      'RunInstances',
      { code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
      { afterEffect: true },
    );
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: SEED.images.nobleAmd64New,
        InstanceType: 't3.micro',
        MinCount: 1,
        MaxCount: 1,
      }),
    );
    expect(out.$metadata.attempts).toBe(2);
    const [first, second] = fake.calls.filter((c) => c.action === 'RunInstances');
    expect(first?.error).toBe('InternalError');
    // The SDK made up a ClientToken and sent the same one again.
    expect(second?.params.ClientToken).toMatch(/^[0-9a-f-]{36}$/);
    expect(second?.params.ClientToken).toBe(first?.params.ClientToken);
    expect(fake.instances().map((i) => i.id)).toEqual([out.Instances?.[0]?.InstanceId]);
  });

  it('has throttling retried by the SDK, which gives up after 3 attempts', async () => {
    const { ec2, fake } = await setup();
    fake.fail(
      'DescribeVpcs',
      { code: 'RequestLimitExceeded', message: 'Request limit exceeded.' },
      { times: 2 },
    );
    const ok = await ec2.send(new DescribeVpcsCommand({}));
    expect(ok.$metadata.attempts).toBe(3);
    expect(fake.calls.map((c) => c.error)).toEqual([
      'RequestLimitExceeded',
      'RequestLimitExceeded',
      undefined,
    ]);

    fake.fail(
      'DescribeVpcs',
      { code: 'RequestLimitExceeded', message: 'Request limit exceeded.' },
      { times: Infinity },
    );
    const gaveUp = await failure(ec2.send(new DescribeVpcsCommand({})));
    expect([
      gaveUp.name,
      gaveUp.message,
      gaveUp.$metadata?.httpStatusCode,
      gaveUp.$metadata?.attempts,
    ]).toEqual(['RequestLimitExceeded', 'Request limit exceeded.', 503, 3]);
    expect(fake.calls).toHaveLength(6);
  });

  it('requires an Authorization header, answers EC2 error XML, and serves /checkip', async () => {
    const { fake } = await setup({ myIp: '198.51.100.77' });
    const res = await fetch(fake.url, {
      method: 'POST',
      body: new URLSearchParams({ Action: 'DescribeVpcs', Version: '2016-11-15' }),
    });
    expect(res.status).toBe(401);
    const body = await res.text();
    expect(body).toMatch(
      /<Response><Errors><Error><Code>AuthFailure<\/Code><Message>[^<]+<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/,
    );
    const ip = await fetch(`${fake.url}/checkip`);
    expect(await ip.text()).toBe('198.51.100.77\n');
    expect(fake.myIp).toBe('198.51.100.77');
  });

  it('is reachable through AWS_ENDPOINT_URL_EC2 by a client made with no options', async () => {
    const { fake } = await setup();
    const keys = [
      'AWS_ENDPOINT_URL_EC2',
      'AWS_REGION',
      'AWS_ACCESS_KEY_ID',
      'AWS_SECRET_ACCESS_KEY',
    ] as const;
    const saved = keys.map((k) => process.env[k]);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_EC2: fake.url,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDFAKE',
      AWS_SECRET_ACCESS_KEY: 'fake',
    });
    try {
      const out = await new EC2Client({}).send(new DescribeVpcsCommand({}));
      expect(out.Vpcs?.length).toBe(3);
      expect(fake.calls).toHaveLength(1);
    } finally {
      keys.forEach((k, i) => {
        if (saved[i] === undefined) delete process.env[k];
        else process.env[k] = saved[i];
      });
    }
  });
});
