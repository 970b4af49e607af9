/**
 * A fake Azure Resource Manager for tests: one https server on 127.0.0.1 (a leaf signed by
 * `fakeAzureCa()`, since the SDKs refuse bearer tokens over http) that speaks ARM's JSON well enough
 * for dcp's Azure provider and the real SDK clients (`endpoint`/`$host` = fake.url; see
 * shared/reference/clouds/azure.md). Also an IMDS stand-in and `GET /checkip`.
 *
 * Covers: bearer auth (tokens from the stand-in `az` of `writeAzCli`, and managed-identity tokens
 * from `GET /metadata/identity/oauth2/token` for the VM named in header `x-fake-vm` or placed at
 * the caller's address by `imdsFrom`, which may act
 * only within the scopes of its role assignments); `api-version` required; subscriptions'
 * locations; resource groups (PUT, GET, HEAD, list with tag filters, DELETE with
 * forceDeletionTypes as 202 + Location, the group 'Deleting' for deletingMs, everything in it gone
 * with it); `GET …/resources` by tag; NSGs (ARM's six default rules, rule validation),
 * application security groups, VNets and subnets (NSG and NAT gateway references,
 * `defaultOutboundAccess`), public IPs (Standard/Static, addresses from the documentation ranges),
 * NICs (private IP from the subnet, public IP, NSG, ASGs), VMs (validation of the wire shape,
 * image/size architecture, SSH-only login, customData, NIC references, deleteOption cascades,
 * system-assigned identity, instance view with PowerState), OS disks, Flexible scale sets (N
 * ordinary VMs named {set}_{8 hex}, a NIC each, all-or-nothing against the cores quota), resource
 * SKUs and VM sizes per location, role definitions and role assignments; long-running operations
 * (201 + Azure-AsyncOperation for PUTs, 202 + Location for deletes, Retry-After); fault injection
 * (synchronous, after the effect, or as an operation that ends Failed); lazy, timestamp-based life
 * cycles (no timers).
 * Like ARM it answers errors as `{error: {code, message}}`, treats path segments and tag names
 * case-insensitively, ignores unknown query parameters, answers 204 to a DELETE of something that
 * is not there (but 404 ResourceGroupNotFound for a group), refuses a second rule of one priority
 * and direction (SecurityRuleConflict), a NIC whose NSG is in another region
 * (InvalidResourceReference), customData over 87,380 base64 characters (InvalidParameter, target
 * customData), a size not offered in the location (409 SkuNotAvailable) and cores beyond the quota
 * (409 OperationNotAllowed naming "Total Regional Cores quota"), keeps a guest-shut-down VM
 * 'PowerState/stopped' (still billed), never returns customData on a GET, and gives VNets made with
 * api-version >= 2025-07-01 private subnets (`defaultOutboundAccess: false`) unless told otherwise.
 *
 * Deliberately not covered: Entra ID token endpoints (no AZURE_AUTHORITY_HOST stand-in), user
 * permissions (the az token may do anything but what `roleAssignments: 'forbidden'` forbids),
 * PATCH updates, start/stop/deallocate and other VM actions, Uniform scale sets and scale-set
 * scaling after creation, data disks, load balancers, NAT gateway writes, locks, deployments,
 * Resource Graph, zones, paging (every list is one page). Where no source shows ARM's wording, the
 * messages are the fake's own (marked "fake:" in the code). Resource ids and status URLs point at
 * this fake. Fields it does not know are kept or ignored, never refused; they are in `calls`.
 */
import { listenOnLoopback } from '../server.js';
import { FaultQueue, type FailOptions } from '../faults.js';
import { fakeAzureLeaf } from './ca.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';

export { fakeAzureCa } from './ca.js';

// ---------------------------------------------------------------------------------------------
// Public types

export interface FakeAzureOptions {
  /** Default SEED.subscriptionId. */
  subscriptionId?: string;
  /** Default SEED.tenantId. */
  tenantId?: string;
  /** Default 0: VMs (and scale-set instances) are Creating and PowerState/starting this long, then Succeeded and running. */
  provisioningMs?: number;
  /** Default 0: a deleted resource group is 'Deleting' this long (its delete operation 202), then gone. */
  deletingMs?: number;
  /** Default 0: the Retry-After (seconds) on long-running operations' answers and polls. */
  retryAfterSeconds?: number;
  /** Most vCPUs of live VMs per region; beyond it a VM or scale-set PUT is a synchronous 409 OperationNotAllowed. */
  coresQuota?: number;
  /** Default 'allowed'; 'forbidden': PUT of a role assignment is 403 AuthorizationFailed. */
  roleAssignments?: 'allowed' | 'forbidden';
  /** Default '203.0.113.7', served by `GET /checkip`; never given to a public IP. */
  myIp?: string;
  /** Default 127.0.0.1: where it listens (a bridge of the test's own namespaces, say); its certificate names it. */
  host?: string;
}

export interface FakeAzureCall {
  /** 'resourceGroups.createOrUpdate', 'virtualMachines.get', 'operations.get', 'token', 'imds.token', or 'unknown'. */
  method: string;
  httpMethod: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  at: number;
  /** The HTTP status answered (0 if the client was gone first). */
  status: number;
  /** The error code answered, if any. */
  errorCode?: string;
}

export interface FakeAzureFault {
  status: number;
  code: string;
  message?: string;
  /** A PUT answers as usual, but its operation ends Failed with this code (AllocationFailed...) and nothing runs. */
  async?: boolean;
}

export interface FakeAzureVm {
  /** As GET (with `$expand=instanceView`) answers it, while it lives; the last such answer after. */
  wire: Record<string, unknown>;
  name: string;
  group: string;
  location: string;
  vmSize: string;
  tags: Record<string, string>;
  /** The scale set's name, for its instances. */
  scaleSet?: string;
  computerName: string;
  privateIp?: string;
  publicIp?: string;
  /** Test only: osProfile.customData, base64-decoded. */
  customData?: string;
  /** Test only: the system-assigned identity's principalId, if it has one. */
  identity?: { type: string; principalId?: string; tenantId?: string };
  provisioningState: 'Creating' | 'Succeeded' | 'Failed' | 'Deleting';
  powerState: 'starting' | 'running' | 'stopped' | 'deallocated';
  requestedAt: number;
  runningAt?: number;
  /** When it is (or will be) gone. */
  deletedAt?: number;
}

export interface FakeAzure {
  /** https://127.0.0.1:PORT: what DCP_AZURE_ENDPOINT is set to. */
  url: string;
  subscriptionId: string;
  tenantId: string;
  myIp: string;
  /** Every request but /checkip, in order. */
  calls: FakeAzureCall[];
  /** PUT/PATCH/POST/DELETE on ARM (not operation polls, tokens or IMDS). */
  mutatingCalls(): FakeAzureCall[];
  /** The next call(s) of `method` ('*' for any) answer `fault` (see FaultQueue for the order). */
  fail(method: string, fault: FakeAzureFault, options?: FailOptions): void;
  clearFaults(method?: string): void;
  /** Live resource groups as GET answers them (tags included). */
  resourceGroups(): Record<string, unknown>[];
  /** Every live resource (in `group`, if given) as GET answers it. */
  resources(group?: string): Record<string, unknown>[];
  /** Every VM ever made, scale-set instances included, with test-only fields. */
  vms(): FakeAzureVm[];
  /** What is left of a cluster: groups tagged dcp:cluster=<cluster>, what is in them, and other resources so tagged. */
  leftovers(cluster: string): string[];
  /** Guest shutdown: PowerState/stopped, still there (and billed). */
  powerOffFromInside(vmName: string): void;
  /** Live role assignments. */
  roleAssignments(): {
    scope: string;
    roleDefinitionId: string;
    principalId: string;
    principalType: string;
  }[];
  /** IMDS requests from `address` (a namespace standing in for the VM) come from the VM `vmName`. */
  imdsFrom(address: string, vmName: string): void;
  /** Writes a stand-in `az` into dir that answers get-access-token with a token this fake accepts; returns dir. */
  writeAzCli(dir: string): string;
  /** Writes an AZURE_CONFIG_DIR (azureProfile.json with a BOM, config with [defaults] location) into dir; returns dir. */
  writeAzureProfile(dir: string): string;
  close(): Promise<void>;
}

/** The seeded things, so tests need not look them up. */
export const SEED = {
  subscriptionId: '8c1f6a2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b',
  subscriptionName: 'dcp-test-subscription',
  /** A second subscription in azureProfile.json, not the default. */
  otherSubscriptionId: '1d2e3f4a-5b6c-4d7e-8f9a-0b1c2d3e4f5a',
  tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  userName: 'tester@example.com',
  location: 'westeurope',
  otherLocation: 'eastus',
  /** A location the subscription lists but where the sizes below are not offered. */
  bareLocation: 'swedencentral',
  size: 'Standard_D2s_v5',
  bigSize: 'Standard_D4s_v5',
  armSize: 'Standard_D2ps_v5',
  /** Offered in eastus only. */
  gpuSize: 'Standard_NC4as_T4_v3',
  /** The user's own network, in another resource group: a VNet whose subnet has a NAT gateway. */
  userGroup: 'dcp-user-network',
  userVnet: 'user-vnet',
  userSubnet: 'workers',
  userCidr: '10.40.0.0/16',
  userSubnetCidr: '10.40.1.0/24',
  userNatGateway: 'user-nat',
  contributorRoleId: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  ownerRoleId: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  readerRoleId: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
} as const;

// ---------------------------------------------------------------------------------------------
// Seed data

const LOCATIONS: [name: string, display: string][] = [
  ['westeurope', 'West Europe'],
  ['eastus', 'East US'],
  ['swedencentral', 'Sweden Central'],
];

interface Size {
  name: string;
  cores: number;
  memoryMb: number;
  arch: 'x64' | 'Arm64';
  family: string;
  locations: string[];
  /** Whether Premium SSD disks attach (PremiumIO). */
  premium: boolean;
  /** Offered, but not to this subscription (a restriction NotAvailableForSubscription). */
  restricted: boolean;
}

const SIZES: Size[] = [
  ['Standard_B2s', 2, 4096, 'x64', 'standardBSFamily', ['westeurope', 'eastus']],
  ['Standard_D2s_v5', 2, 8192, 'x64', 'standardDSv5Family', ['westeurope', 'eastus']],
  ['Standard_D4s_v5', 4, 16384, 'x64', 'standardDSv5Family', ['westeurope', 'eastus']],
  ['Standard_D8s_v5', 8, 32768, 'x64', 'standardDSv5Family', ['westeurope', 'eastus']],
  ['Standard_D2ps_v5', 2, 8192, 'Arm64', 'standardDPSv5Family', ['westeurope', 'eastus']],
  ['Standard_NC4as_T4_v3', 4, 28672, 'x64', 'standardNCASv3_T4Family', ['eastus']],
  ['Standard_D2_v5', 2, 8192, 'x64', 'standardDv5Family', ['westeurope', 'eastus'], false],
  ['Standard_E2s_v5', 2, 16384, 'x64', 'standardESv5Family', ['westeurope', 'eastus'], true, true],
].map(([name, cores, memoryMb, arch, family, locations, premium = true, restricted = false]) => ({
  name: name as string,
  cores: cores as number,
  memoryMb: memoryMb as number,
  arch: arch as 'x64' | 'Arm64',
  family: family as string,
  locations: locations as string[],
  premium: premium as boolean,
  restricted: restricted as boolean,
}));

const ROLES: Record<string, { name: string; actions: string[] }> = {
  [SEED.ownerRoleId]: { name: 'Owner', actions: ['*'] },
  [SEED.contributorRoleId]: { name: 'Contributor', actions: ['*'] },
  [SEED.readerRoleId]: { name: 'Reader', actions: ['*/read'] },
};

/** fake: the image offers a provider may name; ARM knows thousands. */
const IMAGES: Record<string, 'x64' | 'Arm64'> = {
  'canonical/ubuntu-24_04-lts/server': 'x64',
  'canonical/ubuntu-24_04-lts/server-arm64': 'Arm64',
};

