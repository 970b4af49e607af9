/**
 * dask-cloudprovider's own keys for the same setup, so EC2Cluster, GCPCluster, AzureVMCluster
 * and DropletCluster started from Python agree with dcp. Key names are exactly those of
 * dask-cloudprovider's cloudprovider.yaml.
 */
import { usageError } from '../errors.js';
import { cloudproviderFile } from './paths.js';
import { flatten } from './load.js';
import type { ProviderName, Settings } from './schema.js';
import { setIn, updateYaml } from './yaml-file.js';

export type CloudProvider = Exclude<ProviderName, 'local'>;
export const CLOUD_PROVIDERS: readonly CloudProvider[] = ['aws', 'gcp', 'azure', 'digitalocean'];

/**
 * Each dask-cloudprovider key with the dcp settings it comes from, the first one set winning,
 * and how the value turns into theirs.
 */
type Mapping = [cloudproviderKey: string, settings: string[], convert?: (value: unknown) => unknown];

const isPrivate = (networking: unknown) => networking === 'private';
const isPublic = (networking: unknown) => networking === 'public';
/**
 * dcp's `azure.vnet` (`GROUP/VNET`, or a VNet's or subnet's resource id) as AzureVMCluster has it:
 * a bare VNet name, in `resource_group`.
 */
function vnetParts(value: unknown): { group: string; vnet: string } | undefined {
  const text = String(value);
  const byId = /\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Network\/virtualNetworks\/([^/]+)/i.exec(
    text,
  );
  if (byId) return { group: byId[1]!, vnet: byId[2]! };
  const [group, vnet] = text.split('/');
  return vnet ? { group: group!, vnet } : undefined;
}
const vnetName = (value: unknown) => vnetParts(value)?.vnet ?? value;
/** `azure.resource_group` as set, else the group of the VNet. */
const vnetGroup = (value: unknown) => vnetParts(value)?.group ?? value;

const MAPPINGS: Record<CloudProvider, Mapping[]> = {
  aws: [
    ['ec2.region', ['aws.region']],
    ['ec2.vpc', ['aws.vpc']],
    ['ec2.subnet_id', ['aws.subnet']],
    ['ec2.use_private_ip', ['networking'], isPrivate],
    // EC2Cluster reads the scheduler and worker types from config, not instance_type.
    ['ec2.instance_type', ['aws.instance_type']],
    ['ec2.scheduler_instance_type', ['aws.scheduler_instance_type', 'aws.instance_type']],
    ['ec2.worker_instance_type', ['aws.instance_type']],
    ['ec2.docker_image', ['image']],
    ['ec2.ami', ['aws.ami']],
  ],
  gcp: [
    ['gcp.projectid', ['gcp.project']],
    ['gcp.zone', ['gcp.zone']],
    ['gcp.network', ['gcp.network']],
    ['gcp.public_ingress', ['networking'], isPublic],
    ['gcp.machine_type', ['gcp.machine_type']],
    ['gcp.docker_image', ['image']],
  ],
  azure: [
    ['azure.location', ['azure.location']],
    ['azure.resource_group', ['azure.resource_group', 'azure.vnet'], vnetGroup],
    ['azure.subscription_id', ['azure.subscription_id']],
    ['azure.azurevm.vnet', ['azure.vnet'], vnetName],
    ['azure.azurevm.subnet', ['azure.subnet']],
    ['azure.azurevm.security_group', ['azure.security_group']],
    ['azure.azurevm.public_ingress', ['networking'], isPublic],
    ['azure.azurevm.vm_size', ['azure.vm_size']],
    ['azure.azurevm.docker_image', ['image']],
  ],
  digitalocean: [
    ['digitalocean.region', ['digitalocean.region']],
    ['digitalocean.size', ['digitalocean.size']],
    // The droplet's OS image; DropletCluster has no key for the Docker image.
    ['digitalocean.image', ['digitalocean.image']],
  ],
};

/**
 * `cloudprovider.<path>` → value, for the keys the settings give a value for. Pass only what the
 * user chose (not dcp's defaults), so a value of theirs in the file is never replaced by a default.
 */
export function cloudproviderValues(settings: Settings, provider: CloudProvider): Map<string, unknown> {
  const flat = flatten(settings);
  const values = new Map<string, unknown>();
  for (const [key, sources, convert] of MAPPINGS[provider]) {
    const source = sources.find((setting) => flat.get(setting) !== undefined);
    if (source) values.set(key, convert ? convert(flat.get(source)) : flat.get(source));
  }
  return values;
}

/** Why a dcp setting has no dask-cloudprovider key, where it matters for security. */
const NO_EQUIVALENT: Record<string, string> = {
  ingress:
    'their clusters make their own firewall rules (EC2Cluster opens 8786-8787 to 0.0.0.0/0), or take security_groups=',
  tls: 'they make their own self-signed certificate (security=True)',
  tls_dir: 'they take your files as security=Security(...)',
  idle_timeout: 'pass scheduler_options={"idle_timeout": ...}',
};

/**
 * The settings the user chose for this cloud (or for every cloud) that dask-cloudprovider has no
 * key for, with why where it matters: said, so nobody takes the export for the whole setup.
 */
export function notExported(settings: Settings, provider: CloudProvider): { key: string; why?: string }[] {
  const used = new Set(MAPPINGS[provider].flatMap(([, sources]) => sources));
  const otherClouds = CLOUD_PROVIDERS.filter((cloud) => cloud !== provider);
  return [...flatten(settings).keys()]
    .filter(
      (key) =>
        key !== 'provider' && !used.has(key) && !otherClouds.some((cloud) => key.startsWith(`${cloud}.`)),
    )
    .map((key) => ({ key, ...(NO_EQUIVALENT[key] ? { why: NO_EQUIVALENT[key] } : {}) }));
}

/** The provider to export: the one asked for, else the configured one when it is a cloud. */
export function exportProvider(settings: Settings, asked: string | undefined): CloudProvider {
  const provider = asked ?? settings.provider;
  if ((CLOUD_PROVIDERS as readonly string[]).includes(provider ?? '')) return provider as CloudProvider;
  throw usageError(
    asked
      ? `--provider ${JSON.stringify(asked)} is not a cloud dask-cloudprovider knows`
      : `the configured provider is ${provider}, which dask-cloudprovider has no settings for`,
    `pass --provider ${CLOUD_PROVIDERS.join('|')}`,
  );
}

/** Merges the values into cloudprovider.yaml; every other key and comment stays. */
export async function exportCloudprovider(settings: Settings, provider: CloudProvider, env = process.env) {
  const file = cloudproviderFile(env);
  const values = cloudproviderValues(settings, provider);
  const changed = await updateYaml(file, (doc) => {
    for (const [path, value] of values) setIn(doc, ['cloudprovider', ...path.split('.')], value);
  });
  return { file, provider, values, changed, notExported: notExported(settings, provider) };
}
