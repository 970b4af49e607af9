/**
 * The Azure provider: one resource group per run, `dcp-<name>-<run id>`, tagged `dcp:cluster` and
 * `dcp:cluster-id` (as is everything in it: resources do not inherit a group's tags), so that
 * rollback and `down` are one group delete, from any machine. In it: a network security group on
 * every NIC (the ingress asked for; in the user's VNet, the members by an application security
 * group and a deny for the rest of the VNet), a VNet of the cluster's own with a NAT gateway
 * unless the user names one, a Standard static public IP for a public scheduler, the scheduler's
 * NIC (whose private IP is known at once: the workers' boot script carries it), the scheduler VM,
 * and every worker in one Flexible scale set, sent before the scheduler has booted.
 *
 * A VM that powers itself off on Azure is stopped, not deallocated, and bills: the idle scheduler
 * deletes its group through its managed identity, when the user may grant it a role there.
 */
import { randomUUID } from 'node:crypto';
import type { VirtualMachine, VirtualMachineScaleSet } from '@azure/arm-compute';
import { readJournal, type ClusterRecord, type Resource } from '../../cluster/state.js';
import type { FirewallView, LiveRule } from '../../cluster/doctor.js';
import { DASK_PORTS, type IngressRule } from '../../config/ingress.js';
import { loadSettings } from '../../config/load.js';
import { GUID } from '../../config/schema.js';
import { isClusterName } from '../../cluster/names.js';
import { DcpError, usageError } from '../../errors.js';
import { formatDuration } from '../../util/duration.js';
import { DASHBOARD_PORT, memberScript, SCHEDULER_PORT } from '../boot/index.js';
import { count, gatherClusters, onePerRun, prepareCommon } from '../cloud.js';
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
import { armError, call, connectArm, unlessNotFound, type Arm } from './arm.js';
import { resolveIdentity } from './identity.js';

const DEFAULT_SIZE = 'Standard_D2s_v5';
/** Azure's limit on customData, decoded. */
const CUSTOM_DATA_LIMIT = 65_535;
const TAG_CLUSTER = 'dcp:cluster';
const TAG_CLUSTER_ID = 'dcp:cluster-id';
const TAG_ROLE = 'dcp:role';
const TAG_PROTOCOL = 'dcp:protocol';
/** The cluster's own network, when the user names none. */
const OWN_CIDR = '10.13.0.0/16';
const OWN_SUBNET = '10.13.0.0/24';
const ADMIN = 'dcp';
/** Fast polls: the fake answers at once, and Azure's Retry-After (when it sends one) wins. */
const POLL = { updateIntervalInMs: 1_000 };
/** The built-in Contributor role: the scheduler's identity holds it on its own group only. */
const CONTRIBUTOR = 'b24988ac-6180-42a0-ab88-20f7382dd24c';
/** A stopped VM would block nothing, but a forced delete skips each VM's graceful shutdown. */
const FORCE_DELETE = 'Microsoft.Compute/virtualMachines,Microsoft.Compute/virtualMachineScaleSets';
const INSTANCE_METADATA = 'http://169.254.169.254';

/**
 * What the scheduler's boot script needs to delete its own group when Dask exits: a token of its
 * managed identity from the instance metadata service, and the group's delete on `endpoint`.
 */
export function groupSelfDelete(endpoint: string, groupId: string, metadata = INSTANCE_METADATA) {
  const token = new URL('/metadata/identity/oauth2/token', metadata);
  token.search = new URLSearchParams({ 'api-version': '2018-02-01', resource: `${endpoint}/` }).toString();
  const group = new URL(`${endpoint}${groupId}`);
  group.search = new URLSearchParams({
    forceDeletionTypes: FORCE_DELETE,
    'api-version': '2021-04-01',
  }).toString();
  return { tokenUrl: token.href, resourceUrl: group.href };
}

interface AzureResource extends Resource {
  kind: 'run' | 'group';
  data: { subscription: string; location: string; clusterId: string; group: string };
}

/** A group of the run's own, never a namesake's: create-or-update cannot adopt someone else's. */
const groupName = (cluster: string, clusterId: string) => `dcp-${cluster}-${clusterId.slice(0, 8)}`;

function journalData(resources: Resource[]): AzureResource['data'] | undefined {
  return resources.map((r) => r.data as AzureResource['data']).find((data) => data?.group);
}

const clients = onePerRun<Arm>();
/** One set of clients per subscription (and endpoint) for the whole run. */
function armFor(subscription: string): Promise<Arm> {
  return clients(`${subscription}|${process.env.DCP_AZURE_ENDPOINT ?? ''}`, () => connectArm(subscription));
}

/** Clients for the journal's subscription, or (no journal) the settings' and the Azure CLI's. */
async function armFrom(resources: Resource[]): Promise<Arm> {
  const data = journalData(resources);
  if (data) return armFor(data.subscription);
  const { settings } = await loadSettings();
  const { subscription } = await resolveIdentity(
    { subscription: settings.azure?.subscription_id },
    process.env,
    { locationRequired: false },
  );
  return armFor(subscription);
}

