/**
 * The AWS provider through the real SDK against the wire-level EC2 fake, beyond what every cloud
 * shows (aws.conformance.test.ts): tags, IMDSv2, images, the security group, lost answers and
 * throttling, namesakes, waiting for readiness, and what `down` finds by tag.
 * Addresses the fake hands out are never connected to, except in the loopback subnet.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCluster, destroyCluster } from '../../src/cluster/engine.js';
import { planUp, type UpFlags } from '../../src/cluster/spec.js';
import { clusterDir, readJournal } from '../../src/cluster/state.js';
import { DcpError, ExitCode } from '../../src/errors.js';
import { awsProvider } from '../../src/providers/aws/index.js';
import { firewallDoors } from '../../src/cluster/doctor.js';
import { AuthorizeSecurityGroupIngressCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { ProgressEvent, Provider } from '../../src/providers/provider.js';
import { SEED, startFakeEc2, type FakeEc2 } from '../fakes/ec2/index.js';
import { awsEnvironment, privateHome } from './cloud-env.js';
import { startFakeRegistry } from '../fakes/registry/index.js';
import { tempDir } from '../helpers/cli.js';
import { describeWithDask, localVersions, python } from '../helpers/dask.js';

let fake: FakeEc2;
let home: string;
const saved = { ...process.env };

beforeAll(async () => {
  fake = await startFakeEc2({ pendingMs: 60_000, shuttingDownMs: 50 });
  home = tempDir('dcp-aws-home-');
  // Everything the SDK and dcp read from the environment, pointed at the fake and a private home.
  Object.assign(process.env, { ...privateHome(home), ...awsEnvironment(fake) });
  delete process.env.AWS_PROFILE;
});

afterAll(async () => {
  process.env = saved;
  await fake?.close();
});

beforeEach(() => {
  fake.calls.length = 0;
});

let counter = 0;
function flags(extra: Partial<UpFlags> = {}): UpFlags {
  return {
    name: `aws-test-${++counter}`,
    provider: 'aws',
    wait: false,
    insecure: false,
    image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
    workers: '2',
    ...extra,
  };
}

async function up(
  extra: Partial<UpFlags> = {},
  onProgress: (event: ProgressEvent) => void = () => undefined,
  interrupt = new AbortController(),
) {
  const events: ProgressEvent[] = [];
  const plan = await planUp(flags(extra));
  const record = await createCluster(
    plan,
    awsProvider,
    { progress: (event) => (events.push(event), onProgress(event)) },
    interrupt.signal,
  );
  return { plan, record, events };
}

const tagged = (name: string) => fake.instances().filter((i) => i.tags['dcp:cluster'] === name);
const quiet = { progress: () => undefined };

describe('up', () => {
  it('makes a tagged group and instances the way the design asks, public by default', async () => {
    const { record } = await up();
    const instances = tagged(record.name);
    const scheduler = instances.find((i) => i.tags['dcp:role'] === 'scheduler')!;
    const workers = instances.filter((i) => i.tags['dcp:role'] === 'worker');
    expect(workers).toHaveLength(2);
    for (const instance of instances) {
      expect(instance.metadataOptions).toMatchObject({ httpTokens: 'required', httpPutResponseHopLimit: 1 });
      expect(instance.shutdownBehavior).toBe('terminate');
      expect(instance.publicIp).toBeTruthy();
      expect(instance.tags.Name).toBe(`${record.name}-${instance.tags['dcp:role']}`);
      expect(instance.volumeTags['dcp:cluster']).toBe(record.name);
      expect(instance.vpcId).toBe(SEED.defaultVpcId);
      expect(instance.imageId).toBe(SEED.images.nobleAmd64New);
    }
    // The client goes to the public IP; workers to the private one, never the public.
    expect(record.scheduler_address).toBe(`tls://${scheduler.publicIp}:8786`);
    // Behind the cluster's mutual TLS, like the scheduler port.
    expect(record.dashboard_url).toBe(`https://${scheduler.publicIp}:8787/status`);
    for (const worker of workers) {
      expect(worker.userData).toContain(`tls://${scheduler.privateIp}:8786`);
      expect(worker.userData).not.toContain(scheduler.publicIp);
    }

    const [group] = fake.securityGroups().filter((g) => g.tags['dcp:cluster'] === record.name);
    expect(group!.name).toBe(`dcp-${record.name}`);
    expect(instances.every((i) => i.securityGroupIds.includes(group!.id))).toBe(true);
    const opened = group!.ingress
      .filter((rule) => rule.cidrIp || rule.cidrIpv6)
      .map((rule) => `${rule.cidrIp ?? rule.cidrIpv6}:${rule.fromPort}-${rule.toPort}`);
    expect(opened.sort()).toEqual([`${fake.myIp}/32:8786-8786`, `${fake.myIp}/32:8787-8787`]);
    expect(group!.ingress.some((rule) => rule.sourceGroupId === group!.id && rule.protocol === '-1')).toBe(
      true,
    );
    expect(record.details).toMatchObject({
      region: 'us-east-1',
      security_group: group!.id,
      vpc: SEED.defaultVpcId,
    });
    await destroyCluster(record.name, quiet);
  });

  it('private networking: no public IPs, the client uses the private IP, the VPC may reach it', async () => {
    const { record } = await up({ private: true, subnet: SEED.customSubnetId });
    const instances = tagged(record.name);
    expect(instances.every((i) => i.publicIp === undefined && i.subnetId === SEED.customSubnetId)).toBe(true);
    const runs = fake.calls.filter((c) => c.action === 'RunInstances');
    expect(JSON.stringify(runs.map((c) => c.params))).toContain('"AssociatePublicIpAddress":"false"');
    const scheduler = instances.find((i) => i.tags['dcp:role'] === 'scheduler')!;
    expect(record.scheduler_address).toBe(`tls://${scheduler.privateIp}:8786`);
    const group = fake.securityGroups().find((g) => g.tags['dcp:cluster'] === record.name)!;
    expect(group.vpcId).toBe(SEED.customVpcId);
    expect(group.ingress.filter((r) => r.cidrIp).map((r) => r.cidrIp)).toEqual([
      '10.1.0.0/16',
      '10.1.0.0/16',
    ]);
    await destroyCluster(record.name, quiet);
  });

  it('--vpc alone: a subnet of that VPC; a subnet AWS does not know: said, with nothing made', async () => {
    const { record } = await up({ vpc: SEED.customVpcId, private: true });
    expect(
      tagged(record.name).every((i) => i.vpcId === SEED.customVpcId && i.subnetId === SEED.customSubnetId),
    ).toBe(true);
    await destroyCluster(record.name, quiet);
    fake.calls.length = 0;
    const error = await up({ name: 'aws-bad-subnet', subnet: 'subnet-0123456789abcdef0' }).catch(
      (e: unknown) => e as DcpError,
    );
    expect((error as DcpError).message).toMatch(/AWS refused DescribeSubnets: InvalidSubnetID.NotFound/);
    expect((error as DcpError).hint).toMatch(/--subnet/);
    expect(fake.mutatingCalls()).toEqual([]);
  });

  it('dcp doctor reads the live firewall back: a rule widened to the world behind dcp’s back is reported', async () => {
    const { record } = await up({ ingress: ['198.51.100.0/24:8786'] });
    const view = await awsProvider.firewall!(record);
    expect(firewallDoors(view).every((door) => door.verdict === 'holds')).toBe(true);
    expect(view.rules).toEqual([{ cidr: '198.51.100.0/24', ports: [8786] }]);

    // Someone opens the dashboard to the internet, and the scheduler range wider, in the console.
    const ec2 = new EC2Client({ endpoint: fake.url, region: 'us-east-1' });
    await ec2.send(
      new AuthorizeSecurityGroupIngressCommand({
        GroupId: record.details.security_group as string,
        IpPermissions: [
          { IpProtocol: 'tcp', FromPort: 8787, ToPort: 8787, IpRanges: [{ CidrIp: '0.0.0.0/0' }] },
          { IpProtocol: 'tcp', FromPort: 22, ToPort: 9000, IpRanges: [{ CidrIp: '198.51.100.0/24' }] },
        ],
      }),
    );
    fake.calls.length = 0;
    const doors = firewallDoors(await awsProvider.firewall!(record));
    const open = doors.filter((door) => door.verdict === 'open');
    expect(open.map((door) => door.detail).sort()).toEqual([
      expect.stringMatching(
        /lets 0\.0\.0\.0\/0 \(the whole internet\) reach 8787, which the cluster was not made with/,
      ),
      expect.stringMatching(
        /lets 198\.51\.100\.0\/24 reach 22-8785,8787-9000, which the cluster was not made with/,
      ),
    ]);
    expect(open[0]!.fix).toMatch(/remove that rule from sg-\w+ in us-east-1/);
    // Read calls only.
    expect(fake.calls.map((call) => call.action)).toEqual(['DescribeSecurityGroups']);
    await destroyCluster(record.name, quiet);
  });

  it('picks arm64 Ubuntu for Graviton types, and takes --ami as given', async () => {
    const arm = await up({ instanceType: 'm7g.large' });
    expect(
      tagged(arm.record.name).every(
        (i) => i.imageId === SEED.images.nobleArm64New && i.instanceType === 'm7g.large',
      ),
    ).toBe(true);
    const pinned = await up({ ami: SEED.images.jammyAmd64 });
    expect(tagged(pinned.record.name).every((i) => i.imageId === SEED.images.jammyAmd64)).toBe(true);
    expect(fake.calls.filter((c) => c.action === 'DescribeImages')).toHaveLength(1);
    await destroyCluster(arm.record.name, quiet);
    await destroyCluster(pinned.record.name, quiet);
  });

  it('sizes the scheduler apart (aws.scheduler_instance_type), with the image its architecture needs', async () => {
    process.env.DCP_AWS_SCHEDULER_INSTANCE_TYPE = 't3.large';
    try {
      const { record } = await up({ instanceType: 'm7g.large' });
      const scheduler = tagged(record.name).find((i) => i.tags['dcp:role'] === 'scheduler')!;
      expect(scheduler).toMatchObject({ instanceType: 't3.large', imageId: SEED.images.nobleAmd64New });
      expect(
        tagged(record.name)
          .filter((i) => i.tags['dcp:role'] === 'worker')
          .every((i) => i.imageId === SEED.images.nobleArm64New),
      ).toBe(true);
      expect(record.details).toMatchObject({
        ami: SEED.images.nobleAmd64New,
        worker_ami: SEED.images.nobleArm64New,
      });
      await destroyCluster(record.name, quiet);
    } finally {
      delete process.env.DCP_AWS_SCHEDULER_INSTANCE_TYPE;
    }
  });

  it('50 workers: one RunInstances for all of them (one reservation), one TerminateInstances at down', async () => {
    const { record } = await up({ workers: '50' });
    const workers = tagged(record.name).filter((i) => i.tags['dcp:role'] === 'worker');
    expect(new Set(workers.map((w) => w.reservationId)).size).toBe(1);
    fake.calls.length = 0;
    await destroyCluster(record.name, quiet);
    expect(fake.mutatingCalls().filter((c) => c.action === 'TerminateInstances')).toHaveLength(1);
    expect(fake.leftovers(record.name)).toEqual({ instances: [], securityGroups: [] });
  });
});

describeWithDask('the image', () => {
  it('is the Dask image of this machine’s distributed and Python, as the registry has it', async () => {
    const { distributed: version, python: pythonVersion } = await localVersions();
    const registry = await startFakeRegistry('dask/dask', [`${version}-py${pythonVersion}`, version!]);
    const before = process.env.DCP_IMAGE_REPOSITORY;
    process.env.DCP_IMAGE_REPOSITORY = `${registry.host}/dask/dask`;
    try {
      const { record } = await up({ image: undefined, python: python() });
      const expected = `${registry.host}/dask/dask:${version}-py${pythonVersion}`;
      expect(record.details.image).toBe(expected);
      for (const instance of tagged(record.name))
        expect(instance.userData).toContain(`'${expected}' dask '${instance.tags['dcp:role']}'`);
      await destroyCluster(record.name, quiet);

      // No build for this Python: the release's own image, and the user is told.
      registry.tags.delete(`${version}-py${pythonVersion}`);
      const warnings: string[] = [];
      const plan = await planUp(flags({ image: undefined, python: python() }));
      const fallback = await createCluster(
        plan,
        awsProvider,
        { progress: () => undefined, warn: (message) => warnings.push(message) },
        new AbortController().signal,
      );
      expect(fallback.details.image).toBe(`${registry.host}/dask/dask:${version}`);
      expect(warnings.join('\n')).toContain(`for Python ${pythonVersion}`);
      await destroyCluster(fallback.name, quiet);

      // No image of this release at all: said before anything is made.
      registry.tags.clear();
      fake.calls.length = 0;
      const error = await up({ image: undefined, python: python() }).catch((e: unknown) => e as DcpError);
      expect((error as DcpError).exitCode).toBe(ExitCode.usage);
      expect(fake.mutatingCalls()).toEqual([]);
    } finally {
      process.env.DCP_IMAGE_REPOSITORY = before;
      await registry.close();
    }
  });
});

describe('refusals before anything is made', () => {
  it('a cluster of that name already in the region (made elsewhere): exit 2, and the other one untouched', async () => {
    const { record } = await up();
    rmSync(clusterDir(record.name), { recursive: true });
    fake.calls.length = 0;
    const error = await up({ name: record.name }).catch((e: unknown) => e as DcpError);
    expect((error as DcpError).exitCode).toBe(ExitCode.usage);
    expect((error as DcpError).message).toBe(`a cluster named ${record.name} already exists in us-east-1`);
    expect((error as DcpError).hint).toContain(`dcp down ${record.name} --provider aws --region us-east-1`);
    expect(fake.mutatingCalls()).toEqual([]);
    expect(fake.leftovers(record.name).instances).toHaveLength(3);
    await destroyCluster(record.name, quiet, process.env, { provider: 'aws' });
  });

  it('preinstalled Dask needs a machine image that has it', async () => {
    const error = await up({ name: 'aws-preinstalled', runtime: 'preinstalled' }).catch(
      (e: unknown) => e as DcpError,
    );
    expect((error as DcpError).exitCode).toBe(ExitCode.usage);
    expect((error as DcpError).hint).toContain('--ami');
    expect(fake.mutatingCalls()).toEqual([]);
  });

  it('an idle timeout under a minute, or an image with spaces, is refused as a flag', async () => {
    await expect(planUp(flags({ idleTimeout: '30s' }))).rejects.toThrow(
      /--idle-timeout: "30s" must be at least 1m/,
    );
    await expect(planUp(flags({ image: 'ghcr.io/dask/dask:1\nrm -rf /' }))).rejects.toThrow(
      /--image: .* without spaces/,
    );
  });

  it('private VMs pulling Docker images are warned about the NAT they need', async () => {
    const plan = await planUp(flags({ private: true }));
    expect(plan.warnings.join('\n')).toMatch(/NAT gateway/);
    expect((await planUp(flags({ private: true, runtime: 'preinstalled', ami: 'ami-1' }))).warnings).toEqual(
      [],
    );
  });
});

describe('failures roll back everything', () => {
  it('a rollback removes only what its own run made, never a namesake that appeared elsewhere meanwhile', async () => {
    const { record: other } = await up({ name: 'aws-namesake' });
    rmSync(clusterDir(other.name), { recursive: true });
    const theirs = () =>
      fake.leftovers('aws-namesake').instances.filter((i) => i.vpcId === SEED.defaultVpcId);
    expect(theirs()).toHaveLength(3);
    // As if the other cluster was made after this run checked the name: the check sees a free one.
    const racing: Provider = {
      ...awsProvider,
      prepare: async (spec) => ({
        ...(await awsProvider.prepare({ ...spec, name: 'aws-namesake-free' })),
        name: spec.name,
      }),
    };
    for (const [action, skip] of [
      ['CreateSecurityGroup', 0],
      ['RunInstances', 1],
    ] as const) {
      fake.fail(action, { code: 'InsufficientInstanceCapacity', message: 'no capacity' }, { skip });
      const plan = await planUp(flags({ name: 'aws-namesake', subnet: SEED.customSubnetId }));
      await expect(createCluster(plan, racing, quiet, new AbortController().signal)).rejects.toThrow(
        /rolled back/,
      );
      expect(theirs()).toHaveLength(3);
      expect(fake.leftovers('aws-namesake').securityGroups.map((g) => g.vpcId)).toEqual([SEED.defaultVpcId]);
      expect(fake.leftovers('aws-namesake').instances.filter((i) => i.vpcId === SEED.customVpcId)).toEqual(
        [],
      );
    }
    await destroyCluster('aws-namesake', quiet, process.env, { provider: 'aws' });
    expect(fake.leftovers('aws-namesake')).toEqual({ instances: [], securityGroups: [] });
  });

  it('no capacity for the workers: the scheduler and group go, and the hint says what to try', async () => {
    fake.fail(
      'RunInstances',
      { code: 'InsufficientInstanceCapacity', message: 'We currently do not have sufficient capacity.' },
      { skip: 1 },
    );
    const error = await up({ name: 'aws-capacity' }).catch((e: unknown) => e as DcpError);
    expect((error as DcpError).hint).toMatch(/instance-type/);
    expect((error as DcpError).message).toMatch(/removed instance i-\w+, security group sg-\w+/);
    expect(fake.leftovers('aws-capacity')).toEqual({ instances: [], securityGroups: [] });
  });

  it('throttling that outlasts the SDK’s retries fails cleanly too', async () => {
    fake.fail(
      'RunInstances',
      { code: 'RequestLimitExceeded', message: 'Request limit exceeded.' },
      { times: Infinity },
    );
    try {
      const error = await up({ name: 'aws-throttled' }).catch((e: unknown) => e as DcpError);
      expect((error as DcpError).message).toContain('RequestLimitExceeded');
      expect(fake.calls.filter((c) => c.action === 'RunInstances').length).toBeGreaterThan(1);
      expect(fake.leftovers('aws-throttled')).toEqual({ instances: [], securityGroups: [] });
    } finally {
      fake.clearFaults('RunInstances');
    }
  });

  it('answers lost after AWS acted (the SDK retries them): still nothing left behind', async () => {
    for (const action of ['CreateSecurityGroup', 'RunInstances'] as const) {
      const name = `aws-lost-${action}`;
      fake.fail(
        action,
        { code: 'InternalError', message: 'An internal error has occurred.' },
        { times: Infinity, afterEffect: true },
      );
      try {
        const error = await up({ name }).catch((e: unknown) => e as DcpError);
        expect(error).toBeInstanceOf(DcpError);
      } finally {
        fake.clearFaults(action);
      }
      expect(fake.leftovers(name)).toEqual({ instances: [], securityGroups: [] });
    }
  });

  it('an API blip while waiting is forgiven; three unanswered checks in a row are not', async () => {
    const { plan, record } = await up();
    const context = {
      spec: { ...plan.spec, cloud: { ...plan.spec.cloud, region: 'us-east-1' } },
      dir: clusterDir(record.name),
      logsDir: '',
      tls: null,
      record: async () => undefined,
      progress: () => undefined,
      warn: () => undefined,
      signal: new AbortController().signal,
    };
    fake.fail('DescribeInstances', { code: 'UnauthorizedOperation', message: 'denied' }, { times: 3 });
    await expect(awsProvider.checkHealth(context)).resolves.toBeUndefined();
    await expect(awsProvider.checkHealth(context)).resolves.toBeUndefined();
    await expect(awsProvider.checkHealth(context)).rejects.toThrow(/AWS refused DescribeInstances/);
    await expect(awsProvider.checkHealth(context)).resolves.toBeUndefined();
    await destroyCluster(record.name, quiet);
  });

  it('no default VPC: a usage error naming --vpc and --subnet, and nothing made', async () => {
    const bare = await startFakeEc2({ noDefaultVpc: true });
    process.env.AWS_ENDPOINT_URL_EC2 = bare.url;
    try {
      const error = await up({ name: 'aws-novpc', region: 'us-west-2' }).catch((e: unknown) => e as DcpError);
      expect((error as DcpError).exitCode).toBe(ExitCode.usage);
      expect((error as DcpError).hint).toMatch(/--vpc and --subnet/);
      expect(bare.mutatingCalls()).toEqual([]);
    } finally {
      process.env.AWS_ENDPOINT_URL_EC2 = fake.url;
      await bare.close();
    }
  });
});

describe('waiting for readiness (in the loopback subnet: nothing leaves this machine)', () => {
  const loopback = { private: true, subnet: SEED.loopbackSubnetId, wait: true } as const;

  it('a scheduler that never answers: rolled back at the timeout, with what the instances were doing', async () => {
    const error = await up({ ...loopback, name: 'aws-timeout', timeout: '2s' }).catch(
      (e: unknown) => e as DcpError,
    );
    expect((error as DcpError).message).toMatch(
      /aws-timeout was not ready within 2s; rolled back: removed instances i-\w+, i-\w+, i-\w+, security group sg-\w+/,
    );
    expect((error as DcpError).details).toMatch(/--- instances ---\nscheduler i-\w+: pending/);
    expect(fake.leftovers('aws-timeout')).toEqual({ instances: [], securityGroups: [] });
  });

  it('the instance states still explain a timeout when the console cannot be read (permission, older types)', async () => {
    fake.fail('GetConsoleOutput', { code: 'UnauthorizedOperation', message: 'denied' }, { times: 2 });
    const error = await up({ ...loopback, name: 'aws-no-console', timeout: '2s' }).catch(
      (e: unknown) => e as DcpError,
    );
    expect((error as DcpError).details).toMatch(/--- instances ---\nscheduler i-\w+: pending/);
    expect((error as DcpError).details).toContain('(its console output could not be read)');
    expect(fake.calls.filter((c) => c.action === 'GetConsoleOutput').map((c) => c.params.Latest)).toEqual([
      'true',
      'false',
    ]);
  });

  it('an instance that dies while dcp waits fails up at once, saying which and why', async () => {
    const started = Date.now();
    const error = await up({ ...loopback, name: 'aws-dies', timeout: '5m' }, (event) => {
      if (event.step === 'launch workers' && event.status === 'done') {
        const worker = tagged('aws-dies').find((i) => i.tags['dcp:role'] === 'worker')!;
        fake.setInstanceState(worker.id, 'terminated', {
          code: 'Server.InternalError',
          message: 'Server.InternalError: Internal error on launch',
        });
      }
    }).catch((e: unknown) => e as DcpError);
    expect((error as DcpError).message).toMatch(
      /the worker instance i-\w+ is terminated: Server.InternalError: Internal error on launch; rolled back/,
    );
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(fake.leftovers('aws-dies')).toEqual({ instances: [], securityGroups: [] });
  }, 60_000);
});

describe('down', () => {
  it('finds what a crash kept out of the journal, by tag', async () => {
    const { record } = await up({ workers: '3' });
    const dir = clusterDir(record.name);
    // As if dcp died right after launching the workers, before journaling them.
    const kept = (await readJournal(dir)).filter((r) => !(r.kind === 'instance' && r.data.role === 'worker'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'journal.jsonl'), kept.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await destroyCluster(record.name, quiet);
    expect(fake.leftovers(record.name)).toEqual({ instances: [], securityGroups: [] });
  });

  it('waits out DependencyViolation while the instances let go of the group', async () => {
    // A fake where terminated instances hold the group for 1.5 s, as AWS does for a while; its
    // own region, so the provider makes a client for it.
    const lingering = await startFakeEc2({ shuttingDownMs: 50, dependencyLingerMs: 1_500 });
    process.env.AWS_ENDPOINT_URL_EC2 = lingering.url;
    try {
      const { record } = await up({ region: 'eu-central-1' });
      await destroyCluster(record.name, quiet);
      const deletes = lingering.calls.filter((c) => c.action === 'DeleteSecurityGroup');
      expect(deletes.some((c) => c.error === 'DependencyViolation')).toBe(true);
      expect(deletes.at(-1)!.error).toBeUndefined();
      expect(lingering.leftovers(record.name)).toEqual({ instances: [], securityGroups: [] });
    } finally {
      process.env.AWS_ENDPOINT_URL_EC2 = fake.url;
      await lingering.close();
    }
  });
});
