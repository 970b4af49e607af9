/**
 * The variables that point dcp at each cloud's fake (tests and benchmarks alike), and the GCE
 * and DigitalOcean fakes as their tests look at them: a cluster's VMs and ingress.
 */
import { join } from 'node:path';
import type { FakeAzure } from '../fakes/azure/index.js';
import type { FakeDigitalOcean } from '../fakes/digitalocean/index.js';
import type { FakeEc2 } from '../fakes/ec2/index.js';
import type { FakeGce } from '../fakes/gce/index.js';
import type { FakeMember } from './conformance.js';

/**
 * A private home for a test file that runs providers in its own process: dcp's state and Dask's
 * configuration inside it, and no registry beyond this machine (a closed port answers "unknown").
 */
export function privateHome(home: string): NodeJS.ProcessEnv {
  return {
    HOME: home,
    XDG_STATE_HOME: join(home, 'state'),
    DASK_CONFIG: join(home, 'dask'),
    DCP_IMAGE_REPOSITORY: '127.0.0.1:9/dask/dask',
  };
}

/** The SDK's endpoint, region and static keys, aimed at the EC2 fake; no instance metadata. */
export function awsEnvironment(fake: FakeEc2): NodeJS.ProcessEnv {
  return {
    AWS_ENDPOINT_URL_EC2: fake.url,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDFAKE',
    AWS_SECRET_ACCESS_KEY: 'fake-secret',
    AWS_EC2_METADATA_DISABLED: 'true',
    DCP_MY_IP_URL: `${fake.url}/checkip`,
  };
}

/** gcloud's endpoint override, a project and an ADC file (in `dir`) whose token URL is the fake's. */
export function gcpEnvironment(fake: FakeGce, dir: string): NodeJS.ProcessEnv {
  return {
    CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: fake.computeBase,
    CLOUDSDK_CORE_PROJECT: fake.project,
    GOOGLE_APPLICATION_CREDENTIALS: fake.writeAdcFile(dir),
    // Never ask 169.254.169.254: this is not a GCE VM.
    METADATA_SERVER_DETECTION: 'none',
    // Should anything still look for a metadata server, it finds the fake (a logged `metadata` call).
    GCE_METADATA_HOST: new URL(fake.url).host,
    // A gcloud configuration of its own (empty), not this machine's.
    CLOUDSDK_CONFIG: join(dir, 'gcloud'),
    DCP_MY_IP_URL: `${fake.url}/checkip`,
  };
}

export function gcpMembers(fake: FakeGce, cluster: string): FakeMember[] {
  return fake
    .instances()
    .filter((i) => i.labels?.['dcp-cluster'] === cluster && i.deletedAt === undefined)
    .map((i) => ({
      role: i.labels!['dcp-role']!,
      privateIp: i.networkInterfaces[0]!.networkIP,
      publicIp: i.networkInterfaces[0]!.accessConfigs?.[0]?.natIP,
      boot: i.startupScript ?? '',
      requestedAt: i.insertedAt,
      runningAt: i.runningAt,
    }));
}

/** `cidr:port` for each address range and port an allow rule of the cluster opens from outside. */
export function gcpIngress(fake: FakeGce, cluster: string): string[] {
  return fake
    .firewalls()
    .filter((rule) => rule.name.startsWith(`dcp-${cluster}-`) && rule.allowed && rule.sourceRanges)
    .flatMap((rule) =>
      rule.sourceRanges!.flatMap((cidr) =>
        rule.allowed!.flatMap((allowed) =>
          (allowed.ports ?? ['0-65535']).flatMap((range) => {
            const [from, to = from] = range.split('-').map(Number) as [number, number?];
            return Array.from({ length: to! - from + 1 }, (_, i) => `${cidr}:${from + i}`);
          }),
        ),
      ),
    );
}

/** doctl's endpoint variable and a token the fake takes. */
export function digitaloceanEnvironment(fake: FakeDigitalOcean): NodeJS.ProcessEnv {
  return {
    DIGITALOCEAN_API_URL: fake.url,
    DIGITALOCEAN_TOKEN: fake.token,
    DCP_MY_IP_URL: `${fake.url}/checkip`,
  };
}

const dropletAddress = (
  droplet: { networks: { v4: { ip_address: string; type: string }[] } },
  type: string,
) => droplet.networks.v4.find((network) => network.type === type)?.ip_address;

export function digitaloceanMembers(fake: FakeDigitalOcean, cluster: string): FakeMember[] {
  return fake
    .droplets()
    .filter((d) => d.tags.includes(`dcp:cluster:${cluster}`) && d.deletedAt === undefined)
    .map((d) => ({
      role: d.tags.find((tag) => tag.startsWith('dcp:role:'))!.slice('dcp:role:'.length),
      privateIp: dropletAddress(d, 'private') ?? '(not yet)',
      // A droplet made with a public address gets it only once DigitalOcean gives addresses.
      publicIp: dropletAddress(d, 'public') ?? (d.publicNetworking ? '(public, not yet)' : undefined),
      boot: d.userData ?? '',
      requestedAt: d.requestedAt,
      runningAt: d.activeAt,
    }));
}