/** `Canonical:ubuntu-24_04-lts:server[-arm64]:latest` for the size's processor. */
function ubuntu(arm64: boolean) {
  return {
    publisher: 'Canonical',
    offer: 'ubuntu-24_04-lts',
    sku: arm64 ? 'server-arm64' : 'server',
    version: 'latest',
  };
}

/** NSG rules: the ingress asked for, and in the user's VNet the members in and the rest of it out. */
function securityRules(ingress: IngressRule[], membersAsg: string | undefined) {
  const rules: Record<string, unknown>[] = ingress.map((rule, i) => ({
    name: `dcp-in-${i + 1}`,
    priority: 100 + i,
    direction: 'Inbound',
    access: 'Allow',
    protocol: 'Tcp',
    sourceAddressPrefix: rule.cidr,
    sourcePortRange: '*',
    destinationAddressPrefix: '*',
    destinationPortRanges: rule.ports.map(String),
  }));
  if (membersAsg)
    rules.push(
      {
        name: 'dcp-members',
        priority: 3_000,
        direction: 'Inbound',
        access: 'Allow',
        protocol: '*',
        sourceApplicationSecurityGroups: [{ id: membersAsg }],
        sourcePortRange: '*',
        destinationApplicationSecurityGroups: [{ id: membersAsg }],
        destinationPortRange: '*',
      },
      {
        // Azure's AllowVnetInBound (65000) admits the whole VNet and its peerings: not here.
        name: 'dcp-deny-vnet',
        priority: 4_000,
        direction: 'Inbound',
        access: 'Deny',
        protocol: '*',
        sourceAddressPrefix: 'VirtualNetwork',
        sourcePortRange: '*',
        destinationAddressPrefix: '*',
        destinationPortRange: '*',
      },
    );
  return rules;
}

/** `8786`, `8786-8787` or `*` as the ports an NSG rule opens. */
function rulePorts(ranges: string[]): number[] | 'all' {
  if (ranges.includes('*')) return 'all';
  return ranges.flatMap((range) => {
    const [from, to = from] = range.split('-').map(Number) as [number, number?];
    return Array.from({ length: to! - from + 1 }, (_, i) => from + i);
  });
}

/**
 * An NSG rule's source as a range: an address alone is a /32, `VirtualNetwork` the VNet's range,
 * and every other service tag (`Internet`, `AzureCloud`: any Azure customer) the whole internet.
 */
function sourceRange(source: string, vnetCidr: string): string {
  if (source === 'VirtualNetwork') return vnetCidr;
  if (/^[\d.]+(\/\d+)?$/.test(source) || source.includes(':'))
    return source.includes('/') ? source : `${source}/${source.includes(':') ? 128 : 32}`;
  return '0.0.0.0/0';
}

/** Subnets of Azure's own services, never a cluster's. */
const RESERVED_SUBNETS = new Set([
  'gatewaysubnet',
  'azurebastionsubnet',
  'azurefirewallsubnet',
  'azurefirewallmanagementsubnet',
  'routeserversubnet',
]);

interface Vm {
  name?: string;
  tags?: Record<string, string>;
  location?: string;
  instanceView?: { statuses?: { code?: string }[] };
}

const powerState = (vm: Vm) =>
  vm.instanceView?.statuses?.find((status) => status.code?.startsWith('PowerState/'))?.code?.slice(11);

const isDeleting = (group: { properties?: { provisioningState?: string } }) =>
  group.properties?.provisioningState === 'Deleting';

/** Whether a group is there, being deleted, or gone. */
async function groupState(arm: Arm, group: string): Promise<'there' | 'being deleted' | 'gone'> {
  const found = await findGroup(arm, group);
  if (!found) return 'gone';
  return isDeleting(found) ? 'being deleted' : 'there';
}

/** The group as ARM has it, or undefined when it is not there. */
function findGroup(arm: Arm, group: string) {
  return call('resourceGroups.get', () => unlessNotFound(arm.resources.resourceGroups.get(group)));
}

/**
 * The group's VMs (those `only` keeps), each with its instance view: a list gives none (ARM takes
 * `$expand=instanceView` there only with a `$filter`), so each VM's is asked for.
 */
async function listVms(arm: Arm, group: string, only: (vm: Vm) => boolean = () => true): Promise<Vm[]> {
  return call('virtualMachines.list', async () => {
    const vms: Vm[] = [];
    await unlessNotFound(
      (async () => {
        for await (const vm of arm.compute.virtualMachines.list(group)) if (only(vm)) vms.push(vm);
      })(),
    );
    return Promise.all(
      vms.map(async (vm) => ({
        ...vm,
        instanceView: await unlessNotFound(arm.compute.virtualMachines.instanceView(group, vm.name!)),
      })),
    );
  });
}

/** How `list` says a cluster whose scheduler is not running: what Azure bills for, first. */
function notRunning(states: (string | undefined)[]): string | undefined {
  if (states.some((state) => state === 'stopped' || state === 'stopping')) return 'stopped (still billed)';
  if (states.some((state) => state === 'starting' || state === undefined)) return 'starting';
  if (states.every((state) => state === 'deallocated' || state === 'deallocating')) return 'deallocated';
  return undefined;
}

