/**
 * The DigitalOcean provider. Every droplet carries the tags `dcp:cluster:<name>`,
 * `dcp:cluster-id:<run id>` and `dcp:role:<role>` (DigitalOcean tags are bare names), so `down`
 * finds and deletes it all by tag, from any machine, in one call, even when a lost answer kept a
 * droplet out of the journal. Before any droplet: the run's tag, a per-cluster SSH key (without
 * one DigitalOcean mails a root password) and one cloud firewall `dcp-<name>` applied by that tag
 * (the ingress asked for, the members to each other, and outbound, which an API-made firewall
 * otherwise blocks). Then the scheduler, and the workers, at most 10 per call, as soon as the
 * scheduler's private IP is known: DigitalOcean gives no address before that and no name the
 * VPC resolves, so that is the one wait on the way.
 *
 * A droplet that powers itself off (idle) is still billed: only `dcp down` stops the bill.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { readJournal, type ClusterRecord, type Resource } from '../../cluster/state.js';
import type { FirewallView, LiveRule } from '../../cluster/doctor.js';
import { DASK_PORTS, type IngressRule } from '../../config/ingress.js';
import { DIGITALOCEAN_SSH_KEY } from '../../config/schema.js';
import { DcpError, ExitCode, usageError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { DASHBOARD_PORT, memberScript, SCHEDULER_PORT } from '../boot/index.js';
import { CloudApiError, count, gatherClusters, idsOrCount, prepareCommon } from '../cloud.js';
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
import { makeSshKey } from '../ssh-key.js';
import { connectApi, isNotFound, type DigitalOceanApi } from './api.js';
import { resolveToken } from './identity.js';

const DEFAULT_SIZE = 's-2vcpu-4gb';
const DEFAULT_IMAGE = 'ubuntu-24-04-x64';
/** DigitalOcean's limits: names per create call, and user data (plain text). */
const NAMES_PER_CREATE = 10;
const USER_DATA_LIMIT = 64 * 1024;
/** Past these, something is wrong on DigitalOcean's side. */
const ADDRESS_TIMEOUT_MS = 10 * 60_000;
const DELETE_TIMEOUT_MS = 5 * 60_000;

const TAG = {
  cluster: (name: string) => `dcp:cluster:${name}`,
  id: (clusterId: string) => `dcp:cluster-id:${clusterId}`,
  role: (role: string) => `dcp:role:${role}`,
  // `tls` or `tcp`, so `list --provider digitalocean` gives the scheduler's address whole.
  protocol: (protocol: string) => `dcp:protocol:${protocol}`,
};

/** The value after `prefix` of the first tag that has it. */
function tagValue(tags: string[] | undefined, prefix: string): string | undefined {
  return tags?.find((tag) => tag.startsWith(prefix))?.slice(prefix.length);
}
const clusterIdOfTags = (tags: string[] | undefined) => tagValue(tags, TAG.id(''));

interface Droplet {
  id: number;
  name: string;
  status: 'new' | 'active' | 'off' | 'archive';
  tags?: string[];
  region?: { slug?: string };
  vpc_uuid?: string;
  networks?: { v4?: { ip_address: string; type: 'public' | 'private' }[] };
}

interface FirewallRule {
  protocol: 'tcp' | 'udp' | 'icmp';
  ports?: string;
  sources?: { addresses?: string[]; tags?: string[]; droplet_ids?: number[] };
  destinations?: { addresses?: string[] };
}

interface Firewall {
  id: string;
  name: string;
  status: 'waiting' | 'succeeded' | 'failed';
  inbound_rules?: FirewallRule[];
  tags?: string[];
  droplet_ids?: number[];
}

interface Vpc {
  id: string;
  name: string;
  region: string;
  ip_range: string;
  default: boolean;
}

interface DoResource extends Resource {
  /** `run`: this `up`, journaled before its first change, so rollback knows its own tag. */
  kind: 'run' | 'tag' | 'ssh-key' | 'firewall' | 'droplets';
  data: { region: string; clusterId: string; role?: string; ids?: number[] };
}

/** A client with the token as found now (a variable, or doctl's file): nothing is asked of the API yet. */
async function api(): Promise<DigitalOceanApi> {
  return connectApi((await resolveToken()).token);
}

const addressOf = (droplet: Droplet, type: 'public' | 'private') =>
  droplet.networks?.v4?.find((network) => network.type === type)?.ip_address;