const DEFAULT_RULES = [
  [
    'AllowVnetInBound',
    65000,
    'Inbound',
    'Allow',
    'VirtualNetwork',
    'VirtualNetwork',
    'Allow inbound traffic from all VMs in VNET',
  ],
  [
    'AllowAzureLoadBalancerInBound',
    65001,
    'Inbound',
    'Allow',
    'AzureLoadBalancer',
    '*',
    'Allow inbound traffic from azure load balancer',
  ],
  ['DenyAllInBound', 65500, 'Inbound', 'Deny', '*', '*', 'Deny all inbound traffic'],
  [
    'AllowVnetOutBound',
    65000,
    'Outbound',
    'Allow',
    'VirtualNetwork',
    'VirtualNetwork',
    'Allow outbound traffic from all VMs to all VMs in VNET',
  ],
  [
    'AllowInternetOutBound',
    65001,
    'Outbound',
    'Allow',
    '*',
    'Internet',
    'Allow outbound traffic from all VMs to Internet',
  ],
  ['DenyAllOutBound', 65500, 'Outbound', 'Deny', '*', '*', 'Deny all outbound traffic'],
] as const;

// ---------------------------------------------------------------------------------------------
// Helpers

type Json = Record<string, unknown>;

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
  ) {
    super(message);
  }
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const obj = (v: unknown): Json => (isObj(v) ? v : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const iso = (ms: number) => new Date(ms).toISOString();
const lower = (s: string) => s.toLowerCase();
const ipToInt = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function cidr(range: string): { network: number; size: number } | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(range);
  if (!m || Number(m[2]) > 32 || m[1]!.split('.').some((o) => Number(o) > 255)) return undefined;
  const size = 2 ** (32 - Number(m[2]));
  return { network: ipToInt(m[1]!) - (ipToInt(m[1]!) % size), size };
}

const invalid = (message: string, target?: string) => new ArmError(400, 'InvalidParameter', message, target);

function required(v: unknown, name: string): Json {
  if (!isObj(v)) throw invalid(`Required parameter '${name}' is missing (null).`, name);
  return v;
}

interface Group {
  name: string;
  location: string;
  tags: Record<string, string>;
  deleteRequestedAt?: number;
}

interface Res {
  id: string;
  type: string;
  group: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  /** The wire `properties` as stored (without provisioningState and back references). */
  props: Json;
  sku?: Json;
  identity?: Json;
  createdAt: number;
}

interface Vm {
  res: Res;
  size: Size;
  computerName: string;
  customData?: string;
  scaleSet?: string;
  requestedAt: number;
  runningAt: number;
  failed?: { code: string; message: string };
  offAt?: number;
  deleteRequestedAt?: number;
  deletedAt?: number;
  lastWire?: Json;
}

interface Op {
  id: string;
  doneAt: number;
  error?: { code: string; message: string };
}

interface Principal {
  kind: 'user' | 'msi';
  principalId: string;
}

interface Assignment {
  id: string;
  name: string;
  scope: string;
  roleDefinitionId: string;
  principalId: string;
  principalType: string;
  createdAt: number;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const TYPE_METHOD: Record<string, string> = {
  'microsoft.network/networksecuritygroups': 'networkSecurityGroups',
  'microsoft.network/applicationsecuritygroups': 'applicationSecurityGroups',
  'microsoft.network/virtualnetworks': 'virtualNetworks',
  'microsoft.network/virtualnetworks/subnets': 'subnets',
  'microsoft.network/publicipaddresses': 'publicIPAddresses',
  'microsoft.network/networkinterfaces': 'networkInterfaces',
  'microsoft.network/natgateways': 'natGateways',
  'microsoft.compute/virtualmachines': 'virtualMachines',
  'microsoft.compute/virtualmachinescalesets': 'virtualMachineScaleSets',
  'microsoft.compute/disks': 'disks',
};
const TYPE_NAME: Record<string, string> = {
  networksecuritygroups: 'Microsoft.Network/networkSecurityGroups',
  applicationsecuritygroups: 'Microsoft.Network/applicationSecurityGroups',
  virtualnetworks: 'Microsoft.Network/virtualNetworks',
  publicipaddresses: 'Microsoft.Network/publicIPAddresses',
  networkinterfaces: 'Microsoft.Network/networkInterfaces',
  natgateways: 'Microsoft.Network/natGateways',
  virtualmachines: 'Microsoft.Compute/virtualMachines',
  virtualmachinescalesets: 'Microsoft.Compute/virtualMachineScaleSets',
  disks: 'Microsoft.Compute/disks',
};
const WORDS: Record<string, string> = {
  networkSecurityGroups: 'network security group',
  applicationSecurityGroups: 'application security group',
  virtualNetworks: 'virtual network',
  publicIPAddresses: 'public IP address',
  networkInterfaces: 'network interface',
  natGateways: 'NAT gateway',
  virtualMachines: 'virtual machine',
  virtualMachineScaleSets: 'virtual machine scale set',
  disks: 'disk',
};

// ---------------------------------------------------------------------------------------------
// The fake

class FakeAzureImpl implements FakeAzure {
  url = '';
  readonly subscriptionId: string;
  readonly tenantId: string;
  readonly myIp: string;
  readonly calls: FakeAzureCall[] = [];
  server: https.Server | undefined;
  private readonly provisioningMs: number;
  private readonly deletingMs: number;
  private readonly retryAfter: number;
  private readonly coresQuota: number;
  private readonly roleAssignmentsMode: 'allowed' | 'forbidden';
  private readonly groups = new Map<string, Group>();
  private readonly res = new Map<string, Res>();
  private readonly vmList: Vm[] = [];
  private readonly ops = new Map<string, Op>();
  private readonly tokens = new Map<string, Principal>();
  private readonly assignments: Assignment[] = [];
  private readonly faults = new FaultQueue<FakeAzureFault>();
  private readonly publicPool: string[];
  private readonly usedPublic = new Set<string>();
  private readonly usedPrivate = new Map<string, Set<number>>();
  readonly cliToken = `fake-az-cli-${hex(16)}`;
  readonly userObjectId = randomUUID();

  constructor(options: FakeAzureOptions) {
    this.subscriptionId = options.subscriptionId ?? SEED.subscriptionId;
    this.tenantId = options.tenantId ?? SEED.tenantId;
    this.myIp = options.myIp ?? '203.0.113.7';
    this.provisioningMs = options.provisioningMs ?? 0;
    this.deletingMs = options.deletingMs ?? 0;
    this.retryAfter = options.retryAfterSeconds ?? 0;
    this.coresQuota = options.coresQuota ?? Infinity;
    this.roleAssignmentsMode = options.roleAssignments ?? 'allowed';
    this.tokens.set(this.cliToken, { kind: 'user', principalId: this.userObjectId });
    this.publicPool = ['198.51.100', '203.0.113']
      .flatMap((net) => Array.from({ length: 250 }, (_, i) => `${net}.${i + 4}`))
      .filter((ip) => ip !== this.myIp);
    this.seed();
  }

  private seed(): void {
    const at = Date.parse('2026-01-05T09:00:00Z');
    const g = SEED.userGroup;
    this.groups.set(lower(g), { name: g, location: SEED.location, tags: {} });
    const nat = this.put(g, 'natgateways', SEED.userNatGateway, SEED.location, {}, at, {
      idleTimeoutInMinutes: 4,
      publicIpAddresses: [],
    });
    nat.sku = { name: 'Standard' };
    this.put(g, 'virtualnetworks', SEED.userVnet, SEED.location, {}, at, {
      addressSpace: { addressPrefixes: [SEED.userCidr] },
      subnets: [
        {
          name: SEED.userSubnet,
          properties: { addressPrefix: SEED.userSubnetCidr, natGateway: { id: nat.id } },
        },
      ],
    });
  }

  // --- Introspection ---------------------------------------------------------------------------

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      if (!this.server) return resolve();
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  mutatingCalls(): FakeAzureCall[] {
    return this.calls.filter(
      (c) =>
        ['PUT', 'PATCH', 'POST', 'DELETE'].includes(c.httpMethod) &&
        !['token', 'imds.token', 'operations.get'].includes(c.method),
    );
  }

  fail(method: string, fault: FakeAzureFault, options: FailOptions = {}): void {
    this.faults.add(method, fault, options);
  }

  clearFaults(method?: string): void {
    this.faults.clear(method);
  }

  resourceGroups(): Record<string, unknown>[] {
    this.settle();
    return [...this.groups.values()].map((g) => this.groupWire(g));
  }

  resources(group?: string): Record<string, unknown>[] {
    this.settle();
    return [...this.res.values()]
      .filter((r) => group === undefined || lower(r.group) === lower(group))
      .map((r) => this.wire(r, false));
  }

  vms(): FakeAzureVm[] {
    this.settle();
    const now = Date.now();
    return this.vmList.map((vm) => {
      const live = this.res.get(lower(vm.res.id)) === vm.res;
      const wire = live ? this.wire(vm.res, true) : (vm.lastWire ?? {});
      const nic = this.res.get(
        lower(str(obj(arr(obj(vm.res.props.networkProfile).networkInterfaces)[0]).id) ?? ''),
      );
      const ipProps = obj(obj(arr(nic?.props.ipConfigurations)[0]).properties);
      const pip = this.res.get(lower(str(obj(ipProps.publicIPAddress).id) ?? ''));
      return {
        wire,
        name: vm.res.name,
        group: vm.res.group,
        location: vm.res.location,
        vmSize: vm.size.name,
        tags: { ...vm.res.tags },
        ...(vm.scaleSet ? { scaleSet: vm.scaleSet } : {}),
        computerName: vm.computerName,
        ...(str(ipProps.privateIPAddress) ? { privateIp: str(ipProps.privateIPAddress) } : {}),
        ...(str(pip?.props.ipAddress) ? { publicIp: str(pip?.props.ipAddress) } : {}),
        ...(vm.customData === undefined ? {} : { customData: vm.customData }),
        ...(vm.res.identity ? { identity: structuredClone(vm.res.identity) as FakeAzureVm['identity'] } : {}),
        provisioningState: this.vmProvisioning(vm, now),
        powerState: this.vmPower(vm, now),
        requestedAt: vm.requestedAt,
        ...(vm.failed || now < vm.runningAt ? {} : { runningAt: vm.runningAt }),
        ...(vm.deletedAt === undefined ? {} : { deletedAt: vm.deletedAt }),
      };
    });
  }

  leftovers(cluster: string): string[] {
    this.settle();
    const out: string[] = [];
    const tagged = (tags: Record<string, string>) =>
      Object.entries(tags).some(([k, v]) => lower(k) === 'dcp:cluster' && v === cluster);
    for (const g of this.groups.values()) {
      if (!tagged(g.tags)) continue;
      out.push(`resource group ${g.name}${g.deleteRequestedAt === undefined ? '' : ' (deleting)'}`);
      for (const r of this.res.values())
        if (lower(r.group) === lower(g.name)) out.push(`${this.words(r)} ${r.name} in ${g.name}`);
    }
    for (const r of this.res.values())
      if (tagged(r.tags) && !tagged(this.groups.get(lower(r.group))?.tags ?? {}))
        out.push(`${this.words(r)} ${r.name} in ${r.group}`);
    for (const a of this.assignments) {
      const g = /\/resourcegroups\/([^/]+)$/i.exec(a.scope)?.[1];
      if (g && tagged(this.groups.get(lower(g))?.tags ?? {})) out.push(`role assignment ${a.name} on ${g}`);
    }
    return out;
  }

  roleAssignments() {
    return this.assignments.map(({ scope, roleDefinitionId, principalId, principalType }) => ({
      scope,
      roleDefinitionId,
      principalId,
      principalType,
    }));
  }

  private readonly vmAtAddress = new Map<string, string>();

  imdsFrom(address: string, vmName: string): void {
    this.vmAtAddress.set(address, vmName);
  }

  powerOffFromInside(vmName: string): void {
    const vm = this.liveVms().find((v) => v.res.name === vmName);
    if (!vm) throw new Error(`fake Azure: no live VM named ${vmName}`);
    vm.offAt = Date.now();
  }

