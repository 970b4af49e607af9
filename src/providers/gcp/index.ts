/**
 * The Google Cloud (Compute Engine) provider. Firewall rules `dcp-<name>-*` on the cluster's
 * network tag, made and in force before any VM; the scheduler by `instances.insert`, then every
 * worker in one all-or-nothing `instances.bulkInsert` sent at once: workers find the scheduler by
 * its internal DNS name, known before it exists, so nothing waits for its boot. VMs carry the
 * labels `dcp-cluster`, `dcp-cluster-id` and `dcp-role` (firewall rules, which have no labels,
 * say them in their description), so `down` finds everything from any machine. No VM gets a
 * service account; each is a Shielded VM with OS Login and no project SSH keys.
 *
 * A GCE VM that powers itself off is TERMINATED, not deleted: its disk still bills until `down`.
 */
import { randomUUID } from 'node:crypto';
import { readJournal, type ClusterRecord, type Resource } from '../../cluster/state.js';
import { firewallDoors, type FirewallView } from '../../cluster/doctor.js';
import { DASK_PORTS, type IngressRule } from '../../config/ingress.js';
import { loadSettings } from '../../config/load.js';
import { DcpError, messageOf, usageError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { DASHBOARD_PORT, memberScript, SCHEDULER_PORT } from '../boot/index.js';
import { count, gatherClusters, idsOrCount, onePerRun, prepareCommon } from '../cloud.js';
import { checkForgivingBlips } from '../health.js';
import type {
  ClusterSpec,
  CreateContext,
  DestroyContext,
  DiscoveredCluster,
  Endpoints,
  MemberStatus,
  Provider,
} from '../provider.js';
import { connectCompute, isNotFound, relative, type Compute, type Operation } from './compute.js';
import { resolveIdentity } from './identity.js';
import {
  architecture,
  bootDiskType,
  DENY_PRIORITY,
  firewallRules,
  hasCloudNat,
  imagePath,
  reachingRules,
  resolveImage,
  resolvePlacement,
  ruleCluster,
  ubuntuFamily,
  type LiveFirewall,
} from './network.js';

const DEFAULT_MACHINE_TYPE = 'e2-standard-2';
/** GCE's limit for one metadata value. */
const METADATA_VALUE_LIMIT = 256 * 1024;
const LABEL_CLUSTER = 'dcp-cluster';
const LABEL_CLUSTER_ID = 'dcp-cluster-id';
const LABEL_ROLE = 'dcp-role';
/** `tls` or `tcp`: how the scheduler is spoken to, for `list --provider gcp` from any machine. */
const LABEL_PROTOCOL = 'dcp-protocol';
/** Statuses of a VM that will not serve the cluster (it stopped, or is being stopped). */
const LOST = new Set(['STOPPING', 'STOPPED', 'TERMINATED', 'SUSPENDING', 'SUSPENDED']);

interface Instance {
  name: string;
  zone?: string;
  status?: string;
  statusMessage?: string;
  labels?: Record<string, string>;
  networkInterfaces?: { network?: string; networkIP?: string; accessConfigs?: { natIP?: string }[] }[];
}

interface GcpResource extends Resource {
  /** `run`: this `up`, journaled before its first change, so rollback knows its own id. */
  kind: 'run' | 'firewall' | 'instance' | 'workers';
  data: {
    project: string;
    zone: string;
    clusterId: string;
    role?: string;
    /** Firewall rules: the network's project (a Shared VPC's host). */
    firewallProject?: string;
    operation?: Operation;
  };
}

const clients = onePerRun<Compute>();
/** One client per project (and endpoint) for the whole run; the first call checks the credentials. */
function computeFor(project: string): Promise<Compute> {
  return clients(`${project}|${process.env.CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE ?? ''}`, () =>
    connectCompute(project),
  );
}

/**
 * A client for the cluster's project, and the zone of its VMs, as its journal says; with no
 * journal (found from another machine), the project of the settings and gcloud's, and no zone.
 */
async function whereFrom(resources: Resource[]): Promise<{ compute: Compute; zone: string | undefined }> {
  const data = resources.map((r) => r.data as Partial<GcpResource['data']>).find((d) => d.project);
  if (data?.project) return { compute: await computeFor(data.project), zone: data.zone };
  const { settings } = await loadSettings();
  const { project } = await resolveIdentity({ project: settings.gcp?.project }, process.env, {
    zoneRequired: false,
  });
  return { compute: await computeFor(project), zone: undefined };
}

function clusterIdOf(resources: Resource[]): string | undefined {
  return resources.map((r) => (r.data as { clusterId?: string }).clusterId).find(Boolean);
}

type Which = { id: string } | { name: string } | 'all';

function labelFilter(which: Which): string {
  if (which === 'all') return `labels.${LABEL_CLUSTER}:*`;
  return 'id' in which
    ? `labels.${LABEL_CLUSTER_ID}="${which.id}"`
    : `labels.${LABEL_CLUSTER}="${which.name}"`;
}

/** The cluster's instances in a zone, or in every zone of the project (aggregated list). */
async function findInstances(
  compute: Compute,
  zone: string | undefined,
  which: Which,
  signal?: AbortSignal,
  unreachable?: string[],
): Promise<Instance[]> {
  const query = { filter: labelFilter(which) };
  return zone
    ? compute.list<Instance>('instances.list', compute.path(`zones/${zone}/instances`), query, signal)
    : compute.list<Instance>(
        'instances.aggregatedList',
        compute.path('aggregated/instances'),
        { ...query, returnPartialSuccess: 'true' },
        signal,
        // Without a collector, a zone that did not answer is simply not listed (`list`).
        unreachable ?? [],
      );
}

/**
 * The cluster's firewall rules in `project` (a Shared VPC's are in its host project): by name
 * prefix, and its own by the id in their description.
 */
async function findFirewalls(
  compute: Compute,
  which: Which,
  project = compute.project,
): Promise<LiveFirewall[]> {
  const prefix = which === 'all' ? 'dcp-' : 'id' in which ? 'dcp-' : `dcp-${which.name}-`;
  const rules = await compute.list<LiveFirewall>('firewalls.list', `projects/${project}/global/firewalls`, {
    filter: `name eq "${prefix}.*"`,
  });
  return rules.filter((rule) => {
    const owner = ruleCluster(rule.description);
    // A Shared VPC host holds rules of clusters whose VMs are in other projects: not ours.
    if (owner.project !== undefined && owner.project !== compute.project) return false;
    if (which === 'all') return owner.name !== undefined && rule.name?.startsWith(`dcp-${owner.name}-`);
    return 'id' in which
      ? owner.id === which.id
      : owner.name === which.name && rule.name?.startsWith(`dcp-${which.name}-`);
  });
}

/**
 * The scheduler's network tag, which the ingress rules target. Not `dcp-<name>-scheduler`: that
 * is the members' tag of a cluster named `<name>-scheduler`, which would be let in too.
 */
function schedulerTagOf(cluster: string): string {
  return `dcps-${cluster}`;
}

/** Who from outside reaches the cluster's scheduler or workers, by every live rule of its network. */
async function networkReach(compute: Compute, network: string, tag: string, schedulerTag: string) {
  const host = network.split('/')[1]!;
  const rules = (
    await compute.list<LiveFirewall>('firewalls.list', `projects/${host}/global/firewalls`)
  ).filter((rule) => relative(rule.network ?? '') === network);
  // The scheduler (both tags) and the workers (the members' tag alone), each rule once.
  const reach = [...reachingRules(rules, [tag, schedulerTag]), ...reachingRules(rules, [tag])];
  return [...new Map(reach.map((rule) => [JSON.stringify(rule), rule])).values()];
}

function zoneName(instance: Instance): string {
  return instance.zone?.split('/').pop() ?? '';
}

function lostInstance(instance: Instance): DcpError | undefined {
  if (!LOST.has(instance.status ?? '')) return undefined;
  return new DcpError(
    `the ${instance.labels?.[LABEL_ROLE] ?? 'cluster'} VM ${instance.name} is ${instance.status}${instance.statusMessage ? `: ${instance.statusMessage}` : ''}`,
  );
}

/** Waits for every operation, and throws the first failure once all have ended. */
async function waitAll(compute: Compute, method: string, operations: Operation[], signal?: AbortSignal) {
  const results = await inBatches(operations, 50, (op) =>
    compute.wait(method, op, signal).then(
      () => undefined,
      (error: unknown) => ({ error }),
    ),
  );
  const failed = results.find((result) => result !== undefined);
  if (failed) throw failed.error;
}

/** Deletes what each path names (what is gone already is fine), and waits until all are gone. */
async function deleteAll(compute: Compute, method: string, paths: string[]): Promise<void> {
  const operations = await inBatches(paths, 20, (path) =>
    compute.send(method, 'DELETE', path).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    }),
  );
  await waitAll(
    compute,
    method,
    operations.filter((op): op is Operation => op !== undefined),
  );
}

