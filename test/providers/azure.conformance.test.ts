/** The Azure provider through the official SDKs against the ARM fake (https, its own CA), held to what every cloud must show. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { azureProvider } from '../../src/providers/azure/index.js';
import { SEED, startFakeAzure, type FakeAzure } from '../fakes/azure/index.js';
import { azureEnvironment, azureGroup, azureIngress, azureMembers } from './cloud-env.js';
import { conformance } from './conformance.js';

let fake: FakeAzure;

conformance({
  name: 'azure',
  provider: azureProvider,
  async start() {
    // VMs take a moment to run: workers sent before the scheduler ran show.
    fake = await startFakeAzure({ provisioningMs: 300 });
    return azureEnvironment(fake, mkdtempSync(join(tmpdir(), 'dcp-azure-')));
  },
  stop: async () => fake?.close(),
  flags: { region: SEED.location },
  myIp: () => fake.myIp,
  members: (cluster) => azureMembers(fake, cluster),
  ingress: (cluster) => azureIngress(fake, cluster),
  // The cluster's own VNet: Azure's AllowVnetInBound lets every member reach every other.
  membersReachEachOther: (cluster) =>
    fake
      .resources(azureGroup(fake, cluster))
      .some((r) => String(r.type).toLowerCase() === 'microsoft.network/virtualnetworks'),
  leftovers: (cluster) => fake.leftovers(cluster),
  clearCalls: () => {
    fake.calls.length = 0;
  },
  mutatingCalls: () => fake.mutatingCalls().map((call) => call.method),
  upCalls: () => [
    'resourceGroups.createOrUpdate',
    'networkSecurityGroups.createOrUpdate',
    // The workers' way out: a NAT gateway and its address.
    'publicIPAddresses.createOrUpdate',
    'natGateways.createOrUpdate',
    'virtualNetworks.createOrUpdate',
    'publicIPAddresses.createOrUpdate',
    'networkInterfaces.createOrUpdate',
    'virtualMachines.createOrUpdate',
    'virtualMachineScaleSets.createOrUpdate',
    'roleAssignments.create',
  ],
  refuse: (method, skip) =>
    fake.fail(
      method,
      {
        status: 403,
        code: 'AuthorizationFailed',
        message: "The client does not have authorization to perform action over scope '/subscriptions/x'",
      },
      { skip },
    ),
  refusal: { message: /Azure refused [\w.]+: AuthorizationFailed/, hint: /permission/ },
  // A user who may not grant roles still gets a cluster, told that idle VMs bill.
  degrades: { 'roleAssignments.create': /may not grant roles on dcp-.*still bills a stopped VM/ },
  steps: ['resource group', 'network', 'launch scheduler', 'launch workers', 'idle shutdown', 'vms'],
  // A private Azure cluster goes in the user's VNet: one of its own would be reached by nobody.
  privateNetwork: {
    flags: { vpc: `${SEED.userGroup}/${SEED.userVnet}`, subnet: SEED.userSubnet },
    cidr: SEED.userCidr,
  },
  callsFor50: 10,
  elsewhere: { provider: 'azure', location: SEED.location },
});