  writeAzCli(dir: string): string {
    mkdirSync(dir, { recursive: true });
    const expires = Math.floor(Date.now() / 1000) + 3600;
    const token = JSON.stringify({
      accessToken: this.cliToken,
      expiresOn: iso(expires * 1000)
        .replace('T', ' ')
        .replace('Z', '000'),
      expires_on: expires,
      subscription: this.subscriptionId,
      tenant: this.tenantId,
      tokenType: 'Bearer',
    });
    const account = JSON.stringify(this.profile().subscriptions[0]);
    const script = [
      '#!/bin/sh',
      '# A stand-in Azure CLI written by the fake Azure of dcp tests.',
      'case "$*" in',
      `  *"account get-access-token"*) printf '%s\\n' '${token}' ;;`,
      `  *"account show"*) printf '%s\\n' '${account}' ;;`,
      `  *) echo "fake az: unsupported: $*" >&2; exit 2 ;;`,
      'esac',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'az'), script);
    chmodSync(join(dir, 'az'), 0o755);
    return dir;
  }

  private profile() {
    const sub = (id: string, name: string, isDefault: boolean) => ({
      id,
      name,
      state: 'Enabled',
      user: { name: SEED.userName, type: 'user' },
      isDefault,
      tenantId: this.tenantId,
      environmentName: 'AzureCloud',
      homeTenantId: this.tenantId,
      tenantDefaultDomain: 'example.onmicrosoft.com',
      tenantDisplayName: 'Example',
      managedByTenants: [],
    });
    return {
      installationId: '5e7d2a3c-0f4b-11f0-9c1e-0242ac120002',
      subscriptions: [
        sub(this.subscriptionId, SEED.subscriptionName, true),
        sub(SEED.otherSubscriptionId, 'other-subscription', false),
      ],
    };
  }

  writeAzureProfile(dir: string): string {
    mkdirSync(dir, { recursive: true });
    // The Azure CLI writes this file with a UTF-8 BOM (Azure/azure-cli#13980).
    writeFileSync(join(dir, 'azureProfile.json'), `\uFEFF${JSON.stringify(this.profile())}`);
    writeFileSync(join(dir, 'config'), `[core]\noutput = json\n\n[defaults]\nlocation = ${SEED.location}\n`);
    return dir;
  }

  // --- State -----------------------------------------------------------------------------------

  private armId(group: string, type: string, name: string): string {
    return `/subscriptions/${this.subscriptionId}/resourceGroups/${group}/providers/${type}/${name}`;
  }

  private put(
    group: string,
    typeKey: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    now: number,
    props: Json,
  ): Res {
    const type = TYPE_NAME[typeKey]!;
    const id = this.armId(this.groups.get(lower(group))?.name ?? group, type, name);
    const old = this.res.get(lower(id));
    const r: Res = { id, type, group, name, location, tags, props, createdAt: old?.createdAt ?? now };
    this.res.set(lower(id), r);
    if (typeKey === 'virtualnetworks') this.fillSubnets(r);
    return r;
  }

  private words(r: Res): string {
    return WORDS[TYPE_METHOD[lower(r.type)] ?? ''] ?? r.type;
  }

  private liveVms(): Vm[] {
    return this.vmList.filter((v) => this.res.get(lower(v.res.id)) === v.res);
  }

  /** Finishes what time has finished: groups whose deletion is over, with everything in them. */
  private settle(now = Date.now()): void {
    for (const [key, g] of this.groups) {
      if (g.deleteRequestedAt === undefined || now < g.deleteRequestedAt + this.deletingMs) continue;
      const goneAt = g.deleteRequestedAt + this.deletingMs;
      for (const r of [...this.res.values()]) if (lower(r.group) === key) this.drop(r, goneAt);
      for (let i = this.assignments.length - 1; i >= 0; i--)
        if (
          lower(this.assignments[i]!.scope).startsWith(
            `/subscriptions/${lower(this.subscriptionId)}/resourcegroups/${key}`,
          )
        )
          this.assignments.splice(i, 1);
      this.groups.delete(key);
    }
  }

  private drop(r: Res, at: number): void {
    const vm = this.vmList.find((v) => v.res === r);
    if (vm) {
      vm.lastWire = this.wire(r, true);
      vm.deletedAt = at;
    }
    for (const ip of this.ipsOf(r)) this.releaseIp(r, ip);
    this.res.delete(lower(r.id));
  }

  private ipsOf(r: Res): string[] {
    if (lower(r.type) === 'microsoft.network/publicipaddresses') return [str(r.props.ipAddress) ?? ''];
    if (lower(r.type) === 'microsoft.network/networkinterfaces')
      return arr(r.props.ipConfigurations).map((c) => str(obj(obj(c).properties).privateIPAddress) ?? '');
    return [];
  }

  private releaseIp(r: Res, ip: string): void {
    if (lower(r.type) === 'microsoft.network/publicipaddresses') this.usedPublic.delete(ip);
    else for (const used of this.usedPrivate.values()) used.delete(ipToInt(ip));
  }

  private vmProvisioning(vm: Vm, now: number): FakeAzureVm['provisioningState'] {
    if (vm.deleteRequestedAt !== undefined && vm.deletedAt === undefined) return 'Deleting';
    if (now < vm.runningAt) return 'Creating';
    return vm.failed ? 'Failed' : 'Succeeded';
  }

  private vmPower(vm: Vm, now: number): FakeAzureVm['powerState'] {
    if (vm.failed && now >= vm.runningAt) return 'deallocated';
    if (now < vm.runningAt) return 'starting';
    return vm.offAt !== undefined ? 'stopped' : 'running';
  }

  // --- Wire forms ------------------------------------------------------------------------------

  private groupWire(g: Group): Json {
    return {
      id: `/subscriptions/${this.subscriptionId}/resourceGroups/${g.name}`,
      name: g.name,
      type: 'Microsoft.Resources/resourceGroups',
      location: g.location,
      ...(Object.keys(g.tags).length ? { tags: { ...g.tags } } : {}),
      properties: { provisioningState: g.deleteRequestedAt === undefined ? 'Succeeded' : 'Deleting' },
    };
  }

  private refs(id: string, type: string, field: string): Json[] {
    // Back references: which NICs or subnets name this resource.
    const out: Json[] = [];
    for (const r of this.res.values()) {
      if (lower(r.type) !== type) continue;
      if (type === 'microsoft.network/networkinterfaces') {
        if (lower(str(obj(r.props[field]).id) ?? '') === lower(id)) out.push({ id: r.id });
      } else {
        for (const s of arr(r.props.subnets))
          if (lower(str(obj(obj(obj(s).properties)[field]).id) ?? '') === lower(id))
            out.push({ id: str(obj(s).id) });
      }
    }
    return out;
  }

  private wire(r: Res, expandInstanceView: boolean): Json {
    const now = Date.now();
    const props: Json = structuredClone(r.props);
    const t = lower(r.type);
    const vm = this.vmList.find((v) => v.res === r);
    let provisioningState = 'Succeeded';
    if (vm) {
      provisioningState = this.vmProvisioning(vm, now);
      const os = obj(props.osProfile);
      delete os.customData; // ARM never returns customData
      if (expandInstanceView) props.instanceView = this.instanceView(vm, now);
    }
    if (t === 'microsoft.network/networksecuritygroups') {
      props.defaultSecurityRules = DEFAULT_RULES.map(
        ([name, priority, direction, access, src, dst, description]) => ({
          id: `${r.id}/defaultSecurityRules/${name}`,
          name,
          type: 'Microsoft.Network/networkSecurityGroups/defaultSecurityRules',
          properties: {
            description,
            protocol: '*',
            sourcePortRange: '*',
            destinationPortRange: '*',
            sourceAddressPrefix: src,
            destinationAddressPrefix: dst,
            access,
            priority,
            direction,
            sourcePortRanges: [],
            destinationPortRanges: [],
            sourceAddressPrefixes: [],
            destinationAddressPrefixes: [],
            provisioningState: 'Succeeded',
          },
        }),
      );
      const nics = this.refs(r.id, 'microsoft.network/networkinterfaces', 'networkSecurityGroup');
      const subnets = this.refs(r.id, 'microsoft.network/virtualnetworks', 'networkSecurityGroup');
      if (nics.length) props.networkInterfaces = nics;
      if (subnets.length) props.subnets = subnets;
    }
    if (t === 'microsoft.network/networkinterfaces') {
      const owner = this.liveVms().find((v) =>
        arr(obj(v.res.props.networkProfile).networkInterfaces).some(
          (n) => lower(str(obj(n).id) ?? '') === lower(r.id),
        ),
      );
      if (owner) props.virtualMachine = { id: owner.res.id };
    }
    if (t === 'microsoft.network/publicipaddresses') {
      const nic = [...this.res.values()].find((n) =>
        arr(n.props.ipConfigurations).some(
          (c) => lower(str(obj(obj(obj(c).properties).publicIPAddress).id) ?? '') === lower(r.id),
        ),
      );
      const config = arr(nic?.props.ipConfigurations).find(
        (c) => lower(str(obj(obj(obj(c).properties).publicIPAddress).id) ?? '') === lower(r.id),
      );
      if (config) props.ipConfiguration = { id: str(obj(config).id) };
    }
    if (t === 'microsoft.network/virtualnetworks') {
      for (const s of arr(props.subnets)) {
        const sp = obj(obj(s).properties);
        const users = [...this.res.values()].flatMap((n) =>
          arr(n.props.ipConfigurations).filter(
            (c) => lower(str(obj(obj(obj(c).properties).subnet).id) ?? '') === lower(str(obj(s).id) ?? ''),
          ),
        );
        if (users.length) sp.ipConfigurations = users.map((c) => ({ id: str(obj(c).id) }));
        sp.provisioningState = 'Succeeded';
      }
    }
    for (const key of ['securityRules', 'ipConfigurations'])
      for (const child of arr(props[key])) obj(obj(child).properties).provisioningState = 'Succeeded';
    return {
      id: r.id,
      name: r.name,
      type: r.type,
      location: r.location,
      ...(Object.keys(r.tags).length ? { tags: { ...r.tags } } : {}),
      ...(r.sku ? { sku: structuredClone(r.sku) } : {}),
      ...(r.identity ? { identity: structuredClone(r.identity) } : {}),
      etag: `W/"${r.createdAt.toString(16)}"`,
      properties: { ...props, provisioningState },
    };
  }

  private instanceView(vm: Vm, now: number): Json {
    const prov = this.vmProvisioning(vm, now);
    const power = this.vmPower(vm, now);
    const statuses: Json[] = [
      {
        code: `ProvisioningState/${lower(prov)}`,
        level: prov === 'Failed' ? 'Error' : 'Info',
        displayStatus: `Provisioning ${prov === 'Succeeded' ? 'succeeded' : prov === 'Failed' ? 'failed' : lower(prov)}`,
        ...(vm.failed && prov === 'Failed' ? { message: vm.failed.message } : {}),
        time: iso(Math.min(now, vm.runningAt)),
      },
    ];
    if (!(prov === 'Creating' && now < vm.requestedAt))
      statuses.push({
        code: `PowerState/${power}`,
        level: 'Info',
        displayStatus: {
          starting: 'VM starting',
          running: 'VM running',
          stopped: 'VM stopped',
          deallocated: 'VM deallocated',
        }[power],
      });
    return {
      computerName: vm.computerName,
      osName: 'ubuntu',
      osVersion: '24.04',
      hyperVGeneration: 'V2',
      statuses,
    };
  }

  // --- Auth ------------------------------------------------------------------------------------

  private authorize(principal: Principal, httpMethod: string, path: string): void {
    if (principal.kind === 'user') return;
    const target = lower(path);
    const ok = this.assignments.some((a) => {
      if (a.principalId !== principal.principalId) return false;
      const scope = lower(a.scope);
      if (target !== scope && !target.startsWith(`${scope}/`)) return false;
      const role = ROLES[a.roleDefinitionId.split('/').pop() ?? ''];
      if (!role) return false;
      if (target.includes('/providers/microsoft.authorization/roleassignments') && httpMethod !== 'GET')
        return role.name === 'Owner';
      return role.actions.includes('*') || httpMethod === 'GET';
    });
    if (!ok)
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${principal.principalId}' with object id '${principal.principalId}' does not have authorization to perform action '${this.action(httpMethod, path)}' over scope '${path}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
  }

  private action(httpMethod: string, path: string): string {
    const m = /\/providers\/([^/]+\/[^/]+)/i.exec(path);
    const type = m?.[1] ?? 'Microsoft.Resources/subscriptions/resourceGroups';
    return `${type}/${httpMethod === 'GET' ? 'read' : httpMethod === 'DELETE' ? 'delete' : 'write'}`;
  }

