import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoogleAuth } from 'google-auth-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SEED, startFakeGce, type FakeGce, type FakeGceOptions } from './index.js';

const open: FakeGce[] = [];
const dirs: string[] = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  await Promise.all(open.splice(0).map((f) => f.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const P = `projects/${SEED.project}`;
const Z = `${P}/zones/${SEED.zone}`;
const UBUNTU = 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON, read loosely
type Wire = any;

async function setup(options: FakeGceOptions = {}) {
  const fake = await startFakeGce(options);
  open.push(fake);
  const token = fake.issueToken();
  async function api(
    method: string,
    path: string,
    body?: unknown,
    query: Record<string, string> = {},
  ): Promise<{ status: number; body: Wire }> {
    const qs = new URLSearchParams(query).toString();
    const res = await fetch(`${fake.computeBase}${path}${qs ? `?${qs}` : ''}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: await res.json() };
  }
  /** Waits until the operation is DONE (looping over wait, as a client must). */
  async function done(op: Wire): Promise<Wire> {
    const where = op.zone ? `${P}/zones/${String(op.zone).split('/').pop()}` : `${P}/global`;
    let current = op;
    while (current.status !== 'DONE')
      current = (await api('POST', `${where}/operations/${op.name}/wait`)).body;
    return current;
  }
  return { fake, api, done };
}

function instance(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    machineType: `zones/${SEED.zone}/machineTypes/e2-standard-2`,
    labels: { 'dcp-cluster': 'c1', 'dcp-role': 'scheduler' },
    tags: { items: ['dcp-c1'] },
    disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: UBUNTU } }],
    networkInterfaces: [{ subnetwork: 'regions/us-central1/subnetworks/default' }],
    ...extra,
  };
}

function bulk(count: number, props: Record<string, unknown> = {}) {
  return {
    count: String(count),
    minCount: String(count),
    namePattern: 'c1-worker-####',
    instanceProperties: {
      machineType: 'e2-standard-2',
      labels: { 'dcp-cluster': 'c1', 'dcp-role': 'worker' },
      disks: [
        { boot: true, autoDelete: true, initializeParams: { sourceImage: UBUNTU, diskType: 'pd-balanced' } },
      ],
      networkInterfaces: [{ network: 'global/networks/default' }],
      serviceAccounts: [],
      ...props,
    },
  };
}

describe('auth', () => {
  it('refuses compute calls without a token from /token, in GCE error shape', async () => {
    const { fake } = await setup();
    const bare = await fetch(`${fake.computeBase}${P}`);
    expect(bare.status).toBe(401);
    const body = (await bare.json()) as Wire;
    expect(body.error.code).toBe(401);
    expect(body.error.errors[0]).toMatchObject({ domain: 'global', reason: 'authError' });
    const forged = await fetch(`${fake.computeBase}${P}`, {
      headers: { authorization: 'Bearer ya29.made-up' },
    });
    expect(forged.status).toBe(401);
    expect(fake.calls.map((c) => [c.method, c.status, c.reason])).toEqual([
      ['projects.get', 401, 'authError'],
      ['projects.get', 401, 'authError'],
    ]);
    expect((await fetch(`${fake.url}/checkip`).then((r) => r.text())) as string).toBe(`${fake.myIp}\n`);
  });

  it("gives google-auth-library's real ADC path (external_account_authorized_user) a token", async () => {
    const { fake } = await setup();
    const dir = mkdtempSync(join(tmpdir(), 'fake-gce-adc-'));
    dirs.push(dir);
    const file = fake.writeAdcFile(dir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', file);
    vi.stubEnv('METADATA_SERVER_DETECTION', 'none');
    // A safety net: a metadata-server probe lands on the fake (logged) instead of 169.254.169.254.
    vi.stubEnv('GCE_METADATA_HOST', new URL(fake.url).host);
    // Without a project id, getClient() runs `gcloud config config-helper` and asks the metadata
    // server for one (METADATA_SERVER_DETECTION does not stop that): give it one.
    const options = { scopes: ['https://www.googleapis.com/auth/cloud-platform'], projectId: SEED.project };
    const auth = new GoogleAuth(options);
    const client = await auth.getClient();
    const res = await client.request<{ name: string; id: string }>({
      url: `${fake.computeBase}${P}`,
      method: 'GET',
    });
    expect(res.data).toMatchObject({ name: SEED.project, id: SEED.projectNumber });
    const token = fake.calls.find((c) => c.method === 'token');
    expect(token?.body).toMatchObject({ grant_type: 'refresh_token' });
    expect(fake.calls.at(-1)).toMatchObject({ method: 'projects.get', status: 200 });

    // A refresh token the fake never issued is refused the OAuth way.
    const revoked = fake.writeAdcFile(dir, { refresh_token: 'revoked' });
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', revoked);
    const other = await new GoogleAuth(options).getClient();
    await expect(other.getRequestHeaders()).rejects.toThrow(/invalid_grant/);
    expect(fake.calls.filter((c) => c.method === 'metadata')).toEqual([]);
  });
});

describe('instances', () => {
  it('insert answers an operation at once; the VM runs, and the operation is DONE, after provisioningMs', async () => {
    const { fake, api, done } = await setup({ provisioningMs: 200, waitMaxMs: 50 });
    const insert = await api('POST', `${Z}/instances`, instance('c1-scheduler'));
    expect(insert.status).toBe(200);
    expect(insert.body).toMatchObject({
      kind: 'compute#operation',
      operationType: 'insert',
      status: 'RUNNING',
    });
    expect(insert.body.name).toMatch(/^operation-\d+-[0-9a-f]+/);
    expect((await api('GET', `${Z}/instances/c1-scheduler`)).body.status).toBe('PROVISIONING');
    // wait answers after waitMaxMs even when the operation is not DONE yet.
    const early = await api('POST', `${Z}/operations/${insert.body.name}/wait`);
    expect(early.body.status).toBe('RUNNING');
    const op = await done(insert.body);
    expect(op.error).toBeUndefined();
    const vm = (await api('GET', `${Z}/instances/c1-scheduler`)).body;
    expect(vm).toMatchObject({
      status: 'RUNNING',
      labels: { 'dcp-cluster': 'c1' },
      tags: { items: ['dcp-c1'] },
    });
    expect(vm.id).toMatch(/^\d{19}$/);
    expect(vm.insertedAt).toBeUndefined(); // test-only fields stay off the wire
    const [stored] = fake.instances();
    expect(stored!.runningAt! - stored!.insertedAt).toBe(200);
    expect(stored).toMatchObject({ bootDiskType: 'pd-balanced', zoneName: SEED.zone, fromBulk: false });
    expect(stored!.sourceImage).toMatch(
      /\/projects\/ubuntu-os-cloud\/global\/images\/ubuntu-2404-noble-amd64-v20261101$/,
    );
  });

  it('allocates internal addresses in order, an external one only with accessConfigs; default SA unless []', async () => {
    const { api } = await setup();
    const nat = {
      networkInterfaces: [
        {
          subnetwork: 'regions/us-central1/subnetworks/default',
          accessConfigs: [{ type: 'ONE_TO_ONE_NAT' }],
        },
      ],
    };
    await api('POST', `${Z}/instances`, instance('a', nat));
    await api('POST', `${Z}/instances`, instance('b', { serviceAccounts: [] }));
    const a = (await api('GET', `${Z}/instances/a`)).body;
    const b = (await api('GET', `${Z}/instances/b`)).body;
    expect(a.networkInterfaces[0]).toMatchObject({ name: 'nic0', networkIP: '10.128.0.2' });
    expect(a.networkInterfaces[0].accessConfigs[0]).toMatchObject({
      type: 'ONE_TO_ONE_NAT',
      natIP: '198.51.100.1',
    });
    expect(b.networkInterfaces[0].networkIP).toBe('10.128.0.3');
    expect(b.networkInterfaces[0].accessConfigs).toBeUndefined();
    expect(a.serviceAccounts).toEqual([{ email: SEED.defaultServiceAccount, scopes: SEED.defaultScopes }]);
    expect(b.serviceAccounts).toBeUndefined();
    expect(a.shieldedInstanceConfig).toEqual({
      enableSecureBoot: false,
      enableVtpm: true,
      enableIntegrityMonitoring: true,
    });
    // The loopback subnet's VMs get this machine's loopback addresses.
    await api(
      'POST',
      `${Z}/instances`,
      instance('lo', {
        networkInterfaces: [{ subnetwork: `regions/us-central1/subnetworks/${SEED.loopbackSubnet}` }],
      }),
    );
    expect((await api('GET', `${Z}/instances/lo`)).body.networkInterfaces[0].networkIP).toBe('127.100.0.2');
  });

  it('does a call with a requestId once: the same id again answers the same operation', async () => {
    const { fake, api } = await setup();
    const requestId = '8f8c0c3e-4d1a-4b6e-9d1f-2a3b4c5d6e7f';
    const first = await api('POST', `${Z}/instances`, instance('once'), { requestId });
    const again = await api('POST', `${Z}/instances`, instance('once'), { requestId });
    expect(again.status).toBe(200);
    expect(again.body.name).toBe(first.body.name);
    expect(fake.instances()).toHaveLength(1);
    expect(fake.instances()[0]?.requestId).toBe(requestId);
    // Without it, the same insert is a conflict.
    const conflict = await api('POST', `${Z}/instances`, instance('once'));
    expect([conflict.status, conflict.body.error.errors[0].reason]).toEqual([409, 'alreadyExists']);
    const badId = await api('POST', `${Z}/instances`, instance('x'), { requestId: 'not-a-uuid' });
    expect([badId.status, badId.body.error.errors[0].reason]).toEqual([400, 'invalid']);
  });

  it('bulkInsert numbers names after the highest existing, and takes only a bare machineType', async () => {
    const { fake, api, done } = await setup();
    const first = await api('POST', `${Z}/instances/bulkInsert`, bulk(3));
    expect(first.body).toMatchObject({ operationType: 'bulkInsert' });
    await done(first.body);
    await api('POST', `${Z}/instances/bulkInsert`, bulk(2));
    expect(fake.instances().map((i) => i.name)).toEqual([
      'c1-worker-0001',
      'c1-worker-0002',
      'c1-worker-0003',
      'c1-worker-0004',
      'c1-worker-0005',
    ]);
    expect(fake.instances().every((i) => i.fromBulk && i.serviceAccounts === undefined)).toBe(true);
    const url = await api(
      'POST',
      `${Z}/instances/bulkInsert`,
      bulk(1, { machineType: `zones/${SEED.zone}/machineTypes/e2-standard-2` }),
    );
    expect([url.status, url.body.error.errors[0].reason]).toEqual([400, 'invalid']);
    expect(url.body.error.message).toMatch(/machineType.*must be a name/i);
  });

  it('bulkInsert is all or nothing: capacity and quota fail at once, and nothing is made', async () => {
    const { fake, api } = await setup({ capacity: 4, cpuQuota: 6 });
    const tooMany = await api('POST', `${Z}/instances/bulkInsert`, bulk(5));
    expect([tooMany.status, tooMany.body.error.errors[0].reason]).toEqual([503, 'insufficientCapacity']);
    const overQuota = await api('POST', `${Z}/instances/bulkInsert`, bulk(4)); // 8 vCPUs > 6
    expect([overQuota.status, overQuota.body.error.errors[0].reason]).toEqual([403, 'quotaExceeded']);
    expect(overQuota.body.error.message).toBe("Quota 'CPUS' exceeded. Limit: 6.0 in region us-central1.");
    expect(fake.instances()).toEqual([]);
    // A single insert learns it from its operation.
    await api('POST', `${Z}/instances/bulkInsert`, bulk(3));
    const op = (await api('POST', `${Z}/instances`, instance('one-more'))).body;
    expect(op).toMatchObject({ status: 'DONE', httpErrorStatusCode: 403 });
    expect(op.error.errors[0]).toEqual({
      code: 'QUOTA_EXCEEDED',
      message: "Quota 'CPUS' exceeded.  Limit: 6.0 in region us-central1.",
    });
    expect(fake.instances()).toHaveLength(3);
  });

  it('filters lists by label, label key, name regex and status; aggregates over zones', async () => {
    const { api } = await setup();
    await api('POST', `${Z}/instances`, instance('c1-scheduler'));
    await api('POST', `${Z}/instances`, instance('c2-scheduler', { labels: { 'dcp-cluster': 'c2' } }));
    await api('POST', `${Z}/instances`, instance('other', { labels: {} }));
    const names = async (filter: string, path = `${Z}/instances`) => {
      const res = await api('GET', path, undefined, { filter });
      expect(res.status).toBe(200);
      return ((res.body.items ?? []) as Wire[]).map((i) => i.name);
    };
    expect(await names('labels.dcp-cluster="c1"')).toEqual(['c1-scheduler']);
    expect(await names('labels.dcp-cluster=c2')).toEqual(['c2-scheduler']);
    expect(await names('labels.dcp-cluster:*')).toEqual(['c1-scheduler', 'c2-scheduler']);
    expect(await names('name eq "c[12]-.*"')).toEqual(['c1-scheduler', 'c2-scheduler']);
    expect(await names('name eq c1')).toEqual([]); // the regex must match the whole name
    expect(await names('(labels.dcp-cluster:*) (status="RUNNING") AND name != c2-scheduler')).toEqual([
      'c1-scheduler',
    ]);
    expect(await names('labels.dcp-cluster="nope"')).toEqual([]); // and `items` is absent, as in GCE
    const wrong = await api('GET', `${Z}/instances`, undefined, { filter: 'label.dcp-cluster="c1"' });
    expect([wrong.status, wrong.body.error.errors[0].reason]).toEqual([400, 'invalid']);

    await api('POST', `${P}/zones/europe-west1-b/instances`, {
      ...instance('eu', { networkInterfaces: [{ network: 'global/networks/default' }] }),
      machineType: 'zones/europe-west1-b/machineTypes/e2-standard-2',
    });
    const agg = await api('GET', `${P}/aggregated/instances`, undefined, {
      filter: 'labels.dcp-cluster:*',
      returnPartialSuccess: 'true',
    });
    expect(Object.keys(agg.body.items)).toEqual(SEED.zones.map((z) => `zones/${z}`));
    expect(agg.body.items[`zones/${SEED.zone}`].instances.map((i: Wire) => i.name)).toEqual([
      'c1-scheduler',
      'c2-scheduler',
    ]);
    expect(agg.body.items['zones/europe-west1-b'].instances[0].networkInterfaces[0].networkIP).toBe(
      '10.132.0.2',
    );
    expect(agg.body.items['zones/us-central1-b'].warning.code).toBe('NO_RESULTS_ON_PAGE');

    const page1 = await api('GET', `${Z}/instances`, undefined, { maxResults: '2' });
    expect(page1.body.items).toHaveLength(2);
    const page2 = await api('GET', `${Z}/instances`, undefined, {
      maxResults: '2',
      pageToken: page1.body.nextPageToken,
    });
    expect(page2.body.items.map((i: Wire) => i.name)).toEqual(['other']);
    expect(page2.body.nextPageToken).toBeUndefined();
  });

  it('delete: STOPPING for deletingMs, then gone (404, out of lists); absent ones are 404', async () => {
    const { fake, api, done } = await setup({ deletingMs: 100 });
    await api('POST', `${Z}/instances`, instance('doomed'));
    const del = await api('DELETE', `${Z}/instances/doomed`);
    expect(del.body).toMatchObject({ operationType: 'delete', status: 'RUNNING' });
    expect((await api('GET', `${Z}/instances/doomed`)).body.status).toBe('STOPPING');
    await done(del.body);
    expect((await api('GET', `${Z}/instances/doomed`)).status).toBe(404);
    expect((await api('GET', `${Z}/instances`)).body.items).toBeUndefined();
    expect(fake.instances()[0]?.deletedAt).toBeGreaterThan(0);
    const again = await api('DELETE', `${Z}/instances/doomed`);
    expect([again.status, again.body.error.errors[0].reason]).toEqual([404, 'notFound']);
  });

  it('a VM powered off from inside is TERMINATED, loses its external IP and is still a leftover', async () => {
    const { fake, api, done } = await setup();
    const nat = {
      networkInterfaces: [
        { network: 'global/networks/default', accessConfigs: [{ type: 'ONE_TO_ONE_NAT' }] },
      ],
    };
    await api('POST', `${Z}/instances`, instance('c1-scheduler', nat));
    fake.powerOffFromInside(SEED.zone, 'c1-scheduler');
    const vm = (await api('GET', `${Z}/instances/c1-scheduler`)).body;
    expect(vm.status).toBe('TERMINATED');
    expect(vm.networkInterfaces[0].accessConfigs[0].natIP).toBeUndefined();
    expect(fake.leftovers('c1').instances.map((i) => i.status)).toEqual(['TERMINATED']);
    await done((await api('DELETE', `${Z}/instances/c1-scheduler`)).body);
    expect(fake.leftovers('c1').instances).toEqual([]);
  });

  it('refuses pd-* disks on Hyperdisk-only machines (given or defaulted), and ARM images on x86', async () => {
    const { api } = await setup();
    const c4 = { machineType: `zones/${SEED.zone}/machineTypes/c4-standard-4` };
    const defaulted = await api('POST', `${Z}/instances`, instance('c4', c4));
    expect([defaulted.status, defaulted.body.error.errors[0].reason]).toEqual([400, 'invalid']);
    expect(defaulted.body.error.message).toContain(
      '[pd-balanced] disk type cannot be used by [c4-standard-4] machine type',
    );
    const hyperdisk = {
      ...c4,
      disks: [
        {
          boot: true,
          initializeParams: {
            sourceImage: UBUNTU,
            diskType: `zones/${SEED.zone}/diskTypes/hyperdisk-balanced`,
          },
        },
      ],
    };
    expect((await api('POST', `${Z}/instances`, instance('c4', hyperdisk))).status).toBe(200);
    const arm = {
      disks: [
        {
          boot: true,
          initializeParams: {
            sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-arm64',
          },
        },
      ],
    };
    const mismatch = await api('POST', `${Z}/instances`, instance('arm', arm));
    expect(mismatch.body.error.message).toMatch(/architecture \(ARM64\) is not compatible/);
  });

  it('refuses a metadata value over 256 KiB and metadata over 512 KiB in all', async () => {
    const { api } = await setup();
    const meta = (...sizes: number[]) => ({
      metadata: { items: sizes.map((n, i) => ({ key: `k${i}`, value: 'x'.repeat(n) })) },
    });
    const big = await api('POST', `${Z}/instances`, instance('big', meta(256 * 1024 + 1)));
    expect([big.status, big.body.error.errors[0].reason]).toEqual([400, 'invalid']);
    expect(big.body.error.message).toMatch(/is too large: maximum size 262144/);
    const sum = await api('POST', `${Z}/instances`, instance('sum', meta(200_000, 200_000, 200_000)));
    expect(sum.body.error.message).toMatch(/'resource.metadata' is too large: maximum size 524288/);
    const fits = await api(
      'POST',
      `${Z}/instances`,
      instance('fits', { metadata: { items: [{ key: 'startup-script', value: '#!/bin/sh\n' }] } }),
    );
    expect(fits.status).toBe(200);
  });
});

describe('firewalls', () => {
  it('opens an ingress rule without sources to 0.0.0.0/0, refuses duplicates, filters by name regex', async () => {
    const { fake, api, done } = await setup({ firewallMs: 50 });
    const rule = {
      network: 'global/networks/default',
      targetTags: ['dcp-c1'],
      allowed: [{ IPProtocol: 'tcp', ports: ['8786'] }],
    };
    const op = await api('POST', `${P}/global/firewalls`, { name: 'dcp-c1-open', ...rule });
    expect(op.body).toMatchObject({ status: 'RUNNING', operationType: 'insert' });
    expect(op.body.zone).toBeUndefined();
    expect((await done(op.body)).status).toBe('DONE');
    await api('POST', `${P}/global/firewalls`, { name: 'dcp-c1-members', ...rule, sourceTags: ['dcp-c1'] });
    await sleep(60);
    const open = (await api('GET', `${P}/global/firewalls/dcp-c1-open`)).body;
    expect(open).toMatchObject({ direction: 'INGRESS', priority: 1000, sourceRanges: ['0.0.0.0/0'] });
    expect(fake.firewalls().find((f) => f.name === 'dcp-c1-members')?.sourceRanges).toBeUndefined();
    const dup = await api('POST', `${P}/global/firewalls`, { name: 'dcp-c1-open', ...rule });
    expect([dup.status, dup.body.error.errors[0].reason]).toEqual([409, 'alreadyExists']);
    const both = await api('POST', `${P}/global/firewalls`, {
      name: 'x',
      ...rule,
      denied: [{ IPProtocol: 'all' }],
    });
    expect(both.status).toBe(400);
    const listed = await api('GET', `${P}/global/firewalls`, undefined, { filter: 'name eq "dcp-c1-.*"' });
    expect(listed.body.items.map((f: Wire) => f.name)).toEqual(['dcp-c1-open', 'dcp-c1-members']);
    const byNetwork = await api('GET', `${P}/global/firewalls`, undefined, {
      filter: 'network eq ".*/default"',
    });
    expect(byNetwork.body.items).toHaveLength(2 + SEED.defaultFirewalls.length);
    expect(fake.leftovers('c1').firewalls).toHaveLength(2);
    await done((await api('DELETE', `${P}/global/firewalls/dcp-c1-open`)).body);
    expect((await api('GET', `${P}/global/firewalls/dcp-c1-open`)).status).toBe(404);
  });
});

describe('faults', () => {
  it('synchronous: the error is answered and nothing is done', async () => {
    const { fake, api } = await setup();
    fake.fail('instances.insert', { status: 403, reason: 'forbidden', message: 'no' });
    const res = await api('POST', `${Z}/instances`, instance('x'));
    expect(res.status).toBe(403);
    expect(res.body.error).toEqual({
      code: 403,
      message: 'no',
      errors: [{ message: 'no', domain: 'global', reason: 'forbidden' }],
    });
    expect(fake.instances()).toEqual([]);
    expect((await api('POST', `${Z}/instances`, instance('x'))).status).toBe(200); // used up
    expect(fake.mutatingCalls().map((c) => [c.method, c.status, c.reason])).toEqual([
      ['instances.insert', 403, 'forbidden'],
      ['instances.insert', 200, undefined],
    ]);
  });

  it('operation: the call succeeds, the operation ends DONE with the error, and nothing is made', async () => {
    const { fake, api, done } = await setup();
    fake.fail('instances.bulkInsert', {
      reason: 'ZONE_RESOURCE_POOL_EXHAUSTED',
      message: 'no room',
      operation: true,
      httpErrorStatusCode: 503,
    });
    const res = await api('POST', `${Z}/instances/bulkInsert`, bulk(3));
    expect(res.status).toBe(200);
    const op = await done(res.body);
    expect(op).toMatchObject({
      status: 'DONE',
      httpErrorStatusCode: 503,
      httpErrorMessage: 'SERVICE UNAVAILABLE',
    });
    expect(op.error.errors).toEqual([{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message: 'no room' }]);
    expect(fake.instances()).toEqual([]);
    expect(fake.mutatingCalls().map((c) => c.method)).toEqual(['instances.bulkInsert']); // waits are not mutations
  });

  it('afterEffect: done, then the error; a retry under the same requestId makes nothing more', async () => {
    const { fake, api } = await setup();
    fake.fail('instances.insert', { status: 503, reason: 'backendError' }, { afterEffect: true });
    const requestId = '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9';
    const lost = await api('POST', `${Z}/instances`, instance('x'), { requestId });
    expect([lost.status, lost.body.error.errors[0].reason]).toEqual([503, 'backendError']);
    expect(fake.instances()).toHaveLength(1);
    const retry = await api('POST', `${Z}/instances`, instance('x'), { requestId });
    expect(retry.status).toBe(200);
    expect(fake.instances()).toHaveLength(1);
  });
});