/** The droplets carrying a tag; a tag that was never made has none. */
async function tagged(doApi: DigitalOceanApi, tag: string, signal?: AbortSignal): Promise<Droplet[]> {
  try {
    return await doApi.list<Droplet>('droplets.list', 'droplets', 'droplets', { tag_name: tag }, signal);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

/** The error for a droplet that will never serve the cluster, if it is one. */
function lostDroplet(droplet: Droplet): DcpError | undefined {
  if (droplet.status !== 'off' && droplet.status !== 'archive') return undefined;
  return new DcpError(
    `the ${tagValue(droplet.tags, TAG.role('')) ?? 'cluster'} droplet ${droplet.name} is ${droplet.status}`,
  );
}

/** DigitalOcean takes user data of at most 64 KiB, as plain text. */
function checkUserData(role: string, script: string): void {
  if (Buffer.byteLength(script) > USER_DATA_LIMIT)
    throw new DcpError(
      `the ${role}'s boot script is ${Buffer.byteLength(script)} bytes, over DigitalOcean's ${USER_DATA_LIMIT}-byte user data limit`,
      {
        hint: 'a long certificate chain makes it big: issue the cluster certificates from a CA without intermediates, or use --tls auto',
      },
    );
}

/** `8786-8787` for neighbouring ports; one rule per run of them. */
function portRanges(ports: number[]): string[] {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const port of sorted) {
    const last = ranges.at(-1);
    if (last && port === last[1] + 1) last[1] = port;
    else ranges.push([port, port]);
  }
  return ranges.map(([from, to]) => (from === to ? String(from) : `${from}-${to}`));
}

/** The firewall's rules: the ingress asked for, every member to every other, and the way out. */
function firewallBody(name: string, idTag: string, ingress: IngressRule[]) {
  const byPorts = new Map<string, string[]>();
  for (const rule of ingress)
    for (const ports of portRanges(rule.ports))
      byPorts.set(ports, [...(byPorts.get(ports) ?? []), rule.cidr]);
  const everywhere = { addresses: ['0.0.0.0/0', '::/0'] };
  return {
    name: `dcp-${name}`,
    inbound_rules: [
      ...[...byPorts].map(([ports, addresses]) => ({ protocol: 'tcp', ports, sources: { addresses } })),
      ...(['tcp', 'udp'] as const).map((protocol) => ({
        protocol,
        ports: 'all',
        sources: { tags: [idTag] },
      })),
      { protocol: 'icmp', sources: { tags: [idTag] } },
    ],
    // An API-made firewall with no outbound rules blocks all egress: no Docker, no image.
    outbound_rules: [
      ...(['tcp', 'udp'] as const).map((protocol) => ({ protocol, ports: 'all', destinations: everywhere })),
      { protocol: 'icmp', destinations: everywhere },
    ],
    tags: [idTag],
  };
}

/** `ports: "8786"`, `"8786-8787"`, `"all"` or `"0"` (all) as the ports a rule opens; ICMP has none. */
function rulePorts(rule: FirewallRule): number[] | 'all' {
  const ports = rule.ports ?? 'all';
  if (ports === 'all' || ports === '0') return 'all';
  const [from, to = from] = ports.split('-').map(Number) as [number, number?];
  return Array.from({ length: to! - from + 1 }, (_, i) => from + i);
}

/** What reaches droplets carrying `tags` (or with these ids) from outside, by every firewall of the account. */
function reachingRules(firewalls: Firewall[], tags: string[], ids: number[]): LiveRule[] {
  return firewalls
    .filter(
      (firewall) =>
        firewall.tags?.some((tag) => tags.includes(tag)) ||
        firewall.droplet_ids?.some((id) => ids.includes(id)),
    )
    .flatMap((firewall) =>
      (firewall.inbound_rules ?? []).flatMap((rule) =>
        rule.protocol === 'icmp'
          ? []
          : (rule.sources?.addresses ?? []).map((cidr) => ({ cidr, ports: rulePorts(rule) })),
      ),
    );
}

/**
 * Who reaches the droplets from outside, by every firewall that names them, in force or still
 * being applied (DigitalOcean says `waiting` while it updates the droplets; its rules are read
 * all the same, which errs on the side of too much reach). DigitalOcean lets everything in to a
 * droplet that no firewall covers, so such a droplet with a public address is open to the world
 * on every port.
 */
function liveReach(firewalls: Firewall[], droplets: Droplet[]): LiveRule[] {
  const applying = firewalls.filter((firewall) => firewall.status !== 'failed');
  const covered = (droplet: Droplet) =>
    applying.some(
      (firewall) =>
        firewall.tags?.some((tag) => droplet.tags?.includes(tag)) ||
        firewall.droplet_ids?.includes(droplet.id),
    );
  const bare = droplets.some((droplet) => addressOf(droplet, 'public') && !covered(droplet));
  return [
    ...reachingRules(
      firewalls,
      [...new Set(droplets.flatMap((d) => d.tags ?? []))],
      droplets.map((d) => d.id),
    ),
    ...(bare ? [{ cidr: '0.0.0.0/0', ports: 'all' as const }] : []),
  ];
}

/**
 * Polls until `ready` gives a value or `timeoutMs` passes: quickly at first, then once a second,
 * which finds an address within a second of its coming (the workers wait for it) while a
 * minute of polling spends a quarter of the token's 250 requests a minute.
 */
async function poll<T>(
  timeoutMs: number,
  signal: AbortSignal | undefined,
  ready: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (let round = 0; ; round++) {
    const value = await ready();
    if (value !== undefined) return value;
    if (Date.now() > deadline) return undefined;
    await sleep(Math.min(250 * 2 ** round, 1_000), undefined, signal ? { signal } : {});
  }
}

/** The VPC the droplets go in: the one named (by id or name), else the region's default, if it has one. */
async function resolveVpc(doApi: DigitalOceanApi, region: string, wanted: string | undefined) {
  const vpcs = await doApi.list<Vpc>('vpcs.list', 'vpcs', 'vpcs');
  if (wanted === undefined) return vpcs.find((vpc) => vpc.region === region && vpc.default);
  const vpc = vpcs.find((v) => v.id === wanted || v.name === wanted);
  if (!vpc)
    throw usageError(
      `there is no VPC ${wanted} in this DigitalOcean account`,
      'pass --vpc with the id or name of one of yours (doctl vpcs list)',
    );
  if (vpc.region !== region)
    throw usageError(
      `the VPC ${wanted} is in ${vpc.region}, not ${region}`,
      `pass --region ${vpc.region}, or another --vpc`,
    );
  return vpc;
}

/** Whether a NAT gateway is the VPC's way out, so droplets without a public address still reach the internet. */
async function hasNatGateway(doApi: DigitalOceanApi, vpc: string): Promise<boolean> {
  const gateways = await doApi.list<{
    state?: string;
    vpcs?: { vpc_uuid?: string; default_gateway?: boolean }[];
  }>('natGateways.list', 'vpc_nat_gateways', 'vpc_nat_gateways');
  return gateways.some(
    (gateway) =>
      gateway.state === 'ACTIVE' &&
      gateway.vpcs?.some((v) => v.vpc_uuid === vpc && v.default_gateway === true),
  );
}

/**
 * The runs of clusters named `name`, each with the regions of its droplets: from the droplets'
 * tags, and from the firewall's and SSH keys' names (a failed `up` may have left only those,
 * with no region to say).
 */
async function runsByName(doApi: DigitalOceanApi, name: string): Promise<Map<string, Set<string>>> {
  const [droplets, firewalls, keys] = await Promise.all([
    tagged(doApi, TAG.cluster(name)),
    doApi.list<Firewall>('firewalls.list', 'firewalls', 'firewalls'),
    doApi.list<{ name: string }>('sshKeys.list', 'account/keys', 'ssh_keys'),
  ]);
  const runs = new Map<string, Set<string>>();
  const add = (id: string | undefined, region?: string) => {
    if (id === undefined || !RUN_ID.test(id)) return;
    const regions = runs.get(id) ?? runs.set(id, new Set()).get(id)!;
    if (region) regions.add(region);
  };
  for (const droplet of droplets) add(clusterIdOfTags(droplet.tags), droplet.region?.slug);
  for (const firewall of firewalls.filter((f) => f.name === `dcp-${name}`))
    add(clusterIdOfTags(firewall.tags));
  // Only a key named exactly as dcp names its own: a user's `dcp-prod laptop` is not one.
  for (const key of keys) add(new RegExp(`^dcp-${name} (\\S+)$`).exec(key.name)?.[1]);
  return runs;
}

/**
 * The runs `down NAME --provider digitalocean [--region R]` removes: those with droplets in R
 * (and leftovers with none anywhere); without R, the one run there is. Two clusters of one name
 * in two regions are never removed together by a guess.
 */
async function runsToRemove(
  doApi: DigitalOceanApi,
  name: string,
  region: string | undefined,
): Promise<string[]> {
  const runs = [...(await runsByName(doApi, name))];
  const chosen = region ? runs.filter(([, regions]) => regions.size === 0 || regions.has(region)) : runs;
  const placed = chosen.filter(([, regions]) => regions.size > 0);
  if (!region && new Set(placed.flatMap(([, regions]) => [...regions])).size > 1)
    throw usageError(
      `there are clusters named ${name} in ${[...new Set(placed.flatMap(([, regions]) => [...regions]))].sort().join(' and ')}`,
      `say which with --region: dcp down ${name} --provider digitalocean --region REGION`,
    );
  return chosen.map(([id]) => id);
}

/** A run id, as dcp makes them (a UUID). */
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The name of dcp's SSH key for a run: the cluster and its run id, so `down` finds it from anywhere. */
const sshKeyName = (cluster: string, clusterId: string) => `dcp-${cluster} ${clusterId}`;

function journalData(resources: Resource[]): DoResource['data'] | undefined {
  return resources.map((r) => r.data as DoResource['data']).find((data) => data?.clusterId);
}

export const digitaloceanProvider: Provider = {
  name: 'digitalocean',
  // Installing Docker and pulling the Dask image on a fresh droplet takes minutes.
  defaultTimeoutMs: 10 * 60_000,
  healthIntervalMs: 10_000,

  plan(spec) {
    const size = spec.cloud.size ?? DEFAULT_SIZE;
    return [
      `make a scheduler and ${count(spec.workers, 'worker')} (${size}, ${spec.cloud.image ?? DEFAULT_IMAGE}) in ${spec.cloud.region}${spec.cloud.vpc ? ` (VPC ${spec.cloud.vpc})` : ''}, with an SSH key of the cluster's own (no root password by email)`,
      ...(spec.networking === 'public'
        ? [
            'give the scheduler a public IP; workers reach it by its private IP in the VPC (workers get a public IP only to install Docker when the VPC has no NAT gateway, and accept nothing from outside)',
          ]
        : spec.cloud.egress === 'public'
          ? [
              `give the droplets a public IP for their way out only: the firewall admits ${spec.ingress.length === 0 ? 'nothing from outside the VPC' : 'the ingress above, and nothing else'}`,
            ]
          : []),
      `a cloud firewall dcp-${spec.name}: ${spec.ingress.length === 0 ? "the VPC's range reaches the scheduler" : 'the ingress above'}, the members reach each other, outbound is open`,
      `power off when idle: the scheduler stops after ${formatDuration(spec.idleTimeoutSeconds * 1000)} without work, and its workers with it; DigitalOcean still bills a powered-off droplet: dcp down stops the bill`,
    ];
  },

  async prepare(spec): Promise<ClusterSpec> {
    const region = spec.cloud.region!;
    const size = spec.cloud.size ?? DEFAULT_SIZE;
    const image = spec.cloud.image ?? DEFAULT_IMAGE;
    if (spec.runtime === 'preinstalled' && !spec.cloud.image)
      throw usageError(
        '--runtime preinstalled needs a droplet image that has Dask on it; stock Ubuntu does not',
        'set digitalocean.image to your snapshot (dcp config set digitalocean.image ID), or use --runtime docker',
      );
    const doApi = await api();
    const userKey = spec.cloud.ssh_key;
    if (userKey !== undefined && !DIGITALOCEAN_SSH_KEY.test(userKey))
      throw usageError(
        `digitalocean.ssh_key ${JSON.stringify(userKey)} is neither a key id nor an MD5 fingerprint`,
        'set it to the ID or FINGERPRINT column of doctl compute ssh-key list',
      );
    const [account, total, regions, imageFound, vpc, namesakes, key, common] = await Promise.all([
      doApi.get<{ account: { droplet_limit: number; status?: string } }>('account.get', 'account'),
      doApi
        .get<{ meta?: { total?: number } }>('droplets.list', 'droplets', { per_page: '1' })
        .then((page) => page.meta?.total ?? 0),
      doApi.list<{ slug: string; available: boolean; sizes: string[] }>('regions.list', 'regions', 'regions'),
      doApi
        .get<{ image: { id: number; regions?: string[] } }>(
          'images.get',
          `images/${encodeURIComponent(image)}`,
        )
        .catch((error: unknown) => {
          if (!isNotFound(error)) throw error;
          throw usageError(
            `there is no droplet image ${image}`,
            'set digitalocean.image to a slug or id of doctl compute image list-distribution (or one of your snapshots)',
          );
        }),
      resolveVpc(doApi, region, spec.cloud.vpc),
      runsByName(doApi, spec.name),
      userKey === undefined
        ? Promise.resolve(undefined)
        : doApi
            .get<{ ssh_key: { id: number } }>('sshKeys.get', `account/keys/${encodeURIComponent(userKey)}`)
            .catch((error: unknown) => {
              if (!isNotFound(error)) throw error;
              throw usageError(
                `there is no SSH key ${userKey} in this DigitalOcean account`,
                'set digitalocean.ssh_key to the id or fingerprint of one of yours (doctl compute ssh-key list), or unset it and dcp makes one',
              );
            }),
      prepareCommon(spec),
    ]);
    const where = regions.find((r) => r.slug === region);
    if (!where || !where.available)
      throw usageError(
        `${region} is not a DigitalOcean region that takes new droplets`,
        `pass --region with one of ${regions
          .filter((r) => r.available)
          .map((r) => r.slug)
          .join(', ')}`,
      );
    if (!where.sizes.includes(size))
      throw usageError(
        `there is no droplet size ${size} in ${region}`,
        `pass another --instance-type (doctl compute size list), or another --region`,
      );
    if (
      imageFound.image.regions &&
      imageFound.image.regions.length > 0 &&
      !imageFound.image.regions.includes(region)
    )
      throw usageError(
        `the image ${image} is not available in ${region}`,
        'pass another --region, or transfer the image there',
      );
    const needed = spec.workers + 1;
    const limit = account.account.droplet_limit;
    if (total + needed > limit)
      throw new DcpError(
        `this DigitalOcean account may have ${limit} droplets and has ${total}: a scheduler and ${count(spec.workers, 'worker')} need ${needed} more`,
        {
          hint: `use at most --workers ${Math.max(limit - total - 1, 0)}, or ask DigitalOcean for a higher limit (cloud.digitalocean.com/account/team/droplet_limit_increase)`,
          exitCode: ExitCode.failed,
        },
      );
    if (namesakes.size > 0)
      throw usageError(
        `a cluster named ${spec.name} already exists in this DigitalOcean account`,
        `pick another --name, or remove it first: dcp down ${spec.name} --provider digitalocean`,
      );
    const isPublic = spec.networking === 'public';
    if (!isPublic && !vpc)
      throw usageError(
        `${region} has no VPC in this account yet, and a private cluster needs one`,
        `pass --vpc (doctl vpcs create --name dcp --region ${region}), or --public`,
      );
    // A token that may not read NAT gateways: a public cluster then gives its workers a way out.
    const nat =
      vpc !== undefined &&
      (await hasNatGateway(doApi, vpc.id).catch((error: unknown) => {
        if (isPublic && error instanceof CloudApiError && error.status === 403) return false;
        throw error;
      }));
    const egress = spec.cloud.egress ?? 'nat';
    if (!isPublic && spec.runtime === 'docker' && !nat && egress !== 'public')
      throw usageError(
        `private droplets in VPC ${vpc!.name} could not install Docker: they get no public address, and the VPC has no NAT gateway to the internet`,
        `add a NAT gateway to the VPC (doctl vpcs nat-gateway create), or pass --egress public: droplets get a public address for their way out only, and the firewall admits only the ingress rules (by default the VPC's range)`,
      );
    return {
      ...common,
      cloud: {
        ...spec.cloud,
        region,
        size,
        image,
        ...(vpc ? { vpc: vpc.id, vpc_cidr: vpc.ip_range } : {}),
        nat: String(nat),
        ...(key ? { ssh_key_id: String(key.ssh_key.id) } : {}),
      },
    };
  },

  async create(context: CreateContext): Promise<Endpoints> {
    const { spec, signal } = context;
    const { region, size, image, vpc } = spec.cloud as {
      region: string;
      size: string;
      image: string;
      vpc?: string;
    };
    const doApi = await api();
    const isPublic = spec.networking === 'public';
    const clusterId = randomUUID();
    const idTag = TAG.id(clusterId);
    const data = { region, clusterId };
    await context.record({ kind: 'run', id: clusterId, data });

    // Checked before anything is made: the workers' with the longest address there is.
    const schedulerScript = await memberScript(context, 'scheduler');
    checkUserData('scheduler', schedulerScript);
    checkUserData('worker', await memberScript(context, 'worker', '255.255.255.255'));

    // A firewall can only name tags that exist.
    context.progress({ step: 'tags', status: 'start', detail: idTag });
    await doApi.post('tags.create', 'tags', { name: idTag });
    await context.record({ kind: 'tag', id: idTag, data });
    context.progress({ step: 'tags', status: 'done', detail: idTag });
    signal.throwIfAborted();

    let keyId = spec.cloud.ssh_key_id;
    let keyFile: string | undefined;
    if (keyId === undefined) {
      context.progress({ step: 'ssh key', status: 'start', detail: sshKeyName(spec.name, clusterId) });
      const key = await makeSshKey(context.dir, `dcp-${spec.name}`);
      keyFile = key.file;
      const made = await doApi.post<{ ssh_key: { id: number } }>('sshKeys.create', 'account/keys', {
        name: sshKeyName(spec.name, clusterId),
        public_key: key.publicKey,
      });
      keyId = String(made.ssh_key.id);
      await context.record({ kind: 'ssh-key', id: keyId, data });
      context.progress({ step: 'ssh key', status: 'done', detail: key.md5Fingerprint });
      signal.throwIfAborted();
    }

    // Private clusters are reachable from their own VPC unless the user said otherwise.
    const ingress: IngressRule[] =
      spec.ingress.length > 0 || !spec.cloud.vpc_cidr
        ? spec.ingress
        : [{ ports: DASK_PORTS, cidr: spec.cloud.vpc_cidr }];
    const body = firewallBody(spec.name, idTag, ingress);
    context.progress({ step: 'firewall', status: 'start', detail: body.name });
    const { firewall } = await doApi.post<{ firewall: Firewall }>('firewalls.create', 'firewalls', body);
    await context.record({ kind: 'firewall', id: firewall.id, data });
    // In force before any droplet exists.
    const settled = await poll(ADDRESS_TIMEOUT_MS, signal, async () => {
      const { firewall: now } = await doApi.get<{ firewall: Firewall }>(
        'firewalls.get',
        `firewalls/${firewall.id}`,
        {},
        signal,
      );
      return now.status === 'waiting' ? undefined : now;
    });
    if (settled?.status !== 'succeeded')
      throw new DcpError(
        `DigitalOcean did not put the firewall ${body.name} in force (${settled?.status ?? 'still waiting'})`,
      );
    context.progress({
      step: 'firewall',
      status: 'done',
      detail:
        ingress.map((rule) => `${rule.cidr} → ${rule.ports.join(',')}`).join('; ') || 'the members only',
    });
    signal.throwIfAborted();

    // Droplets without a public address reach the internet only through a NAT gateway; the
    // Docker runtime must reach it (installing Docker, pulling the image).
    const needsWayOut = spec.runtime === 'docker' && spec.cloud.nat !== 'true';
    const droplet = (role: 'scheduler' | 'worker', script: string, publicAddress: boolean) => {
      checkUserData(role, script);
      return {
        region,
        size,
        image,
        ssh_keys: [Number(keyId)],
        tags: [TAG.cluster(spec.name), idTag, TAG.role(role), TAG.protocol(context.tls ? 'tls' : 'tcp')],
        user_data: script,
        ...(vpc ? { vpc_uuid: vpc } : {}),
        // No public IPv4 or IPv6 at all unless it is needed; IPv6 only with public networking.
        public_networking: publicAddress,
        ipv6: false,
        monitoring: false,
        with_droplet_agent: false,
        backups: false,
      };
    };

    const schedulerName = `${spec.name}-scheduler`;
    context.progress({ step: 'launch scheduler', status: 'start', detail: `${schedulerName} (${size})` });
    const made = await doApi.post<{ droplet: Droplet }>('droplets.create', 'droplets', {
      name: schedulerName,
      ...droplet('scheduler', schedulerScript, isPublic || needsWayOut),
    });
    await context.record({
      kind: 'droplets',
      id: String(made.droplet.id),
      data: { ...data, role: 'scheduler', ids: [made.droplet.id] },
    });
    context.progress({ step: 'launch scheduler', status: 'done', detail: String(made.droplet.id) });

    // DigitalOcean says no address before the droplet has one: the workers need it.
    context.progress({ step: 'scheduler address', status: 'start', detail: 'waiting for its private IP' });
    const scheduler = await poll(ADDRESS_TIMEOUT_MS, signal, async () => {
      let now: Droplet;
      try {
        now = (
          await doApi.get<{ droplet: Droplet }>('droplets.get', `droplets/${made.droplet.id}`, {}, signal)
        ).droplet;
      } catch (error) {
        if (isNotFound(error))
          throw new DcpError(`DigitalOcean dropped the scheduler droplet ${schedulerName} it was making`, {
            hint: 'the region may be out of capacity for this size: try another --region or --instance-type',
          });
        throw error;
      }
      const lost = lostDroplet(now);
      if (lost) throw lost;
      return addressOf(now, 'private') && (!isPublic || addressOf(now, 'public')) ? now : undefined;
    });
    if (!scheduler)
      throw new DcpError(
        `DigitalOcean gave the scheduler no address in ${ADDRESS_TIMEOUT_MS / 60_000} minutes`,
        {
          hint: 'see it in the control panel; dcp removed what it made',
        },
      );
    const privateIp = addressOf(scheduler, 'private')!;
    const publicIp = addressOf(scheduler, 'public');
    context.progress({ step: 'scheduler address', status: 'done', detail: privateIp });
    signal.throwIfAborted();

    context.progress({
      step: 'launch workers',
      status: 'start',
      detail: `${count(spec.workers, 'worker')} (${size})`,
    });
    const workerBody = droplet('worker', await memberScript(context, 'worker', privateIp), needsWayOut);
    for (let first = 1; first <= spec.workers; first += NAMES_PER_CREATE) {
      signal.throwIfAborted();
      const names = Array.from(
        { length: Math.min(NAMES_PER_CREATE, spec.workers - first + 1) },
        (_, i) => `${spec.name}-worker-${first + i}`,
      );
      const batch = await doApi.post<{ droplets: Droplet[] }>('droplets.create', 'droplets', {
        names,
        ...workerBody,
      });
      const ids = batch.droplets.map((d) => d.id);
      await context.record({ kind: 'droplets', id: ids.join(','), data: { ...data, role: 'worker', ids } });
    }
    context.progress({ step: 'launch workers', status: 'done', detail: count(spec.workers, 'worker') });

    context.warn(
      `an idle cluster powers its droplets off, and DigitalOcean still bills a powered-off droplet: dcp down ${spec.name} stops the bill`,
    );
    const address = isPublic ? publicIp! : privateIp;
    const protocol = context.tls ? 'tls' : 'tcp';
    return {
      schedulerAddress: `${protocol}://${address}:${SCHEDULER_PORT}`,
      // Behind the cluster's own mutual TLS (the gate in the boot script), as the scheduler port is.
      dashboardUrl: `${context.tls ? 'https' : 'http'}://${address}:${DASHBOARD_PORT}/status`,
      details: {
        region,
        cluster_id: clusterId,
        vpc: scheduler.vpc_uuid ?? vpc,
        firewall: firewall.id,
        firewall_name: body.name,
        // What the firewall was made with, for `dcp doctor` to hold the live rules against.
        ingress,
        scheduler_droplet: scheduler.id,
        scheduler_private_ip: privateIp,
        ...(isPublic ? { scheduler_public_ip: publicIp } : {}),
        workers_public_ip: needsWayOut,
        ssh_key: Number(keyId),
        ...(keyFile ? { ssh_key_file: keyFile } : {}),
        size,
        image,
        runtime: spec.runtime,
        ...(spec.image ? { container_image: spec.image } : {}),
      },
    };
  },

  async checkHealth(context) {
    const clusterId = journalData(await readJournal(context.dir))?.clusterId;
    if (!clusterId) return;
    const doApi = await api();
    await checkForgivingBlips(context.dir, async () =>
      (await tagged(doApi, TAG.id(clusterId), context.signal)).map(lostDroplet).find(Boolean),
    );
  },

  async diagnostics(dir) {
    const clusterId = journalData(await readJournal(dir))?.clusterId;
    if (!clusterId) return '';
    try {
      const droplets = await tagged(await api(), TAG.id(clusterId));
      return [
        '--- droplets ---',
        ...droplets.map((d) => `${tagValue(d.tags, TAG.role('')) ?? '?'} ${d.name} (${d.id}): ${d.status}`),
        'DigitalOcean shows a droplet’s console in its control panel (Access → Recovery Console).',
      ].join('\n');
    } catch {
      return '';
    }
  },

  async destroy(resources, context: DestroyContext): Promise<string[]> {
    // By the run's id (rollback, and `down` with state here); by name only when asked to search
    // (no state here): a rollback must never reach a namesake made elsewhere.
    const journal = journalData(resources);
    const doApi = await api();
    const clusterIds = journal
      ? [journal.clusterId]
      : context.searchByName
        ? await runsToRemove(doApi, context.name, context.location)
        : [];
    const removed: string[] = [];
    for (const clusterId of clusterIds)
      removed.push(...(await destroyRun(doApi, context, clusterId, resources)));
    return removed;
  },

  async members(record: ClusterRecord, resources: Resource[]): Promise<MemberStatus[]> {
    const clusterId = journalData(resources)?.clusterId;
    if (!clusterId) return [];
    return (await tagged(await api(), TAG.id(clusterId))).map((d) => ({
      role: tagValue(d.tags, TAG.role('')) ?? '?',
      id: String(d.id),
      running: d.status === 'active',
    }));
  },

  async firewall(record: ClusterRecord): Promise<FirewallView> {
    const {
      cluster_id: clusterId,
      firewall_name: name,
      ingress,
    } = record.details as {
      cluster_id?: string;
      firewall_name?: string;
      ingress?: IngressRule[];
    };
    if (!clusterId) throw new DcpError(`${record.name}'s record names no cluster id`);
    const doApi = await api();
    const [droplets, firewalls] = await Promise.all([
      tagged(doApi, TAG.id(clusterId)),
      doApi.list<Firewall>('firewalls.list', 'firewalls', 'firewalls'),
    ]);
    // Every firewall in force on a member: dcp's, and any other by a tag they carry or their ids.
    return {
      where: `firewall ${name ?? `dcp-${record.name}`} and the account's others`,
      rules: liveReach(firewalls, droplets),
      asked: ingress,
    };
  },

  async discover(region): Promise<DiscoveredCluster[]> {
    const doApi = await api();
    const [droplets, firewalls] = await Promise.all([
      doApi.list<Droplet>('droplets.list', 'droplets', 'droplets'),
      doApi.list<Firewall>('firewalls.list', 'firewalls', 'firewalls'),
    ]);
    const ours = droplets.filter(
      (d) => tagValue(d.tags, TAG.cluster('')) !== undefined && (!region || d.region?.slug === region),
    );
    const clusters = gatherClusters(
      'digitalocean',
      ours.map((d) => ({
        cluster: tagValue(d.tags, TAG.cluster(''))!,
        location: d.region?.slug ?? '-',
        role: tagValue(d.tags, TAG.role('')) ?? '?',
        id: String(d.id),
        running: d.status === 'active',
        ip: addressOf(d, 'public') ?? addressOf(d, 'private'),
        protocol: tagValue(d.tags, TAG.protocol('')),
      })),
      // Firewalls belong to no region: one goes with its cluster's droplets there, and one with no
      // droplet anywhere (a failed up's leftover) is listed only when no region is asked for.
      firewalls
        .filter((f) => f.name.startsWith('dcp-') && clusterIdOfTags(f.tags) !== undefined)
        .map((f) => ({ firewall: f, cluster: f.name.slice('dcp-'.length) }))
        .filter(({ firewall }) =>
          region ? ours.some((d) => d.tags?.includes(TAG.id(clusterIdOfTags(firewall.tags)!))) : true,
        )
        .map(({ firewall, cluster }) => ({
          cluster,
          location: ours.find((d) => tagValue(d.tags, TAG.cluster('')) === cluster)?.region?.slug ?? '-',
          what: `firewall ${firewall.name}`,
        })),
    );
    // A powered-off droplet is still billed; a scheduler still being made is not off.
    for (const cluster of clusters) {
      const members = ours.filter((d) => tagValue(d.tags, TAG.cluster('')) === cluster.name);
      if (members.some((d) => d.status === 'off')) cluster.stoppedStatus = 'off (still billed)';
      else if (members.some((d) => d.status === 'new' && tagValue(d.tags, TAG.role('')) === 'scheduler'))
        cluster.stoppedStatus = 'starting';
    }
    return clusters;
  },
};

/** Removes one run: its droplets (by tag, in one call), then its firewall, tags and SSH key. */
async function destroyRun(
  doApi: DigitalOceanApi,
  context: DestroyContext,
  clusterId: string,
  resources: Resource[],
): Promise<string[]> {
  const idTag = TAG.id(clusterId);
  const removed: string[] = [];
  const droplets = await tagged(doApi, idTag);
  if (droplets.length > 0) {
    const names = droplets.map((d) => d.name);
    context.progress({ step: 'delete droplets', status: 'start', detail: count(names.length, 'droplet') });
    await doApi.delete('droplets.deleteByTag', 'droplets', { tag_name: idTag });
    const gone = await poll(DELETE_TIMEOUT_MS, undefined, async () =>
      (await tagged(doApi, idTag)).length === 0 ? true : undefined,
    );
    // A droplet missed would be left without its firewall: the firewall stays while any is left.
    if (!gone)
      throw new DcpError(
        `droplets of ${context.name} are still there after the delete; its firewall is kept`,
        {
          hint: `run dcp down ${context.name} again in a few minutes`,
        },
      );
    context.progress({ step: 'delete droplets', status: 'done', detail: idsOrCount(names, 'droplet') });
    removed.push(idsOrCount(names, 'droplet'));
  }
  const journaled = (kind: DoResource['kind']) => resources.filter((r) => r.kind === kind).map((r) => r.id);
  const [firewalls, keys] = await Promise.all([
    doApi.list<Firewall>('firewalls.list', 'firewalls', 'firewalls'),
    doApi.list<{ id: number; name: string }>('sshKeys.list', 'account/keys', 'ssh_keys'),
  ]);
  // dcp's own firewall only: one of the user's that also names the run's tag stays (its tag goes below).
  const ours = (f: Firewall) =>
    journaled('firewall').includes(f.id) ||
    (f.name === `dcp-${context.name}` && f.tags?.length === 1 && f.tags[0] === idTag);
  for (const firewall of firewalls.filter(ours)) {
    await doApi.delete('firewalls.delete', `firewalls/${firewall.id}`);
    removed.push(`firewall ${firewall.name}`);
  }
  for (const key of keys.filter(
    (k) => k.name === sshKeyName(context.name, clusterId) || journaled('ssh-key').includes(String(k.id)),
  )) {
    await doApi.delete('sshKeys.delete', `account/keys/${key.id}`);
    removed.push(`SSH key ${key.name}`);
  }
  // The run's tag is its own; the name's tag only once nothing carries it (a namesake elsewhere may).
  await doApi.delete('tags.delete', `tags/${encodeURIComponent(idTag)}`);
  const nameTag = TAG.cluster(context.name);
  const unused = await doApi
    .get<{ tag: { resources?: { count?: number } } }>('tags.get', `tags/${encodeURIComponent(nameTag)}`)
    .then(
      (answer) => (answer.tag.resources?.count ?? 0) === 0,
      (error: unknown) => {
        if (isNotFound(error)) return false;
        throw error;
      },
    );
  if (unused) await doApi.delete('tags.delete', `tags/${encodeURIComponent(nameTag)}`);
  return removed;
}