/** The cluster groups of the subscription, by tag; in `location` when given. */
async function clusterGroups(arm: Arm, name?: string, location?: string) {
  const groups: {
    name?: string;
    location?: string;
    tags?: Record<string, string>;
    properties?: { provisioningState?: string };
  }[] = [];
  const filter = name
    ? `tagName eq '${TAG_CLUSTER}' and tagValue eq '${name}'`
    : `tagName eq '${TAG_CLUSTER}'`;
  await call('resourceGroups.list', async () => {
    for await (const group of arm.resources.resourceGroups.list({ filter })) groups.push(group);
  });
  // dcp's only: the name a run gives its group, from a tag that is a cluster name (tags are
  // anyone's to write, and are printed).
  return groups.filter((group) => {
    const cluster = group.tags?.[TAG_CLUSTER] ?? '';
    const id = group.tags?.[TAG_CLUSTER_ID] ?? '';
    return (
      isClusterName(cluster) &&
      GUID.test(id) &&
      group.name?.toLowerCase() === groupName(cluster, id).toLowerCase() &&
      (!location || group.location?.toLowerCase() === location.toLowerCase())
    );
  });
}

/** The address a client would use: the scheduler's public IP, else its NIC's private one. */
async function schedulerIp(arm: Arm, group: string, cluster: string): Promise<string | undefined> {
  const pip = await call('publicIPAddresses.get', () =>
    unlessNotFound(arm.network.publicIPAddresses.get(group, `${cluster}-scheduler-ip`)),
  );
  if (pip?.ipAddress) return pip.ipAddress;
  const nic = await call('networkInterfaces.get', () =>
    unlessNotFound(arm.network.networkInterfaces.get(group, `${cluster}-scheduler-nic`)),
  );
  return nic?.ipConfigurations?.[0]?.privateIPAddress;
}

/**
 * The user's subnet (`--vpc GROUP/VNET`, a VNet's or a subnet's id, `--subnet NAME`, default its
 * first usable one), in the cluster's location, with a way out for Docker: a NAT gateway, or a
 * route table (said, as dcp cannot see where it goes).
 */
async function userSubnet(arm: Arm, spec: ClusterSpec, location: string) {
  const given = spec.cloud.vnet!.trim();
  const byId =
    /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Network\/virtualNetworks\/([^/]+)(?:\/subnets\/([^/]+))?$/i.exec(
      given,
    );
  const byName = /^([^/\s]+)\/([^/\s]+)$/.exec(given);
  if (!byId && !byName)
    throw usageError(
      `--vpc ${JSON.stringify(given)} names no VNet`,
      'pass --vpc RESOURCE_GROUP/VNET (or the VNet’s or a subnet’s resource id)',
    );
  if (byId && byId[1]!.toLowerCase() !== arm.subscription.toLowerCase())
    throw usageError(
      `the VNet ${byId[3]} is in subscription ${byId[1]}, and the cluster goes to ${arm.subscription}`,
      `pass --subscription ${byId[1]}, or a VNet of subscription ${arm.subscription}`,
    );
  const parts = byId
    ? { group: byId[2]!, vnet: byId[3]!, subnet: byId[4] }
    : { group: byName![1]!, vnet: byName![2]!, subnet: undefined };
  if (parts.subnet && spec.cloud.subnet && parts.subnet.toLowerCase() !== spec.cloud.subnet.toLowerCase())
    throw usageError(
      `--vpc names the subnet ${parts.subnet} and --subnet ${spec.cloud.subnet}`,
      'pass one of them',
    );
  const wanted = spec.cloud.subnet ?? parts.subnet;
  const vnet = await call('virtualNetworks.get', () =>
    unlessNotFound(arm.network.virtualNetworks.get(parts.group, parts.vnet)),
  );
  if (!vnet)
    throw usageError(
      `there is no VNet ${parts.vnet} in resource group ${parts.group}`,
      'pass --vpc RESOURCE_GROUP/VNET of yours (az network vnet list --output table)',
    );
  if (vnet.location !== location)
    throw usageError(
      `the VNet ${parts.vnet} is in ${vnet.location}, not ${location}`,
      `pass --region ${vnet.location}`,
    );
  // Not Azure's own (gateways, Bastion, firewalls) nor one delegated to a service.
  const usable = (vnet.subnets ?? []).filter(
    (s) => !RESERVED_SUBNETS.has(s.name?.toLowerCase() ?? '') && (s.delegations ?? []).length === 0,
  );
  const subnet = wanted ? usable.find((s) => s.name?.toLowerCase() === wanted.toLowerCase()) : usable[0];
  if (!subnet?.id)
    throw usageError(
      `the VNet ${parts.vnet} has no subnet ${wanted ? `${wanted} ` : ''}dcp may use`,
      `pass --subnet with one of ${usable.map((s) => s.name).join(', ') || 'its subnets (it has none that is not Azure’s own or delegated)'}`,
    );
  // Scale-set VMs get no default outbound access, whatever the subnet says: a NAT gateway or a
  // route table (to a firewall, say) is their only way to Docker and the Dask image.
  const warning =
    !subnet.natGateway && subnet.routeTable
      ? `the workers reach the internet only through the route table of subnet ${subnet.name}: it must send 0.0.0.0/0 to a firewall or gateway that lets them reach Ubuntu's mirrors and the container registry (without, they power off, and a stopped VM bills)`
      : undefined;
  if (!subnet.natGateway && !subnet.routeTable)
    throw usageError(
      `the subnet ${subnet.name} has no NAT gateway or route table: the workers (a scale set, which Azure gives no default outbound access) could not install Docker`,
      `attach a NAT gateway to it: az network vnet subnet update --resource-group ${parts.group} --vnet-name ${parts.vnet} --name ${subnet.name} --nat-gateway NAME`,
    );
  return {
    ...(warning ? { warning } : {}),
    subnet_id: subnet.id,
    vnet_cidr: vnet.addressSpace?.addressPrefixes?.[0] ?? subnet.addressPrefix ?? OWN_CIDR,
  };
}

