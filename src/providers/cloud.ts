/** What every cloud provider does alike: the shared half of `prepare`, and counting things in words. */
import { isClusterName } from '../cluster/names.js';
import { resolveMe } from '../config/ingress.js';
import { DcpError, ExitCode, usageError } from '../errors.js';
import type { ProviderName } from '../config/schema.js';
import { SCHEDULER_PORT } from './boot/index.js';
import { matchingImage, type ChosenImage } from './image.js';
import type { ClusterSpec, DiscoveredCluster } from './provider.js';

/**
 * The spec with `me` resolved to the caller's address and, for the docker runtime, the Dask
 * image chosen (the one matching this machine's Dask and Python), with a warning when it differs.
 */
export async function prepareCommon(spec: ClusterSpec): Promise<ClusterSpec> {
  const [ingress, chosen] = await Promise.all([
    resolveMe(spec.ingress),
    spec.runtime === 'docker' && !spec.image
      ? matchingImage(spec.python)
      : Promise.resolve<ChosenImage | undefined>(
          spec.image === undefined ? undefined : { image: spec.image },
        ),
  ]);
  return {
    ...spec,
    ingress,
    ...(chosen ? { image: chosen.image } : {}),
    ...(chosen?.warning ? { warnings: [...(spec.warnings ?? []), chosen.warning] } : {}),
  };
}

/** A VM a cloud found by a cluster's tags or labels. */
export interface FoundMember {
  cluster: string;
  location: string;
  role: string;
  id: string;
  running: boolean;
  /** The address a client would use (public, else private), and `tls` or `tcp`, when known. */
  ip?: string | undefined;
  protocol?: string | undefined;
}

/**
 * The clusters these VMs and other resources (`security group sg-1`, by cluster and location)
 * make up, by name; a scheduler with an address and a protocol gives the cluster's address.
 */
export function gatherClusters(
  provider: ProviderName,
  members: FoundMember[],
  resources: { cluster: string; location: string; what: string }[],
): DiscoveredCluster[] {
  // Names come from tags and labels, which anyone who may write them chooses, and are printed:
  // only cluster names dcp could have given.
  members = members.filter((member) => isClusterName(member.cluster));
  resources = resources.filter((resource) => isClusterName(resource.cluster));
  const byName = new Map<string, DiscoveredCluster>();
  const entry = (name: string, location: string) =>
    byName.get(name) ??
    byName
      .set(name, { name, provider, location, schedulerAddress: null, members: [], resources: [] })
      .get(name)!;
  for (const member of members) {
    const cluster = entry(member.cluster, member.location);
    cluster.members.push({ role: member.role, id: member.id, running: member.running });
    if (member.role === 'scheduler' && member.ip && member.protocol)
      cluster.schedulerAddress = `${member.protocol}://${member.ip}:${SCHEDULER_PORT}`;
  }
  for (const resource of resources) entry(resource.cluster, resource.location).resources.push(resource.what);
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * A cache of cloud clients by key (a project, a subscription, and the endpoint) for the whole
 * run; a connection that failed is forgotten, so the next call tries again.
 */
export function onePerRun<T>(): (key: string, connect: () => Promise<T>) => Promise<T> {
  const made = new Map<string, Promise<T>>();
  return (key, connect) => {
    if (!made.has(key)) {
      const client = connect();
      client.catch(() => made.delete(key));
      made.set(key, client);
    }
    return made.get(key)!;
  };
}

export function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `instances i-1, i-2` for a few, `51 instances` for many. */
export function idsOrCount(ids: string[], word: string): string {
  return ids.length <= 3
    ? `${word}${ids.length === 1 ? '' : 's'} ${ids.join(', ')}`
    : count(ids.length, word);
}

/**
 * A cloud API's base URL from the variable that redirects it (a test fake, a proxy), checked: a
 * bearer token sent in the clear is anyone's on the way, so plain http only to this machine, and
 * never a user name or password in the URL.
 */
export function endpointOverride(variable: string, value: string, cloud: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(
      `${variable}=${JSON.stringify(value)} is not a URL`,
      'set it to an https:// URL, or unset it',
    );
  }
  if (url.username || url.password)
    throw usageError(
      `${variable} holds a user name or password`,
      `drop them from the URL: dcp sends your ${cloud} credentials as a token, never in the URL`,
    );
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw usageError(
      `${variable}=${value} would send your ${cloud} credentials unencrypted`,
      'use an https:// endpoint (plain http is taken only on this machine, 127.0.0.1), or unset it',
    );
  return url;
}

/** A refusal by a cloud's API: its HTTP status and the cloud's own code (GCE's reason, DigitalOcean's id). */
export class CloudApiError extends DcpError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    hint: string | undefined,
  ) {
    super(message, {
      ...(hint ? { hint } : {}),
      exitCode: status === 401 ? ExitCode.usage : ExitCode.failed,
    });
  }
}
