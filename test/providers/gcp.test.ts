/**
 * The GCP provider against the GCE fake, beyond what every cloud shows (gcp.conformance.test.ts):
 * what each VM is made with (labels, no service account, Shielded VM, OS Login, disk type,
 * image), the firewall's deny-all and its priorities, when workers get an external IP, where
 * project and zone come from, stopped VMs, GCE's own failures in words, namesakes, and doctor.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCluster, destroyCluster } from '../../src/cluster/engine.js';
import { firewallDoors } from '../../src/cluster/doctor.js';
import { planUp, type UpFlags } from '../../src/cluster/spec.js';
import { clusterDir } from '../../src/cluster/state.js';
import type { DcpError } from '../../src/errors.js';
import { ExitCode } from '../../src/errors.js';
import { gcpProvider } from '../../src/providers/gcp/index.js';
import type { Provider } from '../../src/providers/provider.js';
import { SEED, startFakeGce, type FakeGce } from '../fakes/gce/index.js';
import { CLI, tempDir } from '../helpers/cli.js';
import { gcpEnvironment, gcpMembers, privateHome } from './cloud-env.js';

let fake: FakeGce;
let adcDir: string;
const saved = { ...process.env };

beforeAll(async () => {
  fake = await startFakeGce({ provisioningMs: 200 });
  const home = tempDir('dcp-gcp-home-');
  adcDir = mkdtempSync(join(tmpdir(), 'dcp-gcp-adc-'));
  Object.assign(process.env, { ...privateHome(home), ...gcpEnvironment(fake, adcDir) });
});

afterAll(async () => {
  process.env = saved;
  await fake?.close();
});

beforeEach(() => {
  fake.calls.length = 0;
});

let counter = 0;
function flags(extra: Partial<UpFlags> = {}): UpFlags {
  return {
    name: `gcp-test-${++counter}`,
    provider: 'gcp',
    zone: SEED.zone,
    wait: false,
    insecure: false,
    image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
    workers: '2',
    ...extra,
  };
}

async function up(extra: Partial<UpFlags> = {}, provider: Provider = gcpProvider) {
  const plan = await planUp(flags(extra));
  return createCluster(plan, provider, { progress: () => undefined }, new AbortController().signal);
}

const quiet = { progress: () => undefined };
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as DcpError,
  );
const vms = (cluster: string) =>
  fake.instances().filter((i) => i.labels?.['dcp-cluster'] === cluster && i.deletedAt === undefined);

describe('what up makes', () => {
  it('labelled, hardened VMs: no service account at all, Shielded VM, OS Login, no project SSH keys', async () => {
    const record = await up();
    const made = vms(record.name);
    expect(made.map((vm) => vm.labels!['dcp-role']).sort()).toEqual(['scheduler', 'worker', 'worker']);
    const clusterId = made[0]!.labels!['dcp-cluster-id'];
    expect(clusterId).toMatch(/^[0-9a-f-]{36}$/);
    for (const vm of made) {
      expect(vm.labels).toMatchObject({
        'dcp-cluster': record.name,
        'dcp-cluster-id': clusterId,
        'dcp-protocol': 'tls',
      });
      // What the VM got, as GCE answers for it: no service account (left out, it would be the default one).
      expect(vm.serviceAccounts).toBeUndefined();
      expect(vm.shieldedInstanceConfig).toEqual({
        enableSecureBoot: true,
        enableVtpm: true,
        enableIntegrityMonitoring: true,
      });
      const metadata = Object.fromEntries((vm.metadata.items ?? []).map((item) => [item.key, item.value]));
      expect(metadata).toMatchObject({ 'enable-oslogin': 'TRUE', 'block-project-ssh-keys': 'TRUE' });
      expect(metadata['startup-script']).toMatch(/^#!\/bin\/bash\n/);
      expect(vm.sourceImage).toContain(`projects/ubuntu-os-cloud/global/images/${SEED.images.amd64New}`);
      expect(vm.bootDiskType).toBe('pd-balanced');
      expect(vm.requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
    // The workers all at once, reaching the scheduler by its internal DNS name.
    const workers = made.filter((vm) => vm.labels!['dcp-role'] === 'worker');
    expect(workers.every((vm) => vm.fromBulk)).toBe(true);
    expect(workers.map((vm) => vm.name).sort()).toEqual([
      `${record.name}-worker-0001`,
      `${record.name}-worker-0002`,
    ]);
    const dnsName = `${record.name}-scheduler.${SEED.zone}.c.${SEED.project}.internal`;
    for (const worker of workers) expect(worker.startupScript).toContain(`'tls://${dnsName}:8786'`);
    expect(record.details).toMatchObject({
      project: SEED.project,
      zone: SEED.zone,
      scheduler_internal_name: dnsName,
    });
    await destroyCluster(record.name, quiet);
  });

  it('firewall: dcp’s allows over a deny-all on the cluster’s tag, above the default network’s rules; every rule names its sources', async () => {
    const record = await up();
    const rules = fake.firewalls().filter((rule) => rule.name.startsWith(`dcp-${record.name}-`));
    expect(rules.map((rule) => rule.name).sort()).toEqual(
      ['deny', 'in-1', 'members'].map((suffix) => `dcp-${record.name}-${suffix}`),
    );
    const byName = (suffix: string) => rules.find((rule) => rule.name === `dcp-${record.name}-${suffix}`)!;
    expect(byName('deny')).toMatchObject({
      priority: 101,
      sourceRanges: ['0.0.0.0/0'],
      targetTags: [`dcp-${record.name}`],
      denied: [{ IPProtocol: 'all' }],
    });
    const defaults = fake.firewalls().filter((rule) => rule.name.startsWith('default-allow-'));
    expect(defaults.length).toBeGreaterThan(0);
    expect(defaults.every((rule) => rule.priority > byName('deny').priority)).toBe(true);
    // The ingress reaches the scheduler only, whose tag workers do not carry.
    expect(byName('in-1')).toMatchObject({ priority: 100, targetTags: [`dcps-${record.name}`] });
    expect(vms(record.name).find((vm) => vm.labels!['dcp-role'] === 'worker')!.tags.items).toEqual([
      `dcp-${record.name}`,
    ]);
    // The description carries the cluster (rules have no labels).
    expect(
      rules.every((rule) =>
        rule.description.includes(`dcp-cluster-id=${vms(record.name)[0]!.labels!['dcp-cluster-id']}`),
      ),
    ).toBe(true);
    // Each insert named its sources: GCE would have opened a rule without any to the world.
    const inserts = fake.calls.filter((call) => call.method === 'firewalls.insert');
    for (const call of inserts) {
      const body = call.body as { sourceRanges?: string[]; sourceTags?: string[] };
      expect((body.sourceRanges?.length ?? 0) + (body.sourceTags?.length ?? 0)).toBeGreaterThan(0);
    }
    // In force before any VM was asked for.
    const lastFirewall = Math.max(...inserts.map((call) => call.at));
    expect(Math.min(...vms(record.name).map((vm) => vm.insertedAt))).toBeGreaterThanOrEqual(lastFirewall);
    await destroyCluster(record.name, quiet);
  });

  it('workers get an external IP only to install Docker without Cloud NAT; never with NAT, preinstalled, or private', async () => {
    const withoutNat = await up();
    const external = (name: string) =>
      gcpMembers(fake, name)
        .filter((m) => m.role === 'worker')
        .map((m) => m.publicIp !== undefined);
    expect(external(withoutNat.name)).toEqual([true, true]);
    expect(withoutNat.details.workers_external_ip).toBe(true);
    const withNat = await up({ vpc: SEED.customNetwork, subnet: SEED.customSubnet });
    expect(external(withNat.name)).toEqual([false, false]);
    expect(gcpMembers(fake, withNat.name).find((m) => m.role === 'scheduler')!.publicIp).toBeTruthy();
    const preinstalled = await up({ runtime: 'preinstalled', imageFamily: SEED.images.daskFamily });
    expect(external(preinstalled.name)).toEqual([false, false]);
    expect(vms(preinstalled.name)[0]!.sourceImage).toContain(
      `projects/${SEED.project}/global/images/${SEED.images.dask}`,
    );
    for (const record of [withoutNat, withNat, preinstalled]) await destroyCluster(record.name, quiet);
  });

  it('machine series: Hyperdisk for C4, the arm64 image for T2A', async () => {
    const c4 = await up({ instanceType: 'c4-standard-4' });
    expect(vms(c4.name).every((vm) => vm.bootDiskType === 'hyperdisk-balanced')).toBe(true);
    const arm = await up({ instanceType: 't2a-standard-4' });
    expect(vms(arm.name).every((vm) => vm.sourceImage.endsWith(SEED.images.arm64New))).toBe(true);
    for (const record of [c4, arm]) await destroyCluster(record.name, quiet);
  });
});

describe('where: project, zone and credentials, before anything is made', () => {
  const withEnv = async (changes: Record<string, string | undefined>, run: () => Promise<unknown>) => {
    const before = { ...process.env };
    for (const [key, value] of Object.entries(changes))
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    try {
      return await run();
    } finally {
      process.env = before;
    }
  };

  it('no project, no zone, no credentials: exit 2 naming the flag and the variables, and no call made', async () => {
    const noProject = (await withEnv({ CLOUDSDK_CORE_PROJECT: undefined }, () => failure(up()))) as DcpError;
    expect(noProject.exitCode).toBe(ExitCode.usage);
    expect(noProject.message).toBe('no Google Cloud project is known');
    expect(noProject.hint).toMatch(/--project.*CLOUDSDK_CORE_PROJECT/);
    const noZone = (await withEnv({}, () => failure(up({ zone: undefined })))) as DcpError;
    expect(noZone.exitCode).toBe(ExitCode.usage);
    expect(noZone.hint).toMatch(/--zone.*CLOUDSDK_COMPUTE_ZONE/);
    const noCredentials = (await withEnv(
      {
        GOOGLE_APPLICATION_CREDENTIALS: join(adcDir, 'missing.json'),
        CLOUDSDK_CORE_PROJECT: 'other-project-1',
      },
      () => failure(up()),
    )) as DcpError;
    expect(noCredentials.exitCode).toBe(ExitCode.usage);
    expect(noCredentials.message).toMatch(/^no Google Cloud credentials found/);
    expect(fake.calls.filter((call) => call.method !== 'token')).toEqual([]);
  });

  it('gcloud’s active configuration gives project and zone; a flag or variable wins over it', async () => {
    const gcloud = join(adcDir, 'gcloud-config');
    mkdirSync(join(gcloud, 'configurations'), { recursive: true });
    writeFileSync(join(gcloud, 'active_config'), 'work\n');
    writeFileSync(
      join(gcloud, 'configurations', 'config_work'),
      `[core]\nproject = ${SEED.project}\n\n[compute]\nzone = us-central1-b\n`,
    );
    const record = (await withEnv({ CLOUDSDK_CONFIG: gcloud, CLOUDSDK_CORE_PROJECT: undefined }, () =>
      up({ zone: undefined }),
    )) as Awaited<ReturnType<typeof up>>;
    expect(record.details).toMatchObject({ project: SEED.project, zone: 'us-central1-b' });
    expect(vms(record.name).every((vm) => vm.zoneName === 'us-central1-b')).toBe(true);
    await destroyCluster(record.name, quiet);
    fake.calls.length = 0;
    const error = (await withEnv({ CLOUDSDK_CONFIG: gcloud, CLOUDSDK_CORE_PROJECT: 'no-such-project' }, () =>
      failure(up()),
    )) as DcpError;
    expect(error.message).toMatch(/there is no project no-such-project \(from CLOUDSDK_CORE_PROJECT\)/);
    expect(fake.mutatingCalls()).toEqual([]);
  });

  it('an endpoint override that would send the token in the clear to another machine is refused', async () => {
    const error = (await withEnv(
      { CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: 'http://compute.example.com/compute/v1/' },
      () => failure(up()),
    )) as DcpError;
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toMatch(/would send your Google credentials unencrypted/);
    const password = (await withEnv(
      { CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: 'https://user:s3cret@127.0.0.1:9/compute/v1/' },
      () => failure(up()),
    )) as DcpError;
    expect(password.exitCode).toBe(ExitCode.usage);
    expect(`${password.message} ${password.hint}`).not.toContain('s3cret');
  });

  it('a machine type the zone lacks, a network or subnet that is not there, a name taken: said, nothing made', async () => {
    const cases: [Partial<UpFlags>, RegExp][] = [
      [{ instanceType: 'e2-nonexistent-2' }, /no machine type e2-nonexistent-2 in us-central1-a/],
      [{ vpc: 'no-such-net' }, /there is no network no-such-net/],
      [{ subnet: 'no-such-subnet' }, /there is no subnet no-such-subnet in us-central1/],
      [{ subnet: '../../global/firewalls/x' }, /is not a subnetwork name/],
    ];
    for (const [extra, message] of cases) {
      const error = await failure(up(extra));
      expect(error?.message).toMatch(message);
      expect(error?.exitCode).toBe(ExitCode.usage);
    }
    expect(fake.mutatingCalls()).toEqual([]);
    const record = await up();
    rmSync(clusterDir(record.name), { recursive: true });
    fake.calls.length = 0;
    const taken = await failure(up({ name: record.name }));
    expect(taken?.message).toBe(`a cluster named ${record.name} already exists in project ${SEED.project}`);
    expect(fake.mutatingCalls()).toEqual([]);
    await destroyCluster(record.name, quiet, process.env, { provider: 'gcp' });
    expect(fake.leftovers(record.name)).toEqual({ instances: [], firewalls: [] });
  });
});

describe('failures, in GCE’s words', () => {
  it('no capacity for the workers (bulkInsert, at once): everything rolled back, try another zone', async () => {
    fake.fail('instances.bulkInsert', {
      status: 503,
      reason: 'insufficientCapacity',
      message:
        "The zone 'projects/dcp-test-project/zones/us-central1-a' does not have enough resources available.",
    });
    const error = await failure(up({ name: 'gcp-capacity' }));
    expect(error?.message).toMatch(/Google Cloud refused instances.bulkInsert: insufficientCapacity/);
    expect(error?.message).toContain('rolled back');
    expect(error?.hint).toMatch(/another --zone or --instance-type/);
    expect(fake.leftovers('gcp-capacity')).toEqual({ instances: [], firewalls: [] });
  });

  it('the scheduler’s insert fails in its operation (quota): the quota’s name and limit, and nothing left', async () => {
    fake.fail('instances.insert', {
      operation: true,
      reason: 'QUOTA_EXCEEDED',
      message: "Quota 'CPUS' exceeded.  Limit: 24.0 in region us-central1.",
      httpErrorStatusCode: 403,
    });
    const error = await failure(up({ name: 'gcp-quota' }));
    expect(error?.message).toMatch(
      /QUOTA_EXCEEDED: Quota 'CPUS' exceeded\. {2}Limit: 24\.0 in region us-central1\./,
    );
    expect(error?.hint).toMatch(/quota/);
    expect(fake.leftovers('gcp-quota')).toEqual({ instances: [], firewalls: [] });
  });

  it('a lost answer to an insert is retried under the same requestId: one VM, not two', async () => {
    fake.fail(
      'instances.insert',
      { status: 503, reason: 'backendError', message: 'lost' },
      { afterEffect: true },
    );
    const record = await up({ name: 'gcp-lost' });
    expect(fake.calls.filter((call) => call.method === 'instances.insert')).toHaveLength(2);
    expect(vms(record.name).filter((vm) => vm.labels!['dcp-role'] === 'scheduler')).toHaveLength(1);
    await destroyCluster(record.name, quiet);
  });

  it('a rollback removes only what its own run made, never a namesake’s rules or VMs', async () => {
    const theirs = await up({ name: 'gcp-namesake' });
    rmSync(clusterDir(theirs.name), { recursive: true });
    const racing: Provider = {
      ...gcpProvider,
      prepare: async (spec) => ({
        ...(await gcpProvider.prepare({ ...spec, name: 'gcp-namesake-free' })),
        name: spec.name,
      }),
    };
    const before = fake.leftovers('gcp-namesake');
    fake.fail('instances.bulkInsert', { status: 403, reason: 'forbidden', message: 'denied' });
    // Its firewall names are the namesake's: GCE refuses them (alreadyExists), and the rollback must leave theirs.
    const error = await failure(up({ name: 'gcp-namesake' }, racing));
    expect(error?.message).toContain('rolled back');
    fake.clearFaults();
    expect(fake.leftovers('gcp-namesake')).toEqual(before);
    await destroyCluster('gcp-namesake', quiet, process.env, { provider: 'gcp' });
    expect(fake.leftovers('gcp-namesake')).toEqual({ instances: [], firewalls: [] });
  });
});

describe('stopped VMs, list and down', () => {
  it('a VM that powered itself off is TERMINATED, still billed: list says stopped, down removes it', async () => {
    const record = await up();
    for (const vm of vms(record.name)) fake.powerOffFromInside(SEED.zone, vm.name);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(vms(record.name).every((vm) => vm.status === 'TERMINATED')).toBe(true);
    const found = (await gcpProvider.discover!(undefined)).find((c) => c.name === record.name)!;
    expect(found.location).toBe(SEED.zone);
    expect(found.members.every((m) => !m.running)).toBe(true);
    rmSync(clusterDir(record.name), { recursive: true });
    // No --zone: every zone of the project (aggregated list).
    await destroyCluster(record.name, quiet, process.env, { provider: 'gcp' });
    expect(fake.leftovers(record.name)).toEqual({ instances: [], firewalls: [] });
    expect(fake.calls.some((call) => call.method === 'instances.aggregatedList')).toBe(true);
  });

  it('dcp doctor reads the network’s live rules: one reaching the scheduler above the deny-all is reported, the defaults below it are not', async () => {
    const record = await up({ ingress: ['198.51.100.0/24:8786'] });
    const view = await gcpProvider.firewall!(record);
    expect(view.rules).toEqual([{ cidr: '198.51.100.0/24', ports: [8786] }]);
    expect(firewallDoors(view).every((door) => door.verdict === 'holds')).toBe(true);
    // Someone opens SSH to the world for the cluster's workers, at a priority that beats dcp's
    // deny, and RDP at the console's default priority, which does not.
    fake.insertFirewall({
      name: `ssh-${record.name}`,
      network: `global/networks/${SEED.defaultNetwork}`,
      priority: 50,
      sourceRanges: ['0.0.0.0/0'],
      targetTags: [`dcp-${record.name}`],
      allowed: [{ IPProtocol: 'tcp', ports: ['22'] }],
    });
    fake.insertFirewall({
      name: `rdp-${record.name}`,
      network: `global/networks/${SEED.defaultNetwork}`,
      sourceRanges: ['0.0.0.0/0'],
      targetTags: [`dcp-${record.name}`],
      allowed: [{ IPProtocol: 'tcp', ports: ['3389'] }],
    });
    fake.calls.length = 0;
    const open = firewallDoors(await gcpProvider.firewall!(record)).filter((door) => door.verdict === 'open');
    expect(open.map((door) => door.detail)).toEqual([
      expect.stringMatching(
        /lets 0\.0\.0\.0\/0 \(the whole internet\) reach 22, which the cluster was not made with/,
      ),
    ]);
    expect(fake.mutatingCalls()).toEqual([]);
    await destroyCluster(record.name, quiet);
  });
});

describe('what the review found', () => {
  it('down with the wrong --zone still finds every VM, and keeps the firewall while any is left', async () => {
    const record = await up({ zone: 'us-central1-b' });
    rmSync(clusterDir(record.name), { recursive: true });
    // A delete that fails inside its operation: the rules stay, so no VM is left unguarded.
    fake.fail('instances.delete', { operation: true, reason: 'RESOURCE_NOT_READY', message: 'busy' });
    await expect(
      destroyCluster(record.name, quiet, process.env, { provider: 'gcp', location: 'us-central1-a' }),
    ).rejects.toThrow(/RESOURCE_NOT_READY/);
    expect(fake.leftovers(record.name).firewalls).toHaveLength(3);
    await destroyCluster(record.name, quiet, process.env, { provider: 'gcp', location: 'us-central1-a' });
    expect(fake.leftovers(record.name)).toEqual({ instances: [], firewalls: [] });
  });

  it('clusters x and x-scheduler: one’s ingress never reaches the other’s VMs', async () => {
    const alpha = await up({ name: 'alpha', ingress: ['198.51.100.0/24:8786'] });
    const other = await up({ name: 'alpha-scheduler' });
    for (const vm of vms('alpha-scheduler')) expect(vm.tags.items).not.toContain('dcps-alpha');
    const view = await gcpProvider.firewall!(other);
    expect(view.rules.map((rule) => rule.cidr)).toEqual([`${fake.myIp}/32`]);
    for (const record of [alpha, other]) await destroyCluster(record.name, quiet);
  });

  it('a rule of the network that beats the deny-all is warned of at up', async () => {
    fake.insertFirewall({
      name: 'ssh-warned',
      network: `global/networks/${SEED.defaultNetwork}`,
      priority: 10,
      sourceRanges: ['0.0.0.0/0'],
      targetTags: ['dcp-gcp-warned'],
      allowed: [{ IPProtocol: 'tcp', ports: ['22'] }],
    });
    const warnings: string[] = [];
    const plan = await planUp(flags({ name: 'gcp-warned' }));
    const record = await createCluster(
      plan,
      gcpProvider,
      { progress: () => undefined, warn: (message) => warnings.push(message) },
      new AbortController().signal,
    );
    expect(warnings.join('\n')).toMatch(
      /lets 0\.0\.0\.0\/0 \(the whole internet\) reach 22, which the cluster was not made with, over dcp's deny-all/,
    );
    await destroyCluster(record.name, quiet);
  });

  it('from an address asked for, a port not asked for is warned of too; a rule list dcp may not read is a warning, not a failure', async () => {
    fake.insertFirewall({
      name: 'ssh-from-office',
      network: `global/networks/${SEED.defaultNetwork}`,
      priority: 50,
      sourceRanges: ['192.0.2.0/24'],
      targetTags: ['dcp-gcp-office'],
      allowed: [{ IPProtocol: 'tcp', ports: ['22'] }],
    });
    const warnings: string[] = [];
    const hooks = { progress: () => undefined, warn: (message: string) => warnings.push(message) };
    const office = await createCluster(
      await planUp(flags({ name: 'gcp-office', ingress: ['192.0.2.0/24:8786'] })),
      gcpProvider,
      hooks,
      new AbortController().signal,
    );
    expect(warnings.join('\n')).toMatch(
      /lets 192\.0\.2\.0\/24 reach 22, which the cluster was not made with/,
    );
    fake.fail('firewalls.list', { status: 403, reason: 'forbidden', message: 'denied' }, { skip: 1 });
    const unread = await createCluster(
      await planUp(flags({ name: 'gcp-unread' })),
      gcpProvider,
      hooks,
      new AbortController().signal,
    );
    expect(warnings.join('\n')).toMatch(/the network's other firewall rules could not be read/);
    for (const record of [office, unread]) await destroyCluster(record.name, quiet);
  });

  it('a zone that does not answer: down with state goes on; down by name keeps the rules', async () => {
    const record = await up();
    fake.unreachableZones.add('europe-west1-b');
    try {
      // The journal says the zone: the others cannot hold this run's VMs.
      await destroyCluster(record.name, quiet);
      expect(fake.leftovers(record.name)).toEqual({ instances: [], firewalls: [] });
      const other = await up();
      rmSync(clusterDir(other.name), { recursive: true });
      await expect(destroyCluster(other.name, quiet, process.env, { provider: 'gcp' })).rejects.toThrow(
        /zones\/europe-west1-b did not answer: .* its firewall rules are kept \(removed VMs /,
      );
      expect(fake.leftovers(other.name)).toMatchObject({ instances: [] });
      expect(fake.leftovers(other.name).firewalls).toHaveLength(3);
      fake.unreachableZones.clear();
      await destroyCluster(other.name, quiet, process.env, { provider: 'gcp' });
      expect(fake.leftovers(other.name)).toEqual({ instances: [], firewalls: [] });
    } finally {
      fake.unreachableZones.clear();
    }
  });

  it('a Shared VPC host’s rules of a cluster whose VMs are in another project are never touched', async () => {
    fake.insertFirewall({
      name: 'dcp-svc-deny',
      network: `global/networks/${SEED.defaultNetwork}`,
      sourceRanges: ['0.0.0.0/0'],
      targetTags: ['dcp-svc'],
      denied: [{ IPProtocol: 'all' }],
      description:
        'nothing else reaches the members (Dask cluster svc, made by dcp) dcp-cluster=svc dcp-cluster-id=0b7c3a52-2f0e-4c59-9d1e-0d3b1c1b2a11 dcp-project=service-project-1',
    });
    expect((await gcpProvider.discover!(undefined)).map((c) => c.name)).not.toContain('svc');
    expect(await destroyCluster('svc', quiet, process.env, { provider: 'gcp' })).toBeUndefined();
    expect(fake.firewalls().some((rule) => rule.name === 'dcp-svc-deny')).toBe(true);
  });

  it('a name used in another zone of the project is refused, as down would meet both', async () => {
    const first = await up({ zone: 'us-central1-b' });
    // Its rules gone (as if made elsewhere): only the VMs in another zone say the name is taken.
    for (const rule of fake.firewalls().filter((r) => r.name.startsWith(`dcp-${first.name}-`)))
      await fetch(`${fake.computeBase}projects/${SEED.project}/global/firewalls/${rule.name}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${fake.issueToken()}` },
      });
    const error = await failure(up({ name: first.name }));
    expect(error?.message).toBe(`a cluster named ${first.name} already exists in project ${SEED.project}`);
    await destroyCluster(first.name, quiet);
  });

  it('an operation that answers at once, not done, is asked again after a pause, not in a tight loop', async () => {
    const quick = await startFakeGce({ provisioningMs: 2_000, waitMaxMs: 0 });
    const before = { ...process.env };
    Object.assign(process.env, gcpEnvironment(quick, mkdtempSync(join(tmpdir(), 'dcp-gcp-quick-'))));
    try {
      const record = await up({ name: 'gcp-quick' });
      const waits = quick.calls.filter((call) => call.method === 'zoneOperations.wait');
      expect(waits.length).toBeLessThan(30);
      await destroyCluster(record.name, quiet);
    } finally {
      process.env = before;
      await quick.close();
    }
  });
});

describe('the dcp command', () => {
  it('--zone and --region go with --provider, each with its own cloud', async () => {
    const env = { ...process.env, CI: 'true' };
    const cases: [string[], RegExp][] = [
      [['down', 'x', '--zone', SEED.zone, '--yes'], /--zone goes with --provider/],
      [['list', '--provider', 'aws', '--zone', SEED.zone], /--zone does not apply to aws/],
      [['down', 'x', '--provider', 'gcp', '--region', 'us-east1', '--yes'], /--region does not apply to gcp/],
      [['list', '--provider', 'aws', '--project', SEED.project], /--project goes with --provider gcp/],
      [
        ['list', '--provider', 'gcp', '--project', 'Bad_Project'],
        /--project: "Bad_Project" must be a project id/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = await execa('node', [CLI, ...args], { env, reject: false });
      expect(run.exitCode).toBe(ExitCode.usage);
      expect(run.stderr).toMatch(message);
    }
    expect(fake.calls).toEqual([]);
  });

  it('up --provider gcp --zone Z --no-wait --json, then down: addresses printed, labelled, nothing left', async () => {
    const env = { ...process.env, CI: 'true' };
    const name = 'gcp-cli';
    const upRun = await execa(
      'node',
      [
        CLI,
        'up',
        '--provider',
        'gcp',
        '--zone',
        SEED.zone,
        '--name',
        name,
        '--image',
        'x/dask:1',
        '--no-wait',
        '--json',
      ],
      { env, reject: false },
    );
    expect(upRun.stderr).not.toMatch(/error/);
    expect(upRun.exitCode).toBe(0);
    const out = JSON.parse(upRun.stdout) as { scheduler_address: string; provider: string; workers: number };
    const scheduler = gcpMembers(fake, name).find((m) => m.role === 'scheduler')!;
    expect(out).toMatchObject({
      provider: 'gcp',
      scheduler_address: `tls://${scheduler.publicIp}:8786`,
      workers: 2,
    });
    expect(vms(name)).toHaveLength(3);
    fake.powerOffFromInside(SEED.zone, `${name}-worker-0001`);
    const listRun = await execa('node', [CLI, 'list', '--provider', 'gcp', '--zone', SEED.zone, '--json'], {
      env,
    });
    expect(
      (JSON.parse(listRun.stdout) as { clusters: { name: string }[] }).clusters.map((c) => c.name),
    ).toContain(name);
    const downRun = await execa('node', [CLI, 'down', name, '--yes', '--json'], { env, reject: false });
    expect(downRun.exitCode).toBe(0);
    expect(fake.leftovers(name)).toEqual({ instances: [], firewalls: [] });
  });
});