  private imdsToken(req: http.IncomingMessage, url: URL): Reply {
    if (req.headers.metadata !== 'true')
      return {
        status: 400,
        body: { error: 'invalid_request', error_description: 'Required metadata header not specified' },
      };
    if (!url.searchParams.get('api-version'))
      return {
        status: 400,
        body: {
          error: 'invalid_request',
          error_description: 'Required query variable api-version is missing',
        },
      };
    const resource = url.searchParams.get('resource') ?? '';
    const vmName = String(
      req.headers['x-fake-vm'] ??
        this.vmAtAddress.get(req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '') ??
        '',
    );
    const vm = this.liveVms().find((v) => v.res.name === vmName);
    const principalId = str(obj(vm?.res.identity).principalId);
    if (!vm || !principalId)
      return { status: 400, body: { error: 'invalid_request', error_description: 'Identity not found' } };
    const token = `fake-msi-${hex(16)}`;
    this.tokens.set(token, { kind: 'msi', principalId });
    const now = Math.floor(Date.now() / 1000);
    return {
      status: 200,
      body: {
        access_token: token,
        client_id: randomUUID(),
        expires_in: '86399',
        expires_on: String(now + 86399),
        ext_expires_in: '86399',
        not_before: String(now),
        resource,
        token_type: 'Bearer',
      },
    };
  }

