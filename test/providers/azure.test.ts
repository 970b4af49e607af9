/**
 * The Azure provider against the ARM fake, beyond what every cloud shows
 * (azure.conformance.test.ts): where the subscription comes from, what is refused before
 * anything is made, Azure's own failures (an asynchronous AllocationFailed) rolled back,
 * stopped VMs still billed, and the dcp command itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCluster, destroyCluster } from '../../src/cluster/engine.js';
import { planUp, type UpFlags } from '../../src/cluster/spec.js';
import { clusterDir } from '../../src/cluster/state.js';
import type { DcpError } from '../../src/errors.js';
import { ExitCode } from '../../src/errors.js';
import { connectArm } from '../../src/providers/azure/arm.js';
import { azureProvider, groupSelfDelete } from '../../src/providers/azure/index.js';
import { firewallDoors } from '../../src/cluster/doctor.js';
import { SEED, startFakeAzure, type FakeAzure } from '../fakes/azure/index.js';
import { CLI, tempDir } from '../helpers/cli.js';
import { azureEnvironment, azureGroup, azureMembers, privateHome } from './cloud-env.js';

let fake: FakeAzure;
const saved = { ...process.env };

beforeAll(async () => {
  fake = await startFakeAzure({ provisioningMs: 100 });
  Object.assign(process.env, {
    ...privateHome(tempDir('dcp-azure-home-')),
    ...azureEnvironment(fake, mkdtempSync(join(tmpdir(), 'dcp-azure-'))),
  });
});
afterAll(async () => {
  process.env = saved;
  await fake?.close();
});
beforeEach(() => {
  fake.calls.length = 0;
  fake.clearFaults();
});

let counter = 0;
const flags = (extra: Partial<UpFlags> = {}): UpFlags => ({
  name: `az-test-${++counter}`,
  provider: 'azure',
  region: SEED.location,
  wait: false,
  insecure: false,
  image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
  workers: '2',
  ...extra,
});
const quiet = { progress: () => undefined };
const up = async (extra: Partial<UpFlags> = {}) =>
  createCluster(await planUp(flags(extra)), azureProvider, quiet, new AbortController().signal);
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as DcpError,
  );

describe('before anything is made', () => {
  it('--subscription wins over AZURE_SUBSCRIPTION_ID; a size the location lacks and a name taken are refused', async () => {
    const plan = await planUp(flags({ subscription: SEED.otherSubscriptionId }));
    expect(plan.spec.cloud.subscription_id).toBe(SEED.otherSubscriptionId);
    const cases: [Partial<UpFlags>, RegExp][] = [
      [{ instanceType: SEED.gpuSize }, new RegExp(`no VM size ${SEED.gpuSize} in ${SEED.location}`)],
      [{ region: SEED.bareLocation }, new RegExp(`Azure offers no VM sizes in ${SEED.bareLocation}`)],
      [{ region: 'westeruope' }, /Azure offers no VM sizes in westeruope: is it a location/],
      [{ instanceType: 'Standard_E2s_v5' }, /not available to this subscription in westeurope/],
    ];
    for (const [extra, message] of cases) {
      const error = await failure(up(extra));
      expect(error?.exitCode).toBe(ExitCode.usage);
      expect(error?.message).toMatch(message);
    }
    // dask-cloudprovider's resource group setting is said to be unused, not silently ignored.
    process.env.DCP_AZURE_RESOURCE_GROUP = 'my-group';
    try {
      const prepared = await azureProvider.prepare((await planUp(flags())).spec);
      expect(prepared.warnings?.join('\n')).toMatch(/azure\.resource_group is not used by dcp/);
    } finally {
      delete process.env.DCP_AZURE_RESOURCE_GROUP;
    }
    // Size names as Azure takes them, whatever their case; a size without Premium SSD gets a Standard SSD.
    const plain = await azureProvider.prepare((await planUp(flags({ instanceType: 'standard_d2_v5' }))).spec);
    expect(plain.cloud).toMatchObject({ vm_size: 'Standard_D2_v5', os_disk: 'StandardSSD_LRS' });
    const record = await up();
    expect((await failure(up({ name: record.name })))?.message).toMatch(
      /a dcp cluster named .* is in subscription .* already/,
    );
    expect(
      fake.mutatingCalls().filter((call) => call.method === 'resourceGroups.createOrUpdate'),
    ).toHaveLength(1);
    await destroyCluster(record.name, quiet);
    expect(fake.leftovers(record.name)).toEqual([]);
  });
});

describe('in the user’s VNet', () => {
  it('the members by an application security group, the rest of the VNet denied, the VNet’s range at the scheduler', async () => {
    const record = await up({
      private: true,
      vpc: `${SEED.userGroup}/${SEED.userVnet}`,
      subnet: SEED.userSubnet,
    });
    const nsg = fake
      .resources(azureGroup(fake, record.name))
      .find((r) => String(r.type).toLowerCase() === 'microsoft.network/networksecuritygroups') as {
      properties: { securityRules: { name: string; properties: Record<string, unknown> }[] };
    };
    const rules = Object.fromEntries(
      nsg.properties.securityRules.map((rule) => [rule.name, rule.properties]),
    );
    expect(rules['dcp-in-1']).toMatchObject({ access: 'Allow', sourceAddressPrefix: SEED.userCidr });
    expect(rules['dcp-members']).toMatchObject({ access: 'Allow', priority: 3000 });
    expect(rules['dcp-deny-vnet']).toMatchObject({
      access: 'Deny',
      sourceAddressPrefix: 'VirtualNetwork',
      priority: 4000,
    });
    const members = azureMembers(fake, record.name);
    expect(members).toHaveLength(3);
    for (const member of members) {
      expect(member.privateIp.startsWith(SEED.userSubnetCidr.split('.').slice(0, 3).join('.'))).toBe(true);
      expect(member.publicIp).toBeUndefined();
    }
    expect(fake.mutatingCalls().map((call) => call.method)).toContain(
      'applicationSecurityGroups.createOrUpdate',
    );
    expect(fake.mutatingCalls().map((call) => call.method)).not.toContain('virtualNetworks.createOrUpdate');
    await destroyCluster(record.name, quiet);
    expect(fake.leftovers(record.name)).toEqual([]);
    // The user's network is theirs: still there.
    expect(fake.resources(SEED.userGroup).length).toBeGreaterThan(0);
  });

  it('a VNet that is not there, or in another location, is said before anything is made', async () => {
    expect((await failure(up({ vpc: `${SEED.userGroup}/nope` })))?.message).toMatch(/no VNet nope/);
    expect((await failure(up({ vpc: 'just-a-name' })))?.message).toMatch(/names no VNet/);
    expect(
      (await failure(up({ region: SEED.otherLocation, vpc: `${SEED.userGroup}/${SEED.userVnet}` })))?.message,
    ).toMatch(/is in westeurope, not eastus/);
    const vnetId = (subscription: string) =>
      `/subscriptions/${subscription}/resourceGroups/${SEED.userGroup}/providers/Microsoft.Network/virtualNetworks/${SEED.userVnet}`;
    expect((await failure(up({ vpc: vnetId(SEED.otherSubscriptionId) })))?.message).toMatch(
      /is in subscription .* and the cluster goes to/,
    );
    expect((await failure(up({ vpc: `${SEED.userGroup}/${SEED.userVnet}/extra` })))?.message).toMatch(
      /names no VNet/,
    );
    // A subnet's id names the subnet too; one without a way out is refused (scale sets get none).
    const arm = await connectArm(SEED.subscriptionId);
    await arm.network.virtualNetworks.beginCreateOrUpdateAndWait(SEED.userGroup, 'bare-vnet', {
      location: SEED.location,
      addressSpace: { addressPrefixes: ['10.50.0.0/16'] },
      subnets: [
        { name: 'GatewaySubnet', addressPrefix: '10.50.0.0/24' },
        { name: 'open', addressPrefix: '10.50.1.0/24', defaultOutboundAccess: true },
      ],
    });
    fake.calls.length = 0;
    const bare = `${vnetId(SEED.subscriptionId).replace(SEED.userVnet, 'bare-vnet')}/subnets/open`;
    const refused = await failure(up({ vpc: bare }));
    expect(refused?.message).toMatch(/the subnet open has no NAT gateway or route table/);
    expect(refused?.hint).toMatch(/az network vnet subnet update .* --name open --nat-gateway/);
    // Azure's own subnets are never picked, nor taken when named.
    expect(
      (await failure(up({ vpc: `${SEED.userGroup}/bare-vnet`, subnet: 'GatewaySubnet' })))?.message,
    ).toMatch(/has no subnet GatewaySubnet dcp may use/);
    expect(fake.mutatingCalls()).toEqual([]);
  });
});

describe('the workers’ way out', () => {
  it('through a route table of the user’s subnet: said, as dcp cannot see where it goes', async () => {
    const arm = await connectArm(SEED.subscriptionId);
    const table = `/subscriptions/${SEED.subscriptionId}/resourceGroups/${SEED.userGroup}/providers/Microsoft.Network/routeTables/to-firewall`;
    await arm.network.virtualNetworks.beginCreateOrUpdateAndWait(SEED.userGroup, 'routed-vnet', {
      location: SEED.location,
      addressSpace: { addressPrefixes: ['10.60.0.0/16'] },
      subnets: [{ name: 'routed', addressPrefix: '10.60.1.0/24', routeTable: { id: table } }],
    });
    const prepared = await azureProvider.prepare(
      (await planUp(flags({ private: true, vpc: `${SEED.userGroup}/routed-vnet` }))).spec,
    );
    expect(prepared.warnings?.join('\n')).toMatch(
      /only through the route table of subnet routed: it must send 0\.0\.0\.0\/0/,
    );
    // Naming one subnet twice, two ways, is refused.
    await expect(
      planUp(flags({ vpc: `${SEED.userGroup}/routed-vnet`, subnet: 'other' })).then((plan) =>
        azureProvider.prepare({
          ...plan.spec,
          cloud: {
            ...plan.spec.cloud,
            vnet: `${table.replace(/routeTables\/to-firewall$/, 'virtualNetworks/routed-vnet')}/subnets/routed`,
          },
        }),
      ),
    ).rejects.toThrow(/--vpc names the subnet routed and --subnet other/);
  });

  it('a grant refused for another reason than permission is a failure: rolled back', async () => {
    fake.fail('roleAssignments.create', {
      status: 400,
      code: 'PrincipalNotFound',
      message: 'not replicated',
    });
    const name = `az-grant-${++counter}`;
    const error = await failure(up({ name }));
    expect(error?.message).toMatch(/roleAssignments\.create: PrincipalNotFound.*rolled back/s);
    expect(fake.leftovers(name)).toEqual([]);
  });

  it('in the cluster’s own VNet, through a NAT gateway of its own: scale-set VMs get no default outbound access', async () => {
    const record = await up();
    const group = azureGroup(fake, record.name);
    const resources = fake.resources(group) as { type: string; properties: Record<string, unknown> }[];
    const nat = resources.find((r) => r.type.toLowerCase() === 'microsoft.network/natgateways');
    const vnet = resources.find((r) => r.type.toLowerCase() === 'microsoft.network/virtualnetworks');
    const subnet = (vnet?.properties.subnets as { properties: { natGateway?: { id: string } } }[])[0]!;
    expect(subnet.properties.natGateway?.id).toBe((nat as unknown as { id: string }).id);
    await destroyCluster(record.name, quiet);
    expect(fake.leftovers(record.name)).toEqual([]);
  });
});

describe('idle shutdown', () => {
  it('the scheduler’s own identity holds Contributor on its group only, and its boot script deletes that group', async () => {
    const warnings: string[] = [];
    const plan = await planUp(flags());
    const record = await createCluster(
      plan,
      azureProvider,
      { ...quiet, warn: (w) => warnings.push(w) },
      new AbortController().signal,
    );
    const group = `/subscriptions/${SEED.subscriptionId}/resourceGroups/${azureGroup(fake, record.name)}`;
    const vms = fake.vms().filter((vm) => vm.tags['dcp:cluster'] === record.name);
    const scheduler = vms.find((vm) => vm.tags['dcp:role'] === 'scheduler')!;
    expect(scheduler.identity?.principalId).toBeTruthy();
    expect(vms.filter((vm) => vm.identity)).toEqual([scheduler]);
    expect(fake.roleAssignments().filter((a) => a.principalId === scheduler.identity!.principalId)).toEqual([
      {
        scope: group,
        roleDefinitionId: `/subscriptions/${SEED.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${SEED.contributorRoleId}`,
        principalId: scheduler.identity!.principalId,
        principalType: 'ServicePrincipal',
      },
    ]);
    const { tokenUrl, resourceUrl } = groupSelfDelete(fake.url, group);
    expect(tokenUrl).toMatch(/^http:\/\/169\.254\.169\.254\/metadata\/identity\/oauth2\/token\?/);
    expect(scheduler.customData).toContain(`'${tokenUrl}'`);
    expect(resourceUrl).toMatch(/forceDeletionTypes=Microsoft\.Compute%2FvirtualMachines/);
    expect(scheduler.customData).toContain(`'${resourceUrl}'`);
    for (const worker of vms.filter((vm) => vm !== scheduler))
      expect(worker.customData).not.toContain(resourceUrl);
    expect(record.details.idle_shutdown).toBe('deletes the resource group');
    expect(warnings.join('\n')).not.toMatch(/still bills/);
    await destroyCluster(record.name, quiet);
    expect(fake.leftovers(record.name)).toEqual([]);
  });
});

describe('whose group it is', () => {
  it('a group named like the cluster is never dcp’s; the run’s own group goes at down even retagged behind dcp’s back', async () => {
    const name = `az-own-${++counter}`;
    const arm = await connectArm(SEED.subscriptionId);
    await arm.resources.resourceGroups.createOrUpdate(`dcp-${name}`, {
      location: SEED.location,
      tags: { owner: 'alice' },
    });
    const record = await up({ name });
    const group = azureGroup(fake, name);
    expect(group).toMatch(new RegExp(`^dcp-${name}-[0-9a-f]{8}$`));
    // Anyone who may write its tags (the scheduler's identity, say) cannot hide it from down.
    await arm.resources.resourceGroups.createOrUpdate(group, { location: SEED.location, tags: {} });
    expect(await destroyCluster(name, quiet)).toEqual([`resource group ${group} and everything in it`]);
    const left = fake.resourceGroups().map((g) => g.name);
    expect(left).not.toContain(group);
    expect(left).toContain(`dcp-${name}`);
    expect(record.name).toBe(name);
    await arm.resources.resourceGroups.beginDeleteAndWait(`dcp-${name}`, { updateIntervalInMs: 10 });
  });
});

describe('doctor', () => {
  it('reads the NSG back: a rule added behind dcp’s back to the world or to Azure’s addresses is reported, ping is not', async () => {
    const record = await up({ ingress: ['198.51.100.0/24:8786'] });
    const view = await azureProvider.firewall!(record);
    expect(view.rules).toEqual([{ cidr: '198.51.100.0/24', ports: [8786] }]);
    expect(firewallDoors(view).every((door) => door.verdict === 'holds')).toBe(true);
    const group = azureGroup(fake, record.name);
    const arm = await connectArm(SEED.subscriptionId);
    const nsg = await arm.network.networkSecurityGroups.get(group, `${record.name}-nsg`);
    const rule = (name: string, priority: number, extra: Record<string, unknown>) => ({
      name,
      priority,
      direction: 'Inbound',
      access: 'Allow',
      sourcePortRange: '*',
      destinationAddressPrefix: '*',
      ...extra,
    });
    await arm.network.networkSecurityGroups.beginCreateOrUpdateAndWait(group, `${record.name}-nsg`, {
      ...nsg,
      securityRules: [
        ...(nsg.securityRules ?? []),
        rule('ssh', 200, { protocol: 'Tcp', sourceAddressPrefix: 'Internet', destinationPortRange: '22' }),
        rule('rdp', 201, {
          protocol: 'Tcp',
          sourceAddressPrefix: 'AzureCloud',
          destinationPortRange: '3389',
        }),
        rule('one', 202, {
          protocol: 'Tcp',
          sourceAddressPrefixes: ['192.0.2.9'],
          destinationPortRange: '8787',
        }),
        rule('ping', 203, { protocol: 'Icmp', sourceAddressPrefix: '*', destinationPortRange: '*' }),
      ],
    });
    fake.calls.length = 0;
    const open = firewallDoors(await azureProvider.firewall!(record)).filter(
      (door) => door.verdict === 'open',
    );
    expect(open.map((door) => door.detail)).toEqual([
      expect.stringMatching(/-nsg in dcp-[a-z0-9-]+ lets 0\.0\.0\.0\/0 \(the whole internet\) reach 22,/),
      expect.stringMatching(/-nsg in dcp-[a-z0-9-]+ lets 0\.0\.0\.0\/0 \(the whole internet\) reach 3389,/),
      expect.stringMatching(/-nsg in dcp-[a-z0-9-]+ lets 192\.0\.2\.9\/32 reach 8787,/),
    ]);
    expect(fake.mutatingCalls()).toEqual([]);
    await destroyCluster(record.name, quiet);
  });
});

describe('Azure’s failures', () => {
  it('AllocationFailed in the scale set’s operation: said with a hint, and the group is gone', async () => {
    fake.fail('virtualMachineScaleSets.createOrUpdate', {
      status: 200,
      code: 'AllocationFailed',
      message:
        'Allocation failed. We do not have sufficient capacity for the requested VM size in this region.',
      async: true,
    });
    const name = `az-alloc-${++counter}`;
    const error = await failure(up({ name }));
    expect(error?.message).toMatch(/AllocationFailed: Allocation failed.*rolled back/s);
    expect(error?.hint).toMatch(/another --instance-type or --region/);
    expect(fake.leftovers(name)).toEqual([]);
  });
});

describe('stopped VMs, list and down', () => {
  it('a VM that powered itself off is stopped, still billed: list says so, down removes the group', async () => {
    const record = await up();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the fake's VMs run after 100 ms
    const running = (await azureProvider.discover!(undefined)).find((c) => c.name === record.name);
    expect(running?.members.map((member) => member.running)).toEqual([true, true, true]);
    expect(running?.stoppedStatus).toBeUndefined();
    const scheduler = fake.vms().find((vm) => vm.tags['dcp:cluster'] === record.name && !vm.scaleSet)!;
    fake.powerOffFromInside(scheduler.name);
    const found = (await azureProvider.discover!(undefined)).find((c) => c.name === record.name);
    expect(found?.members.find((member) => member.role === 'scheduler')?.running).toBe(false);
    expect(found?.stoppedStatus).toBe('stopped (still billed)');
    await destroyCluster(record.name, quiet);
    expect(fake.leftovers(record.name)).toEqual([]);
  });

  it('list and down --provider azure search --subscription (over AZURE_SUBSCRIPTION_ID) and --region', async () => {
    const record = await up();
    rmSync(clusterDir(record.name), { recursive: true });
    // The variable names a subscription this identity cannot see; the flag wins over it.
    const env = { ...process.env, CI: 'true', AZURE_SUBSCRIPTION_ID: SEED.otherSubscriptionId };
    const dcp = (...args: string[]) => execa('node', [CLI, ...args], { env, reject: false });
    const unseen = await dcp('list', '--provider', 'azure', '--json');
    expect(unseen.exitCode).toBe(ExitCode.failed);
    expect(unseen.stderr).toMatch(/SubscriptionNotFound[\s\S]*--subscription/);
    const listed = await dcp('list', '--provider', 'azure', '--subscription', SEED.subscriptionId, '--json');
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(JSON.stringify(JSON.parse(listed.stdout))).toContain(`"name":"${record.name}"`);
    const wrongPlace = await dcp('list', '--provider', 'gcp', '--subscription', SEED.subscriptionId);
    expect(wrongPlace.exitCode).toBe(ExitCode.usage);
    expect(wrongPlace.stderr).toMatch(/--subscription goes with --provider azure/);
    const by = ['--provider', 'azure', '--subscription', SEED.subscriptionId, '--yes'];
    const elsewhere = await dcp('down', record.name, ...by, '--region', SEED.otherLocation);
    expect(elsewhere.exitCode).toBe(ExitCode.failed);
    expect(elsewhere.stdout).toMatch(new RegExp(`nothing carries its name in azure ${SEED.otherLocation}`));
    expect(fake.leftovers(record.name)).not.toEqual([]);
    const removed = await dcp('down', record.name, ...by, '--region', SEED.location);
    expect(removed.exitCode, removed.stderr).toBe(0);
    expect(fake.leftovers(record.name)).toEqual([]);
  });

  it('up --provider azure --no-wait --json, then down from a machine with no state', async () => {
    const env = { ...process.env, CI: 'true' };
    const name = 'az-cli';
    const upRun = await execa(
      'node',
      [
        CLI,
        'up',
        '--provider',
        'azure',
        '--region',
        SEED.location,
        '--name',
        name,
        '--image',
        'x/dask:1',
        '--no-wait',
        '--json',
      ],
      { env, reject: false },
    );
    expect(upRun.exitCode, upRun.stderr).toBe(0);
    // Role assignments are allowed here: the idle scheduler deletes its group, no billing warning.
    expect(upRun.stderr).not.toMatch(/still bills/);
    const scheduler = azureMembers(fake, name).find((m) => m.role === 'scheduler')!;
    expect(JSON.parse(upRun.stdout)).toMatchObject({
      provider: 'azure',
      scheduler_address: `tls://${scheduler.publicIp}:8786`,
      workers: 2,
    });
    // The list of this machine's clusters says where it is.
    const listed = await execa('node', [CLI, 'list', '--json'], { env, reject: false });
    expect(JSON.parse(listed.stdout).clusters).toContainEqual(
      expect.objectContaining({ name, provider: 'azure', location: SEED.location }),
    );
    rmSync(clusterDir(name), { recursive: true });
    const downRun = await execa('node', [CLI, 'down', name, '--provider', 'azure', '--yes', '--json'], {
      env,
      reject: false,
    });
    expect(downRun.exitCode, downRun.stderr).toBe(0);
    expect(fake.leftovers(name)).toEqual([]);
  });
});
