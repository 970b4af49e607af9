/**
 * dask-cloudprovider's own keys for the same setup, so EC2Cluster, GCPCluster, AzureVMCluster
 * and DropletCluster started from Python agree with dcp. Key names are exactly those of
 * dask-cloudprovider's cloudprovider.yaml.
 */
import { usageError } from '../errors.js';
import { cloudproviderFile } from './paths.js';
import type { ProviderName, Settings } from './schema.js';
import { setIn, updateYaml } from './yaml-file.js';

export type CloudProvider = Exclude<ProviderName, 'local'>;
export const CLOUD_PROVIDERS: readonly CloudProvider[] = ['aws', 'gcp', 'azure', 'digitalocean'];

/**
 * `cloudprovider.<path>` → value, for the keys the settings give a value for. Pass only what the
 * user chose (not dcp's defaults), so a value of theirs in the file is never replaced by a default.
 */
export function cloudproviderValues(settings: Settings, provider: CloudProvider): Map<string, unknown> {
  const isPublic = settings.networking === undefined ? undefined : settings.networking === 'public';
  const entries: [string, unknown][] = (() => {
    switch (provider) {
      case 'aws': {
        const aws = settings.aws ?? {};
        return [
          ['ec2.region', aws.region],
          ['ec2.vpc', aws.vpc],
          ['ec2.subnet_id', aws.subnet],
          ['ec2.use_private_ip', isPublic === undefined ? undefined : !isPublic],
          // EC2Cluster reads the scheduler and worker types from config, not instance_type.
          ['ec2.instance_type', aws.instance_type],
          ['ec2.scheduler_instance_type', aws.scheduler_instance_type ?? aws.instance_type],
          ['ec2.worker_instance_type', aws.instance_type],
          ['ec2.docker_image', settings.image],
          ['ec2.ami', aws.ami],
        ];
      }
      case 'gcp': {
        const gcp = settings.gcp ?? {};
        return [
          ['gcp.projectid', gcp.project],
          ['gcp.zone', gcp.zone],
          ['gcp.network', gcp.network],
          ['gcp.public_ingress', isPublic],
          ['gcp.machine_type', gcp.machine_type],
          ['gcp.docker_image', settings.image],
        ];
      }
      case 'azure': {
        const azure = settings.azure ?? {};
        return [
          ['azure.location', azure.location],
          ['azure.resource_group', azure.resource_group],
          ['azure.subscription_id', azure.subscription_id],
          ['azure.azurevm.vnet', azure.vnet],
          ['azure.azurevm.subnet', azure.subnet],
          ['azure.azurevm.security_group', azure.security_group],
          ['azure.azurevm.public_ingress', isPublic],
          ['azure.azurevm.vm_size', azure.vm_size],
          ['azure.azurevm.docker_image', settings.image],
        ];
      }
      case 'digitalocean': {
        const digitalocean = settings.digitalocean ?? {};
        return [
          ['digitalocean.region', digitalocean.region],
          ['digitalocean.size', digitalocean.size],
          ['digitalocean.image', digitalocean.image],
        ];
      }
    }
  })();
  return new Map(entries.filter(([, value]) => value !== undefined));
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
  return { file, provider, values, changed };
}