/** The cluster's firewall `dcp-<name>`: `cidr:port` for each address range and port it admits. */
export function digitaloceanIngress(fake: FakeDigitalOcean, cluster: string): string[] {
  return fake
    .firewalls()
    .filter((firewall) => firewall.name === `dcp-${cluster}`)
    .flatMap((firewall) =>
      firewall.inbound_rules.flatMap((rule) =>
        (rule.sources.addresses ?? []).flatMap((cidr) => {
          const ports = rule.ports === 'all' || rule.ports === '0' ? '1-65535' : rule.ports;
          const [from, to = from] = ports.split('-').map(Number) as [number, number?];
          return Array.from({ length: to! - from + 1 }, (_, i) => `${cidr}:${from + i}`);
        }),
      ),
    );
}

/**
 * What is left of a cluster: its droplets (powered off ones included), its firewall, its name's
 * tag, dcp's SSH key, and any run tag (`dcp:cluster-id:*`) no droplet carries any more.
 */
export function digitaloceanLeftovers(fake: FakeDigitalOcean, cluster: string): string[] {
  const live = fake.droplets().filter((d) => d.deletedAt === undefined);
  const carried = new Set(live.flatMap((d) => d.tags));
  return [
    ...live
      .filter((d) => d.tags.includes(`dcp:cluster:${cluster}`))
      .map((d) => `droplet ${d.name} (${d.status})`),
    ...fake
      .firewalls()
      .filter((f) => f.name === `dcp-${cluster}`)
      .map((f) => `firewall ${f.name}`),
    ...fake
      .tags()
      .filter(
        (tag) => tag === `dcp:cluster:${cluster}` || (tag.startsWith('dcp:cluster-id:') && !carried.has(tag)),
      )
      .map((tag) => `tag ${tag}`),
    ...fake
      .sshKeys()
      .filter((key) => new RegExp(`^dcp-${cluster} [0-9a-f-]{36}$`).test(key.name))
      .map((key) => `SSH key ${key.name}`),
  ];
}

/**
 * ARM's endpoint, the subscription, and the Azure CLI credential only (a stand-in `az`, in
 * `dir`, first on PATH): DefaultAzureCredential would otherwise probe 169.254.169.254.
 */
export function azureEnvironment(fake: FakeAzure, dir: string): NodeJS.ProcessEnv {
  return {
    DCP_AZURE_ENDPOINT: fake.url,
    AZURE_SUBSCRIPTION_ID: fake.subscriptionId,
    AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential',
    AZURE_CONFIG_DIR: join(dir, 'azure-config'),
    PATH: `${fake.writeAzCli(join(dir, 'bin'))}:${process.env.PATH ?? ''}`,
    DCP_MY_IP_URL: `${fake.url}/checkip`,
  };
}

export function azureMembers(fake: FakeAzure, cluster: string): FakeMember[] {
  return fake
    .vms()
    .filter((vm) => vm.tags['dcp:cluster'] === cluster && vm.deletedAt === undefined)
    .map((vm) => ({
      role: vm.tags['dcp:role'] ?? '?',
      privateIp: vm.privateIp ?? '(none)',
      publicIp: vm.publicIp,
      boot: vm.customData ?? '',
      requestedAt: vm.requestedAt,
      runningAt: vm.runningAt,
    }));
}

/** The name of the cluster's resource group, as the fake has it (found by its tag). */
export function azureGroup(fake: FakeAzure, cluster: string): string {
  const group = fake
    .resourceGroups()
    .find((g) => (g.tags as Record<string, string>)?.['dcp:cluster'] === cluster);
  if (!group) throw new Error(`the fake has no resource group of cluster ${cluster}`);
  return String(group.name);
}

/** `cidr:port` for each Allow rule of the cluster's NSG from outside the VNet. */
export function azureIngress(fake: FakeAzure, cluster: string): string[] {
  const nsg = fake
    .resources(azureGroup(fake, cluster))
    .find((resource) => String(resource.type).toLowerCase() === 'microsoft.network/networksecuritygroups') as
    { properties?: { securityRules?: { properties: Record<string, unknown> }[] } } | undefined;
  return (nsg?.properties?.securityRules ?? [])
    .map(
      (rule) =>
        rule.properties as {
          access?: string;
          direction?: string;
          sourceAddressPrefix?: string;
          sourceAddressPrefixes?: string[];
          destinationPortRange?: string;
          destinationPortRanges?: string[];
        },
    )
    .filter((rule) => rule.access === 'Allow' && rule.direction === 'Inbound')
    .flatMap((rule) =>
      [rule.sourceAddressPrefix, ...(rule.sourceAddressPrefixes ?? [])]
        .filter((source): source is string => Boolean(source) && source !== 'VirtualNetwork')
        .flatMap((cidr) =>
          [rule.destinationPortRange, ...(rule.destinationPortRanges ?? [])]
            .filter((range): range is string => Boolean(range))
            .flatMap((range) => {
              const [from, to = from] = (range === '*' ? '1-65535' : range).split('-').map(Number) as [
                number,
                number?,
              ];
              return Array.from({ length: to! - from + 1 }, (_, i) => `${cidr}:${from + i}`);
            }),
        ),
    );
}