  // --- Routing ---------------------------------------------------------------------------------

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // ARM tolerates doubled slashes (the authorization client sends `//subscriptions/…` for a scope
    // given with its leading slash); URL() would read `//x` as a host.
    const url = new URL((req.url ?? '/').replace(/^\/{2,}/, '/'), 'https://fake.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const httpMethod = req.method ?? 'GET';
    if (httpMethod === 'GET' && path === '/checkip') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${this.myIp}\n`);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    let parseError = false;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        parseError = true;
      }
    }
    const query = Object.fromEntries(url.searchParams);
    const call: FakeAzureCall = {
      method: 'unknown',
      httpMethod,
      path,
      query,
      ...(body === undefined ? {} : { body }),
      at: Date.now(),
      status: 0,
    };
    this.calls.push(call);
    this.settle();
    let reply: Reply;
    try {
      if (lower(path) === '/metadata/identity/oauth2/token') {
        call.method = 'imds.token';
        reply = this.imdsToken(req, url);
      } else {
        const route = this.route(httpMethod, path, query);
        call.method = route.name;
        const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
        const principal = auth ? this.tokens.get(auth[1]!) : undefined;
        if (!principal)
          throw new ArmError(
            401,
            auth ? 'InvalidAuthenticationToken' : 'AuthenticationFailed',
            auth
              ? 'The access token is invalid.'
              : "Authentication failed. The 'Authorization' header is missing.",
          );
        if (!query['api-version'])
          throw new ArmError(
            400,
            'MissingApiVersionParameter',
            'The api-version query parameter (?api-version=) is required for all requests.',
          );
        if (parseError)
          throw new ArmError(
            400,
            'InvalidRequestContent',
            'The request content was invalid and could not be deserialized.',
          );
        if (route.name !== 'operations.get') this.authorize(principal, httpMethod, path);
        const fault = this.faults.take(route.name);
        if (fault && !fault.fault.async && !fault.afterEffect) throw this.faultError(fault.fault);
        reply = route.run(body, fault?.fault.async ? fault.fault : undefined, principal);
        if (fault && !fault.fault.async) throw this.faultError(fault.fault);
      }
    } catch (err) {
      const e =
        err instanceof ArmError
          ? err
          : new ArmError(
              500,
              'InternalServerError',
              `fake Azure bug: ${(err as Error).stack ?? String(err)}`,
            );
      call.errorCode = e.code;
      reply = {
        status: e.status,
        body: { error: { code: e.code, message: e.message, ...(e.target ? { target: e.target } : {}) } },
      };
    }
    if (res.destroyed) return;
    call.status = reply.status;
    const headers: Record<string, string> = { 'x-ms-request-id': randomUUID(), ...reply.headers };
    if (reply.body === undefined) res.writeHead(reply.status, headers).end();
    else
      res
        .writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...headers })
        .end(JSON.stringify(reply.body));
  }

  private faultError(f: FakeAzureFault): ArmError {
    return new ArmError(f.status, f.code, f.message ?? `fake: injected ${f.code}`);
  }

  private route(
    verb: string,
    path: string,
    query: Record<string, string>,
  ): { name: string; run: (body: unknown, asyncFault: FakeAzureFault | undefined, p: Principal) => Reply } {
    const segs = path
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s));
    const l = segs.map(lower);
    const notFound = (): never => {
      throw new ArmError(404, 'NotFound', `fake: no route for ${verb} ${path}`);
    };
    const r = (
      name: string,
      run: (body: unknown, asyncFault: FakeAzureFault | undefined, p: Principal) => Reply,
    ) => ({ name, run });
    if (l[0] !== 'subscriptions' || segs.length < 2) return notFound();
    if (lower(segs[1]!) !== lower(this.subscriptionId)) {
      return r('subscriptions.get', () => {
        throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${segs[1]}' could not be found.`);
      });
    }
    const rest = l.slice(2);
    const raw = segs.slice(2);
    const key = `${verb} ${rest.join('/')}`;
    if (key === 'GET ') return r('subscriptions.get', () => this.ok(this.subscriptionWire()));
    if (key === 'GET locations')
      return r('subscriptions.listLocations', () => this.ok({ value: this.locations() }));
    if (key === 'GET resourcegroups') return r('resourceGroups.list', () => this.listGroups(query));
    if (key === 'GET resources') return r('resources.list', () => this.listResources(query));
    if (verb === 'GET' && rest[0] === 'operationresults' && rest.length === 2)
      return r('operations.get', () => this.groupDeletePoll(raw[1]!));
    if (
      verb === 'GET' &&
      rest[0] === 'providers' &&
      rest[2] === 'locations' &&
      rest[4] === 'operations' &&
      rest.length === 6
    )
      return r('operations.get', () => this.opStatus(raw[5]!));
    if (key === 'GET providers/microsoft.compute/skus') return r('resourceSkus.list', () => this.skus(query));
    if (
      verb === 'GET' &&
      rest.length === 5 &&
      rest.slice(0, 3).join('/') === 'providers/microsoft.compute/locations' &&
      rest[4] === 'vmsizes'
    )
      return r('virtualMachineSizes.list', () => this.vmSizes(raw[3]!));
    // Authorization at any scope.
    const authAt = rest.findIndex((s, i) => s === 'providers' && rest[i + 1] === 'microsoft.authorization');
    if (authAt >= 0) {
      const scope = `/subscriptions/${this.subscriptionId}${raw
        .slice(0, authAt)
        .map((s) => `/${s}`)
        .join('')}`;
      const kind = rest[authAt + 2];
      const id = raw[authAt + 3];
      if (kind === 'roledefinitions') {
        if (id === undefined && verb === 'GET')
          return r('roleDefinitions.list', () => this.ok({ value: this.roleDefs(scope, query) }));
        if (id !== undefined && verb === 'GET')
          return r('roleDefinitions.get', () => this.roleDef(scope, id));
      }
      if (kind === 'roleassignments') {
        if (id === undefined && verb === 'GET')
          return r('roleAssignments.list', () =>
            this.ok({
              value: this.assignments
                .filter((a) => lower(a.scope).startsWith(lower(scope)))
                .map((a) => this.assignmentWire(a)),
            }),
          );
        if (id !== undefined && verb === 'PUT')
          return r('roleAssignments.create', (b, _f, p) => this.putAssignment(scope, id, b, p));
        if (id !== undefined && verb === 'GET')
          return r('roleAssignments.get', () => this.ok(this.assignmentWire(this.findAssignment(scope, id))));
        if (id !== undefined && verb === 'DELETE')
          return r('roleAssignments.delete', () => this.deleteAssignment(scope, id));
      }
      return notFound();
    }
    if (rest[0] !== 'resourcegroups' || rest.length < 2) return notFound();
    const group = raw[1]!;
    if (rest.length === 2) {
      if (verb === 'PUT') return r('resourceGroups.createOrUpdate', (b) => this.putGroup(group, b));
      if (verb === 'GET')
        return r('resourceGroups.get', () => this.ok(this.groupWire(this.findGroup(group))));
      if (verb === 'HEAD')
        return r('resourceGroups.checkExistence', () => ({
          status: this.groups.has(lower(group)) ? 204 : 404,
        }));
      if (verb === 'DELETE') return r('resourceGroups.delete', () => this.deleteGroup(group, query));
      return notFound();
    }
    if (rest.length === 3 && rest[2] === 'resources' && verb === 'GET')
      return r('resources.listByResourceGroup', () => {
        this.findGroup(group);
        return this.listResources(query, group);
      });
    if (rest[2] !== 'providers' || rest.length < 5) return notFound();
    const typeKey = `${rest[3]}/${rest[4]}`;
    const method = TYPE_METHOD[typeKey];
    if (!method) return notFound();
    const name = raw[5];
    if (name === undefined) {
      if (verb === 'GET')
        return r(`${method}.list`, () => {
          this.findGroup(group);
          return this.ok({
            value: [...this.res.values()]
              .filter((x) => lower(x.group) === lower(group) && lower(x.type) === typeKey)
              .map((x) => this.wire(x, false)),
          });
        });
      return notFound();
    }
    if (rest.length === 6) {
      if (verb === 'GET')
        return r(`${method}.get`, () =>
          this.ok(this.wire(this.find(group, typeKey, name), lower(query.$expand ?? '') === 'instanceview')),
        );
      if (verb === 'PUT')
        return r(`${method}.createOrUpdate`, (b, f) => this.putResource(group, rest[4]!, name, b, f, query));
      if (verb === 'DELETE')
        return r(`${method}.delete`, () => this.deleteResource(group, typeKey, name, query));
      return notFound();
    }
    if (
      rest.length === 7 &&
      rest[6] === 'instanceview' &&
      verb === 'GET' &&
      typeKey === 'microsoft.compute/virtualmachines'
    )
      return r('virtualMachines.instanceView', () => {
        const vm = this.vmList.find((v) => v.res === this.find(group, typeKey, name))!;
        return this.ok(this.instanceView(vm, Date.now()));
      });
    if (
      rest.length === 8 &&
      rest[6] === 'subnets' &&
      verb === 'GET' &&
      typeKey === 'microsoft.network/virtualnetworks'
    )
      return r('subnets.get', () => {
        const vnet = this.wire(this.find(group, typeKey, name), false);
        const subnet = arr(obj(vnet.properties).subnets).find(
          (s) => lower(str(obj(s).name) ?? '') === rest[7],
        );
        if (!subnet) throw this.missing(group, `Microsoft.Network/virtualNetworks/${name}/subnets`, raw[7]!);
        return this.ok(subnet);
      });
    return notFound();
  }

  private ok(body: unknown): Reply {
    return { status: 200, body };
  }

  private missing(group: string, type: string, name: string): ArmError {
    return new ArmError(
      404,
      'ResourceNotFound',
      `The Resource '${type}/${name}' under resource group '${group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`,
    );
  }

  private find(group: string, typeKey: string, name: string): Res {
    this.findGroup(group);
    const r = this.res.get(lower(this.armId(group, TYPE_NAME[typeKey.split('/')[1]!]!, name)));
    if (!r) throw this.missing(group, TYPE_NAME[typeKey.split('/')[1]!]!, name);
    return r;
  }

  private byId(id: unknown, what: string, referrer: string): Res {
    const r = typeof id === 'string' ? this.res.get(lower(id)) : undefined;
    if (!r)
      throw new ArmError(
        400,
        'InvalidResourceReference',
        `Resource ${String(id)} referenced by resource ${referrer} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
      );
    if (lower(r.type) !== what) throw invalid(`fake: ${String(id)} is not a ${what}`);
    return r;
  }

  // --- Subscriptions, locations, SKUs ------------------------------------------------------------

  private subscriptionWire(): Json {
    return {
      id: `/subscriptions/${this.subscriptionId}`,
      subscriptionId: this.subscriptionId,
      tenantId: this.tenantId,
      displayName: SEED.subscriptionName,
      state: 'Enabled',
    };
  }

  private locations(): Json[] {
    return LOCATIONS.map(([name, displayName]) => ({
      id: `/subscriptions/${this.subscriptionId}/locations/${name}`,
      name,
      type: 'Region',
      displayName,
      regionalDisplayName: `(Europe) ${displayName}`,
      metadata: { regionType: 'Physical', regionCategory: 'Recommended' },
    }));
  }

  private skus(query: Record<string, string>): Reply {
    const filter = query.$filter;
    let location: string | undefined;
    if (filter !== undefined) {
      const m = /^\s*location\s+eq\s+'([^']*)'\s*$/i.exec(filter);
      if (!m) throw new ArmError(400, 'InvalidFilter', `fake: unsupported $filter ${filter}`);
      location = lower(m[1]!);
    }
    const value = SIZES.flatMap((s) =>
      s.locations
        .filter((loc) => location === undefined || loc === location)
        .map((loc) => ({
          resourceType: 'virtualMachines',
          name: s.name,
          tier: 'Standard',
          size: s.name.replace(/^Standard_/, ''),
          family: s.family,
          locations: [loc],
          locationInfo: [{ location: loc, zones: ['1', '2', '3'], zoneDetails: [] }],
          capabilities: [
            { name: 'vCPUs', value: String(s.cores) },
            { name: 'MemoryGB', value: String(s.memoryMb / 1024) },
            { name: 'CpuArchitectureType', value: s.arch },
            { name: 'HyperVGenerations', value: 'V2' },
            { name: 'PremiumIO', value: s.premium ? 'True' : 'False' },
          ],
          restrictions: s.restricted
            ? [
                {
                  type: 'Location',
                  values: [loc],
                  restrictionInfo: { locations: [loc] },
                  reasonCode: 'NotAvailableForSubscription',
                },
              ]
            : [],
        })),
    );
    return this.ok({ value });
  }

  private vmSizes(location: string): Reply {
    if (!LOCATIONS.some(([n]) => n === lower(location)))
      throw new ArmError(404, 'NoRegisteredProviderFound', `fake: no location ${location}`);
    return this.ok({
      value: SIZES.filter((s) => s.locations.includes(lower(location))).map((s) => ({
        name: s.name,
        numberOfCores: s.cores,
        osDiskSizeInMB: 1047552,
        resourceDiskSizeInMB: 0,
        memoryInMB: s.memoryMb,
        maxDataDiskCount: 4,
      })),
    });
  }

  // --- Resource groups ----------------------------------------------------------------------------

  private findGroup(name: string): Group {
    const g = this.groups.get(lower(name));
    if (!g) throw new ArmError(404, 'ResourceGroupNotFound', `Resource group '${name}' could not be found.`);
    return g;
  }

  private tagsOf(v: unknown): Record<string, string> {
    if (v === undefined || v === null) return {};
    if (!isObj(v)) throw new ArmError(400, 'InvalidTag', 'fake: tags must be an object');
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v)) {
      if (typeof val !== 'string')
        throw new ArmError(400, 'InvalidTag', `fake: the value of tag '${k}' must be a string`);
      if (k.length > 512 || val.length > 256 || /[<>%&\\?/]/.test(k))
        throw new ArmError(
          400,
          'InvalidTagNameCharacters',
          `The tag names '${k}' have reserved characters '<,>,%,&,\\,?,/' or control characters.`,
        );
      out[k] = val;
    }
    if (Object.keys(out).length > 50) throw new ArmError(400, 'InvalidTag', 'fake: at most 50 tags');
    return out;
  }

  private putGroup(name: string, body: unknown): Reply {
    const b = obj(body);
    if (!/^[-\w._()]{1,90}$/.test(name) || name.endsWith('.'))
      throw new ArmError(400, 'InvalidResourceGroupName', `fake: invalid resource group name '${name}'`);
    const location = lower(str(b.location) ?? '');
    if (!LOCATIONS.some(([n]) => n === location))
      throw new ArmError(
        400,
        'LocationNotAvailableForResourceGroup',
        `The provided location '${String(b.location)}' is not available for resource group.`,
      );
    const old = this.groups.get(lower(name));
    if (old?.deleteRequestedAt !== undefined)
      throw new ArmError(
        409,
        'ResourceGroupBeingDeleted',
        `The resource group '${old.name}' is in deprovisioning state and cannot perform this operation.`,
      );
    if (old && old.location !== location)
      throw new ArmError(
        409,
        'InvalidResourceGroupLocation',
        `Invalid resource group location '${location}'. The Resource group already exists in location '${old.location}'.`,
      );
    const g: Group = { name: old?.name ?? name, location, tags: this.tagsOf(b.tags) };
    this.groups.set(lower(name), g);
    return { status: old ? 200 : 201, body: this.groupWire(g) };
  }

  private tagFilter(query: Record<string, string>): ((tags: Record<string, string>) => boolean) | undefined {
    const filter = query.$filter;
    if (filter === undefined) return undefined;
    const m = /^\s*tagName\s+eq\s+'([^']*)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?\s*$/i.exec(filter);
    if (!m) throw new ArmError(400, 'InvalidFilterInQueryString', `fake: unsupported $filter ${filter}`);
    const [, name = '', value] = m;
    return (tags) =>
      Object.entries(tags).some(([k, v]) => lower(k) === lower(name) && (value === undefined || v === value));
  }

  private listGroups(query: Record<string, string>): Reply {
    const match = this.tagFilter(query) ?? (() => true);
    return this.ok({
      value: [...this.groups.values()].filter((g) => match(g.tags)).map((g) => this.groupWire(g)),
    });
  }

  private listResources(query: Record<string, string>, group?: string): Reply {
    const match = this.tagFilter(query) ?? (() => true);
    // "When filtering by a tag name and value, the tags for each resource are not returned in the results."
    const hideTags = /tagValue/i.test(query.$filter ?? '');
    const value = [...this.res.values()]
      .filter((r) => (group === undefined || lower(r.group) === lower(group)) && match(r.tags))
      .map((r) => {
        const w = this.wire(r, false);
        const out: Json = { id: w.id, name: w.name, type: w.type, location: w.location };
        if (w.sku) out.sku = w.sku;
        if (w.identity) out.identity = w.identity;
        if (w.tags && !hideTags) out.tags = w.tags;
        return out;
      });
    return this.ok({ value });
  }

  private deleteGroup(name: string, query: Record<string, string>): Reply {
    const g = this.findGroup(name);
    const force = (query.forceDeletionTypes ?? '')
      .split(',')
      .map((s) => lower(s.trim()))
      .filter(Boolean);
    for (const t of force)
      if (t !== 'microsoft.compute/virtualmachines' && t !== 'microsoft.compute/virtualmachinescalesets')
        throw new ArmError(
          400,
          'InvalidForceDeletionTypes',
          `fake: force deletion is not supported for ${t}`,
        );
    const now = Date.now();
    if (g.deleteRequestedAt === undefined) {
      g.deleteRequestedAt = now;
      for (const vm of this.liveVms()) if (lower(vm.res.group) === lower(g.name)) vm.deleteRequestedAt = now;
    }
    const op = `${Buffer.from(`RESOURCEGROUPDELETIONJOB-${g.name.toUpperCase()}-${lower(this.armIdBase(g.name))}`).toString('base64url')}`;
    this.ops.set(op, { id: op, doneAt: g.deleteRequestedAt + this.deletingMs });
    return {
      status: 202,
      headers: {
        location: `${this.url}/subscriptions/${this.subscriptionId}/operationresults/${op}?api-version=${query['api-version']}`,
        'retry-after': String(this.retryAfter),
      },
    };
  }

  private armIdBase(group: string): string {
    return `${group}-${this.subscriptionId.slice(0, 8)}`;
  }

  private groupDeletePoll(id: string): Reply {
    const op = this.ops.get(id);
    if (!op) throw new ArmError(404, 'NotFound', 'fake: no such operation');
    if (Date.now() < op.doneAt)
      return {
        status: 202,
        headers: {
          location: `${this.url}/subscriptions/${this.subscriptionId}/operationresults/${id}?api-version=2025-04-01`,
          'retry-after': String(this.retryAfter),
        },
      };
    return { status: 200 };
  }

  // --- Long-running operations ------------------------------------------------------------------

  private newOp(
    provider: string,
    location: string,
    doneAt: number,
    error?: { code: string; message: string },
  ): Record<string, string> {
    const id = randomUUID();
    this.ops.set(id, { id, doneAt, ...(error ? { error } : {}) });
    return {
      'azure-asyncoperation': `${this.url}/subscriptions/${this.subscriptionId}/providers/${provider}/locations/${location}/operations/${id}?api-version=2025-01-01`,
      'retry-after': String(this.retryAfter),
    };
  }

  private opStatus(id: string): Reply {
    const op = this.ops.get(id);
    if (!op) throw new ArmError(404, 'NotFound', 'fake: no such operation');
    const now = Date.now();
    const status = now < op.doneAt ? 'InProgress' : op.error ? 'Failed' : 'Succeeded';
    return {
      status: 200,
      headers: status === 'InProgress' ? { 'retry-after': String(this.retryAfter) } : {},
      body: {
        name: id,
        status,
        startTime: iso(op.doneAt),
        ...(status !== 'InProgress' ? { endTime: iso(op.doneAt) } : {}),
        ...(status === 'Failed' ? { error: op.error } : {}),
      },
    };
  }

  // --- Resources --------------------------------------------------------------------------------

  private putResource(
    group: string,
    type: string,
    name: string,
    body: unknown,
    asyncFault: FakeAzureFault | undefined,
    query: Record<string, string>,
  ): Reply {
    const g = this.findGroup(group);
    if (g.deleteRequestedAt !== undefined)
      throw new ArmError(
        409,
        'ResourceGroupBeingDeleted',
        `The resource group '${g.name}' is in deprovisioning state and cannot perform this operation.`,
      );
    const b = obj(body);
    const location = lower(str(b.location) ?? '');
    if (!LOCATIONS.some(([n]) => n === location))
      throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
    if (!/^[A-Za-z0-9][-\w.]{0,78}[\w]?$/.test(name))
      throw new ArmError(
        400,
        'InvalidResourceName',
        `Resource name ${name} is invalid. The name can be up to 80 characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'.`,
      );
    const tags = this.tagsOf(b.tags);
    const props = structuredClone(obj(b.properties));
    const now = Date.now();
    const existed = this.res.has(lower(this.armId(g.name, TYPE_NAME[type]!, name)));
    const provider =
      type.startsWith('virtualmachine') || type === 'disks' ? 'Microsoft.Compute' : 'Microsoft.Network';
    let doneAt = now;
    let r: Res;
    switch (type) {
      case 'networksecuritygroups':
        r = this.putNsg(g.name, name, location, tags, props, now);
        break;
      case 'applicationsecuritygroups':
        r = this.put(g.name, type, name, location, tags, now, { resourceGuid: randomUUID() });
        break;
      case 'virtualnetworks':
        r = this.putVnet(g.name, name, location, tags, props, now, query['api-version'] ?? '');
        break;
      case 'publicipaddresses':
        r = this.putPublicIp(g.name, name, location, tags, b, props, now);
        break;
      case 'networkinterfaces':
        r = this.putNic(g.name, name, location, tags, props, now);
        break;
      case 'virtualmachines': {
        const vm = this.putVm(g.name, name, location, tags, b, props, now, asyncFault);
        r = vm.res;
        doneAt = vm.runningAt;
        break;
      }
      case 'virtualmachinescalesets': {
        const set = this.putScaleSet(g.name, name, location, tags, b, props, now, asyncFault);
        r = set.res;
        doneAt = set.doneAt;
        break;
      }
      case 'natgateways':
        r = this.putNatGateway(g.name, name, location, tags, b, props, now);
        break;
      default:
        throw new ArmError(400, 'NotSupported', `fake: PUT of ${type} is not supported`);
    }
    const failure = asyncFault
      ? { code: asyncFault.code, message: asyncFault.message ?? `fake: ${asyncFault.code}` }
      : undefined;
    return {
      status: existed ? 200 : 201,
      body: this.wire(r, false),
      headers: this.newOp(provider, location, doneAt, failure),
    };
  }

  private deleteResource(group: string, typeKey: string, name: string, query: Record<string, string>): Reply {
    this.findGroup(group);
    const r = this.res.get(lower(this.armId(group, TYPE_NAME[typeKey.split('/')[1]!]!, name)));
    if (!r) return { status: 204 };
    const now = Date.now();
    const t = lower(r.type);
    const inUse = (code: string, message: string) => new ArmError(400, code, message);
    if (
      t === 'microsoft.network/networkinterfaces' &&
      this.liveVms().some((v) =>
        arr(obj(v.res.props.networkProfile).networkInterfaces).some(
          (n) => lower(str(obj(n).id) ?? '') === lower(r.id),
        ),
      )
    )
      throw inUse(
        'NicInUse',
        `Network Interface ${r.id} is used by existing resource. In order to delete the network interface, it must be dissociated from the resource.`,
      );
    if (
      t === 'microsoft.network/networksecuritygroups' &&
      (this.refs(r.id, 'microsoft.network/networkinterfaces', 'networkSecurityGroup').length ||
        this.refs(r.id, 'microsoft.network/virtualnetworks', 'networkSecurityGroup').length)
    )
      throw inUse(
        'InUseNetworkSecurityGroupCannotBeDeleted',
        `Network security group ${r.id} cannot be deleted because it is in use.`,
      );
    if (t === 'microsoft.network/publicipaddresses' && obj(this.wire(r, false).properties).ipConfiguration)
      throw inUse(
        'PublicIPAddressCannotBeDeleted',
        `Public IP address ${r.id} can not be deleted since it is still allocated to resource.`,
      );
    if (t === 'microsoft.compute/virtualmachines')
      this.deleteVm(
        this.vmList.find((v) => v.res === r)!,
        now,
      );
    else if (t === 'microsoft.compute/virtualmachinescalesets') {
      for (const vm of this.liveVms())
        if (vm.scaleSet === r.name && lower(vm.res.group) === lower(r.group)) this.deleteVm(vm, now);
      this.drop(r, now);
    } else this.drop(r, now);
    void query;
    const provider = t.startsWith('microsoft.compute') ? 'Microsoft.Compute' : 'Microsoft.Network';
    const headers = this.newOp(provider, r.location, now);
    return { status: 202, headers: { ...headers, location: headers['azure-asyncoperation']! } };
  }

  private deleteVm(vm: Vm, now: number): void {
    vm.deleteRequestedAt = now;
    const nics = arr(obj(vm.res.props.networkProfile).networkInterfaces).map((n) => obj(n));
    const osDisk = obj(obj(vm.res.props.storageProfile).osDisk);
    this.drop(vm.res, now);
    for (const n of nics) {
      const nic = this.res.get(lower(str(n.id) ?? ''));
      if (!nic || str(obj(n.properties).deleteOption) !== 'Delete') continue;
      for (const c of arr(nic.props.ipConfigurations)) {
        const pip = obj(obj(obj(c).properties).publicIPAddress);
        const target = this.res.get(lower(str(pip.id) ?? ''));
        if (target && str(obj(pip.properties).deleteOption) === 'Delete') this.drop(target, now);
      }
      this.drop(nic, now);
    }
    const disk = this.res.get(lower(str(obj(osDisk.managedDisk).id) ?? ''));
    if (disk && str(osDisk.deleteOption) !== 'Detach') this.drop(disk, now);
  }

  // --- Network ---------------------------------------------------------------------------------

  private putNsg(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    props: Json,
    now: number,
  ): Res {
    const id = this.armId(group, 'Microsoft.Network/networkSecurityGroups', name);
    const seen = new Map<string, string>();
    const rules = arr(props.securityRules).map((raw) => {
      const rule = obj(raw);
      const ruleName = str(rule.name);
      if (!ruleName) throw invalid('fake: a security rule needs a name');
      const p = obj(rule.properties);
      const priority = p.priority;
      if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 100 || priority > 4096)
        throw new ArmError(
          400,
          'SecurityRuleInvalidPriority',
          `Security rule has invalid Priority. Value provided: ${String(priority)} Allowed range 100-4096.`,
        );
      const direction = str(p.direction);
      if (direction !== 'Inbound' && direction !== 'Outbound')
        throw new ArmError(
          400,
          'SecurityRuleInvalidDirection',
          `fake: invalid direction ${String(p.direction)}`,
        );
      if (p.access !== 'Allow' && p.access !== 'Deny')
        throw new ArmError(400, 'SecurityRuleInvalidAccess', `fake: invalid access ${String(p.access)}`);
      if (!['Tcp', 'Udp', 'Icmp', 'Esp', 'Ah', '*'].includes(str(p.protocol) ?? ''))
        throw new ArmError(
          400,
          'SecurityRuleInvalidProtocol',
          `fake: invalid protocol ${String(p.protocol)}`,
        );
      const other = seen.get(`${direction}/${priority}`);
      if (other)
        throw new ArmError(
          400,
          'SecurityRuleConflict',
          `Security rule ${other} conflicts with rule ${ruleName}. Rules cannot have the same Priority and Direction. To learn more, see aka.ms/nsgrules.`,
        );
      seen.set(`${direction}/${priority}`, ruleName);
      for (const side of ['source', 'destination']) {
        const prefix = p[`${side}AddressPrefix`];
        const prefixes = arr(p[`${side}AddressPrefixes`]);
        const asgs = arr(p[`${side}ApplicationSecurityGroups`]);
        const given = [prefix !== undefined, prefixes.length > 0, asgs.length > 0].filter(Boolean).length;
        if (given !== 1)
          throw new ArmError(
            400,
            'SecurityRuleParameterContainsUnsupportedValue',
            `fake: rule ${ruleName} must give exactly one of ${side}AddressPrefix, ${side}AddressPrefixes, ${side}ApplicationSecurityGroups`,
          );
        for (const pre of [prefix, ...prefixes].filter((x) => x !== undefined))
          if (
            typeof pre !== 'string' ||
            !(
              ['*', 'VirtualNetwork', 'Internet', 'AzureLoadBalancer', 'AzureCloud'].includes(pre) ||
              cidr(pre.includes('/') ? pre : `${pre}/32`)
            )
          )
            throw new ArmError(
              400,
              'SecurityRuleInvalidAddressPrefix',
              `Security rule ${ruleName} has invalid Address prefix. Value provided: ${String(pre)}`,
            );
        for (const asg of asgs) {
          const a = this.byId(
            obj(asg).id,
            'microsoft.network/applicationsecuritygroups',
            `${id}/securityRules/${ruleName}`,
          );
          if (a.location !== location)
            throw new ArmError(
              400,
              'InvalidResourceReference',
              `fake: application security group ${a.id} is in ${a.location}, not ${location}`,
            );
        }
        const range = p[`${side}PortRange`];
        const ranges = arr(p[`${side}PortRanges`]);
        if ((range === undefined) === (ranges.length === 0))
          throw new ArmError(
            400,
            'SecurityRuleParameterContainsUnsupportedValue',
            `fake: rule ${ruleName} must give exactly one of ${side}PortRange, ${side}PortRanges`,
          );
        for (const pr of [range, ...ranges].filter((x) => x !== undefined)) {
          const m = typeof pr === 'string' ? /^(\d+)(?:-(\d+))?$/.exec(pr) : null;
          if (
            pr !== '*' &&
            (!m || Number(m[1]) < 0 || Number(m[2] ?? m[1]) > 65535 || Number(m[1]) > Number(m[2] ?? m[1]))
          )
            throw new ArmError(
              400,
              'SecurityRuleInvalidPortRange',
              `Security rule ${ruleName} has invalid Port range. Value provided: ${String(pr)}. Value should be an integer OR integer range with '-' delimiter. Valid range 0-65535.`,
            );
        }
      }
      return {
        id: `${id}/securityRules/${ruleName}`,
        name: ruleName,
        type: 'Microsoft.Network/networkSecurityGroups/securityRules',
        properties: { ...p },
      };
    });
    return this.put(group, 'networksecuritygroups', name, location, tags, now, {
      resourceGuid: randomUUID(),
      securityRules: rules,
    });
  }

  private putVnet(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    props: Json,
    now: number,
    apiVersion: string,
  ): Res {
    const id = this.armId(group, 'Microsoft.Network/virtualNetworks', name);
    const space = arr(obj(props.addressSpace).addressPrefixes);
    const ranges = space.map((p) => (typeof p === 'string' ? cidr(p) : undefined));
    if (!space.length || ranges.some((x) => !x))
      throw new ArmError(
        400,
        'InvalidAddressPrefixFormat',
        'fake: addressSpace.addressPrefixes must be IPv4 CIDRs',
      );
    const subnets = arr(props.subnets).map((raw) => {
      const s = obj(raw);
      const sName = str(s.name);
      if (!sName) throw invalid('fake: a subnet needs a name');
      const p = { ...obj(s.properties) };
      const range = typeof p.addressPrefix === 'string' ? cidr(p.addressPrefix) : undefined;
      if (!range)
        throw new ArmError(
          400,
          'InvalidAddressPrefixFormat',
          `fake: subnet ${sName} has no valid addressPrefix`,
        );
      if (
        !ranges.some(
          (v) => v && range.network >= v.network && range.network + range.size <= v.network + v.size,
        )
      )
        throw new ArmError(
          400,
          'NetcfgSubnetRangeOutsideVnet',
          `Subnet '${sName}' is not valid because its IP address range is outside the IP address range of virtual network '${name}'.`,
        );
      for (const [field, type] of [
        ['networkSecurityGroup', 'microsoft.network/networksecuritygroups'],
        ['natGateway', 'microsoft.network/natgateways'],
      ] as const) {
        if (p[field] === undefined) continue;
        const ref = this.byId(obj(p[field]).id, type, `${id}/subnets/${sName}`);
        if (ref.location !== location)
          throw new ArmError(
            400,
            'InvalidResourceReference',
            `Resource ${ref.id} referenced by resource ${id}/subnets/${sName} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
          );
        p[field] = { id: ref.id };
      }
      // Private subnets by default from api-version 2025-07-01 on.
      if (p.defaultOutboundAccess === undefined && apiVersion >= '2025-07-01')
        p.defaultOutboundAccess = false;
      return {
        id: `${id}/subnets/${sName}`,
        name: sName,
        type: 'Microsoft.Network/virtualNetworks/subnets',
        properties: p,
      };
    });
    return this.put(group, 'virtualnetworks', name, location, tags, now, {
      ...props,
      resourceGuid: randomUUID(),
      subnets,
    });
  }

  private fillSubnets(r: Res): void {
    for (const raw of arr(r.props.subnets)) {
      const s = obj(raw);
      s.id ??= `${r.id}/subnets/${String(s.name)}`;
      s.type ??= 'Microsoft.Network/virtualNetworks/subnets';
    }
  }

  private subnetById(id: unknown, referrer: string): { vnet: Res; subnet: Json } {
    const m = typeof id === 'string' ? /^(.*)\/subnets\/([^/]+)$/i.exec(id) : null;
    const vnet = m ? this.res.get(lower(m[1]!)) : undefined;
    const subnet = arr(vnet?.props.subnets)
      .map(obj)
      .find((s) => lower(str(s.name) ?? '') === lower(m?.[2] ?? ''));
    if (!vnet || !subnet)
      throw new ArmError(
        400,
        'InvalidResourceReference',
        `Resource ${String(id)} referenced by resource ${referrer} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
      );
    return { vnet, subnet };
  }

  private privateIp(subnet: Json): string {
    const range = cidr(str(obj(subnet.properties).addressPrefix) ?? '')!;
    const key = lower(str(subnet.id) ?? '');
    const used = this.usedPrivate.get(key) ?? new Set<number>();
    this.usedPrivate.set(key, used);
    // Azure keeps the first four addresses and the last of every subnet.
    for (let n = range.network + 4; n < range.network + range.size - 1; n++)
      if (!used.has(n)) {
        used.add(n);
        return intToIp(n);
      }
    throw new ArmError(
      400,
      'SubnetIsFull',
      `Subnet ${String(subnet.name)} with address prefix ${String(obj(subnet.properties).addressPrefix)} does not have enough capacity for 1 IP addresses.`,
    );
  }

  private putPublicIp(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    b: Json,
    props: Json,
    now: number,
  ): Res {
    const sku = obj(b.sku);
    if ((str(sku.name) ?? 'Basic') !== 'Standard')
      throw new ArmError(
        400,
        'BasicSkuPublicIpIsNotAllowed',
        'fake: Basic SKU public IP addresses are retired; use sku.name Standard',
      );
    if ((str(props.publicIPAllocationMethod) ?? 'Dynamic') !== 'Static')
      throw new ArmError(
        400,
        'StandardSkuPublicIPAddressesMustBeStatic',
        `Standard sku publicIp ${this.armId(group, 'Microsoft.Network/publicIPAddresses', name)} must be Static.`,
      );
    const old = this.res.get(lower(this.armId(group, 'Microsoft.Network/publicIPAddresses', name)));
    let ip = str(old?.props.ipAddress);
    if (!ip) {
      ip = this.publicPool.find((x) => !this.usedPublic.has(x));
      if (!ip) throw new ArmError(409, 'PublicIPCountLimitReached', 'fake: out of public addresses');
      this.usedPublic.add(ip);
    }
    const r = this.put(group, 'publicipaddresses', name, location, tags, now, {
      ...props,
      publicIPAddressVersion: str(props.publicIPAddressVersion) ?? 'IPv4',
      idleTimeoutInMinutes: props.idleTimeoutInMinutes ?? 4,
      ipTags: [],
      resourceGuid: randomUUID(),
      ipAddress: ip,
    });
    r.sku = { name: 'Standard', tier: str(sku.tier) ?? 'Regional' };
    return r;
  }

  /** A Standard NAT gateway whose public IPs are Standard and in its location. */
  private putNatGateway(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    b: Json,
    props: Json,
    now: number,
  ): Res {
    if ((str(obj(b.sku).name) ?? 'Standard') !== 'Standard')
      throw invalid('fake: a NAT gateway is Standard', 'sku.name');
    const ips = arr(props.publicIpAddresses).map((ref) => {
      const pip = this.byId(
        str(obj(ref).id) ?? '',
        'microsoft.network/publicipaddresses',
        'publicIpAddresses',
      );
      if (lower(pip.location) !== lower(location))
        throw new ArmError(
          400,
          'InvalidResourceReference',
          `fake: ${pip.name} is in ${pip.location}, not ${location}`,
        );
      return { id: pip.id };
    });
    const r = this.put(group, 'natgateways', name, location, tags, now, {
      idleTimeoutInMinutes: props.idleTimeoutInMinutes ?? 4,
      publicIpAddresses: ips,
      resourceGuid: randomUUID(),
    });
    r.sku = { name: 'Standard' };
    return r;
  }

  private putNic(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    props: Json,
    now: number,
  ): Res {
    const id = this.armId(group, 'Microsoft.Network/networkInterfaces', name);
    const old = this.res.get(lower(id));
    const configs = arr(props.ipConfigurations);
    if (!configs.length)
      throw invalid('fake: a network interface needs ipConfigurations', 'ipConfigurations');
    if (props.networkSecurityGroup !== undefined) {
      const nsg = this.byId(
        obj(props.networkSecurityGroup).id,
        'microsoft.network/networksecuritygroups',
        id,
      );
      if (nsg.location !== location)
        throw new ArmError(
          400,
          'InvalidResourceReference',
          `Resource ${nsg.id} referenced by resource ${id} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
        );
      props.networkSecurityGroup = { id: nsg.id };
    }
    const ipConfigurations = configs.map((raw, i) => {
      const c = obj(raw);
      const cName = str(c.name) ?? `ipconfig${i + 1}`;
      const cid = `${id}/ipConfigurations/${cName}`;
      const p = { ...obj(c.properties) };
      const { vnet, subnet } = this.subnetById(obj(p.subnet).id, cid);
      if (vnet.location !== location)
        throw new ArmError(
          400,
          'InvalidResourceReference',
          `Resource ${String(subnet.id)} referenced by resource ${id} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
        );
      p.subnet = { id: subnet.id };
      if (p.publicIPAddress !== undefined) {
        const pipRef = obj(p.publicIPAddress);
        const pip = this.byId(pipRef.id, 'microsoft.network/publicipaddresses', cid);
        const holder = obj(obj(this.wire(pip, false).properties).ipConfiguration);
        if (holder.id && !lower(str(holder.id) ?? '').startsWith(lower(id)))
          throw new ArmError(
            400,
            'PublicIPAddressInUse',
            `Resource ${pip.id} is referenced by ${String(holder.id)} and cannot be used by ${cid}.`,
          );
        if (pip.location !== location)
          throw new ArmError(
            400,
            'InvalidResourceReference',
            `Resource ${pip.id} referenced by resource ${id} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.`,
          );
        p.publicIPAddress = { id: pip.id, ...(pipRef.properties ? { properties: pipRef.properties } : {}) };
      }
      p.applicationSecurityGroups = arr(p.applicationSecurityGroups).map((a) => ({
        id: this.byId(obj(a).id, 'microsoft.network/applicationsecuritygroups', cid).id,
      }));
      const previous = arr(old?.props.ipConfigurations)
        .map(obj)
        .find((x) => x.name === cName);
      p.privateIPAddress = str(obj(previous?.properties).privateIPAddress) ?? this.privateIp(subnet);
      p.privateIPAllocationMethod = str(p.privateIPAllocationMethod) ?? 'Dynamic';
      p.privateIPAddressVersion = 'IPv4';
      p.primary = i === 0;
      return {
        id: cid,
        name: cName,
        type: 'Microsoft.Network/networkInterfaces/ipConfigurations',
        properties: p,
      };
    });
    return this.put(group, 'networkinterfaces', name, location, tags, now, {
      ...props,
      resourceGuid: randomUUID(),
      ipConfigurations,
      macAddress: Array.from(randomBytes(6), (x) => x.toString(16).padStart(2, '0'))
        .join('-')
        .toUpperCase(),
      nicType: 'Standard',
      enableAcceleratedNetworking: props.enableAcceleratedNetworking ?? false,
    });
  }

  // --- Compute ---------------------------------------------------------------------------------

  private checkSize(vmSize: unknown, location: string): Size {
    const size = SIZES.find((s) => lower(s.name) === lower(String(vmSize)));
    if (!size || !size.locations.includes(location))
      throw new ArmError(
        409,
        'SkuNotAvailable',
        `The requested VM size for resource 'Following SKUs have failed for Capacity Restrictions: ${String(vmSize)}' is currently not available in location '${location}'. Please try another size or deploy to a different location or different zone. See https://aka.ms/azureskunotavailable for details.`,
      );
    return size;
  }

  private checkQuota(location: string, extra: number): void {
    const now = Date.now();
    const usage = this.liveVms()
      .filter((v) => v.res.location === location && !(v.failed && now >= v.runningAt))
      .reduce((n, v) => n + v.size.cores, 0);
    if (usage + extra > this.coresQuota)
      throw new ArmError(
        409,
        'OperationNotAllowed',
        `Operation could not be completed as it results in exceeding approved Total Regional Cores quota. Additional details - Deployment Model: Resource Manager, Location: ${location}, Current Limit: ${this.coresQuota}, Current Usage: ${usage}, Additional Required: ${extra}, (Minimum) New Limit Required: ${usage + extra}. Submit a request for Quota increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView/Parameters/%7B%22subscriptionId%22:%22${this.subscriptionId}%22,%22command%22:%22openQuotaApprovalBlade%22,%22quotas%22:[%7B%22location%22:%22${location}%22,%22providerId%22:%22Microsoft.Compute%22,%22resourceName%22:%22cores%22,%22quotaRequest%22:%7B%22properties%22:%7B%22limit%22:${usage + extra},%22unit%22:%22Count%22,%22name%22:%7B%22value%22:%22cores%22%7D%7D%7D%7D] by specifying parameters listed in the ‘Details’ section for deployment to succeed. Please read more about quota limits at https://docs.microsoft.com/en-us/azure/azure-supportability/regional-quota-requests`,
      );
  }

  /** Validates a VM's (or a scale set's virtualMachineProfile's) profiles; returns the decoded customData. */
  private checkProfiles(
    p: Json,
    size: Size,
    forScaleSet: boolean,
  ): { customData?: string; computerName: string } {
    const storage = required(p.storageProfile, 'storageProfile');
    const image = required(storage.imageReference, 'imageReference');
    const key = lower(`${String(image.publisher)}/${String(image.offer)}/${String(image.sku)}`);
    const arch = IMAGES[key];
    if (!arch)
      throw new ArmError(
        404,
        'PlatformImageNotFound',
        `The platform image '${String(image.publisher)}:${String(image.offer)}:${String(image.sku)}:${String(image.version)}' is not available. Verify that all fields in the storage profile are correct.`,
      );
    if (arch !== size.arch)
      throw new ArmError(
        400,
        'BadRequest',
        `fake: the VM size '${size.name}' (${size.arch}) cannot boot the ${arch} image '${key}'.`,
      );
    const osDisk = obj(storage.osDisk);
    if (str(osDisk.createOption) !== 'FromImage')
      throw invalid("fake: osDisk.createOption must be 'FromImage'", 'osDisk.createOption');
    if (osDisk.deleteOption !== undefined && !['Delete', 'Detach'].includes(String(osDisk.deleteOption)))
      throw invalid(
        `fake: invalid osDisk.deleteOption ${String(osDisk.deleteOption)}`,
        'osDisk.deleteOption',
      );
    const os = required(p.osProfile, 'osProfile');
    const computerName = str(forScaleSet ? os.computerNamePrefix : os.computerName);
    if (!computerName)
      throw invalid(
        `Required parameter '${forScaleSet ? 'computerNamePrefix' : 'computerName'}' is missing (null).`,
      );
    if (!str(os.adminUsername))
      throw invalid("Required parameter 'adminUsername' is missing (null).", 'adminUsername');
    const linux = required(os.linuxConfiguration, 'linuxConfiguration');
    const keys = arr(obj(linux.ssh).publicKeys).map(obj);
    if (linux.disablePasswordAuthentication === true) {
      if (!keys.length)
        throw invalid(
          'fake: disablePasswordAuthentication needs at least one SSH public key',
          'linuxConfiguration.ssh.publicKeys',
        );
      if (os.adminPassword !== undefined)
        throw invalid(
          'fake: adminPassword must not be given with disablePasswordAuthentication',
          'adminPassword',
        );
    } else if (!str(os.adminPassword))
      throw invalid("Required parameter 'adminPassword' is missing (null).", 'adminPassword');
    for (const k of keys)
      if (
        !/^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+/.test(str(k.keyData) ?? '') ||
        !str(k.path)
      )
        throw invalid(
          'fake: an SSH public key needs path and an OpenSSH keyData',
          'linuxConfiguration.ssh.publicKeys',
        );
    let customData: string | undefined;
    if (os.customData !== undefined) {
      const b64 = str(os.customData) ?? '';
      if (b64.length > 87380 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0)
        throw invalid(
          'Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.',
          'customData',
        );
      customData = Buffer.from(b64, 'base64').toString('utf8');
    }
    const sec = p.securityProfile === undefined ? undefined : obj(p.securityProfile);
    if (
      sec &&
      sec.securityType !== undefined &&
      !['TrustedLaunch', 'ConfidentialVM', 'Standard'].includes(String(sec.securityType))
    )
      throw invalid(`fake: invalid securityType ${String(sec.securityType)}`, 'securityProfile.securityType');
    return { ...(customData === undefined ? {} : { customData }), computerName };
  }

  private identityOf(b: Json): Json | undefined {
    const identity = b.identity === undefined ? undefined : obj(b.identity);
    if (!identity || identity.type === 'None') return undefined;
    if (identity.type !== 'SystemAssigned')
      throw invalid(`fake: identity type ${String(identity.type)} is not supported`, 'identity.type');
    return { type: 'SystemAssigned', principalId: randomUUID(), tenantId: this.tenantId };
  }

  private putVm(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    b: Json,
    props: Json,
    now: number,
    asyncFault: FakeAzureFault | undefined,
  ): Vm {
    const id = this.armId(group, 'Microsoft.Compute/virtualMachines', name);
    if (this.res.has(lower(id)))
      throw new ArmError(409, 'OperationNotAllowed', 'fake: updating an existing VM is not supported');
    const hardware = required(props.hardwareProfile, 'hardwareProfile');
    const size = this.checkSize(hardware.vmSize, location);
    const { customData, computerName } = this.checkProfiles(props, size, false);
    const nics = arr(required(props.networkProfile, 'networkProfile').networkInterfaces).map(obj);
    if (!nics.length)
      throw invalid(
        "Required parameter 'networkProfile.networkInterfaces' is missing (null).",
        'networkInterfaces',
      );
    for (const n of nics) {
      const nic = this.byId(n.id, 'microsoft.network/networkinterfaces', id);
      if (nic.location !== location)
        throw new ArmError(
          400,
          'InvalidResourceReference',
          `fake: network interface ${nic.id} is in ${nic.location}, not ${location}`,
        );
      if (obj(this.wire(nic, false).properties).virtualMachine)
        throw new ArmError(
          400,
          'NicReservedForAnotherVm',
          `fake: network interface ${nic.id} is used by another virtual machine`,
        );
      const del = obj(n.properties).deleteOption;
      if (del !== undefined && del !== 'Delete' && del !== 'Detach')
        throw invalid(`fake: invalid deleteOption ${String(del)}`, 'deleteOption');
      n.id = nic.id;
    }
    this.checkQuota(location, size.cores);
    const vm = this.makeVm(
      group,
      name,
      location,
      tags,
      b,
      props,
      size,
      computerName,
      customData,
      now,
      asyncFault,
    );
    return vm;
  }

  private makeVm(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    b: Json,
    props: Json,
    size: Size,
    computerName: string,
    customData: string | undefined,
    now: number,
    asyncFault: FakeAzureFault | undefined,
    scaleSet?: Res,
  ): Vm {
    const diskName = `${name}_OsDisk_1_${hex(16)}`;
    const storage = obj(props.storageProfile);
    const osDisk = obj(storage.osDisk);
    const disk = this.put(group, 'disks', diskName, location, {}, now, {
      osType: 'Linux',
      hyperVGeneration: 'V2',
      diskSizeGB: osDisk.diskSizeGB ?? 30,
      diskState: 'Attached',
      creationData: {
        createOption: 'FromImage',
        imageReference: {
          id: `/Subscriptions/${this.subscriptionId}/Providers/Microsoft.Compute/Locations/${location}/Publishers/Canonical/ArtifactTypes/VMImage/Offers/${String(obj(storage.imageReference).offer)}/Skus/${String(obj(storage.imageReference).sku)}/Versions/24.04.202601010`,
        },
      },
    });
    disk.sku = { name: str(obj(osDisk.managedDisk).storageAccountType) ?? 'Premium_LRS', tier: 'Premium' };
    const stored: Json = {
      ...props,
      vmId: randomUUID(),
      storageProfile: {
        ...storage,
        imageReference: { ...obj(storage.imageReference), exactVersion: '24.04.202601010' },
        osDisk: {
          osType: 'Linux',
          name: diskName,
          caching: 'ReadWrite',
          ...osDisk,
          managedDisk: { ...obj(osDisk.managedDisk), id: disk.id },
        },
        dataDisks: [],
      },
      osProfile: {
        ...obj(props.osProfile),
        computerName,
        allowExtensionOperations: true,
        requireGuestProvisionSignal: true,
      },
      timeCreated: iso(now),
      ...(scaleSet ? { virtualMachineScaleSet: { id: scaleSet.id } } : {}),
    };
    const r = this.put(group, 'virtualmachines', name, location, tags, now, stored);
    const identity = this.identityOf(b);
    if (identity) r.identity = identity;
    const vm: Vm = {
      res: r,
      size,
      computerName,
      ...(customData === undefined ? {} : { customData }),
      ...(scaleSet ? { scaleSet: scaleSet.name } : {}),
      requestedAt: now,
      runningAt: now + this.provisioningMs,
      ...(asyncFault
        ? { failed: { code: asyncFault.code, message: asyncFault.message ?? `fake: ${asyncFault.code}` } }
        : {}),
    };
    this.vmList.push(vm);
    return vm;
  }

  private putScaleSet(
    group: string,
    name: string,
    location: string,
    tags: Record<string, string>,
    b: Json,
    props: Json,
    now: number,
    asyncFault: FakeAzureFault | undefined,
  ): { res: Res; doneAt: number } {
    const id = this.armId(group, 'Microsoft.Compute/virtualMachineScaleSets', name);
    if (this.res.has(lower(id)))
      throw new ArmError(409, 'OperationNotAllowed', 'fake: updating an existing scale set is not supported');
    if (props.orchestrationMode !== 'Flexible')
      throw invalid("fake: only orchestrationMode 'Flexible' is supported", 'orchestrationMode');
    const sku = required(b.sku, 'sku');
    const capacity = sku.capacity ?? 0;
    if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 0 || capacity > 1000)
      throw invalid('fake: invalid sku.capacity', 'sku.capacity');
    const size = this.checkSize(sku.name, location);
    const profile = required(props.virtualMachineProfile, 'virtualMachineProfile');
    const { customData, computerName: prefix } = this.checkProfiles(profile, size, true);
    if (prefix.length > 15)
      throw invalid('fake: computerNamePrefix is at most 15 characters', 'computerNamePrefix');
    const network = required(profile.networkProfile, 'networkProfile');
    const configs = arr(network.networkInterfaceConfigurations).map(obj);
    if (!configs.length)
      throw invalid(
        "Required parameter 'networkInterfaceConfigurations' is missing (null).",
        'networkInterfaceConfigurations',
      );
    if (!str(network.networkApiVersion))
      throw invalid(
        "fake: a Flexible scale set's networkProfile needs networkApiVersion",
        'networkApiVersion',
      );
    for (const c of configs)
      for (const ip of arr(obj(c.properties).ipConfigurations))
        this.subnetById(obj(obj(obj(ip).properties).subnet).id, id);
    // All or nothing: the whole capacity against the quota.
    this.checkQuota(location, size.cores * capacity);
    const res = this.put(group, 'virtualmachinescalesets', name, location, tags, now, {
      ...props,
      uniqueId: randomUUID(),
      timeCreated: iso(now),
    });
    res.sku = { name: size.name, tier: 'Standard', capacity };
    const identity = this.identityOf(b);
    if (identity) res.identity = identity;
    let doneAt = now;
    for (let i = 0; i < capacity; i++) {
      const vmName = `${name}_${hex(4)}`;
      const nicIds = configs.map((c) => {
        const cp = obj(c.properties);
        const nic = this.putNic(
          group,
          `${vmName}-${String(c.name)}`,
          location,
          { ...tags },
          {
            ipConfigurations: arr(cp.ipConfigurations).map((ip) => ({
              name: obj(ip).name,
              properties: { subnet: obj(obj(obj(ip).properties).subnet) },
            })),
            ...(cp.networkSecurityGroup ? { networkSecurityGroup: cp.networkSecurityGroup } : {}),
          },
          now,
        );
        return {
          id: nic.id,
          properties: { primary: cp.primary ?? true, deleteOption: cp.deleteOption ?? 'Delete' },
        };
      });
      const computerName = `${prefix}${hex(3)}`;
      const vmProps: Json = {
        hardwareProfile: { vmSize: size.name },
        storageProfile: structuredClone(profile.storageProfile),
        osProfile: { ...structuredClone(obj(profile.osProfile)), computerName },
        networkProfile: { networkInterfaces: nicIds },
        ...(profile.securityProfile ? { securityProfile: structuredClone(profile.securityProfile) } : {}),
      };
      delete obj(vmProps.osProfile).computerNamePrefix;
      const vm = this.makeVm(
        group,
        vmName,
        location,
        { ...tags },
        b,
        vmProps,
        size,
        computerName,
        customData,
        now,
        asyncFault,
        res,
      );
      doneAt = Math.max(doneAt, vm.runningAt);
    }
    return { res, doneAt };
  }

  // --- Authorization -----------------------------------------------------------------------------

  private roleDefWire(scope: string, id: string): Json {
    const role = ROLES[id]!;
    return {
      id: `${scope}/providers/Microsoft.Authorization/roleDefinitions/${id}`,
      name: id,
      type: 'Microsoft.Authorization/roleDefinitions',
      properties: {
        roleName: role.name,
        type: 'BuiltInRole',
        description: `fake: the built-in ${role.name} role`,
        assignableScopes: ['/'],
        permissions: [{ actions: role.actions, notActions: [], dataActions: [], notDataActions: [] }],
      },
    };
  }

  private roleDefs(scope: string, query: Record<string, string>): Json[] {
    const m = /roleName\s+eq\s+'([^']*)'/i.exec(query.$filter ?? '');
    return Object.keys(ROLES)
      .filter((id) => !m || ROLES[id]!.name === m[1])
      .map((id) => this.roleDefWire(scope, id));
  }

  private roleDef(scope: string, id: string): Reply {
    if (!ROLES[lower(id)])
      throw new ArmError(
        404,
        'RoleDefinitionDoesNotExist',
        "The specified role definition with ID '" + id + "' does not exist.",
      );
    return this.ok(this.roleDefWire(scope, lower(id)));
  }

  private assignmentWire(a: Assignment): Json {
    return {
      id: a.id,
      name: a.name,
      type: 'Microsoft.Authorization/roleAssignments',
      properties: {
        roleDefinitionId: a.roleDefinitionId,
        principalId: a.principalId,
        principalType: a.principalType,
        scope: a.scope,
        createdOn: iso(a.createdAt),
        updatedOn: iso(a.createdAt),
        createdBy: this.userObjectId,
        updatedBy: this.userObjectId,
      },
    };
  }

  private findAssignment(scope: string, id: string): Assignment {
    const a = this.assignments.find((x) => lower(x.scope) === lower(scope) && lower(x.name) === lower(id));
    if (!a) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${id}' is not found.`);
    return a;
  }

  private scopeExists(scope: string): void {
    const m = /^\/subscriptions\/[^/]+\/resourcegroups\/([^/]+)/i.exec(scope);
    if (m) this.findGroup(m[1]!);
  }

  private putAssignment(scope: string, name: string, body: unknown, principal: Principal): Reply {
    if (this.roleAssignmentsMode === 'forbidden')
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${SEED.userName}' with object id '${principal.principalId}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '${scope}/providers/Microsoft.Authorization/roleAssignments/${name}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
    this.scopeExists(scope);
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name))
      throw new ArmError(
        400,
        'InvalidRoleAssignmentId',
        `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`,
      );
    const p = obj(obj(body).properties);
    const roleDefinitionId = str(p.roleDefinitionId) ?? '';
    const roleId = lower(roleDefinitionId.split('/').pop() ?? '');
    if (!ROLES[roleId] || !/\/providers\/Microsoft\.Authorization\/roleDefinitions\//i.test(roleDefinitionId))
      throw new ArmError(
        400,
        'RoleDefinitionDoesNotExist',
        `The specified role definition with ID '${roleId}' does not exist.`,
      );
    const principalId = str(p.principalId) ?? '';
    const known =
      principalId === this.userObjectId ||
      this.vmList.some((v) => obj(v.res.identity).principalId === principalId) ||
      [...this.res.values()].some((r) => obj(r.identity).principalId === principalId);
    if (!known)
      throw new ArmError(
        400,
        'PrincipalNotFound',
        `Principal ${principalId.replace(/-/g, '')} does not exist in the directory ${this.tenantId}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype`,
      );
    const existing = this.assignments.find(
      (a) =>
        lower(a.scope) === lower(scope) &&
        a.principalId === principalId &&
        lower(a.roleDefinitionId.split('/').pop() ?? '') === roleId,
    );
    if (existing && lower(existing.name) !== lower(name))
      throw new ArmError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
    if (existing) return { status: 201, body: this.assignmentWire(existing) };
    const a: Assignment = {
      id: `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`,
      name,
      scope,
      roleDefinitionId,
      principalId,
      principalType: str(p.principalType) ?? 'ServicePrincipal',
      createdAt: Date.now(),
    };
    this.assignments.push(a);
    return { status: 201, body: this.assignmentWire(a) };
  }

  private deleteAssignment(scope: string, name: string): Reply {
    const i = this.assignments.findIndex(
      (x) => lower(x.scope) === lower(scope) && lower(x.name) === lower(name),
    );
    if (i < 0) return { status: 204 };
    const [a] = this.assignments.splice(i, 1);
    return { status: 200, body: this.assignmentWire(a!) };
  }
}

export async function startFakeAzure(options: FakeAzureOptions = {}): Promise<FakeAzure> {
  const fake = new FakeAzureImpl(options);
  const host = options.host ?? '127.0.0.1';
  const { cert, key } = fakeAzureLeaf(host);
  const server = https.createServer({ cert, key }, (req, res) => {
    fake.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  const port = await listenOnLoopback(server, host);
  fake.server = server;
  fake.url = `https://${host}:${port}`;
  return fake;
}
