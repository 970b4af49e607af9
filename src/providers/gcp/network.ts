/**
 * Where a cluster goes in Google Cloud and who may reach it: the network and subnet (the ones
 * chosen, else `default` and its subnet in the zone's region), whether Cloud NAT gives private
 * VMs a way out, the Ubuntu LTS image for the machine type's architecture, and the firewall:
 * dcp's allows at priority 1000 over a deny-all at 2000 on the cluster's tag, so that nothing
 * but dcp's rules reaches a dcp VM (the default network's `default-allow-*` rules, at 65534,
 * open SSH and RDP to the world). GCE opens an ingress rule without sources to 0.0.0.0/0:
 * every rule here names its sources.
 */
import ipaddr from 'ipaddr.js';
import type { LiveRule } from '../../cluster/doctor.js';
import type { IngressRule } from '../../config/ingress.js';
import { usageError } from '../../errors.js';
import { isNotFound, relative, type Compute } from './compute.js';
import { regionOf } from './identity.js';

const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
/**
 * dcp's allows win over its deny-all, which wins over every rule of a lower priority: the
 * default network's (65534) and those made with the console's default (1000). A rule of the
 * network at 100 or better still reaches dcp's VMs: `up` warns of it, and `dcp doctor` says so.
 */
export const ALLOW_PRIORITY = 100;
/** What GCE gives a rule made without a priority. */
const GCE_DEFAULT_PRIORITY = 1000;
export const DENY_PRIORITY = 101;

/**
 * A network or subnet as the user named it (a name in the cluster's project, a `projects/...`
 * path for a Shared VPC, or a link), as a checked `projects/...` path: nothing else reaches a URL.
 */
