import { describe, expect, it } from 'vitest';
import { cloudproviderValues, exportProvider } from './cloudprovider.js';

describe('cloudproviderValues: dask-cloudprovider key names for each cloud', () => {
  const settings = {
    networking: 'public' as const,
    image: 'ghcr.io/dask/dask:2022.12.1',
    gcp: {
      project: 'my-project',
      zone: 'europe-west1-b',
      network: 'dask-net',
      machine_type: 'e2-standard-4',
    },
    azure: {
      location: 'westeurope',
      resource_group: 'rg',
      subscription_id: 'sub',
      vnet: 'vnet',
      subnet: 'snet',
      security_group: 'nsg',
      vm_size: 'Standard_D4s_v5',
    },
    digitalocean: { region: 'ams3', size: 's-2vcpu-4gb', image: 'ubuntu-24-04-x64' },
  };

  it('gcp', () => {
    expect(Object.fromEntries(cloudproviderValues(settings, 'gcp'))).toEqual({
      'gcp.projectid': 'my-project',
      'gcp.zone': 'europe-west1-b',
      'gcp.network': 'dask-net',
      'gcp.public_ingress': true,
      'gcp.machine_type': 'e2-standard-4',
      'gcp.docker_image': 'ghcr.io/dask/dask:2022.12.1',
    });
  });

  it('azure, with the VM keys under azurevm', () => {
    expect(Object.fromEntries(cloudproviderValues({ ...settings, networking: 'private' }, 'azure'))).toEqual({
      'azure.location': 'westeurope',
      'azure.resource_group': 'rg',
      'azure.subscription_id': 'sub',
      'azure.azurevm.vnet': 'vnet',
      'azure.azurevm.subnet': 'snet',
      'azure.azurevm.security_group': 'nsg',
      'azure.azurevm.public_ingress': false,
      'azure.azurevm.vm_size': 'Standard_D4s_v5',
      'azure.azurevm.docker_image': 'ghcr.io/dask/dask:2022.12.1',
    });
  });

  it('azure: dcp’s GROUP/VNET (or resource id) as AzureVMCluster’s bare VNet name in its resource group', () => {
    const azure: Record<string, string> = { ...settings.azure };
    delete azure.resource_group;
    for (const vnet of [
      'net-rg/dask-vnet',
      '/subscriptions/s/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/dask-vnet/subnets/a',
    ]) {
      const values = cloudproviderValues({ ...settings, azure: { ...azure, vnet } }, 'azure');
      expect(values.get('azure.azurevm.vnet')).toBe('dask-vnet');
      expect(values.get('azure.resource_group')).toBe('net-rg');
    }
  });

  it('digitalocean: the droplet image is the OS image, not the Docker one', () => {
    expect(Object.fromEntries(cloudproviderValues(settings, 'digitalocean'))).toEqual({
      'digitalocean.region': 'ams3',
      'digitalocean.size': 's-2vcpu-4gb',
      'digitalocean.image': 'ubuntu-24-04-x64',
    });
  });

  it('leaves out what the settings do not say, so the user’s own values stay', () => {
    expect([...cloudproviderValues({}, 'aws').keys()]).toEqual([]);
    expect(Object.fromEntries(cloudproviderValues({ networking: 'private' }, 'aws'))).toEqual({
      'ec2.use_private_ip': true,
    });
  });

  it('picks the configured cloud, and refuses local', () => {
    expect(exportProvider({ provider: 'gcp' }, undefined)).toBe('gcp');
    expect(exportProvider({ provider: 'local' }, 'azure')).toBe('azure');
    expect(() => exportProvider({ provider: 'local' }, undefined)).toThrow(
      /dask-cloudprovider has no settings for/,
    );
  });
});