export const azureProvider: Provider = {
  name: 'azure',
  defaultTimeoutMs: 10 * 60_000,
  healthIntervalMs: 10_000,

  plan(spec) {
    return [
      `make a resource group dcp-${spec.name}-<run id> in ${spec.cloud.location ?? 'the Azure CLI’s default location'}${spec.cloud.subscription_id ? ` of subscription ${spec.cloud.subscription_id}` : ''}, with a scheduler and ${count(spec.workers, 'worker')} (${spec.cloud.vm_size ?? DEFAULT_SIZE}, Ubuntu 24.04, Trusted Launch, SSH key only)`,
      spec.cloud.vnet
        ? `in your VNet ${spec.cloud.vnet}: the members reach each other, the rest of the VNet is kept off them`
        : `in a VNet of its own (${OWN_CIDR}), whose workers reach the internet through a NAT gateway of its own`,
      ...(spec.networking === 'public'
        ? [
            'give the scheduler a Standard static public IP; workers reach it by its private IP and have no public IP',
          ]
        : []),
      `when idle for ${formatDuration(spec.idleTimeoutSeconds * 1000)}, the scheduler deletes its resource group through its own managed identity, if you may grant it Contributor on that group (Owner, User Access Administrator or Role Based Access Control Administrator); otherwise the VMs only power off, and Azure bills a stopped VM until dcp down`,
    ];
  },

  async prepare(spec): Promise<ClusterSpec> {
    const { subscription, location } = await resolveIdentity({
      subscription: spec.cloud.subscription_id,
      location: spec.cloud.location,
    });
    const arm = await armFor(subscription);
    const size = spec.cloud.vm_size ?? DEFAULT_SIZE;
    const [skus, taken, common] = await Promise.all([
      call('resourceSkus.list', async () => {
        const found: {
          name?: string;
          resourceType?: string;
          capabilities?: { name?: string; value?: string }[];
          restrictions?: { type?: string; reasonCode?: string }[];
        }[] = [];
        for await (const sku of arm.compute.resourceSkus.list({ filter: `location eq '${location}'` }))
          found.push(sku);
        return found;
      }),
      clusterGroups(arm, spec.name),
      prepareCommon(spec),
    ]);
    const sizes = skus.filter((s) => s.resourceType === 'virtualMachines');
    if (sizes.length === 0)
      throw usageError(
        `Azure offers no VM sizes in ${location}: is it a location of this subscription?`,
        'pass --region with one of az account list-locations --query [].name --output tsv',
      );
    const sku = sizes.find((s) => s.name?.toLowerCase() === size.toLowerCase());
    const capability = (name: string) => sku?.capabilities?.find((c) => c.name === name)?.value;
    const refusal = !sku
      ? `there is no VM size ${size} in ${location}`
      : sku.restrictions?.some((r) => r.type === 'Location' && r.reasonCode === 'NotAvailableForSubscription')
        ? `the VM size ${size} is not available to this subscription in ${location}`
        : capability('TrustedLaunchDisabled') === 'True'
          ? `the VM size ${size} cannot run Trusted Launch VMs (secure boot and a vTPM), which dcp makes`
          : !(capability('HyperVGenerations') ?? 'V2').includes('V2')
            ? `the VM size ${size} runs generation 1 VMs only, and Ubuntu 24.04 with Trusted Launch needs generation 2`
            : undefined;
    if (refusal)
      throw usageError(
        refusal,
        `pass another --instance-type or --region (az vm list-skus --location ${location} --output table)`,
      );
    // A group being deleted (an idle cluster's, say) is not in the way: each run has a group of its own.
    const standing = taken.filter((group) => !isDeleting(group));
    if (standing.length > 0)
      throw usageError(
        `a dcp cluster named ${spec.name} is in subscription ${subscription} already (resource group ${standing[0]!.name} in ${standing[0]!.location})`,
        `pick another --name, or remove that cluster first: dcp down ${spec.name} --provider azure`,
      );
    const arm64 = capability('CpuArchitectureType') === 'Arm64';
    const { warning: egress, ...placement } = spec.cloud.vnet
      ? await userSubnet(arm, spec, location!)
      : { warning: undefined };
    // dask-cloudprovider's settings, kept for `dcp config export`: said, not silently ignored.
    const unused = (['resource_group', 'security_group'] as const)
      .filter((key) => spec.cloud[key])
      .map(
        (key) =>
          `azure.${key} is not used by dcp (it is for dask-cloudprovider, through dcp config export): each cluster gets a resource group and a network security group of its own`,
      )
      .concat(egress ? [egress] : []);
    return {
      ...common,
      ...(unused.length ? { warnings: [...(common.warnings ?? []), ...unused] } : {}),
      cloud: {
        ...spec.cloud,
        ...placement,
        subscription_id: subscription,
        location: location!,
        vm_size: sku!.name!,
        arch: arm64 ? 'arm64' : 'x64',
        // Sizes without Premium SSD support take a Standard SSD OS disk.
        os_disk: capability('PremiumIO') === 'False' ? 'StandardSSD_LRS' : 'Premium_LRS',
      },
    };
  },

  async create(context: CreateContext): Promise<Endpoints> {
    const { spec, signal } = context;
    const {
      subscription_id: subscription,
      location,
      vm_size: size,
    } = spec.cloud as {
      subscription_id: string;
      location: string;
      vm_size: string;
    };
    const arm = await armFor(subscription);
    const isPublic = spec.networking === 'public';
    const clusterId = randomUUID();
    const group = groupName(spec.name, clusterId);
    const data = { subscription, location, clusterId, group };
    const tags = (role?: string) => ({
      [TAG_CLUSTER]: spec.name,
      [TAG_CLUSTER_ID]: clusterId,
      [TAG_PROTOCOL]: context.tls ? 'tls' : 'tcp',
      ...(role ? { [TAG_ROLE]: role } : {}),
    });
    const id = (type: string, name: string) =>
      `/subscriptions/${subscription}/resourceGroups/${group}/providers/${type}/${name}`;
    // Journaled before the group exists: a rollback deletes the group whatever happened after.
    await context.record({ kind: 'run', id: clusterId, data });

    context.progress({ step: 'resource group', status: 'start', detail: `${group} in ${location}` });
    await call('resourceGroups.createOrUpdate', () =>
      arm.resources.resourceGroups.createOrUpdate(group, { location, tags: tags() }),
    );
    await context.record({ kind: 'group', id: group, data });
    context.progress({ step: 'resource group', status: 'done', detail: group });
    signal.throwIfAborted();

    // Private clusters are reachable from their own VNet unless the user said otherwise.
    const userSubnetId = spec.cloud.subnet_id;
    const ingress: IngressRule[] =
      spec.ingress.length > 0
        ? spec.ingress
        : [{ ports: DASK_PORTS, cidr: spec.cloud.vnet_cidr ?? OWN_CIDR }];
    context.progress({
      step: 'network',
      status: 'start',
      detail: userSubnetId
        ? `${spec.name}-nsg in your subnet ${userSubnetId.split('/').pop()}`
        : `${spec.name}-nsg, ${spec.name}-vnet`,
    });
    // In the user's VNet, the members are an application security group: the rest of it stays out.
    const members = userSubnetId
      ? await call('applicationSecurityGroups.createOrUpdate', () =>
          arm.network.applicationSecurityGroups.beginCreateOrUpdateAndWait(
            group,
            `${spec.name}-members`,
            { location, tags: tags() },
            POLL,
          ),
        )
      : undefined;
    const asgs = members ? { applicationSecurityGroups: [{ id: members.id }] } : {};
    const nsg = await call('networkSecurityGroups.createOrUpdate', () =>
      arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(
        group,
        `${spec.name}-nsg`,
        { location, tags: tags(), securityRules: securityRules(ingress, members?.id) },
        POLL,
      ),
    );
    signal.throwIfAborted();
    const subnetId = userSubnetId ?? (await ownNetwork());
    context.progress({
      step: 'network',
      status: 'done',
      detail: ingress.map((rule) => `${rule.cidr} → ${rule.ports.join(',')}`).join('; '),
    });
    signal.throwIfAborted();

    /** A Standard static IPv4 address (what NAT gateways and public schedulers take). */
    function staticIp(name: string, role?: string) {
      return call('publicIPAddresses.createOrUpdate', () =>
        arm.network.publicIPAddresses.beginCreateOrUpdateAndWait(
          group,
          name,
          {
            location,
            tags: tags(role),
            sku: { name: 'Standard', tier: 'Regional' },
            publicIPAllocationMethod: 'Static',
            publicIPAddressVersion: 'IPv4',
          },
          POLL,
        ),
      );
    }

    async function ownNetwork(): Promise<string> {
      // Scale-set VMs get no default outbound access: the workers reach the internet (Docker,
      // the Dask image) through a NAT gateway of the cluster's own, and nothing reaches them.
      const natIp = await staticIp(`${spec.name}-nat-ip`);
      const nat = await call('natGateways.createOrUpdate', () =>
        arm.network.natGateways.beginCreateOrUpdateAndWait(
          group,
          `${spec.name}-nat`,
          { location, tags: tags(), sku: { name: 'Standard' }, publicIpAddresses: [{ id: natIp.id }] },
          POLL,
        ),
      );
      signal.throwIfAborted();
      const vnet = await call('virtualNetworks.createOrUpdate', () =>
        arm.network.virtualNetworks.beginCreateOrUpdateAndWait(
          group,
          `${spec.name}-vnet`,
          {
            location,
            tags: tags(),
            addressSpace: { addressPrefixes: [OWN_CIDR] },
            subnets: [
              {
                name: 'dcp',
                addressPrefix: OWN_SUBNET,
                natGateway: { id: nat.id },
                defaultOutboundAccess: false,
              },
            ],
          },
          POLL,
        ),
      );
      return (
        vnet.subnets?.[0]?.id ?? `${id('Microsoft.Network/virtualNetworks', `${spec.name}-vnet`)}/subnets/dcp`
      );
    }

    let publicIpId: string | undefined;
    if (isPublic) {
      publicIpId = (await staticIp(`${spec.name}-scheduler-ip`, 'scheduler')).id;
      signal.throwIfAborted();
    }
    // The scheduler's NIC first: its private IP is known before the VM exists, for the workers.
    const nic = await call('networkInterfaces.createOrUpdate', () =>
      arm.network.networkInterfaces.beginCreateOrUpdateAndWait(
        group,
        `${spec.name}-scheduler-nic`,
        {
          location,
          tags: tags('scheduler'),
          networkSecurityGroup: { id: nsg.id },
          ipConfigurations: [
            {
              name: 'ip',
              subnet: { id: subnetId },
              ...asgs,
              privateIPAllocationMethod: 'Dynamic',
              ...(publicIpId ? { publicIPAddress: { id: publicIpId, deleteOption: 'Delete' } } : {}),
            },
          ],
        },
        POLL,
      ),
    );
    const privateIp = nic.ipConfigurations?.[0]?.privateIPAddress;
    if (!privateIp) throw new DcpError('Azure made the scheduler’s network interface without a private IP');
    signal.throwIfAborted();

    const key = await makeSshKey(context.dir, `dcp-${spec.name}`);
    const arm64 = spec.cloud.arch === 'arm64';
    const customData = (role: 'scheduler' | 'worker', script: string) => {
      if (Buffer.byteLength(script) > CUSTOM_DATA_LIMIT)
        throw new DcpError(
          `the ${role}'s boot script is ${Buffer.byteLength(script)} bytes, over Azure's ${CUSTOM_DATA_LIMIT}-byte customData limit`,
          { hint: 'issue the cluster certificates from a CA without intermediates, or use --tls auto' },
        );
      return Buffer.from(script).toString('base64');
    };
    const groupId = `/subscriptions/${subscription}/resourceGroups/${group}`;
    const schedulerScript = customData(
      'scheduler',
      await memberScript(context, 'scheduler', undefined, {
        selfDelete: groupSelfDelete(arm.endpoint, groupId),
      }),
    );
    const workerScript = customData('worker', await memberScript(context, 'worker', privateIp));
    const osProfile = {
      adminUsername: ADMIN,
      linuxConfiguration: {
        disablePasswordAuthentication: true,
        ssh: { publicKeys: [{ path: `/home/${ADMIN}/.ssh/authorized_keys`, keyData: key.publicKey }] },
      },
    };
    const storageProfile = {
      imageReference: ubuntu(arm64),
      osDisk: {
        createOption: 'FromImage',
        deleteOption: 'Delete',
        managedDisk: { storageAccountType: spec.cloud.os_disk ?? 'Premium_LRS' },
      },
    };
    const securityProfile = {
      securityType: 'TrustedLaunch',
      uefiSettings: { secureBootEnabled: true, vTpmEnabled: true },
    };

    context.progress({
      step: 'launch scheduler',
      status: 'start',
      detail: `${spec.name}-scheduler (${size})`,
    });
    const schedulerVm = arm.compute.virtualMachines.createOrUpdate(
      group,
      `${spec.name}-scheduler`,
      {
        location,
        tags: tags('scheduler'),
        // Its own identity, for deleting the group once idle: given a role below, if the user may.
        identity: { type: 'SystemAssigned' },
        hardwareProfile: { vmSize: size },
        storageProfile,
        osProfile: {
          computerName: `${spec.name}-scheduler`.slice(0, 64),
          customData: schedulerScript,
          ...osProfile,
        },
        networkProfile: { networkInterfaces: [{ id: nic.id, primary: true, deleteOption: 'Delete' }] },
        securityProfile,
      } satisfies VirtualMachine,
      POLL,
    );
    await call('virtualMachines.createOrUpdate', () => schedulerVm.submitted());
    context.progress({ step: 'launch scheduler', status: 'done', detail: `${spec.name}-scheduler` });
    signal.throwIfAborted();

    // The workers know the scheduler's IP already: no waiting for it to boot.
    context.progress({
      step: 'launch workers',
      status: 'start',
      detail: `${count(spec.workers, 'worker')} (${size})`,
    });
    const workers = arm.compute.virtualMachineScaleSets.createOrUpdate(
      group,
      `${spec.name}-workers`,
      {
        location,
        tags: tags('worker'),
        sku: { name: size, capacity: spec.workers },
        orchestrationMode: 'Flexible',
        platformFaultDomainCount: 1,
        singlePlacementGroup: false,
        virtualMachineProfile: {
          osProfile: { computerNamePrefix: 'worker', customData: workerScript, ...osProfile },
          storageProfile,
          networkProfile: {
            networkApiVersion: '2020-11-01',
            networkInterfaceConfigurations: [
              {
                name: 'nic',
                primary: true,
                deleteOption: 'Delete',
                networkSecurityGroup: { id: nsg.id },
                ipConfigurations: [{ name: 'ip', subnet: { id: subnetId }, ...asgs }],
              },
            ],
          },
          securityProfile,
        },
      } satisfies VirtualMachineScaleSet,
      POLL,
    );
    await call('virtualMachineScaleSets.createOrUpdate', () => workers.submitted());
    context.progress({ step: 'launch workers', status: 'done', detail: count(spec.workers, 'worker') });
    signal.throwIfAborted();

    context.progress({
      step: 'idle shutdown',
      status: 'start',
      detail: `Contributor on ${group} for the scheduler's identity`,
    });
    const denied = await grantSelfDelete();
    context.progress({
      step: 'idle shutdown',
      status: 'done',
      detail: denied ? 'not allowed: idle VMs only power off' : 'the idle scheduler deletes the group',
    });
    signal.throwIfAborted();

    /** Contributor on the group for the scheduler's identity; a refusal (the user may not grant roles) is its reason. */
    async function grantSelfDelete(): Promise<string | undefined> {
      // The identity exists once the VM is accepted; its id is on the VM.
      const vm = await call('virtualMachines.get', () =>
        arm.compute.virtualMachines.get(group, `${spec.name}-scheduler`),
      );
      const principalId = vm.identity?.principalId;
      if (!principalId) return 'Azure gave the scheduler no managed identity';
      try {
        await arm.authorization.roleAssignments.create(groupId, randomUUID(), {
          roleDefinitionId: `/subscriptions/${subscription}/providers/Microsoft.Authorization/roleDefinitions/${CONTRIBUTOR}`,
          principalId,
          // Said, so that ARM does not look for a principal its directory may not have replicated yet.
          principalType: 'ServicePrincipal',
        });
        return undefined;
      } catch (error) {
        const failure = armError('roleAssignments.create', error);
        if (failure.status !== 403) throw failure;
        return `you may not grant roles on ${group} (${failure.code})`;
      }
    }

    context.progress({ step: 'vms', status: 'start', detail: 'waiting for Azure to make them' });
    const made = await Promise.allSettled([
      call('virtualMachines.createOrUpdate', async () => schedulerVm),
      call('virtualMachineScaleSets.createOrUpdate', async () => workers),
    ]);
    const failed = made.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    let publicIp: string | undefined;
    if (isPublic) {
      const pip = await call('publicIPAddresses.get', () =>
        arm.network.publicIPAddresses.get(group, `${spec.name}-scheduler-ip`),
      );
      publicIp = pip.ipAddress;
      if (!publicIp) throw new DcpError('Azure gave the scheduler’s public IP no address');
    }
    const address = isPublic ? publicIp! : privateIp;
    context.progress({ step: 'vms', status: 'done', detail: `scheduler at ${address}` });
    if (denied)
      context.warn(
        `${denied}, so an idle cluster only powers its VMs off, and Azure still bills a stopped VM: dcp down ${spec.name} deletes its group and stops the bill`,
      );
    const protocol = context.tls ? 'tls' : 'tcp';
    return {
      schedulerAddress: `${protocol}://${address}:${SCHEDULER_PORT}`,
      dashboardUrl: `${context.tls ? 'https' : 'http'}://${address}:${DASHBOARD_PORT}/status`,
      details: {
        subscription,
        location,
        resource_group: group,
        cluster_id: clusterId,
        network_security_group: nsg.id,
        ingress,
        vnet_cidr: spec.cloud.vnet_cidr ?? OWN_CIDR,
        scheduler_private_ip: privateIp,
        ...(publicIp ? { scheduler_public_ip: publicIp } : {}),
        ssh_key_file: key.file,
        ssh_user: ADMIN,
        vm_size: size,
        idle_shutdown: denied ? 'powers off (still billed)' : 'deletes the resource group',
        runtime: spec.runtime,
        ...(spec.image ? { container_image: spec.image } : {}),
      },
    };
  },

  async checkHealth(context) {
    const data = journalData(await readJournal(context.dir));
    if (!data) return;
    const arm = await armFor(data.subscription);
    await checkForgivingBlips(context.dir, async () => {
      const state = await groupState(arm, data.group);
      if (state !== 'there')
        return new DcpError(
          `the cluster's resource group ${data.group} is ${state}: its scheduler deletes it when Dask ends there for being idle`,
        );
      // The scheduler alone: workers are counted by Dask, and a health check every few seconds
      // must not cost a call per worker.
      const lost = (await listVms(arm, data.group, (vm) => vm.tags?.[TAG_ROLE] === 'scheduler')).find((vm) =>
        /stopp|deallocat/.test(powerState(vm) ?? ''),
      );
      return lost
        ? new DcpError(`the ${lost.tags?.[TAG_ROLE] ?? 'cluster'} VM ${lost.name} is ${powerState(lost)}`)
        : undefined;
    });
  },

  async diagnostics(dir) {
    const data = journalData(await readJournal(dir));
    if (!data) return '';
    try {
      const vms = await listVms(await armFor(data.subscription), data.group);
      return [
        '--- VMs ---',
        ...vms.map((vm) => `${vm.tags?.[TAG_ROLE] ?? '?'} ${vm.name}: ${powerState(vm) ?? '?'}`),
      ].join('\n');
    } catch {
      return '';
    }
  },

  async destroy(resources, context: DestroyContext): Promise<string[]> {
    const data = journalData(resources);
    if (!data && !context.searchByName) return [];
    const arm = await armFrom(resources);
    let groups: string[];
    if (data) {
      // The run's own group: made (journaled) or, if its answer was lost, tagged with the run's id.
      const found = await findGroup(arm, data.group);
      const made = resources.some((resource) => resource.kind === 'group');
      groups = found && (made || found.tags?.[TAG_CLUSTER_ID] === data.clusterId) ? [data.group] : [];
    } else {
      // No state here: every dcp cluster of that name (in --region, if given).
      groups = (await clusterGroups(arm, context.name, context.location)).map((group) => group.name!);
    }
    for (const group of groups) {
      context.progress({ step: 'delete resource group', status: 'start', detail: group });
      await call('resourceGroups.delete', () =>
        unlessNotFound(
          arm.resources.resourceGroups.beginDeleteAndWait(group, {
            forceDeletionTypes: FORCE_DELETE,
            ...POLL,
          }),
        ),
      );
      context.progress({ step: 'delete resource group', status: 'done', detail: group });
    }
    return groups.map((group) => `resource group ${group} and everything in it`);
  },

  async members(record: ClusterRecord, resources: Resource[]): Promise<MemberStatus[]> {
    const data = journalData(resources);
    if (!data) return [];
    return (await listVms(await armFor(data.subscription), data.group)).map((vm) => ({
      role: vm.tags?.[TAG_ROLE] ?? '?',
      id: vm.name ?? '?',
      running: powerState(vm) === 'running',
    }));
  },

  async firewall(record: ClusterRecord): Promise<FirewallView> {
    const {
      subscription,
      resource_group: group,
      ingress,
      vnet_cidr: vnetCidr = OWN_CIDR,
    } = record.details as {
      subscription?: string;
      resource_group?: string;
      ingress?: IngressRule[];
      vnet_cidr?: string;
    };
    if (!subscription || !group) throw new DcpError(`${record.name}'s record names no resource group`);
    const arm = await armFor(subscription);
    const nsg = await call('networkSecurityGroups.get', () =>
      arm.network.networkSecurityGroups.get(group, `${record.name}-nsg`),
    );
    const rules: LiveRule[] = (nsg.securityRules ?? [])
      // Inbound allows that open ports (ICMP opens none); the members' own rule names no address.
      .filter((rule) => rule.direction === 'Inbound' && rule.access === 'Allow' && rule.protocol !== 'Icmp')
      .flatMap((rule) => {
        const sources = [rule.sourceAddressPrefix, ...(rule.sourceAddressPrefixes ?? [])].filter(
          (source): source is string => Boolean(source),
        );
        const ports = rulePorts(
          [rule.destinationPortRange, ...(rule.destinationPortRanges ?? [])].filter(
            (range): range is string => Boolean(range),
          ),
        );
        return sources.map((source) => ({ cidr: sourceRange(source, vnetCidr), ports }));
      });
    return { where: `${record.name}-nsg in ${group}`, rules, asked: ingress };
  },

  async discover(location): Promise<DiscoveredCluster[]> {
    const arm = await armFrom([]);
    const groups = await clusterGroups(arm, undefined, location);
    const members = (
      await Promise.all(
        groups.map(async (group) => {
          const [vms, ip] = await Promise.all([
            listVms(arm, group.name!),
            schedulerIp(arm, group.name!, group.tags![TAG_CLUSTER]!),
          ]);
          return vms.map((vm) => ({
            state: powerState(vm),
            running: powerState(vm) === 'running',
            cluster: group.tags![TAG_CLUSTER]!,
            location: group.location ?? '-',
            role: vm.tags?.[TAG_ROLE] ?? '?',
            id: vm.name ?? '?',
            ip: vm.tags?.[TAG_ROLE] === 'scheduler' ? ip : undefined,
            protocol: vm.tags?.[TAG_PROTOCOL],
          }));
        }),
      )
    ).flat();
    const clusters = gatherClusters(
      'azure',
      members,
      groups.map((group) => ({
        cluster: group.tags![TAG_CLUSTER]!,
        location: group.location ?? '-',
        what: `resource group ${group.name}`,
      })),
    );
    const deleting = new Set(groups.filter(isDeleting).map((group) => group.tags![TAG_CLUSTER]!));
    for (const cluster of clusters) {
      const states = members
        .filter((member) => member.cluster === cluster.name)
        .map((member) => member.state);
      const status = deleting.has(cluster.name) ? 'being deleted' : notRunning(states);
      if (status) cluster.stoppedStatus = status;
    }
    return clusters;
  },
};