function resourcePath(
  value: string,
  kind: 'network' | 'subnetwork',
  project: string,
  region: string,
): string {
  const flag = kind === 'network' ? '--vpc (gcp.network)' : '--subnet (gcp.subnetwork)';
  if (NAME.test(value))
    return kind === 'network'
      ? `projects/${project}/global/networks/${value}`
      : `projects/${project}/regions/${region}/subnetworks/${value}`;
  const path = relative(value.replace(/^https:\/\/(www|compute)\.googleapis\.com\/compute\/v1\//, ''));
  const pattern =
    kind === 'network'
      ? /^projects\/[a-z][a-z0-9.:-]*\/global\/networks\/[a-z][-a-z0-9]*$/
      : /^projects\/[a-z][a-z0-9.:-]*\/regions\/([a-z0-9-]+)\/subnetworks\/[a-z][-a-z0-9]*$/;
  const match = pattern.exec(path);
  if (!match || value.includes('..'))
    throw usageError(
      `${flag}: ${JSON.stringify(value)} is not a ${kind} name`,
      `pass a name (gcloud compute networks ${kind === 'network' ? 'list' : 'subnets list'} shows them) or projects/PROJECT/${kind === 'network' ? 'global/networks/NAME' : 'regions/REGION/subnetworks/NAME'}`,
    );
  if (match[1] && match[1] !== region)
    throw usageError(
      `${flag}: ${value} is in ${match[1]}, not in ${region}, the region of the zone`,
      'pass a subnet of the zone’s region, or another --zone',
    );
  return path;
}

export interface Placement {
  network: string;
  subnetwork: string;
  /** The subnet's primary range: who may reach a private cluster unless told otherwise. */
  cidr: string;
  region: string;
}

interface Network {
  selfLink?: string;
  subnetworks?: string[];
}
interface Subnetwork {
  network?: string;
  ipCidrRange?: string;
}

/** The subnet given, else the network's (default `default`) subnet in the zone's region. */
export async function resolvePlacement(
  compute: Compute,
  zone: string,
  network: string | undefined,
  subnetwork: string | undefined,
  signal: AbortSignal,
): Promise<Placement> {
  const region = regionOf(zone);
  const networkPath = resourcePath(network ?? 'default', 'network', compute.project, region);
  let subnetPath = subnetwork && resourcePath(subnetwork, 'subnetwork', compute.project, region);
  if (!subnetPath) {
    let found: Network;
    try {
      found = await compute.get<Network>('networks.get', networkPath, {}, signal);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw usageError(
        `there is no network ${networkPath.split('/').pop()} in ${networkPath.split('/')[1]}`,
        network
          ? 'pass a network of the project with --vpc (gcloud compute networks list shows them)'
          : 'the project has no network named default (an organization policy may remove it): pass --vpc and --subnet',
      );
    }
    const inRegion = (found.subnetworks ?? [])
      .map(relative)
      .find((link) => link.includes(`/regions/${region}/`));
    if (!inRegion)
      throw usageError(
        `network ${networkPath.split('/').pop()} has no subnet in ${region}`,
        'pass one with --subnet, or another --zone',
      );
    subnetPath = inRegion;
  }
  let subnet: Subnetwork;
  try {
    subnet = await compute.get<Subnetwork>('subnetworks.get', subnetPath, {}, signal);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw usageError(
      `there is no subnet ${subnetPath.split('/').pop()} in ${region}`,
      'pass a subnet of the zone’s region with --subnet (gcloud compute networks subnets list shows them)',
    );
  }
  const subnetNetwork = relative(subnet.network ?? networkPath);
  if (network && subnetwork && subnetNetwork !== networkPath)
    throw usageError(
      `subnet ${subnetPath.split('/').pop()} is in ${subnetNetwork.split('/').pop()}, not in ${networkPath.split('/').pop()}`,
      'pass a subnet of that network, or drop --vpc',
    );
  return { network: subnetNetwork, subnetwork: subnetPath, cidr: subnet.ipCidrRange ?? '', region };
}

/** Whether Cloud NAT gives the network's VMs in this region a way out without a public IP. */
export async function hasCloudNat(
  compute: Compute,
  placement: Placement,
  signal: AbortSignal,
): Promise<boolean> {
  // A Shared VPC's routers live in the host project.
  const host = placement.network.split('/')[1]!;
  const routers = await compute.list<{
    network?: string;
    nats?: { sourceSubnetworkIpRangesToNat?: string; subnetworks?: { name?: string }[] }[];
  }>('routers.list', `projects/${host}/regions/${placement.region}/routers`, {}, signal);
  // A NAT serves every subnet of its router's region, or only those it lists.
  return routers.some(
    (router) =>
      relative(router.network ?? '') === placement.network &&
      (router.nats ?? []).some(
        (nat) =>
          nat.sourceSubnetworkIpRangesToNat !== 'LIST_OF_SUBNETWORKS' ||
          (nat.subnetworks ?? []).some((subnet) => relative(subnet.name ?? '') === placement.subnetwork),
      ),
  );
}

/** Arm machine series (T2A, C4A, N4A, A4X) run arm64; the rest x86_64. */
export function architecture(machineType: string): 'arm64' | 'amd64' {
  return /^(t2a|c4a|n4a|a4x)-/.test(machineType) ? 'arm64' : 'amd64';
}

/** The boot disk each machine series takes: the newest ones (C4, N4, ...) only Hyperdisk. */
export function bootDiskType(machineType: string): string {
  return /^(c4|c4a|c4d|n4|n4a|n4d|h4d|m4|x4|a4|a4x)-/.test(machineType)
    ? 'hyperdisk-balanced'
    : 'pd-balanced';
}

/** An image or an image family as the settings name it, `NAME` or `PROJECT/NAME`, as a `projects/...` path. */
export function imagePath(value: string, kind: 'image' | 'family', project: string, flag: string): string {
  const match = /^(?:([a-z][a-z0-9.:-]*[a-z0-9])\/)?([a-z](?:[-a-z0-9]*[a-z0-9])?)$/.exec(value);
  if (!match)
    throw usageError(
      `${flag}: ${JSON.stringify(value)} is not an image ${kind === 'family' ? 'family' : ''}`.trimEnd(),
      `pass ${kind === 'family' ? 'FAMILY or PROJECT/FAMILY' : 'IMAGE or PROJECT/IMAGE'} (gcloud compute images list)`,
    );
  const [, owner = project, name] = match;
  return `projects/${owner}/global/images/${kind === 'family' ? `family/${name}` : name}`;
}

/** The newest Ubuntu 24.04 LTS image for this architecture, by Canonical's family. */
export function ubuntuFamily(arch: 'arm64' | 'amd64'): string {
  return `projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-${arch}`;
}

/** The image (a family resolved to its newest image, so every VM boots the same one). */
export async function resolveImage(compute: Compute, path: string, signal: AbortSignal): Promise<string> {
  try {
    const image = await compute.get<{ selfLink?: string; name?: string }>(
      path.includes('/family/') ? 'images.getFromFamily' : 'images.get',
      path,
      {},
      signal,
    );
    return relative(image.selfLink ?? path);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw usageError(
      `there is no image ${path}`,
      'pass an image your project can use (gcloud compute images list)',
    );
  }
}

export interface FirewallRule {
  name: string;
  network: string;
  direction: 'INGRESS';
  priority: number;
  description: string;
  sourceRanges?: string[];
  sourceTags?: string[];
  targetTags: string[];
  allowed?: { IPProtocol: string; ports?: string[] }[];
  denied?: { IPProtocol: string; ports?: string[] }[];
  disabled?: boolean;
}

/** The label-less firewall rules carry the cluster in their description instead. */
export function describeRule(cluster: string, clusterId: string, project: string, what: string): string {
  return `${what} (Dask cluster ${cluster}, made by dcp) dcp-cluster=${cluster} dcp-cluster-id=${clusterId} dcp-project=${project}`;
}

/** The cluster a rule belongs to, and the project of its VMs (a Shared VPC's rules are elsewhere). */
export function ruleCluster(description = ''): { name?: string; id?: string; project?: string } {
  const name = /dcp-cluster=([a-z0-9-]+)/.exec(description)?.[1];
  const id = /dcp-cluster-id=([a-f0-9-]+)/.exec(description)?.[1];
  const project = /dcp-project=([a-z0-9.:-]+)/.exec(description)?.[1];
  return { ...(name ? { name } : {}), ...(id ? { id } : {}), ...(project ? { project } : {}) };
}

/**
 * The cluster's rules: each set of ingress ports from its sources (IPv4 and IPv6 apart, as GCE
 * wants) to the scheduler's tag, every protocol among the members' tag, and the deny-all.
 */
export function firewallRules(options: {
  cluster: string;
  clusterId: string;
  /** The project of the cluster's VMs. */
  project: string;
  network: string;
  ingress: IngressRule[];
  tag: string;
  schedulerTag: string;
}): FirewallRule[] {
  const { cluster, clusterId, project, network, tag, schedulerTag } = options;
  const groups = new Map<string, { ports: number[]; cidrs: string[] }>();
  for (const rule of options.ingress) {
    const family = ipaddr.parseCIDR(rule.cidr)[0].kind();
    const ports = [...rule.ports].sort((a, b) => a - b);
    const key = `${family} ${ports.join(',')}`;
    const group = groups.get(key) ?? groups.set(key, { ports, cidrs: [] }).get(key)!;
    if (!group.cidrs.includes(rule.cidr)) group.cidrs.push(rule.cidr);
  }
  const base = { network, direction: 'INGRESS' as const };
  const ingress = [...groups.values()].map((group, i): FirewallRule => ({
    ...base,
    name: `dcp-${cluster}-in-${i + 1}`,
    priority: ALLOW_PRIORITY,
    description: describeRule(
      cluster,
      clusterId,
      project,
      `who may reach the scheduler on ${group.ports.join(', ')}`,
    ),
    sourceRanges: group.cidrs,
    targetTags: [schedulerTag],
    allowed: [{ IPProtocol: 'tcp', ports: group.ports.map(String) }],
  }));
  return [
    ...ingress,
    {
      ...base,
      name: `dcp-${cluster}-members`,
      priority: ALLOW_PRIORITY,
      description: describeRule(cluster, clusterId, project, 'the members reach each other'),
      sourceTags: [tag],
      targetTags: [tag],
      allowed: [{ IPProtocol: 'all' }],
    },
    {
      ...base,
      name: `dcp-${cluster}-deny`,
      priority: DENY_PRIORITY,
      description: describeRule(cluster, clusterId, project, 'nothing else reaches the members'),
      sourceRanges: ['0.0.0.0/0'],
      targetTags: [tag],
      denied: [{ IPProtocol: 'all' }],
    },
  ];
}

function ports(
  entries: { IPProtocol?: string; ports?: string[] }[] | undefined,
): number[] | 'all' | undefined {
  const found = new Set<number>();
  for (const entry of entries ?? []) {
    if (entry.IPProtocol !== 'tcp' && entry.IPProtocol !== 'all' && entry.IPProtocol !== '6') continue;
    if (!entry.ports || entry.ports.length === 0) return 'all';
    for (const range of entry.ports) {
      const [from, to = from] = range.split('-').map(Number) as [number, number?];
      for (let port = from; port <= to!; port++) found.add(port);
    }
  }
  return found.size ? [...found].sort((a, b) => a - b) : undefined;
}

export interface LiveFirewall extends Partial<Omit<FirewallRule, 'direction'>> {
  direction?: string;
  destinationRanges?: string[];
  selfLink?: string;
  targetServiceAccounts?: string[];
  sourceServiceAccounts?: string[];
}

/**
 * Who from outside reaches a VM carrying `tags` (and no service account), by the network's live
 * rules: allows that apply to it and are not shadowed by a deny of every IPv4 source at the same
 * or a better priority (GCE lets the lower number win, and a deny win a tie). Rules by source
 * tag let no address in from outside, and are left out.
 */
export function reachingRules(rules: LiveFirewall[], tags: string[]): LiveRule[] {
  const applies = (rule: LiveFirewall) =>
    (rule.direction ?? 'INGRESS') === 'INGRESS' &&
    !rule.disabled &&
    !rule.targetServiceAccounts?.length &&
    (!rule.targetTags?.length || rule.targetTags.some((tag) => tags.includes(tag)));
  const walls = rules
    .filter((rule) => applies(rule) && rule.denied && ports(rule.denied) === 'all')
    // A wall: every port, from every IPv4 address, to every address of the VM.
    .filter(
      (rule) =>
        (rule.sourceRanges ?? []).includes('0.0.0.0/0') &&
        !rule.sourceTags?.length &&
        !rule.sourceServiceAccounts?.length &&
        !rule.destinationRanges?.length,
    )
    .map((rule) => rule.priority ?? GCE_DEFAULT_PRIORITY);
  const wall = Math.min(Infinity, ...walls);
  return rules
    .filter((rule) => applies(rule) && rule.allowed && (rule.priority ?? GCE_DEFAULT_PRIORITY) < wall)
    .flatMap((rule) => {
      const reached = ports(rule.allowed);
      if (!reached) return [];
      // No sources at all means every address, as GCE reads it.
      const sources =
        rule.sourceRanges ??
        (rule.sourceTags?.length || rule.sourceServiceAccounts?.length ? [] : ['0.0.0.0/0']);
      return sources.map((cidr) => ({ cidr, ports: reached }));
    });
}
