import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SEED, startFakeDigitalOcean, type FakeDigitalOcean, type FakeDigitalOceanOptions } from './index.js';

const open: FakeDigitalOcean[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wire JSON, read loosely
type Wire = any;

async function setup(options: FakeDigitalOceanOptions = {}) {
  const fake = await startFakeDigitalOcean(options);
  open.push(fake);
  async function api(
    method: string,
    path: string,
    body?: unknown,
    query: Record<string, string> = {},
    token: string | null = fake.token,
  ): Promise<{ status: number; body: Wire; headers: Headers }> {
    const qs = new URLSearchParams(query).toString();
    const res = await fetch(`${fake.url}${path}${qs ? `?${qs}` : ''}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers };
  }
  return { fake, api };
}

function droplet(extra: Record<string, unknown> = {}) {
  return { name: 'c1-scheduler', region: SEED.region, size: SEED.size, image: SEED.image, ...extra };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `c1-worker-${i + 1}`);
const inCidr = (ip: string, cidr: string) => {
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
};

describe('auth, headers and paging', () => {
  it('refuses a missing or wrong token with 401 in the API error shape; /checkip is plain text, unlogged', async () => {
    const { fake, api } = await setup();
    for (const token of [null, 'dop_v1_wrong']) {
      const res = await api('GET', '/v2/account', undefined, {}, token);
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ id: 'unauthorized', message: 'Unable to authenticate you' });
      expect(res.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    const ok = await api('GET', '/v2/account');
    expect(ok.body.account).toMatchObject({ droplet_limit: 25, email_verified: true, status: 'active' });
    expect(ok.headers.get('ratelimit-limit')).toBe('5000');
    expect(Number(ok.headers.get('ratelimit-remaining'))).toBe(4997);
    expect(Number(ok.headers.get('ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    const ip = await fetch(`${fake.url}/checkip`);
    expect(ip.headers.get('content-type')).toBe('text/plain');
    expect(await ip.text()).toBe('203.0.113.7\n');
    const unknown = await api('GET', '/v2/nothing/here');
    expect([unknown.status, unknown.body.id, unknown.body.message]).toEqual([
      404,
      'not_found',
      'The resource you were accessing could not be found.',
    ]);
    expect(fake.calls.map((c) => [c.method, c.status, c.errorId])).toEqual([
      ['account.get', 401, 'unauthorized'],
      ['account.get', 401, 'unauthorized'],
      ['account.get', 200, undefined],
      ['unknown', 404, 'not_found'],
    ]);
  });

  it('pages with per_page, links.pages as full URLs on its origin, and meta.total; pageSize caps a page', async () => {
    const { fake, api } = await setup({ pageSize: 3 });
    const first = await api('GET', '/v2/sizes', undefined, { per_page: '2' });
    expect(first.body.sizes.map((s: Wire) => s.slug)).toEqual(['s-1vcpu-1gb', 's-2vcpu-4gb']);
    expect(first.body.meta).toEqual({ total: 4 });
    expect(first.body.links.pages).toEqual({
      last: `${fake.url}/v2/sizes?per_page=2&page=2`,
      next: `${fake.url}/v2/sizes?per_page=2&page=2`,
    });
    const second = await fetch(first.body.links.pages.next, {
      headers: { authorization: `Bearer ${fake.token}` },
    }).then((r) => r.json() as Promise<Wire>);
    expect(second.sizes.map((s: Wire) => s.slug)).toEqual(['s-4vcpu-8gb', 'c-4']);
    expect(Object.keys(second.links.pages).sort()).toEqual(['first', 'prev']);
    // per_page=200 still gets pageSize (3) items; one page only means no pages at all.
    const capped = await api('GET', '/v2/sizes', undefined, { per_page: '200' });
    expect(capped.body.sizes).toHaveLength(3);
    const regions = await api('GET', '/v2/regions');
    expect(regions.body).toMatchObject({ links: {}, meta: { total: 3 } });
    expect(regions.body.regions.find((r: Wire) => r.slug === 'sfo3').sizes).not.toContain('c-4');
  });

  it('serves VPCs, the NAT gateway and images as seeded', async () => {
    const { api } = await setup();
    const vpcs = (await api('GET', '/v2/vpcs')).body.vpcs;
    const ams3 = vpcs.filter((v: Wire) => v.region === 'ams3');
    expect(ams3.map((v: Wire) => [v.id, v.ip_range, v.default])).toEqual([
      [SEED.defaultVpc, SEED.defaultCidr, true],
      [SEED.natVpc, SEED.natCidr, false],
      [SEED.bareVpc, SEED.bareCidr, false],
    ]);
    const nat = (await api('GET', `/v2/vpcs/${SEED.natVpc}`)).body.vpc;
    expect(nat).toMatchObject({ name: 'dcp-test-private', urn: `do:vpc:${SEED.natVpc}` });
    expect((await api('GET', `/v2/vpcs/${SEED.otherRegionVpc}`)).body.vpc.region).toBe('nyc3');
    const gateways = (await api('GET', '/v2/vpc_nat_gateways')).body.vpc_nat_gateways;
    expect(gateways).toHaveLength(1);
    expect(gateways[0]).toMatchObject({ state: 'ACTIVE', region: 'ams3', type: 'PUBLIC' });
    expect(gateways[0].vpcs).toEqual([
      { vpc_uuid: SEED.natVpc, gateway_ip: '10.20.0.2', default_gateway: true },
    ]);
    const image = (await api('GET', `/v2/images/${SEED.image}`)).body.image;
    expect(image).toMatchObject({ slug: SEED.image, distribution: 'Ubuntu', type: 'base' });
    expect((await api('GET', `/v2/images/${image.id}`)).body.image.slug).toBe(SEED.image);
    expect((await api('GET', '/v2/images/no-such-image')).status).toBe(404);
  });
});

describe('droplets', () => {
  it('creates by names: 10 at once, 11 refused with nothing made', async () => {
    const { fake, api } = await setup();
    const eleven = await api('POST', '/v2/droplets', { ...droplet(), name: undefined, names: names(11) });
    expect([eleven.status, eleven.body.id]).toEqual([422, 'unprocessable_entity']);
    expect(fake.droplets()).toEqual([]);
    const ten = await api('POST', '/v2/droplets', {
      ...droplet(),
      name: undefined,
      names: names(10),
      tags: ['dcp:c1'],
    });
    expect(ten.status).toBe(202);
    expect(ten.body.droplets.map((d: Wire) => d.name)).toEqual(names(10));
    expect(ten.body.links.actions).toHaveLength(10);
    expect(ten.body.links.actions[0]).toMatchObject({
      rel: 'create',
      href: expect.stringContaining(fake.url),
    });
    const one = await api('POST', '/v2/droplets', droplet({ tags: ['dcp:c1'] }));
    expect(one.body.droplet).toMatchObject({
      name: 'c1-scheduler',
      status: 'new',
      vpc_uuid: SEED.defaultVpc,
    });
    expect(one.body.links.actions).toHaveLength(1);
    // Paging over droplets: follow links.pages.next (which keeps tag_name and per_page) to the end.
    await api('POST', '/v2/droplets', droplet({ name: 'untagged' }));
    let next: string | undefined = `${fake.url}/v2/droplets?tag_name=dcp%3Ac1&per_page=4`;
    const seen: string[] = [];
    while (next) {
      const page: Wire = await fetch(next, { headers: { authorization: `Bearer ${fake.token}` } }).then((r) =>
        r.json(),
      );
      expect(page.meta.total).toBe(11);
      seen.push(...page.droplets.map((d: Wire) => d.name));
      next = page.links.pages?.next;
      if (next) expect(next).toMatch(new RegExp(`^${fake.url}/v2/droplets\\?.*tag_name=dcp%3Ac1`));
    }
    expect(seen).toEqual([...names(10), 'c1-scheduler']);
    const ids = fake.droplets().map((d) => d.id);
    expect(new Set(ids).size).toBe(12);
    const all = fake.droplets().flatMap((d) => d.networks.v4.map((n) => n.ip_address));
    expect(new Set(all).size).toBe(all.length);
    expect(all).not.toContain(fake.myIp);
  });

  it('is new with empty networks, addressed at addressingMs, active (action completed) at provisioningMs', async () => {
    const { fake, api } = await setup({ provisioningMs: 800, addressingMs: 200 });
    const created = await api('POST', '/v2/droplets', droplet());
    const { id } = created.body.droplet;
    expect(created.body.droplet.networks).toEqual({ v4: [], v6: [] });
    expect((await api('GET', `/v2/droplets/${id}`)).body.droplet.networks).toEqual({ v4: [], v6: [] });
    const actionId = created.body.links.actions[0].id;
    expect((await api('GET', `/v2/actions/${actionId}`)).body.action).toMatchObject({
      status: 'in-progress',
      type: 'create',
      resource_id: id,
      resource_type: 'droplet',
      region_slug: 'ams3',
      completed_at: null,
    });
    await sleep(250);
    const addressed = (await api('GET', `/v2/droplets/${id}`)).body.droplet;
    expect(addressed.status).toBe('new');
    const types = addressed.networks.v4.map((n: Wire) => n.type);
    expect(types).toEqual(['private', 'public']);
    expect(inCidr(addressed.networks.v4[0].ip_address, SEED.defaultCidr)).toBe(true);
    expect(addressed.networks.v4[0].ip_address).toBe('10.110.0.2');
    expect(fake.droplets()[0]?.activeAt).toBeUndefined();
    await sleep(600);
    expect((await api('GET', `/v2/droplets/${id}`)).body.droplet.status).toBe('active');
    expect((await api('GET', `/v2/actions/${actionId}`)).body.action.status).toBe('completed');
    const view = fake.droplets()[0];
    expect(view?.activeAt).toBe((view?.requestedAt ?? 0) + 800);
    expect(view?.rootPasswordEmailed).toBe(true);
    fake.powerOffFromInside(id);
    expect((await api('GET', `/v2/droplets/${id}`)).body.droplet.status).toBe('off');
  });

  it('public_networking false: one private address in the VPC range, no v6; ipv6 with it is refused', async () => {
    const { fake, api } = await setup();
    const bad = await api('POST', '/v2/droplets', droplet({ public_networking: false, ipv6: true }));
    expect([bad.status, bad.body.id]).toEqual([422, 'unprocessable_entity']);
    const res = await api(
      'POST',
      '/v2/droplets',
      droplet({ public_networking: false, ipv6: false, vpc_uuid: SEED.natVpc }),
    );
    const got = (await api('GET', `/v2/droplets/${res.body.droplet.id}`)).body.droplet;
    expect(got.networks.v6).toEqual([]);
    expect(got.networks.v4).toHaveLength(1);
    expect(got.networks.v4[0]).toMatchObject({ type: 'private', netmask: '255.255.0.0' });
    expect(inCidr(got.networks.v4[0].ip_address, SEED.natCidr)).toBe(true);
    expect(got.networks.v4[0].ip_address).not.toBe('10.20.0.2'); // the NAT gateway's
    expect(fake.droplets()[0]?.publicNetworking).toBe(false);
    const withV6 = await api('POST', '/v2/droplets', droplet({ name: 'v6', ipv6: true }));
    const v6 = (await api('GET', `/v2/droplets/${withV6.body.droplet.id}`)).body.droplet;
    expect(v6.networks.v6).toHaveLength(1);
    expect(v6.features).toContain('ipv6');
  });

  it('refuses what the API refuses: region, size, image, VPC, names, user data', async () => {
    const { fake, api } = await setup();
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ region: 'xyz1' }, /invalid region/],
      [{ size: 's-99vcpu' }, /invalid size/],
      [{ region: 'sfo3', size: 'c-4' }, /not available in this region/],
      [{ image: 'windows-2022' }, /invalid image/],
      [{ image: undefined }, /invalid image/],
      [{ vpc_uuid: SEED.otherRegionVpc }, /invalid VPC/],
      [{ vpc_uuid: '00000000-0000-4000-8000-000000000000' }, /invalid VPC/],
      [{ name: 'bad_name' }, /valid hostname characters/],
      [{ user_data: 'x'.repeat(64 * 1024 + 1) }, /64 KiB/],
      [{ tags: ['a=b'] }, /tag/],
    ];
    for (const [extra, message] of cases) {
      const res = await api('POST', '/v2/droplets', droplet(extra));
      expect([res.status, res.body.id], JSON.stringify(extra).slice(0, 80)).toEqual([
        422,
        'unprocessable_entity',
      ]);
      expect(res.body.message).toMatch(message);
      expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    }
    expect(fake.droplets()).toEqual([]);
    expect(fake.tags()).toEqual([]);
    // Exactly 64 KiB is fine; without a region the droplet goes where its VPC is.
    const edge = await api('POST', '/v2/droplets', droplet({ user_data: 'x'.repeat(64 * 1024) }));
    expect(edge.status).toBe(202);
    const noRegion = await api(
      'POST',
      '/v2/droplets',
      droplet({ region: undefined, vpc_uuid: SEED.bareVpc }),
    );
    expect(noRegion.body.droplet.region.slug).toBe('ams3');
  });

  it('deletes by tag (422 without one); deleted droplets list for deletingMs, then 404', async () => {
    const { fake, api } = await setup({ deletingMs: 400 });
    await api('POST', '/v2/droplets', { ...droplet(), name: undefined, names: names(3), tags: ['dcp:c1'] });
    await api('POST', '/v2/droplets', droplet({ name: 'other', tags: ['dcp:c2'] }));
    expect((await api('DELETE', '/v2/droplets')).status).toBe(422);
    expect((await api('DELETE', '/v2/droplets', undefined, { tag_name: 'nope' })).status).toBe(404);
    const del = await api('DELETE', '/v2/droplets', undefined, { tag_name: 'dcp:c1' });
    expect([del.status, del.body]).toEqual([204, undefined]);
    const listed = await api('GET', '/v2/droplets', undefined, { tag_name: 'dcp:c1' });
    expect(listed.body.droplets.map((d: Wire) => d.status)).toEqual(['active', 'active', 'active']);
    const id = listed.body.droplets[0].id;
    await sleep(450);
    expect((await api('GET', '/v2/droplets', undefined, { tag_name: 'dcp:c1' })).body.droplets).toEqual([]);
    expect((await api('GET', `/v2/droplets/${id}`)).status).toBe(404);
    expect((await api('DELETE', `/v2/droplets/${id}`)).status).toBe(404);
    expect((await api('GET', '/v2/droplets')).body.droplets.map((d: Wire) => d.name)).toEqual(['other']);
    expect(fake.droplets().filter((d) => d.deletedAt !== undefined)).toHaveLength(3);
    const combined = await api('GET', '/v2/droplets', undefined, { tag_name: 'dcp:c2', name: 'other' });
    expect(combined.status).toBe(422);
  });

  it('counts the other droplets of the account against droplet_limit, with the API message', async () => {
    const { fake, api } = await setup({ dropletLimit: 5, otherDroplets: 3 });
    const others = (await api('GET', '/v2/droplets')).body.droplets;
    expect(others.map((d: Wire) => [d.name, d.region.slug, d.tags])).toEqual([
      ['web-1', 'nyc3', []],
      ['web-2', 'nyc3', []],
      ['web-3', 'nyc3', []],
    ]);
    const three = await api('POST', '/v2/droplets', { ...droplet(), name: undefined, names: names(3) });
    expect([three.status, three.body.id, three.body.message]).toEqual([
      422,
      'unprocessable_entity',
      'creating this/these droplet(s) will exceed your droplet limit',
    ]);
    const two = await api('POST', '/v2/droplets', { ...droplet(), name: undefined, names: names(2) });
    expect(two.status).toBe(202);
    expect(fake.droplets()).toHaveLength(5);
    expect((await api('POST', '/v2/droplets', droplet())).status).toBe(422);
  });
});

describe('tags', () => {
  it('creates (again: the same tag), counts tagged droplets, and deleting untags them', async () => {
    const { fake, api } = await setup();
    const created = await api('POST', '/v2/tags', { name: 'dcp:cluster:c1' });
    expect(created.status).toBe(201);
    expect(created.body.tag).toMatchObject({
      name: 'dcp:cluster:c1',
      resources: { count: 0, droplets: { count: 0 } },
    });
    const again = await api('POST', '/v2/tags', { name: 'DCP:cluster:c1' });
    expect([again.status, again.body.tag.name]).toEqual([201, 'dcp:cluster:c1']);
    for (const bad of ['a=b', 'x'.repeat(256), '']) {
      const res = await api('POST', '/v2/tags', { name: bad });
      expect([res.status, res.body.id]).toEqual([422, 'unprocessable_entity']);
    }
    const made = await api('POST', '/v2/droplets', {
      ...droplet(),
      name: undefined,
      names: names(2),
      tags: ['dcp:cluster:c1', 'dcp:role:worker'],
    });
    expect(fake.tags()).toEqual(['dcp:cluster:c1', 'dcp:role:worker']);
    const got = (await api('GET', '/v2/tags/dcp:cluster:c1')).body.tag;
    expect(got.resources).toMatchObject({ count: 2, droplets: { count: 2 } });
    expect(got.resources.droplets.last_tagged_uri).toMatch(new RegExp(`^${fake.url}/v2/droplets/\\d+$`));
    expect((await api('DELETE', '/v2/tags/dcp:cluster:c1')).status).toBe(204);
    expect((await api('GET', '/v2/tags/dcp:cluster:c1')).status).toBe(404);
    const id = made.body.droplets[0].id;
    expect((await api('GET', `/v2/droplets/${id}`)).body.droplet.tags).toEqual(['dcp:role:worker']);
    // A droplet already gone keeps its tags in the test view.
    const gone = made.body.droplets[1].id;
    await api('DELETE', `/v2/droplets/${gone}`);
    await api('DELETE', '/v2/tags/dcp:role:worker');
    expect(fake.droplets().find((d) => d.id === gone)?.tags).toEqual(['dcp:role:worker']);
    expect(fake.droplets().find((d) => d.id === id)?.tags).toEqual([]);
  });
});

describe('firewalls', () => {
  const rules = {
    inbound_rules: [
      { protocol: 'tcp', ports: '8786', sources: { addresses: ['203.0.113.7/32'] } },
      { protocol: 'tcp', ports: 'all', sources: { tags: ['dcp:c1'] } },
      { protocol: 'icmp', sources: { tags: ['dcp:c1'] } },
    ],
  };

  it('refuses a tag that does not exist, keeps a rule-less egress empty, waits firewallMs', async () => {
    const { fake, api } = await setup({ firewallMs: 300 });
    const missing = await api('POST', '/v2/firewalls', { name: 'dcp-c1', ...rules, tags: ['dcp:c1'] });
    expect([missing.status, missing.body.id, missing.body.message]).toEqual([
      422,
      'unprocessable_entity',
      'tag dcp:c1 does not exist',
    ]);
    expect(fake.firewalls()).toEqual([]);
    await api('POST', '/v2/tags', { name: 'dcp:c1' });
    const res = await api('POST', '/v2/firewalls', { name: 'dcp-c1', ...rules, tags: ['dcp:c1'] });
    expect(res.status).toBe(202);
    const fw = res.body.firewall;
    expect(fw).toMatchObject({ name: 'dcp-c1', status: 'waiting', tags: ['dcp:c1'], droplet_ids: [] });
    expect(fw.outbound_rules).toEqual([]);
    expect(fw.inbound_rules.map((r: Wire) => r.ports)).toEqual(['8786', '0', '0']);
    expect((await api('GET', `/v2/firewalls/${fw.id}`)).body.firewall.status).toBe('waiting');
    await sleep(350);
    expect((await api('GET', `/v2/firewalls/${fw.id}`)).body.firewall).toMatchObject({
      status: 'succeeded',
      pending_changes: [],
      outbound_rules: [],
    });
    const dup = await api('POST', '/v2/firewalls', { name: 'dcp-c1', ...rules });
    expect([dup.status, dup.body.id, dup.body.message]).toEqual([409, 'conflict', 'duplicate name']);
    expect((await api('GET', '/v2/firewalls')).body.firewalls.map((f: Wire) => f.id)).toEqual([fw.id]);
    expect((await api('DELETE', `/v2/firewalls/${fw.id}`)).status).toBe(204);
    expect((await api('GET', `/v2/firewalls/${fw.id}`)).status).toBe(404);
  });

  it('validates rules: protocol, ports, empty sources, counts', async () => {
    const { fake, api } = await setup();
    await api('POST', '/v2/tags', { name: 'dcp:c1' });
    const inbound = (rule: Record<string, unknown>) => ({ name: 'fw', inbound_rules: [rule] });
    const cases: unknown[] = [
      { name: 'fw' },
      { name: 'bad name', ...rules },
      inbound({ protocol: 'sctp', ports: '1', sources: { addresses: ['0.0.0.0/0'] } }),
      inbound({ protocol: 'tcp', sources: { addresses: ['0.0.0.0/0'] } }),
      inbound({ protocol: 'tcp', ports: '70000', sources: { addresses: ['0.0.0.0/0'] } }),
      inbound({ protocol: 'tcp', ports: '9000-8000', sources: { addresses: ['0.0.0.0/0'] } }),
      inbound({ protocol: 'tcp', ports: '22', sources: {} }),
      inbound({ protocol: 'tcp', ports: '22', sources: { addresses: ['not-an-ip'] } }),
      { ...rules, name: 'fw', tags: ['dcp:c1', 'a', 'b', 'c', 'd', 'e'] },
      { ...rules, name: 'fw', droplet_ids: Array.from({ length: 11 }, (_, i) => i + 1) },
      { name: 'fw', inbound_rules: Array.from({ length: 51 }, () => rules.inbound_rules[0]) },
    ];
    for (const body of cases) {
      const res = await api('POST', '/v2/firewalls', body);
      expect([res.status, res.body.id], JSON.stringify(body).slice(0, 80)).toEqual([
        422,
        'unprocessable_entity',
      ]);
    }
    expect(fake.firewalls()).toEqual([]);
    const ok = await api('POST', '/v2/firewalls', {
      name: 'fw',
      outbound_rules: [{ protocol: 'udp', ports: '53', destinations: { addresses: ['0.0.0.0/0', '::/0'] } }],
    });
    expect(ok.body.firewall).toMatchObject({ inbound_rules: [], status: 'waiting' });
  });
});

describe('ssh keys', () => {
  it('fingerprints as ssh-keygen -E md5 does, refuses garbage and duplicates, resolves ids and fingerprints', async () => {
    const { fake, api } = await setup();
    const raw = generateKeyPairSync('ed25519')
      .publicKey.export({ format: 'der', type: 'spki' })
      .subarray(-32);
    const sshString = (b: Buffer) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(b.length);
      return Buffer.concat([length, b]);
    };
    const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
    const publicKey = `ssh-ed25519 ${blob.toString('base64')} dcp-test`;
    let expected = createHash('md5').update(blob).digest('hex').match(/../g)?.join(':');
    try {
      const dir = mkdtempSync(join(tmpdir(), 'fake-do-key-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'key.pub'), `${publicKey}\n`);
      const out = execFileSync('ssh-keygen', ['-l', '-E', 'md5', '-f', join(dir, 'key.pub')], {
        encoding: 'utf8',
      });
      expected = /MD5:(\S+)/.exec(out)?.[1];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // no ssh-keygen: the hand-made MD5 stands
    }
    const created = await api('POST', '/v2/account/keys', { name: 'dcp-c1', public_key: publicKey });
    expect(created.status).toBe(201);
    expect(created.body.ssh_key).toEqual({
      id: expect.any(Number),
      fingerprint: expected,
      public_key: publicKey,
      name: 'dcp-c1',
    });
    const dup = await api('POST', '/v2/account/keys', { name: 'again', public_key: publicKey });
    expect([dup.status, dup.body.message]).toEqual([422, 'SSH Key is already in use on your account']);
    for (const bad of ['ssh-ed25519 AAAA', 'not a key', `ssh-rsa ${blob.toString('base64')}`]) {
      const res = await api('POST', '/v2/account/keys', { name: 'bad', public_key: bad });
      expect([res.status, res.body.message]).toEqual([
        422,
        'Key invalid, key should be of the format `type key [comment]`',
      ]);
    }
    const { id, fingerprint } = created.body.ssh_key;
    expect((await api('GET', `/v2/account/keys/${fingerprint}`)).body.ssh_key.id).toBe(id);
    expect((await api('GET', '/v2/account/keys')).body).toMatchObject({ meta: { total: 1 } });
    const unknown = await api('POST', '/v2/droplets', droplet({ ssh_keys: [12345] }));
    expect([unknown.status, unknown.body.message]).toEqual([
      422,
      '12345 are invalid key identifiers for Droplet creation.',
    ]);
    await api('POST', '/v2/droplets', droplet({ ssh_keys: [fingerprint] }));
    await api('POST', '/v2/droplets', droplet({ name: 'by-id', ssh_keys: [id] }));
    expect(fake.droplets().map((d) => [d.sshKeys, d.rootPasswordEmailed])).toEqual([
      [[fingerprint], false],
      [[id], false],
    ]);
    expect((await api('DELETE', `/v2/account/keys/${id}`)).status).toBe(204);
    expect(fake.sshKeys()).toEqual([]);
    expect((await api('GET', `/v2/account/keys/${id}`)).status).toBe(404);
  });
});

describe('faults and rate limits', () => {
  it('fail: answers the fault instead of the work; times, skip, and used up', async () => {
    const { fake, api } = await setup();
    fake.fail('droplets.create', { status: 500, id: 'server_error' }, { times: 2, skip: 1 });
    expect((await api('POST', '/v2/droplets', droplet({ name: 'a' }))).status).toBe(202); // skipped
    const failed = await api('POST', '/v2/droplets', droplet({ name: 'b' }));
    expect(failed.body).toMatchObject({ id: 'server_error', message: expect.any(String) });
    expect((await api('POST', '/v2/droplets', droplet({ name: 'c' }))).status).toBe(500);
    expect((await api('POST', '/v2/droplets', droplet({ name: 'd' }))).status).toBe(202);
    expect(fake.droplets().map((d) => d.name)).toEqual(['a', 'd']);
    expect(fake.mutatingCalls().map((c) => [c.method, c.status, c.errorId])).toEqual([
      ['droplets.create', 202, undefined],
      ['droplets.create', 500, 'server_error'],
      ['droplets.create', 500, 'server_error'],
      ['droplets.create', 202, undefined],
    ]);
    fake.fail('*', { status: 403, id: 'forbidden', message: 'no', retryAfter: 3 }, { times: Infinity });
    const forbidden = await api('GET', '/v2/account');
    expect([forbidden.status, forbidden.body.message, forbidden.headers.get('retry-after')]).toEqual([
      403,
      'no',
      '3',
    ]);
    fake.clearFaults();
    expect((await api('GET', '/v2/account')).status).toBe(200);
  });

  it('afterEffect: the work is done, then the error is answered', async () => {
    const { fake, api } = await setup();
    fake.fail('tags.delete', { status: 503, id: 'service_unavailable' }, { afterEffect: true });
    fake.fail('droplets.create', { status: 504, id: 'gateway_timeout' }, { afterEffect: true });
    await api('POST', '/v2/tags', { name: 't' });
    expect((await api('DELETE', '/v2/tags/t')).status).toBe(503);
    expect(fake.tags()).toEqual([]);
    const lost = await api('POST', '/v2/droplets', droplet());
    expect([lost.status, lost.body.id]).toEqual([504, 'gateway_timeout']);
    expect(fake.droplets()).toHaveLength(1);
  });

  it('rateLimit: the next requests answer 429 with retry-after, then it is over', async () => {
    const { fake, api } = await setup();
    fake.rateLimit(2, 7);
    for (const path of ['/v2/account', '/v2/droplets']) {
      const res = await api(
        path === '/v2/droplets' ? 'POST' : 'GET',
        path,
        path === '/v2/droplets' ? droplet() : undefined,
      );
      expect([
        res.status,
        res.body.id,
        res.headers.get('retry-after'),
        res.headers.get('ratelimit-remaining'),
      ]).toEqual([429, 'too_many_requests', '7', '0']);
    }
    expect(fake.droplets()).toEqual([]);
    expect((await api('GET', '/v2/account')).status).toBe(200);
    expect(fake.calls.map((c) => c.errorId)).toEqual(['too_many_requests', 'too_many_requests', undefined]);
  });
});

describe('life cycle without timers', () => {
  it('leaves no timer or handle behind; close() resolves', async () => {
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const timers = count('Timeout');
    const servers = count('TCPServerWrap');
    const fake = await startFakeDigitalOcean({
      provisioningMs: 60_000,
      deletingMs: 60_000,
      firewallMs: 60_000,
    });
    const headers = { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' };
    const res = await fetch(`${fake.url}/v2/droplets`, {
      method: 'POST',
      headers,
      body: JSON.stringify(droplet()),
    });
    expect(res.status).toBe(202);
    await fetch(`${fake.url}/v2/droplets?tag_name=x`, { method: 'DELETE', headers });
    expect(count('Timeout')).toBeLessThanOrEqual(timers);
    await fake.close();
    expect(count('TCPServerWrap')).toBe(servers);
    await expect(fetch(`${fake.url}/v2/account`, { headers })).rejects.toThrow();
  });
});
