/** The GCP provider through dcp's REST client and google-auth-library against the GCE fake, held to what every cloud must show. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { gcpProvider } from '../../src/providers/gcp/index.js';
import { SEED, startFakeGce, type FakeGce } from '../fakes/gce/index.js';
import { conformance } from './conformance.js';
import { gcpEnvironment, gcpIngress, gcpMembers } from './cloud-env.js';

let fake: FakeGce;

conformance({
  name: 'gcp',
  provider: gcpProvider,
  async start() {
    // VMs take a moment to run: workers sent before the scheduler ran show.
    fake = await startFakeGce({ provisioningMs: 300 });
    return gcpEnvironment(fake, mkdtempSync(join(tmpdir(), 'dcp-gcp-adc-')));
  },
  async stop() {
    // Nothing looked for a metadata server: this is not a GCE VM, and dcp knows its project.
    expect(fake.calls.filter((call) => call.method === 'metadata')).toEqual([]);
    await fake?.close();
  },
  flags: { zone: SEED.zone },
  myIp: () => fake.myIp,
  members: (cluster) => gcpMembers(fake, cluster),
  ingress: (cluster) => gcpIngress(fake, cluster),
  membersReachEachOther: (cluster) =>
    fake
      .firewalls()
      .some(
        (rule) =>
          rule.name === `dcp-${cluster}-members` &&
          rule.sourceTags?.includes(`dcp-${cluster}`) &&
          rule.targetTags?.includes(`dcp-${cluster}`) &&
          rule.allowed?.some((allowed) => allowed.IPProtocol === 'all'),
      ),
  leftovers: (cluster) => {
    const { instances, firewalls } = fake.leftovers(cluster);
    return [
      ...instances.map((i) => `VM ${i.name} (${i.status})`),
      ...firewalls.map((f) => `firewall rule ${f.name}`),
    ];
  },
  clearCalls() {
    expect(fake.calls.filter((call) => call.method === 'metadata')).toEqual([]);
    fake.calls.length = 0;
  },
  mutatingCalls: () => fake.mutatingCalls().map((call) => call.method),
  upCalls: () => [
    'firewalls.insert',
    'firewalls.insert',
    'firewalls.insert',
    'instances.insert',
    'instances.bulkInsert',
  ],
  refuse: (method, skip) =>
    fake.fail(
      method,
      {
        status: 403,
        reason: 'forbidden',
        message: "Required 'compute.instances.create' permission for 'projects/dcp-test-project'",
      },
      { skip },
    ),
  refusal: { message: /Google Cloud refused [\w.]+: forbidden/, hint: /permissions/ },
  steps: ['find network', 'firewall', 'launch scheduler', 'launch workers', 'instances'],
  privateNetwork: { flags: { vpc: SEED.customNetwork, subnet: SEED.customSubnet }, cidr: SEED.customCidr },
  callsFor50: 6,
  elsewhere: { provider: 'gcp', location: SEED.zone },
});
