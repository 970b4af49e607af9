/**
 * The AWS EC2 provider. One security group per cluster (`dcp-<name>`); the scheduler first, then
 * every worker in one RunInstances call as soon as the scheduler's private IP is known. Every
 * resource is tagged `dcp:cluster=<name>` when it is made, so `down` finds it all by tag, from
 * any machine, even when a crash kept it out of the journal. Instances require IMDSv2 and
 * terminate when their boot script powers them off (an idle scheduler, an orphaned worker).
 */
import { randomUUID } from 'node:crypto';

import { setTimeout as sleep } from 'node:timers/promises';
import type { RunInstancesCommandInput, Tag } from '@aws-sdk/client-ec2';

type InstanceType = NonNullable<RunInstancesCommandInput['InstanceType']>;
import { readJournal, type ClusterRecord, type Resource } from '../../cluster/state.js';
import { DASK_PORTS, type IngressRule } from '../../config/ingress.js';
import type { FirewallView } from '../../cluster/doctor.js';
import { DcpError, usageError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { DASHBOARD_PORT, memberScript, SCHEDULER_PORT, userData } from '../boot/index.js';
import type {
  ClusterSpec,
  CreateContext,
  DestroyContext,
  DiscoveredCluster,
  Endpoints,
  MemberStatus,
  Provider,
} from '../provider.js';
import { count, gatherClusters, idsOrCount, prepareCommon } from '../cloud.js';
import { checkForgivingBlips } from '../health.js';
import {
  call,
  clusterGroups,
  clusterInstances,
  connect,
  deleteGroup,
  describeInstances,
  lostInstance,
  pollDelay,
  TAG_CLUSTER,
  TAG_CLUSTER_ID,
  TAG_PROTOCOL,
  TAG_ROLE,
  tagValue,
  terminate,
  type Ec2,
} from './ec2.js';
import { architecture, liveRules, permissions, resolvePlacement, ubuntuImage } from './network.js';

const DEFAULT_INSTANCE_TYPE = 't3.medium';

interface AwsResource extends Resource {
  /** `run`: this `up`, journaled before its first change, so rollback knows its own tag. */
  kind: 'run' | 'instance' | 'security-group';
  data: { region: string; clusterId: string; role?: string };
}

function tags(context: CreateContext, clusterId: string, role: string, label: string): Tag[] {
  return [
    { Key: TAG_CLUSTER, Value: context.spec.name },
    { Key: TAG_CLUSTER_ID, Value: clusterId },
    { Key: TAG_ROLE, Value: role },
    // So that `list --provider aws` gives the scheduler's address whole, from any machine.
    { Key: TAG_PROTOCOL, Value: context.tls ? 'tls' : 'tcp' },
    { Key: 'Name', Value: label },
  ];
}

const clients = new Map<string, Promise<Ec2>>();
/** One client per region (and endpoint) for the whole run; the first call checks region and credentials. */
function ec2For(region: string | undefined): Promise<Ec2> {
  const keyOf = (name: string | undefined) =>
    `${name ?? ''}|${process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL ?? ''}`;
  const key = keyOf(region);
  if (!clients.has(key)) {
    const made = connect(region);
    // The region the SDK found serves later calls that name it (prepare asks without, create with).
    made.then((ec2) => clients.set(keyOf(ec2.region), made)).catch(() => clients.delete(key));
    clients.set(key, made);
  }
  return clients.get(key)!;
}

function regionOf(resources: Resource[]): string | undefined {
  return resources.map((r) => (r.data as { region?: string }).region).find(Boolean);
}

/** The run that made these resources, when the journal says: rollback and down touch only its own. */
function clusterIdOf(resources: Resource[]): string | undefined {
  return resources.map((r) => (r.data as { clusterId?: string }).clusterId).find(Boolean);
}

function instanceIds(resources: Resource[], role?: string): string[] {
  return resources
    .filter((r): r is AwsResource => r.kind === 'instance' && (role === undefined || r.data.role === role))
    .map((r) => r.id);
}

export const awsProvider: Provider = {
  name: 'aws',
  // Installing Docker and pulling the Dask image on a fresh VM takes minutes.
  defaultTimeoutMs: 10 * 60_000,
  healthIntervalMs: 10_000,

  plan(spec) {
    const type = spec.cloud.instance_type ?? DEFAULT_INSTANCE_TYPE;
    const where = spec.cloud.subnet
      ? `subnet ${spec.cloud.subnet}`
      : spec.cloud.vpc
        ? `VPC ${spec.cloud.vpc}`
        : 'the default VPC';
    return [
      `launch a scheduler (${spec.cloud.scheduler_instance_type ?? type}) and ${count(spec.workers, 'worker')} (${type}) in ${where}${spec.cloud.region ? ` of ${spec.cloud.region}` : ''}`,
      // Private networking and the ingress rules are said by the review itself, for every cloud.
      ...(spec.networking === 'public'
        ? ['give each instance a public IP; workers still reach the scheduler by its private IP']
        : []),
      `a security group dcp-${spec.name}: the cluster's members reach each other${spec.ingress.length === 0 ? "; the VPC's own network reaches the scheduler" : ''}`,
      `stop billing by itself: the scheduler powers off after ${formatDuration(spec.idleTimeoutSeconds * 1000)} without work, and its workers with it`,
    ];
  },

  async prepare(spec): Promise<ClusterSpec> {
    const ec2 = await ec2For(spec.cloud.region);
    if (
      (await clusterInstances(ec2, { name: spec.name })).length > 0 ||
      (await clusterGroups(ec2, { name: spec.name })).length > 0
    ) {
      throw usageError(
        `a cluster named ${spec.name} already exists in ${ec2.region}`,
        `pick another --name, or remove it first: dcp down ${spec.name} --provider aws --region ${ec2.region}`,
      );
    }
    if (spec.runtime === 'preinstalled' && !spec.cloud.ami) {
      throw usageError(
        '--runtime preinstalled needs a machine image that has Dask on it; stock Ubuntu does not',
        'pass --ami (your Packer-built image, say), or use --runtime docker',
      );
    }
    return { ...(await prepareCommon(spec)), cloud: { ...spec.cloud, region: ec2.region } };
  },

  async create(context: CreateContext): Promise<Endpoints> {
    const { spec, signal } = context;
    const ec2 = await ec2For(spec.cloud.region);
    const region = ec2.region;
    const isPublic = spec.networking === 'public';
    const workerType = spec.cloud.instance_type ?? DEFAULT_INSTANCE_TYPE;
    const schedulerType = spec.cloud.scheduler_instance_type ?? workerType;
    const clusterId = randomUUID();
    await context.record({ kind: 'run', id: clusterId, data: { region, clusterId } });

    context.progress({ step: 'find network', status: 'start', detail: region });
    const placement = await resolvePlacement(ec2, spec.cloud.vpc, spec.cloud.subnet, signal);
    const images = new Map<string, string>();
    const imageFor = async (type: string) => {
      if (spec.cloud.ami) return spec.cloud.ami;
      const arch = architecture(type);
      if (!images.has(arch)) images.set(arch, await ubuntuImage(ec2, arch, signal));
      return images.get(arch)!;
    };
    const [schedulerImage, workerImage] = [await imageFor(schedulerType), await imageFor(workerType)];
    context.progress({
      step: 'find network',
      status: 'done',
      detail: `${placement.subnetId} (${placement.zone}) in ${placement.vpcId}, image ${schedulerImage}`,
    });

    // Ctrl-C is honoured between the mutating calls, never inside one (see ec2.ts).
    context.progress({ step: 'security group', status: 'start', detail: `dcp-${spec.name}` });
    const { GroupId: groupId } = await call('CreateSecurityGroup', () =>
      ec2.api.createSecurityGroup({
        GroupName: `dcp-${spec.name}`,
        Description: `Dask cluster ${spec.name} (dcp): its members, and who may reach the scheduler`,
        VpcId: placement.vpcId,
        TagSpecifications: [
          {
            ResourceType: 'security-group',
            Tags: tags(context, clusterId, 'firewall', `dcp-${spec.name}`),
          },
        ],
      }),
    );
    await context.record({ kind: 'security-group', id: groupId!, data: { region, clusterId } });
    // Private clusters are reachable from their own VPC unless the user said otherwise.
    const ingress = spec.ingress.length > 0 ? spec.ingress : [{ ports: DASK_PORTS, cidr: placement.vpcCidr }];
    const rules = permissions(groupId!, ingress);
    await call('AuthorizeSecurityGroupIngress', () =>
      ec2.api.authorizeSecurityGroupIngress({ GroupId: groupId!, IpPermissions: rules }),
    );
    context.progress({
      step: 'security group',
      status: 'done',
      detail: `${groupId}: ${ingress.map((rule) => `${rule.cidr} → ${rule.ports.join(',')}`).join('; ')}`,
    });
    signal.throwIfAborted();

    const launch = async (
      role: 'scheduler' | 'worker',
      input: Pick<
        RunInstancesCommandInput,
        'ImageId' | 'InstanceType' | 'MinCount' | 'MaxCount' | 'UserData'
      >,
    ) => {
      const label = role === 'scheduler' ? `${spec.name}-scheduler` : `${spec.name}-worker`;
      const { Instances = [] } = await call('RunInstances', () =>
        ec2.api.runInstances({
          ...input,
          // Lets the SDK retry a lost answer without launching twice.
          ClientToken: randomUUID(),
          InstanceInitiatedShutdownBehavior: 'terminate',
          MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1, HttpEndpoint: 'enabled' },
          NetworkInterfaces: [
            {
              DeviceIndex: 0,
              SubnetId: placement.subnetId,
              Groups: [groupId!],
              AssociatePublicIpAddress: isPublic,
              DeleteOnTermination: true,
            },
          ],
          TagSpecifications: ['instance', 'volume', 'network-interface'].map((type) => ({
            ResourceType: type as 'instance',
            Tags: tags(context, clusterId, role, label),
          })),
        }),
      );
      for (const instance of Instances)
        await context.record({
          kind: 'instance',
          id: instance.InstanceId!,
          data: { region, clusterId, role },
        });
      return Instances;
    };

    const schedulerScript = await memberScript(context, 'scheduler');
    context.progress({ step: 'launch scheduler', status: 'start', detail: schedulerType });
    const [scheduler] = await launch('scheduler', {
      ImageId: schedulerImage,
      InstanceType: schedulerType as InstanceType,
      MinCount: 1,
      MaxCount: 1,
      UserData: userData(schedulerScript).toString('base64'),
    });
    const privateIp = scheduler?.PrivateIpAddress;
    if (!scheduler || !privateIp) throw new DcpError('AWS launched the scheduler without a private IP');
    context.progress({
      step: 'launch scheduler',
      status: 'done',
      detail: `${scheduler.InstanceId} at ${privateIp}`,
    });
    signal.throwIfAborted();

    // The workers need only the scheduler's private address, known now: no waiting for its boot.
    const workerScript = await memberScript(context, 'worker', privateIp);
    context.progress({
      step: 'launch workers',
      status: 'start',
      detail: `${count(spec.workers, 'worker')} (${workerType})`,
    });
    const workers = await launch('worker', {
      ImageId: workerImage,
      InstanceType: workerType as InstanceType,
      MinCount: spec.workers,
      MaxCount: spec.workers,
      UserData: userData(workerScript).toString('base64'),
    });
    context.progress({
      step: 'launch workers',
      status: 'done',
      detail: idsOrCount(
        workers.map((w) => w.InstanceId!),
        'instance',
      ),
    });

    let address = privateIp;
    if (isPublic) {
      context.progress({ step: 'public address', status: 'start', detail: scheduler.InstanceId! });
      address = await publicIp(ec2, scheduler.InstanceId!, signal);
      context.progress({ step: 'public address', status: 'done', detail: address });
    }
    const protocol = context.tls ? 'tls' : 'tcp';
    return {
      schedulerAddress: `${protocol}://${address}:${SCHEDULER_PORT}`,
      // Behind the cluster's own mutual TLS (the gate in the boot script), as the scheduler port is.
      dashboardUrl: `${context.tls ? 'https' : 'http'}://${address}:${DASHBOARD_PORT}/status`,
      details: {
        region,
        vpc: placement.vpcId,
        subnet: placement.subnetId,
        security_group: groupId,
        // What the firewall was made with, for `dcp doctor` to hold the live rules against.
        ingress,
        scheduler_instance: scheduler.InstanceId,
        scheduler_private_ip: privateIp,
        ...(isPublic ? { scheduler_public_ip: address } : {}),
        ami: schedulerImage,
        ...(workerImage !== schedulerImage ? { worker_ami: workerImage } : {}),
        runtime: spec.runtime,
        ...(spec.image ? { image: spec.image } : {}),
      },
    };
  },

  async checkHealth(context) {
    const ec2 = await ec2For(context.spec.cloud.region);
    await checkForgivingBlips(context.dir, async () => {
      const instances = await describeInstances(
        ec2,
        instanceIds(await readJournal(context.dir)),
        context.signal,
      );
      return instances.map(lostInstance).find(Boolean);
    });
  },

  async diagnostics(dir) {
    const resources = await readJournal(dir);
    const [schedulerId] = instanceIds(resources, 'scheduler');
    if (!schedulerId) return '';
    let ec2: Ec2;
    let states: string[];
    try {
      ec2 = await ec2For(regionOf(resources));
      states = (await describeInstances(ec2, instanceIds(resources))).map(
        (i) =>
          `${tagValue(i.Tags, TAG_ROLE) ?? '?'} ${i.InstanceId}: ${i.State?.Name}${i.StateReason?.Message ? ` (${i.StateReason.Message})` : ''}`,
      );
    } catch {
      return '';
    }
    // The newest output exists only on Nitro instance types; older ones answer with the last
    // buffered output. Either may be refused (no ec2:GetConsoleOutput): the states still tell.
    const consoleText = async () => {
      for (const Latest of [true, false]) {
        try {
          const { Output } = await ec2.api.getConsoleOutput({ InstanceId: schedulerId, Latest });
          return Output
            ? Buffer.from(Output, 'base64').toString('utf8').trimEnd().split('\n').slice(-15).join('\n')
            : '(no console output yet)';
        } catch {
          // try the other way, then give up
        }
      }
      return '(its console output could not be read)';
    };
    return [
      `--- instances ---`,
      ...states,
      `--- scheduler ${schedulerId}: the last lines of its console ---`,
      await consoleText(),
    ].join('\n');
  },

  async destroy(resources, context: DestroyContext): Promise<string[]> {
    // What the journal lists, and whatever carries the run's tag: a crash may have come between
    // a launch and its journal line. By name only when asked to search (no state here): a
    // rollback must never reach a namesake made elsewhere.
    const clusterId = clusterIdOf(resources);
    const which = clusterId ? { id: clusterId } : context.searchByName ? { name: context.name } : undefined;
    if (!which) return [];
    const ec2 = await ec2For(regionOf(resources) ?? context.location);
    const tagged = await clusterInstances(ec2, which);
    const ids = [...new Set([...instanceIds(resources), ...tagged.map((i) => i.InstanceId!)])];
    const removed: string[] = [];
    if (ids.length > 0) {
      context.progress({
        step: 'terminate instances',
        status: 'start',
        detail: count(ids.length, 'instance'),
      });
      await terminate(ec2, ids);
      context.progress({ step: 'terminate instances', status: 'done', detail: idsOrCount(ids, 'instance') });
      removed.push(idsOrCount(ids, 'instance'));
    }
    const groups = [
      ...new Set([
        ...resources.filter((r) => r.kind === 'security-group').map((r) => r.id),
        ...(await clusterGroups(ec2, which)).map((g) => g.GroupId!),
      ]),
    ];
    for (const group of groups) {
      context.progress({ step: 'delete security group', status: 'start', detail: group });
      if (await deleteGroup(ec2, group)) removed.push(`security group ${group}`);
      context.progress({ step: 'delete security group', status: 'done', detail: group });
    }
    return removed;
  },

  async members(record: ClusterRecord, resources: Resource[]): Promise<MemberStatus[]> {
    // Every journal line of a cloud cluster says its region.
    const ec2 = await ec2For(regionOf(resources));
    const instances = await describeInstances(ec2, instanceIds(resources));
    return instances.map((i) => ({
      role: tagValue(i.Tags, TAG_ROLE) ?? '?',
      id: i.InstanceId!,
      running: i.State?.Name === 'running',
    }));
  },

  async firewall(record: ClusterRecord): Promise<FirewallView> {
    const {
      region,
      security_group: groupId,
      ingress,
    } = record.details as {
      region?: string;
      security_group?: string;
      ingress?: IngressRule[];
    };
    if (!groupId) throw new DcpError(`${record.name}'s record names no security group`);
    const ec2 = await ec2For(region);
    const { SecurityGroups: groups = [] } = await call('DescribeSecurityGroups', () =>
      ec2.api.describeSecurityGroups({ GroupIds: [groupId] }),
    );
    return {
      where: `${groupId} in ${ec2.region}`,
      rules: (groups[0]?.IpPermissions ?? []).flatMap(liveRules),
      asked: ingress,
    };
  },

  async discover(region): Promise<DiscoveredCluster[]> {
    const ec2 = await ec2For(region);
    const [instances, groups] = await Promise.all([clusterInstances(ec2, 'all'), clusterGroups(ec2, 'all')]);
    return gatherClusters(
      'aws',
      instances.map((instance) => ({
        cluster: tagValue(instance.Tags, TAG_CLUSTER)!,
        location: ec2.region,
        role: tagValue(instance.Tags, TAG_ROLE) ?? '?',
        id: instance.InstanceId!,
        running: instance.State?.Name === 'running',
        ip: instance.PublicIpAddress ?? instance.PrivateIpAddress,
        protocol: tagValue(instance.Tags, TAG_PROTOCOL),
      })),
      groups.map((group) => ({
        cluster: tagValue(group.Tags, TAG_CLUSTER)!,
        location: ec2.region,
        what: `security group ${group.GroupId}`,
      })),
    );
  },
};

/** AWS gives a public IP a moment after the launch; waits for it. */
async function publicIp(ec2: Ec2, id: string, signal: AbortSignal): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const [instance] = await describeInstances(ec2, [id], signal);
    if (instance?.PublicIpAddress) return instance.PublicIpAddress;
    const lost = instance && lostInstance(instance);
    if (lost) throw lost;
    await sleep(pollDelay(attempt), undefined, { signal });
  }
}