/**
 * `run` over the items, `size` at a time: a cluster of hundreds of VMs is deleted without
 * hundreds of calls at once, which GCE's rate limits would refuse. Operations run on at Google
 * meanwhile, so later batches mostly find theirs done.
 */
async function inBatches<T, R>(items: T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size)
    results.push(...(await Promise.all(items.slice(i, i + size).map(run))));
  return results;
}

/** The name workers reach the scheduler by, known before it exists; undefined when there is none. */
function internalName(instance: string, zone: string, project: string, dnsSetting: string | undefined) {
  // Domain-scoped projects (example.com:proj) have names of another shape: workers use the IP.
  if (project.includes(':')) return undefined;
  return dnsSetting === 'GlobalOnly'
    ? `${instance}.c.${project}.internal`
    : `${instance}.${zone}.c.${project}.internal`;
}

export const gcpProvider: Provider = {
  name: 'gcp',
  // Installing Docker and pulling the Dask image on a fresh VM takes minutes.
  defaultTimeoutMs: 10 * 60_000,
  healthIntervalMs: 10_000,

  plan(spec) {
    const type = spec.cloud.machine_type ?? DEFAULT_MACHINE_TYPE;
    const where = `${spec.cloud.subnetwork ? `subnet ${spec.cloud.subnetwork}` : `network ${spec.cloud.network ?? 'default'}`}${spec.cloud.zone ? ` in ${spec.cloud.zone}` : ''}${spec.cloud.project ? ` of project ${spec.cloud.project}` : ''}`;
    return [
      `make a scheduler and ${count(spec.workers, 'worker')} (${type}) in ${where}: Shielded VMs with no service account, OS Login, no project SSH keys`,
      ...(spec.networking === 'public'
        ? [
            'give the scheduler an external IP; workers reach it by its internal name (workers get an external IP only to install Docker when the network has no Cloud NAT, and accept nothing from outside)',
          ]
        : []),
      `firewall rules dcp-${spec.name}-*: the members reach each other, and a deny-all under them keeps the network's other rules (such as default-allow-ssh) off the cluster${spec.ingress.length === 0 ? "; the subnet's own range reaches the scheduler" : ''}`,
      `power off when idle: the scheduler stops after ${formatDuration(spec.idleTimeoutSeconds * 1000)} without work, and its workers with it; a stopped GCE VM still bills for its disk until dcp down`,
    ];
  },

  async prepare(spec): Promise<ClusterSpec> {
    const identity = await resolveIdentity({ project: spec.cloud.project, zone: spec.cloud.zone });
    const zone = identity.zone!;
    const compute = await computeFor(identity.project);
    let project: { commonInstanceMetadata?: { items?: { key: string; value?: string }[] } };
    try {
      project = await compute.get('projects.get', `projects/${identity.project}`);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw usageError(
        `there is no project ${identity.project} (from ${identity.origins.project}), or these credentials cannot see it`,
        'pass --project with one of yours (gcloud projects list)',
      );
    }
    const workerType = spec.cloud.machine_type ?? DEFAULT_MACHINE_TYPE;
    if (!/^[a-z][-a-z0-9]*$/.test(workerType))
      throw usageError(
        `--instance-type: ${JSON.stringify(workerType)} is not a machine type`,
        'for example e2-standard-4',
      );
    if (spec.runtime === 'preinstalled' && !spec.cloud.image && !spec.cloud.image_family)
      throw usageError(
        '--runtime preinstalled needs a machine image that has Dask on it; stock Ubuntu does not',
        'pass --image-family (your Packer-built family, say), or use --runtime docker',
      );
    // The project is known to exist now: the rest is asked at once.
    const [, instances, firewalls, common] = await Promise.all([
      compute
        .get('machineTypes.get', compute.path(`zones/${zone}/machineTypes/${workerType}`))
        .catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
          throw usageError(
            `there is no machine type ${workerType} in ${zone} (or no such zone)`,
            `pass another --instance-type or --zone (gcloud compute machine-types list --zones ${zone})`,
          );
        }),
      // Every zone, as `down NAME --provider gcp` looks in every zone.
      findInstances(compute, undefined, { name: spec.name }),
      findFirewalls(compute, { name: spec.name }),
      prepareCommon(spec),
    ]);
    if (instances.length > 0 || firewalls.length > 0)
      throw usageError(
        `a cluster named ${spec.name} already exists in project ${identity.project}`,
        `pick another --name, or remove it first: dcp down ${spec.name} --provider gcp --project ${identity.project}`,
      );
    const dnsSetting = project.commonInstanceMetadata?.items?.find(
      (item) => item.key === 'VmDnsSetting',
    )?.value;
    return {
      ...common,
      cloud: {
        ...spec.cloud,
        project: identity.project,
        zone,
        ...(dnsSetting ? { dns_setting: dnsSetting } : {}),
      },
    };
  },

  async create(context: CreateContext): Promise<Endpoints> {
    const { spec, signal } = context;
    const { project, zone } = spec.cloud as { project: string; zone: string };
    const compute = await computeFor(project);
    const isPublic = spec.networking === 'public';
    const machineType = spec.cloud.machine_type ?? DEFAULT_MACHINE_TYPE;
    const clusterId = randomUUID();
    const data = { project, zone, clusterId };
    await context.record({ kind: 'run', id: clusterId, data });

    context.progress({ step: 'find network', status: 'start', detail: `${zone} in ${project}` });
    const [placement, image] = await Promise.all([
      resolvePlacement(compute, zone, spec.cloud.network, spec.cloud.subnetwork, signal),
      resolveImage(
        compute,
        spec.cloud.image
          ? imagePath(spec.cloud.image, 'image', project, 'gcp.image')
          : spec.cloud.image_family
            ? imagePath(spec.cloud.image_family, 'family', project, '--image-family')
            : ubuntuFamily(architecture(machineType)),
        signal,
      ),
    ]);
    // Workers need a way out to install Docker; an external IP only when nothing else gives one.
    const workersExternal =
      isPublic && spec.runtime === 'docker' && !(await hasCloudNat(compute, placement, signal));
    context.progress({
      step: 'find network',
      status: 'done',
      detail: `${placement.subnetwork.split('/').pop()} (${placement.cidr}) in ${placement.network.split('/').pop()}, image ${image.split('/').pop()}`,
    });

    // A Shared VPC's firewall rules belong to its host project.
    const firewallProject = placement.network.split('/')[1]!;
    const tag = `dcp-${spec.name}`;
    const schedulerTag = schedulerTagOf(spec.name);
    // Private clusters are reachable from their own subnet unless the user said otherwise.
    const ingress: IngressRule[] =
      spec.ingress.length > 0 ? spec.ingress : [{ ports: DASK_PORTS, cidr: placement.cidr }];
    const rules = firewallRules({
      cluster: spec.name,
      clusterId,
      project,
      network: placement.network,
      ingress,
      tag,
      schedulerTag,
    });
    context.progress({
      step: 'firewall',
      status: 'start',
      detail: rules.map((rule) => rule.name).join(', '),
    });
    // Ctrl-C is honoured between the mutating calls, never inside one.
    const firewallOps: Operation[] = [];
    for (const rule of rules) {
      signal.throwIfAborted();
      const operation = await compute.send(
        'firewalls.insert',
        'POST',
        `projects/${firewallProject}/global/firewalls`,
        rule,
      );
      firewallOps.push(operation);
      await context.record({
        kind: 'firewall',
        id: rule.name,
        data: { ...data, firewallProject, operation },
      });
    }
    // In force before any VM exists: no moment when the network's default rules reach one.
    await waitAll(compute, 'firewalls.insert', firewallOps, signal);
    context.progress({
      step: 'firewall',
      status: 'done',
      detail: ingress.map((rule) => `${rule.cidr} → ${rule.ports.join(',')}`).join('; '),
    });
    // Rules of the network at a better priority than dcp's deny-all still reach the VMs.
    try {
      const view = { where: `network ${placement.network.split('/').pop()}`, asked: ingress };
      for (const door of firewallDoors({
        ...view,
        rules: await networkReach(compute, placement.network, tag, schedulerTag),
      }))
        if (door.verdict === 'open')
          context.warn(
            `${door.detail}, over dcp's deny-all (priority ${DENY_PRIORITY}): dcp doctor shows it`,
          );
    } catch (error) {
      context.warn(
        `the network's other firewall rules could not be read (${messageOf(error)}); dcp doctor checks them later`,
      );
    }
    signal.throwIfAborted();

    const labels = (role: string) => ({
      [LABEL_CLUSTER]: spec.name,
      [LABEL_CLUSTER_ID]: clusterId,
      [LABEL_ROLE]: role,
      [LABEL_PROTOCOL]: context.tls ? 'tls' : 'tcp',
    });
    const diskType = bootDiskType(machineType);
    // `bulk`: bulkInsert's instanceProperties take bare names where insert takes zonal paths.
    const properties = (role: 'scheduler' | 'worker', script: string, external: boolean, bulk: boolean) => {
      if (Buffer.byteLength(script) > METADATA_VALUE_LIMIT)
        throw new DcpError(
          `the ${role}'s boot script is ${Buffer.byteLength(script)} bytes, over GCE's ${METADATA_VALUE_LIMIT}-byte metadata limit`,
          {
            hint: 'a long certificate chain makes it big: issue the cluster certificates from a CA without intermediates, or use --tls auto',
          },
        );
      return {
        machineType: bulk ? machineType : `zones/${zone}/machineTypes/${machineType}`,
        labels: labels(role),
        tags: { items: role === 'scheduler' ? [tag, schedulerTag] : [tag] },
        metadata: {
          items: [
            { key: 'startup-script', value: script },
            { key: 'enable-oslogin', value: 'TRUE' },
            { key: 'block-project-ssh-keys', value: 'TRUE' },
          ],
        },
        disks: [
          {
            boot: true,
            autoDelete: true,
            initializeParams: {
              sourceImage: image,
              diskType: bulk ? diskType : `zones/${zone}/diskTypes/${diskType}`,
              labels: labels(role),
            },
          },
        ],
        networkInterfaces: [
          {
            subnetwork: placement.subnetwork,
            ...(external ? { accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] } : {}),
          },
        ],
        // Sent, and kept by the API: left out, GCE would give the VM the default service account.
        serviceAccounts: [],
        shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
      };
    };

    const schedulerName = `${spec.name}-scheduler`;
    context.progress({
      step: 'launch scheduler',
      status: 'start',
      detail: `${schedulerName} (${machineType})`,
    });
    const schedulerOp = await compute.send(
      'instances.insert',
      'POST',
      compute.path(`zones/${zone}/instances`),
      {
        name: schedulerName,
        ...properties('scheduler', await memberScript(context, 'scheduler'), isPublic, false),
      },
    );
    await context.record({
      kind: 'instance',
      id: schedulerName,
      data: { ...data, role: 'scheduler', operation: schedulerOp },
    });
    context.progress({ step: 'launch scheduler', status: 'done', detail: schedulerName });
    signal.throwIfAborted();

    // The workers need only a name for the scheduler, known now: no waiting for it to run.
    let schedulerHost = internalName(schedulerName, zone, project, spec.cloud.dns_setting);
    if (!schedulerHost) {
      await compute.wait('instances.insert', schedulerOp, signal);
      schedulerHost = (await getInstance(compute, zone, schedulerName, signal)).networkInterfaces?.[0]
        ?.networkIP;
    }
    context.progress({
      step: 'launch workers',
      status: 'start',
      detail: `${count(spec.workers, 'worker')} (${machineType})`,
    });
    const workersOp = await compute.send(
      'instances.bulkInsert',
      'POST',
      compute.path(`zones/${zone}/instances/bulkInsert`),
      {
        count: String(spec.workers),
        // All or nothing: a half-made set of workers is rolled back by GCE itself.
        minCount: String(spec.workers),
        namePattern: `${spec.name}-worker-####`,
        instanceProperties: properties(
          'worker',
          await memberScript(context, 'worker', schedulerHost!),
          workersExternal,
          true,
        ),
      },
    );
    await context.record({
      kind: 'workers',
      id: `${spec.name}-worker-####`,
      data: { ...data, operation: workersOp },
    });
    context.progress({ step: 'launch workers', status: 'done', detail: count(spec.workers, 'worker') });

    context.progress({ step: 'instances', status: 'start', detail: 'waiting for GCE to make them' });
    const made = await Promise.allSettled([
      compute.wait('instances.insert', schedulerOp, signal),
      compute.wait('instances.bulkInsert', workersOp, signal),
    ]);
    const failed = made.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    const scheduler = await getInstance(compute, zone, schedulerName, signal);
    const privateIp = scheduler.networkInterfaces?.[0]?.networkIP;
    const publicIp = scheduler.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP;
    if (!privateIp || (isPublic && !publicIp))
      throw new DcpError(`GCE made the scheduler without ${privateIp ? 'an external' : 'an internal'} IP`);
    const address = isPublic ? publicIp! : privateIp;
    context.progress({ step: 'instances', status: 'done', detail: `scheduler at ${address}` });

    const protocol = context.tls ? 'tls' : 'tcp';
    return {
      schedulerAddress: `${protocol}://${address}:${SCHEDULER_PORT}`,
      // Behind the cluster's own mutual TLS (the gate in the boot script), as the scheduler port is.
      dashboardUrl: `${context.tls ? 'https' : 'http'}://${address}:${DASHBOARD_PORT}/status`,
      details: {
        project,
        zone,
        network: placement.network,
        subnetwork: placement.subnetwork,
        firewall_rules: rules.map((rule) => rule.name),
        network_tag: tag,
        scheduler_tag: schedulerTag,
        // What the firewall was made with, for `dcp doctor` to hold the live rules against.
        ingress,
        scheduler_instance: schedulerName,
        scheduler_internal_name: schedulerHost,
        scheduler_private_ip: privateIp,
        ...(isPublic ? { scheduler_public_ip: publicIp } : {}),
        workers_external_ip: workersExternal,
        image,
        runtime: spec.runtime,
        ...(spec.image ? { container_image: spec.image } : {}),
      },
    };
  },

  async checkHealth(context) {
    const { project, zone } = context.spec.cloud as { project: string; zone: string };
    const compute = await computeFor(project);
    const clusterId = clusterIdOf(await readJournal(context.dir));
    if (!clusterId) return;
    await checkForgivingBlips(context.dir, async () =>
      (await findInstances(compute, zone, { id: clusterId }, context.signal)).map(lostInstance).find(Boolean),
    );
  },

  async diagnostics(dir) {
    const resources = await readJournal(dir);
    const clusterId = clusterIdOf(resources);
    if (!clusterId) return '';
    try {
      const { compute, zone } = await whereFrom(resources);
      const instances = await findInstances(compute, zone, { id: clusterId });
      const scheduler = instances.find((i) => i.labels?.[LABEL_ROLE] === 'scheduler');
      let output = '(no scheduler VM)';
      if (scheduler)
        output = await compute
          .get<{ contents?: string }>(
            'instances.getSerialPortOutput',
            compute.path(`zones/${zoneName(scheduler)}/instances/${scheduler.name}/serialPort`),
            { port: '1' },
          )
          .then(
            (serial) =>
              (serial.contents ?? '').trimEnd().split('\n').slice(-15).join('\n') ||
              '(no console output yet)',
          )
          .catch(() => '(its console output could not be read)');
      return [
        '--- instances ---',
        ...instances.map(
          (i) =>
            `${i.labels?.[LABEL_ROLE] ?? '?'} ${i.name}: ${i.status}${i.statusMessage ? ` (${i.statusMessage})` : ''}`,
        ),
        `--- scheduler ${scheduler?.name ?? ''}: the last lines of its serial console ---`,
        output,
      ].join('\n');
    } catch {
      return '';
    }
  },

  async destroy(resources, context: DestroyContext): Promise<string[]> {
    // By the run's id (rollback, and `down` with state here); by name only when asked to search
    // (no state here): a rollback must never reach a namesake made elsewhere.
    const clusterId = clusterIdOf(resources);
    const which: Which | undefined = clusterId
      ? { id: clusterId }
      : context.searchByName
        ? { name: context.name }
        : undefined;
    if (!which) return [];
    // The zone of the run's VMs, when this machine made them.
    const { compute, zone } = await whereFrom(resources);
    // An insert still under way would make its VMs after they were looked for: let it end first,
    // for a few minutes at most (an operation that never ends must not hold a rollback for ever).
    const pending = resources.flatMap((r) =>
      (r as GcpResource).data.operation ? [(r as GcpResource).data.operation!] : [],
    );
    const patience = AbortSignal.timeout(5 * 60_000);
    await Promise.allSettled(pending.map((op) => compute.wait('an earlier call', op, patience)));

    const removed: string[] = [];
    // Every zone of the project, whatever --zone says, and the journal's zone by itself (it
    // must answer): the firewall rules go only once no VM of the cluster is left, or a VM missed
    // would be left open to the network's other rules.
    const find = async () => {
      const unreachable: string[] = [];
      const found = await findInstances(compute, undefined, which, undefined, unreachable);
      if (zone && unreachable.includes(`zones/${zone}`))
        found.push(...(await findInstances(compute, zone, which)));
      // A run's VMs are all in its journal's zone; with no journal, any zone might hold one.
      const unknown = zone ? [] : unreachable;
      return {
        found: found.filter(
          (vm, i) => found.findIndex((o) => o.name === vm.name && o.zone === vm.zone) === i,
        ),
        unknown,
      };
    };
    const { found: instances, unknown } = await find();
    if (instances.length > 0) {
      const names = instances.map((i) => i.name);
      context.progress({ step: 'delete instances', status: 'start', detail: count(names.length, 'VM') });
      await deleteAll(
        compute,
        'instances.delete',
        instances.map((instance) => compute.path(`zones/${zoneName(instance)}/instances/${instance.name}`)),
      );
      context.progress({ step: 'delete instances', status: 'done', detail: idsOrCount(names, 'VM') });
      const { found: left } = await find();
      if (left.length > 0)
        throw new DcpError(
          `${idsOrCount(
            left.map((i) => i.name),
            'VM',
          )} of ${context.name} still there after the delete; its firewall rules are kept`,
          { hint: `run dcp down ${context.name} again in a few minutes` },
        );
      removed.push(idsOrCount(names, 'VM'));
    }
    if (unknown.length > 0)
      throw new DcpError(
        `${unknown.join(', ')} did not answer: a VM of ${context.name} there would be left open, so its firewall rules are kept${removed.length ? ` (removed ${removed.join(', ')})` : ''}`,
        { hint: `run dcp down ${context.name} --provider gcp again in a few minutes` },
      );
    // The cluster's own project, and the host project of a Shared VPC its VMs or journal name.
    const projects = new Set([
      compute.project,
      ...resources.flatMap((r) => (r as GcpResource).data.firewallProject ?? []),
      ...instances.flatMap(
        (i) => i.networkInterfaces?.[0]?.network?.split('/projects/')[1]?.split('/')[0] ?? [],
      ),
    ]);
    const firewalls = (
      await Promise.all([...projects].map((project) => findFirewalls(compute, which, project)))
    ).flat();
    if (firewalls.length > 0) {
      const names = firewalls.map((rule) => rule.name!);
      context.progress({ step: 'delete firewall rules', status: 'start', detail: names.join(', ') });
      await deleteAll(
        compute,
        'firewalls.delete',
        firewalls.map((rule) => relative(rule.selfLink ?? compute.path(`global/firewalls/${rule.name}`))),
      );
      context.progress({ step: 'delete firewall rules', status: 'done', detail: names.join(', ') });
      removed.push(idsOrCount(names, 'firewall rule'));
    }
    return removed;
  },

  async members(record: ClusterRecord, resources: Resource[]): Promise<MemberStatus[]> {
    const clusterId = clusterIdOf(resources);
    if (!clusterId) return [];
    const { compute, zone } = await whereFrom(resources);
    return (await findInstances(compute, zone, { id: clusterId })).map((i) => ({
      role: i.labels?.[LABEL_ROLE] ?? '?',
      id: i.name,
      running: i.status === 'RUNNING',
    }));
  },

  async firewall(record: ClusterRecord): Promise<FirewallView> {
    const {
      project,
      network,
      network_tag: tag,
      scheduler_tag: schedulerTag,
      ingress,
    } = record.details as {
      scheduler_tag?: string;
      project?: string;
      network?: string;
      network_tag?: string;
      ingress?: IngressRule[];
    };
    if (!project || !network || !tag) throw new DcpError(`${record.name}'s record names no network`);
    const compute = await computeFor(project);
    return {
      where: `network ${network.split('/').pop()} of ${network.split('/')[1]}`,
      rules: await networkReach(
        compute,
        network,
        tag,
        schedulerTag ?? schedulerTagOf(tag.replace(/^dcp-/, '')),
      ),
      asked: ingress,
    };
  },

  async discover(zone): Promise<DiscoveredCluster[]> {
    const { compute } = await whereFrom([]);
    const [instances, rules] = await Promise.all([
      findInstances(compute, zone, 'all'),
      findFirewalls(compute, 'all'),
    ]);
    return gatherClusters(
      'gcp',
      instances.map((instance) => {
        const nic = instance.networkInterfaces?.[0];
        return {
          cluster: instance.labels![LABEL_CLUSTER]!,
          location: zoneName(instance),
          role: instance.labels?.[LABEL_ROLE] ?? '?',
          id: instance.name,
          running: instance.status === 'RUNNING',
          ip: nic?.accessConfigs?.[0]?.natIP ?? nic?.networkIP,
          protocol: instance.labels?.[LABEL_PROTOCOL],
        };
      }),
      rules.map((rule) => ({
        cluster: ruleCluster(rule.description).name!,
        location: zone ?? '-',
        what: `firewall rule ${rule.name}`,
      })),
    );
  },
};

async function getInstance(
  compute: Compute,
  zone: string,
  name: string,
  signal: AbortSignal,
): Promise<Instance> {
  try {
    return await compute.get<Instance>(
      'instances.get',
      compute.path(`zones/${zone}/instances/${name}`),
      {},
      signal,
    );
  } catch (error) {
    throw new DcpError(`GCE lost the VM ${name} it was making: ${messageOf(error)}`, { cause: error });
  }
}
