import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ComputeManagementClient,
  type VirtualMachine,
  type VirtualMachineScaleSet,
} from '@azure/arm-compute';
import { AuthorizationManagementClient } from '@azure/arm-authorization';
import { NetworkManagementClient } from '@azure/arm-network';
import { ResourceManagementClient } from '@azure/arm-resources';
import { RestError } from '@azure/core-rest-pipeline';
import { AzureCliCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/core-auth';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SEED, fakeAzureCa, startFakeAzure, type FakeAzure, type FakeAzureOptions } from './index.js';

const open: FakeAzure[] = [];
const dirs: string[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(open.splice(0).map((f) => f.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON, read loosely
type Wire = any;

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1nqC7rK5mLQ2bq4m0m3fCk6lS9d2yQ8pY0b1Xn2vXz dcp';
const FAST = { updateIntervalInMs: 5 };

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dcp-azure-test-'));
  dirs.push(dir);
  return dir;
}

async function setup(options: FakeAzureOptions = {}) {
  const fake = await startFakeAzure(options);
  open.push(fake);
  // The real AzureCliCredential, running the stand-in `az` first on PATH.
  vi.stubEnv('PATH', `${fake.writeAzCli(tmp())}:${process.env.PATH ?? ''}`);
  const credential = new AzureCliCredential();
  const s = fake.subscriptionId;
  const common = { endpoint: fake.url, retryOptions: { maxRetries: 0 } };
  const classic = { ...common, $host: fake.url, credentialScopes: ['https://management.azure.com/.default'] };
  const clients = (cred: TokenCredential) => ({
    resources: new ResourceManagementClient(cred, s, classic),
    network: new NetworkManagementClient(cred, s, classic),
    compute: new ComputeManagementClient(cred, s, common),
    auth: new AuthorizationManagementClient(cred, s, classic),
  });
  async function raw(method: string, path: string, body?: unknown, token?: string) {
    const res = await fetch(`${fake.url}${path}`, {
      method,
      headers: {
        ...(token === ''
          ? {}
          : {
              authorization: `Bearer ${token ?? (await credential.getToken('https://management.azure.com/.default')).token}`,
            }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Wire };
  }
  return { fake, credential, raw, ...clients(credential), clients };
}

type Setup = Awaited<ReturnType<typeof setup>>;
const net = (s: Setup, g: string, type: string, name: string) =>
  `/subscriptions/${s.fake.subscriptionId}/resourceGroups/${g}/providers/Microsoft.Network/${type}/${name}`;

/** A group with an NSG (Dask ports from my IP), a VNet and subnet, a public IP and a NIC: what dcp's scheduler needs. */
async function network(s: Setup, g = 'dcp-c1') {
  const tags = { 'dcp:cluster': 'c1' };
  await s.resources.resourceGroups.createOrUpdate(g, { location: SEED.location, tags });
  const nsg = await s.network.networkSecurityGroups.beginCreateOrUpdateAndWait(
    g,
    'dcp-c1-nsg',
    {
      location: SEED.location,
      tags,
      securityRules: [
        {
          name: 'dask',
          priority: 100,
          direction: 'Inbound',
          access: 'Allow',
          protocol: 'Tcp',
          sourceAddressPrefixes: [`${s.fake.myIp}/32`],
          sourcePortRange: '*',
          destinationAddressPrefix: '*',
          destinationPortRanges: ['8786', '8787'],
        },
      ],
    },
    FAST,
  );
  const vnet = await s.network.virtualNetworks.beginCreateOrUpdateAndWait(
    g,
    'dcp-c1-vnet',
    {
      location: SEED.location,
      tags,
      addressSpace: { addressPrefixes: ['10.0.0.0/16'] },
      subnets: [
        {
          name: 'dcp',
          addressPrefix: '10.0.0.0/24',
          networkSecurityGroup: { id: nsg.id },
          defaultOutboundAccess: true,
        },
      ],
    },
    FAST,
  );
  const subnetId = vnet.subnets?.[0]?.id ?? '';
  const pip = await s.network.publicIPAddresses.beginCreateOrUpdateAndWait(
    g,
    'dcp-c1-scheduler-ip',
    {
      location: SEED.location,
      tags,
      sku: { name: 'Standard', tier: 'Regional' },
      publicIPAllocationMethod: 'Static',
      publicIPAddressVersion: 'IPv4',
    },
    FAST,
  );
  const nic = await s.network.networkInterfaces.beginCreateOrUpdateAndWait(
    g,
    'dcp-c1-scheduler-nic',
    {
      location: SEED.location,
      tags,
      networkSecurityGroup: { id: nsg.id },
      ipConfigurations: [
        {
          name: 'ipconfig1',
          subnet: { id: subnetId },
          privateIPAllocationMethod: 'Dynamic',
          publicIPAddress: { id: pip.id, deleteOption: 'Delete' },
        },
      ],
    },
    FAST,
  );
  return { tags, nsg, vnet, subnetId, pip, nic };
}

const image = (sku = 'server') => ({
  publisher: 'Canonical',
  offer: 'ubuntu-24_04-lts',
  sku,
  version: 'latest',
});
const osProfile = (extra: Record<string, unknown> = {}) => ({
  adminUsername: 'dcp',
  customData: Buffer.from('#!/bin/sh\necho scheduler\n').toString('base64'),
  linuxConfiguration: {
    disablePasswordAuthentication: true,
    ssh: { publicKeys: [{ path: '/home/dcp/.ssh/authorized_keys', keyData: KEY }] },
  },
  ...extra,
});
const security = {
  securityType: 'TrustedLaunch',
  uefiSettings: { secureBootEnabled: true, vTpmEnabled: true },
} as const;

function vmBody(nicId: string, extra: Partial<VirtualMachine> = {}): VirtualMachine {
  return {
    location: SEED.location,
    tags: { 'dcp:cluster': 'c1', 'dcp:role': 'scheduler' },
    hardwareProfile: { vmSize: SEED.size },
    storageProfile: {
      imageReference: image(),
      osDisk: {
        createOption: 'FromImage',
        deleteOption: 'Delete',
        managedDisk: { storageAccountType: 'Premium_LRS' },
      },
    },
    osProfile: { computerName: 'scheduler', ...osProfile() },
    networkProfile: { networkInterfaces: [{ id: nicId, primary: true, deleteOption: 'Delete' }] },
    securityProfile: security,
    ...extra,
  };
}

function scaleSetBody(subnetId: string, capacity: number, size: string = SEED.size): VirtualMachineScaleSet {
  return {
    location: SEED.location,
    tags: { 'dcp:cluster': 'c1', 'dcp:role': 'worker' },
    sku: { name: size, capacity },
    orchestrationMode: 'Flexible',
    platformFaultDomainCount: 1,
    singlePlacementGroup: false,
    virtualMachineProfile: {
      osProfile: {
        computerNamePrefix: 'worker',
        ...osProfile({ customData: Buffer.from('worker script').toString('base64') }),
      },
      storageProfile: {
        imageReference: image(size === SEED.armSize ? 'server-arm64' : 'server'),
        osDisk: {
          createOption: 'FromImage',
          deleteOption: 'Delete',
          managedDisk: { storageAccountType: 'Premium_LRS' },
        },
      },
      networkProfile: {
        networkApiVersion: '2020-11-01',
        networkInterfaceConfigurations: [
          {
            name: 'nic',
            primary: true,
            deleteOption: 'Delete',
            ipConfigurations: [{ name: 'ip', subnet: { id: subnetId } }],
          },
        ],
      },
      securityProfile: security,
    },
  };
}

describe('fake Azure through the real SDK clients', () => {
  it('serves https with its CA, trusted in-process through the globalSetup', async () => {
    const { fake, raw } = await setup();
    expect(fake.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(process.env.NODE_EXTRA_CA_CERTS).toBeTruthy();
    expect(readFileSync(process.env.NODE_EXTRA_CA_CERTS ?? '', 'utf8')).toContain(fakeAzureCa().cert.trim());
    // A plain fetch, no agent option.
    expect(await (await fetch(`${fake.url}/checkip`)).text()).toBe(`${fake.myIp}\n`);
    expect((await raw('GET', `/subscriptions/${fake.subscriptionId}/locations`)).status).toBe(400);
    expect(
      (
        await raw('GET', `/subscriptions/${fake.subscriptionId}/locations?api-version=2022-12-01`)
      ).body.value.map((l: Wire) => l.name),
    ).toContain(SEED.location);
    const bad = await raw(
      'GET',
      `/subscriptions/${fake.subscriptionId}/resourcegroups?api-version=2025-04-01`,
      undefined,
      'nope',
    );
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('InvalidAuthenticationToken');
    expect(fake.calls.some((c) => c.path === '/checkip')).toBe(false);
    // A child process (as the built CLI is) trusts it through the inherited NODE_EXTRA_CA_CERTS.
    const child = await promisify(execFile)(process.execPath, [
      '-e',
      `fetch(${JSON.stringify(`${fake.url}/checkip`)}).then((r) => r.text()).then((t) => process.stdout.write(t))`,
    ]);
    expect(child.stdout).toBe(`${fake.myIp}\n`);
  });

  it('creates a cluster, reads instance views, lists by tag, and deletes the group as an LRO', async () => {
    const s = await setup({ provisioningMs: 50, deletingMs: 80 });
    const { fake } = s;
    const { nsg, vnet, subnetId, pip, nic } = await network(s);
    expect(nsg.defaultSecurityRules?.map((r) => `${r.name}:${r.priority}:${r.direction}`)).toEqual([
      'AllowVnetInBound:65000:Inbound',
      'AllowAzureLoadBalancerInBound:65001:Inbound',
      'DenyAllInBound:65500:Inbound',
      'AllowVnetOutBound:65000:Outbound',
      'AllowInternetOutBound:65001:Outbound',
      'DenyAllOutBound:65500:Outbound',
    ]);
    expect(nsg.securityRules?.[0]?.destinationPortRanges).toEqual(['8786', '8787']);
    expect(vnet.subnets?.[0]?.defaultOutboundAccess).toBe(true);
    expect(pip.ipAddress).toMatch(/^(198\.51\.100|203\.0\.113)\.\d+$/);
    expect(pip.ipAddress).not.toBe(fake.myIp);
    expect(nic.ipConfigurations?.[0]?.privateIPAddress).toBe('10.0.0.4');
    // The network PUTs answered 201 + Azure-AsyncOperation, and the SDK polled it.
    const nsgPut = fake.calls.find((c) => c.method === 'networkSecurityGroups.createOrUpdate');
    expect(nsgPut?.status).toBe(201);
    expect((nsgPut?.body as Wire).properties.securityRules[0].properties.priority).toBe(100);
    expect(fake.calls.some((c) => c.method === 'operations.get')).toBe(true);

    // The VM, flat as the modular client wants it, with a system-assigned identity.
    const vm = await s.compute.virtualMachines.createOrUpdate(
      'dcp-c1',
      'dcp-c1-scheduler',
      { ...vmBody(nic.id ?? ''), identity: { type: 'SystemAssigned' } },
      FAST,
    );
    expect(vm.provisioningState).toBe('Succeeded');
    expect(vm.identity?.principalId).toMatch(/^[0-9a-f-]{36}$/);
    const vmPut = fake.calls.find((c) => c.method === 'virtualMachines.createOrUpdate');
    expect(vmPut?.status).toBe(201);
    expect((vmPut?.body as Wire).properties.hardwareProfile.vmSize).toBe(SEED.size); // nested on the wire
    expect((vmPut?.body as Wire).properties.osProfile.customData).toBeDefined();
    expect(vm.osProfile?.customData).toBeUndefined(); // ARM never returns it

    // Instance views: PowerState only there.
    const expanded = await s.compute.virtualMachines.get('dcp-c1', 'dcp-c1-scheduler', {
      expand: 'instanceView',
    });
    expect(expanded.instanceView?.statuses?.map((x) => x.code)).toEqual([
      'ProvisioningState/succeeded',
      'PowerState/running',
    ]);
    const plain = await s.compute.virtualMachines.get('dcp-c1', 'dcp-c1-scheduler');
    expect(plain.instanceView).toBeUndefined();

    // Workers: a Flexible scale set of 3 ordinary VMs.
    const set = await s.compute.virtualMachineScaleSets.createOrUpdate(
      'dcp-c1',
      'dcp-c1-workers',
      scaleSetBody(subnetId, 3),
      FAST,
    );
    expect(set.sku?.capacity).toBe(3);
    const workers = fake.vms().filter((v) => v.scaleSet === 'dcp-c1-workers');
    expect(workers).toHaveLength(3);
    expect(workers.map((w) => w.name).every((n) => /^dcp-c1-workers_[0-9a-f]{8}$/.test(n))).toBe(true);
    expect(new Set(workers.map((w) => w.privateIp)).size).toBe(3);
    expect(
      workers.every((w) => w.customData === 'worker script' && w.computerName.startsWith('worker')),
    ).toBe(true);
    for (const w of workers) {
      const view = await s.compute.virtualMachines.instanceView('dcp-c1', w.name);
      expect(view.statuses?.map((x) => x.code)).toContain('PowerState/running');
    }
    const scheduler = fake.vms().find((v) => v.name === 'dcp-c1-scheduler');
    expect(scheduler?.customData).toBe('#!/bin/sh\necho scheduler\n');
    expect(scheduler?.publicIp).toBe(pip.ipAddress);

    // Listing by tag.
    const groups = [];
    for await (const g of s.resources.resourceGroups.list({
      filter: "tagName eq 'dcp:cluster' and tagValue eq 'c1'",
    }))
      groups.push(g);
    expect(groups.map((g) => g.name)).toEqual(['dcp-c1']);
    expect(groups[0]?.tags).toEqual({ 'dcp:cluster': 'c1' });
    const tagged = [];
    for await (const r of s.resources.resources.list({
      filter: "tagName eq 'dcp:cluster' and tagValue eq 'c1'",
    }))
      tagged.push(r);
    expect(tagged.map((r) => r.type)).toEqual(
      expect.arrayContaining(['Microsoft.Compute/virtualMachines', 'Microsoft.Network/networkInterfaces']),
    );
    expect(tagged.every((r) => r.tags === undefined)).toBe(true); // not returned with name+value filtering
    expect(fake.leftovers('c1').length).toBeGreaterThan(10);

    // Delete the group: 202 + Location, 'Deleting' meanwhile, then everything gone.
    const deleting = s.resources.resourceGroups.beginDeleteAndWait('dcp-c1', {
      forceDeletionTypes: 'Microsoft.Compute/virtualMachines,Microsoft.Compute/virtualMachineScaleSets',
      ...FAST,
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.resourceGroups().find((g: Wire) => g.name === 'dcp-c1')).toMatchObject({
      properties: { provisioningState: 'Deleting' },
    });
    await deleting;
    const del = fake.calls.find((c) => c.method === 'resourceGroups.delete');
    expect(del?.status).toBe(202);
    expect(
      fake.calls
        .filter((c) => c.method === 'operations.get' && c.path.includes('/operationresults/'))
        .map((c) => c.status),
    ).toContain(200);
    expect(fake.leftovers('c1')).toEqual([]);
    expect(fake.resources('dcp-c1')).toEqual([]);
    expect(fake.vms().every((v) => v.deletedAt !== undefined)).toBe(true);
    const again = await s.resources.resourceGroups
      .beginDeleteAndWait('dcp-c1', FAST)
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(RestError);
    expect((again as RestError).code).toBe('ResourceGroupNotFound');
    expect(fake.mutatingCalls().every((c) => c.method !== 'operations.get')).toBe(true);
  });

  it('drops a nested `properties` in the modular client: the flat form is the one that works', async () => {
    const s = await setup();
    const { nic } = await network(s);
    const nested = { location: SEED.location, properties: vmBody(nic.id ?? '') } as unknown as Parameters<
      typeof s.compute.virtualMachines.createOrUpdate
    >[2];
    const err = await s.compute.virtualMachines
      .createOrUpdate('dcp-c1', 'nested', nested, FAST)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RestError);
    expect((err as RestError).code).toBe('InvalidParameter');
    const sent = s.fake.calls.find((c) => c.method === 'virtualMachines.createOrUpdate')?.body as Wire;
    expect(sent.properties?.hardwareProfile).toBeUndefined();
    const flat = await s.compute.virtualMachines.createOrUpdate('dcp-c1', 'flat', vmBody(nic.id ?? ''), FAST);
    expect(flat.hardwareProfile?.vmSize).toBe(SEED.size);
  });

  it('answers quota and capacity refusals as ARM does: sync 409s as RestError, AllocationFailed as a plain Error', async () => {
    const s = await setup({ coresQuota: 4 });
    const { nic, subnetId } = await network(s);
    // 3 × 2 vCPUs > 4: the whole scale set is refused, nothing made.
    const quota = await s.compute.virtualMachineScaleSets
      .createOrUpdate('dcp-c1', 'w', scaleSetBody(subnetId, 3), FAST)
      .catch((e: unknown) => e);
    expect(quota).toBeInstanceOf(RestError);
    expect((quota as RestError).statusCode).toBe(409);
    expect((quota as RestError).code).toBe('OperationNotAllowed');
    expect((quota as RestError).message).toContain('Total Regional Cores quota');
    expect(s.fake.vms()).toEqual([]);
    const sku = await s.compute.virtualMachines
      .createOrUpdate(
        'dcp-c1',
        'gpu',
        vmBody(nic.id ?? '', { hardwareProfile: { vmSize: SEED.gpuSize } }),
        FAST,
      )
      .catch((e: unknown) => e);
    expect((sku as RestError).code).toBe('SkuNotAvailable');
    const arch = await s.compute.virtualMachines
      .createOrUpdate(
        'dcp-c1',
        'arm',
        vmBody(nic.id ?? '', { hardwareProfile: { vmSize: SEED.armSize } }),
        FAST,
      )
      .catch((e: unknown) => e);
    expect((arch as RestError).statusCode).toBe(400);

    s.fake.fail('virtualMachines.createOrUpdate', {
      status: 200,
      code: 'AllocationFailed',
      message: 'Allocation failed. We do not have sufficient capacity.',
      async: true,
    });
    const alloc = await s.compute.virtualMachines
      .createOrUpdate('dcp-c1', 'vm', vmBody(nic.id ?? ''), FAST)
      .catch((e: unknown) => e);
    expect(alloc).toBeInstanceOf(Error);
    expect(alloc).not.toBeInstanceOf(RestError);
    expect((alloc as Error).message).toMatch(/^The long-running operation has failed\. AllocationFailed\./);
    expect(s.fake.vms()[0]?.provisioningState).toBe('Failed');

    s.fake.fail('networkSecurityGroups.createOrUpdate', { status: 429, code: 'TooManyRequests' });
    const throttled = await s.network.networkSecurityGroups
      .beginCreateOrUpdateAndWait('dcp-c1', 'x', { location: SEED.location }, FAST)
      .catch((e: unknown) => e);
    expect((throttled as RestError).statusCode).toBe(429);
  });

  it('validates NSG rules, customData and SSH-only login', async () => {
    const s = await setup();
    const { nic } = await network(s);
    const rule = (name: string, priority: number) => ({
      name,
      priority,
      direction: 'Inbound',
      access: 'Allow',
      protocol: 'Tcp',
      sourceAddressPrefix: '*',
      sourcePortRange: '*',
      destinationAddressPrefix: '*',
      destinationPortRange: '22',
    });
    const same = await s.network.networkSecurityGroups
      .beginCreateOrUpdateAndWait(
        'dcp-c1',
        'n',
        { location: SEED.location, securityRules: [rule('a', 200), rule('b', 200)] },
        FAST,
      )
      .catch((e: unknown) => e);
    expect((same as RestError).code).toBe('SecurityRuleConflict');
    const low = await s.network.networkSecurityGroups
      .beginCreateOrUpdateAndWait(
        'dcp-c1',
        'n',
        { location: SEED.location, securityRules: [rule('a', 99)] },
        FAST,
      )
      .catch((e: unknown) => e);
    expect((low as RestError).code).toBe('SecurityRuleInvalidPriority');
    const big = Buffer.alloc(65_536, 'x').toString('base64');
    const tooBig = await s.compute.virtualMachines
      .createOrUpdate(
        'dcp-c1',
        'vm',
        vmBody(nic.id ?? '', { osProfile: { computerName: 'vm', ...osProfile({ customData: big }) } }),
        FAST,
      )
      .catch((e: unknown) => e);
    expect((tooBig as RestError).code).toBe('InvalidParameter');
    const noKeys = await s.compute.virtualMachines
      .createOrUpdate(
        'dcp-c1',
        'vm',
        vmBody(nic.id ?? '', {
          osProfile: {
            computerName: 'vm',
            adminUsername: 'dcp',
            linuxConfiguration: { disablePasswordAuthentication: true },
          },
        }),
        FAST,
      )
      .catch((e: unknown) => e);
    expect((noKeys as RestError).code).toBe('InvalidParameter');
    const skus = [];
    for await (const k of s.compute.resourceSkus.list({ filter: `location eq '${SEED.location}'` }))
      skus.push(k.name);
    expect(skus).toContain(SEED.size);
    expect(skus).not.toContain(SEED.gpuSize);
  });

  it('gives a VM a managed-identity token from IMDS that acts only within its role assignments', async () => {
    const s = await setup();
    const { fake, raw } = s;
    const { nic } = await network(s);
    await s.resources.resourceGroups.createOrUpdate('elsewhere', { location: SEED.location });
    const vm = await s.compute.virtualMachines.createOrUpdate(
      'dcp-c1',
      'sched',
      { ...vmBody(nic.id ?? ''), identity: { type: 'SystemAssigned' } },
      FAST,
    );
    const scope = `/subscriptions/${fake.subscriptionId}/resourceGroups/dcp-c1`;
    const contributor = `/subscriptions/${fake.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${SEED.contributorRoleId}`;
    const def = await s.auth.roleDefinitions.get(scope, SEED.contributorRoleId);
    expect(def.roleName).toBe('Contributor');
    const assignment = await s.auth.roleAssignments.create(scope, '0b7e6c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b', {
      roleDefinitionId: contributor,
      principalId: vm.identity?.principalId ?? '',
      principalType: 'ServicePrincipal',
    });
    expect(assignment.scope).toBe(scope);
    const unknown = await s.auth.roleAssignments
      .create(scope, '1b7e6c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b', {
        roleDefinitionId: contributor,
        principalId: '00000000-0000-0000-0000-000000000001',
      })
      .catch((e: unknown) => e);
    expect((unknown as RestError).code).toBe('PrincipalNotFound');

    // The VM asks IMDS (the test stands in for it with x-fake-vm).
    const imds = await fetch(
      `${fake.url}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/`,
      {
        headers: { Metadata: 'true', 'x-fake-vm': 'sched' },
      },
    );
    expect(imds.status).toBe(200);
    const token = ((await imds.json()) as Wire).access_token as string;
    const msi = s.clients({ getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) });
    expect((await msi.compute.virtualMachines.get('dcp-c1', 'sched')).name).toBe('sched');
    const outside = await msi.resources.resourceGroups.get('elsewhere').catch((e: unknown) => e);
    expect((outside as RestError).statusCode).toBe(403);
    expect((outside as RestError).code).toBe('AuthorizationFailed');
    // Self-cleanup from inside: the VM may delete its own group.
    expect((await raw('DELETE', `${scope}?api-version=2025-04-01`, undefined, token)).status).toBe(202);
    expect(fake.calls.find((c) => c.method === 'imds.token')?.status).toBe(200);
  });

  it('refuses role assignments when forbidden, and keeps a guest-shut-down VM stopped', async () => {
    const s = await setup({ roleAssignments: 'forbidden' });
    const { nic } = await network(s);
    const vm = await s.compute.virtualMachines.createOrUpdate(
      'dcp-c1',
      'sched',
      { ...vmBody(nic.id ?? ''), identity: { type: 'SystemAssigned' } },
      FAST,
    );
    const err = await s.auth.roleAssignments
      .create(
        `/subscriptions/${s.fake.subscriptionId}/resourceGroups/dcp-c1`,
        '0b7e6c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b',
        {
          roleDefinitionId: `/subscriptions/${s.fake.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${SEED.contributorRoleId}`,
          principalId: vm.identity?.principalId ?? '',
        },
      )
      .catch((e: unknown) => e);
    expect((err as RestError).statusCode).toBe(403);
    expect((err as RestError).code).toBe('AuthorizationFailed');
    s.fake.powerOffFromInside('sched');
    const view = await s.compute.virtualMachines.instanceView('dcp-c1', 'sched');
    expect(view.statuses?.map((x) => x.code)).toContain('PowerState/stopped');
    expect(s.fake.leftovers('c1')).toContain('virtual machine sched in dcp-c1');
  });

  it('uses the user network of another group, with its NAT gateway', async () => {
    const s = await setup();
    const subnet = await s.network.subnets.get(SEED.userGroup, SEED.userVnet, SEED.userSubnet);
    expect(subnet.addressPrefix).toBe(SEED.userSubnetCidr);
    expect(subnet.natGateway?.id).toContain(`/natGateways/${SEED.userNatGateway}`);
    await s.resources.resourceGroups.createOrUpdate('dcp-c2', {
      location: SEED.location,
      tags: { 'dcp:cluster': 'c2' },
    });
    const nic = await s.network.networkInterfaces.beginCreateOrUpdateAndWait(
      'dcp-c2',
      'n',
      { location: SEED.location, ipConfigurations: [{ name: 'ip', subnet: { id: subnet.id } }] },
      FAST,
    );
    expect(nic.ipConfigurations?.[0]?.privateIPAddress).toBe('10.40.1.4');
    // An NSG in another region cannot be attached.
    const far = await s.network.networkSecurityGroups.beginCreateOrUpdateAndWait(
      'dcp-c2',
      'far',
      { location: SEED.otherLocation },
      FAST,
    );
    const err = await s.network.networkInterfaces
      .beginCreateOrUpdateAndWait(
        'dcp-c2',
        'n2',
        {
          location: SEED.location,
          networkSecurityGroup: { id: far.id },
          ipConfigurations: [{ name: 'ip', subnet: { id: subnet.id } }],
        },
        FAST,
      )
      .catch((e: unknown) => e);
    expect((err as RestError).code).toBe('InvalidResourceReference');
    expect(net(s, 'dcp-c2', 'networkInterfaces', 'n')).toBe(nic.id);
  });

  it('writes an azureProfile.json with a BOM and a config with a default location', async () => {
    const { fake } = await setup();
    const dir = fake.writeAzureProfile(tmp());
    const text = readFileSync(join(dir, 'azureProfile.json'), 'utf8');
    expect(text.charCodeAt(0)).toBe(0xfeff);
    expect(() => JSON.parse(text) as unknown).toThrow();
    const profile = JSON.parse(text.replace(/^\uFEFF/, '')) as Wire;
    expect(profile.subscriptions.find((x: Wire) => x.isDefault).id).toBe(fake.subscriptionId);
    expect(readFileSync(join(dir, 'config'), 'utf8')).toMatch(/\[defaults\]\nlocation = westeurope/);
  });
});
