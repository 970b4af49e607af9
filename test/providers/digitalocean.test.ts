/**
 * The DigitalOcean provider against the DigitalOcean fake, beyond what every cloud shows
 * (digitalocean.conformance.test.ts): what each droplet is made with (tags, SSH key, no root
 * password, user data, public networking), the firewall's rules, the token chain, the droplet
 * limit, private droplets without a NAT gateway, rate limits, namesakes, powered-off droplets,
 * doctor, and the dcp command itself.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCluster, destroyCluster } from '../../src/cluster/engine.js';
import { firewallDoors } from '../../src/cluster/doctor.js';
import { planUp, type UpFlags } from '../../src/cluster/spec.js';
import { clusterDir, readRecord } from '../../src/cluster/state.js';
import { DcpError, ExitCode } from '../../src/errors.js';
import { resolveToken } from '../../src/providers/digitalocean/identity.js';
import { digitaloceanProvider } from '../../src/providers/digitalocean/index.js';
import type { Provider } from '../../src/providers/provider.js';
import { makeSshKey } from '../../src/providers/ssh-key.js';
import { SEED, startFakeDigitalOcean, type FakeDigitalOcean } from '../fakes/digitalocean/index.js';
import { CLI, tempDir } from '../helpers/cli.js';
import {
  digitaloceanEnvironment,
  digitaloceanIngress,
  digitaloceanLeftovers,
  digitaloceanMembers,
  privateHome,
} from './cloud-env.js';

let fake: FakeDigitalOcean;
const saved = { ...process.env };

beforeAll(async () => {
  fake = await startFakeDigitalOcean({ addressingMs: 50, provisioningMs: 200, dropletLimit: 100 });
  Object.assign(process.env, { ...privateHome(tempDir('dcp-do-home-')), ...digitaloceanEnvironment(fake) });
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
function flags(extra: Partial<UpFlags> = {}): UpFlags {
  return {
    name: `do-test-${++counter}`,
    provider: 'digitalocean',
    region: SEED.region,
    wait: false,
    insecure: false,
    image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
    workers: '2',
    ...extra,
  };
}

async function up(extra: Partial<UpFlags> = {}) {
  const plan = await planUp(flags(extra));
  return createCluster(
    plan,
    digitaloceanProvider,
    { progress: () => undefined },
    new AbortController().signal,
  );
}

const quiet = { progress: () => undefined };
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as DcpError,
  );
const droplets = (cluster: string) =>
  fake.droplets().filter((d) => d.tags.includes(`dcp:cluster:${cluster}`) && d.deletedAt === undefined);
const creates = () => fake.calls.filter((call) => call.method === 'droplets.create');
/** The API as someone else uses it meanwhile (the console, doctl). */
const api = (method: string, path: string, body?: unknown) =>
  fetch(`${fake.url}/v2/${path}`, {
    method,
    headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

describe('what up makes', () => {
  it('tagged droplets with the cluster’s own SSH key (no root password by email), its role only in plain user data', async () => {
    const plan = await planUp(flags());
    // The plan says that a powered-off droplet still bills.
    expect(digitaloceanProvider.plan(plan.spec).join('\n')).toMatch(
      /DigitalOcean still bills a powered-off droplet: dcp down stops the bill/,
    );
    const record = await createCluster(plan, digitaloceanProvider, quiet, new AbortController().signal);
    const made = droplets(record.name);
    expect(made).toHaveLength(3);
    const clusterId = made[0]!.tags.find((tag) => tag.startsWith('dcp:cluster-id:'))!;
    const key = fake.sshKeys().find((k) => k.name.startsWith(`dcp-${record.name} `))!;
    expect(key).toBeDefined();
    for (const droplet of made) {
      expect(droplet.tags).toEqual(
        expect.arrayContaining([`dcp:cluster:${record.name}`, clusterId, 'dcp:protocol:tls']),
      );
      expect(droplet.sshKeys).toEqual([key.id]);
      expect(droplet.rootPasswordEmailed).toBeFalsy();
      expect(droplet.userData).toMatch(/^#!\/bin\/bash\n/);
      expect(droplet.createBody).toMatchObject({ ipv6: false, monitoring: false, with_droplet_agent: false });
    }
    // The private key stays here, 0600; the public one is the key registered.
    const keyFile = join(clusterDir(record.name), 'ssh-key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(record.details).toMatchObject({ ssh_key: key.id, ssh_key_file: keyFile });
    await destroyCluster(record.name, quiet);
    expect(digitaloceanLeftovers(fake, record.name)).toEqual([]);
  });

  it('one firewall on the run’s tag, made before any droplet: ingress, the members, and outbound; never the world inbound', async () => {
    const record = await up({ ingress: ['198.51.100.0/24:8786'] });
    const firewall = fake.firewalls().find((f) => f.name === `dcp-${record.name}`)!;
    const clusterId = droplets(record.name)[0]!.tags.find((tag) => tag.startsWith('dcp:cluster-id:'))!;
    expect(firewall.tags).toEqual([clusterId]);
    expect(digitaloceanIngress(fake, record.name)).toEqual(['198.51.100.0/24:8786']);
    expect(firewall.inbound_rules.flatMap((rule) => rule.sources.addresses ?? [])).not.toContain('0.0.0.0/0');
    // Without outbound rules an API-made firewall blocks all egress: no Docker, no image.
    expect(firewall.outbound_rules.map((rule) => rule.protocol).sort()).toEqual(['icmp', 'tcp', 'udp']);
    const order = fake.mutatingCalls().map((call) => call.method);
    expect(order.indexOf('firewalls.create')).toBeLessThan(order.indexOf('droplets.create'));
    await destroyCluster(record.name, quiet);
  });

  it('workers 10 at a time, on the scheduler’s private IP; public addresses only where the way out needs one', async () => {
    const record = await up({ workers: '25' });
    expect(creates().map((call) => (call.body as { names?: string[] }).names?.length ?? 1)).toEqual([
      1, 10, 10, 5,
    ]);
    const members = digitaloceanMembers(fake, record.name);
    const scheduler = members.find((m) => m.role === 'scheduler')!;
    for (const worker of members.filter((m) => m.role === 'worker'))
      expect(worker.boot).toContain(`'tls://${scheduler.privateIp}:8786'`);
    // Docker from the internet and no NAT gateway in the default VPC: workers need a way out.
    expect(droplets(record.name).every((d) => d.publicNetworking)).toBe(true);
    await destroyCluster(record.name, quiet);
    // With a NAT gateway, or Dask on the image, workers get no public address at all.
    const natted = await up({ vpc: SEED.natVpc });
    expect(
      droplets(natted.name)
        .filter((d) => d.tags.includes('dcp:role:worker'))
        .every((d) => !d.publicNetworking),
    ).toBe(true);
    await destroyCluster(natted.name, quiet);
  });
});

describe('before anything is made', () => {
  it('no token: exit 2 naming the variables and doctl auth init, and no call made', async () => {
    const env = { ...process.env, DIGITALOCEAN_TOKEN: '', XDG_CONFIG_HOME: tempDir('dcp-do-xdg-') };
    const run = await execa(
      'node',
      [CLI, 'up', '--provider', 'digitalocean', '--region', SEED.region, '--image', 'x/dask:1', '--no-wait'],
      { env: { ...env, CI: 'true' }, reject: false },
    );
    expect(run.exitCode).toBe(ExitCode.usage);
    expect(run.stderr).toMatch(/no DigitalOcean token found/);
    expect(run.stderr).toMatch(/DIGITALOCEAN_TOKEN.*doctl auth init/);
    expect(fake.calls).toEqual([]);
  });

  it('the token chain: the variables, then doctl’s file for its context; a file others could write is refused', async () => {
    const config = tempDir('dcp-do-xdg-');
    const file = join(config, 'doctl', 'config.yaml');
    mkdirSync(join(config, 'doctl'), { mode: 0o700 });
    writeFileSync(
      file,
      'access-token: dop_v1_default\ncontext: work\nauth-contexts:\n  work: dop_v1_work\n',
      { mode: 0o600 },
    );
    const base = { HOME: tempDir('dcp-do-h-'), XDG_CONFIG_HOME: config };
    expect(
      await resolveToken({ ...base, DIGITALOCEAN_TOKEN: 'a', DIGITALOCEAN_ACCESS_TOKEN: 'b' }),
    ).toMatchObject({
      token: 'a',
    });
    expect(await resolveToken({ ...base, DIGITALOCEAN_ACCESS_TOKEN: 'b' })).toMatchObject({ token: 'b' });
    expect(await resolveToken(base)).toMatchObject({
      token: 'dop_v1_work',
      origin: expect.stringContaining('work'),
    });
    expect(await resolveToken({ ...base, DIGITALOCEAN_CONTEXT: 'default' })).toMatchObject({
      token: 'dop_v1_default',
    });
    await expect(resolveToken({ ...base, DIGITALOCEAN_CONTEXT: 'other' })).rejects.toThrow(
      /no token for its context other/,
    );
    chmodSync(file, 0o620);
    await expect(resolveToken(base)).rejects.toThrow(/is not used: the file is writable by its group/);
  });

  it('an account limited below the droplets asked for: exit 1 with the numbers, before any droplet', async () => {
    const limited = await startFakeDigitalOcean({ dropletLimit: 5, otherDroplets: 2 });
    try {
      const env = { ...process.env, ...digitaloceanEnvironment(limited), CI: 'true' };
      const run = await execa(
        'node',
        [
          CLI,
          'up',
          '--provider',
          'digitalocean',
          '--region',
          SEED.region,
          '--workers',
          '3',
          '--image',
          'x/dask:1',
        ],
        { env, reject: false },
      );
      expect(run.exitCode).toBe(ExitCode.failed);
      expect(run.stderr).toMatch(/may have 5 droplets and has 2: a scheduler and 3 workers need 4 more/);
      expect(run.stderr).toMatch(/--workers 2/);
      expect(limited.mutatingCalls()).toEqual([]);
    } finally {
      await limited.close();
    }
  });

  it('private, Docker, and a VPC without a NAT gateway: refused with both ways out; --egress public takes the second', async () => {
    const error = await failure(up({ private: true, vpc: SEED.bareVpc }));
    expect(error?.exitCode).toBe(ExitCode.usage);
    expect(error?.message).toMatch(/could not install Docker.*no NAT gateway/);
    expect(error?.hint).toMatch(/NAT gateway.*--egress public/);
    expect(fake.mutatingCalls()).toEqual([]);

    const record = await up({ private: true, vpc: SEED.bareVpc, egress: 'public' });
    const made = droplets(record.name);
    expect(made.every((d) => d.publicNetworking)).toBe(true);
    const scheduler = digitaloceanMembers(fake, record.name).find((m) => m.role === 'scheduler')!;
    expect(record.scheduler_address).toBe(`tls://${scheduler.privateIp}:8786`);
    // Nothing from outside the VPC: its range alone reaches the scheduler.
    expect(digitaloceanIngress(fake, record.name).sort()).toEqual([
      `${SEED.bareCidr}:8786`,
      `${SEED.bareCidr}:8787`,
    ]);
    await destroyCluster(record.name, quiet);
  });

  it('a region, size, image or VPC that is not there, and a name taken: said, nothing made', async () => {
    const cases: [Partial<UpFlags>, RegExp][] = [
      [{ region: 'xyz9' }, /xyz9 is not a DigitalOcean region/],
      [{ instanceType: 'm-999vcpu' }, /no droplet size m-999vcpu in ams3/],
      [{ vpc: 'no-such-vpc' }, /no VPC no-such-vpc/],
      [{ vpc: SEED.otherRegionVpc }, /is in nyc3, not ams3/],
    ];
    for (const [extra, message] of cases) {
      const error = await failure(up(extra));
      expect(error?.message).toMatch(message);
      expect(error?.exitCode).toBe(ExitCode.usage);
    }
    const record = await up();
    const again = await failure(up({ name: record.name }));
    expect(again?.message).toMatch(/already exists/);
    expect(fake.mutatingCalls().filter((call) => call.method === 'droplets.create')).toHaveLength(2);
    await destroyCluster(record.name, quiet);
    expect(fake.mutatingCalls()).not.toContainEqual(expect.objectContaining({ method: 'unknown' }));
  });
});

describe('failures', () => {
  it('reads are retried after the retry-after DigitalOcean asks for; a create never is', async () => {
    fake.rateLimit(1, 1);
    const record = await up();
    const throttled = fake.calls.filter((call) => call.status === 429);
    expect(throttled).toHaveLength(1);
    expect(throttled[0]!.httpMethod).toBe('GET');
    await destroyCluster(record.name, quiet);

    fake.calls.length = 0;
    fake.fail(
      'droplets.create',
      { status: 429, id: 'too_many_requests', message: 'API rate limit exceeded.' },
      { skip: 1 },
    );
    const name = `do-throttled-${++counter}`;
    const error = await failure(up({ name }));
    expect(error?.message).toMatch(/too_many_requests.*rolled back/s);
    expect(error?.hint).toMatch(/throttling/);
    expect(creates()).toHaveLength(2);
    expect(digitaloceanLeftovers(fake, name)).toEqual([]);
  });

  it('a droplet create whose answer was lost: its droplets are found by tag and removed', async () => {
    const name = `do-lost-${++counter}`;
    fake.fail(
      'droplets.create',
      { status: 500, id: 'server_error', message: 'Server Error' },
      { skip: 1, afterEffect: true },
    );
    const error = await failure(up({ name }));
    expect(error?.message).toMatch(/server_error/);
    expect(fake.droplets().filter((d) => d.tags.includes(`dcp:cluster:${name}`))).toHaveLength(3);
    expect(digitaloceanLeftovers(fake, name)).toEqual([]);
  });

  it('a rollback removes only its own run: a namesake’s droplets, firewall and name tag stay', async () => {
    const theirs = await up({ name: 'do-namesake', region: SEED.otherRegion });
    rmSync(clusterDir(theirs.name), { recursive: true });
    // Two machines racing for one name: prepare saw it free.
    const racing: Provider = {
      ...digitaloceanProvider,
      prepare: async (spec) => ({
        ...(await digitaloceanProvider.prepare({ ...spec, name: 'do-namesake-free' })),
        name: spec.name,
      }),
    };
    // What is there, without the droplets' statuses (they become active meanwhile).
    const namesakes = () =>
      digitaloceanLeftovers(fake, 'do-namesake').map((what) => what.replace(/ \(\w+\)$/, ''));
    const before = namesakes();
    fake.fail('droplets.create', { status: 403, id: 'forbidden', message: 'denied' }, { skip: 1 });
    const plan = await planUp(flags({ name: 'do-namesake' }));
    const error = await failure(createCluster(plan, racing, quiet, new AbortController().signal));
    expect(error?.message).toContain('rolled back');
    expect(namesakes()).toEqual(before);
    expect(droplets('do-namesake')).toHaveLength(3);
    await destroyCluster('do-namesake', quiet, process.env, { provider: 'digitalocean' });
    expect(digitaloceanLeftovers(fake, 'do-namesake')).toEqual([]);
  });
});

describe('powered off, list, down and doctor', () => {
  it('a droplet that powered itself off is still billed: list says so, down removes it', async () => {
    const record = await up();
    const scheduler = droplets(record.name).find((d) => d.tags.includes('dcp:role:scheduler'))!;
    fake.powerOffFromInside(scheduler.id);
    const env = { ...process.env, CI: 'true' };
    const list = await execa('node', [CLI, 'list', '--provider', 'digitalocean', '--json'], { env });
    const found = (JSON.parse(list.stdout) as { clusters: { name: string; status: string }[] }).clusters.find(
      (c) => c.name === record.name,
    );
    expect(found?.status).toBe('off (still billed)');
    const table = await execa('node', [CLI, 'list', '--provider', 'digitalocean', '--region', SEED.region], {
      env,
    });
    expect(table.stdout).toMatch(new RegExp(`${record.name}\\s+${SEED.region}\\s+off \\(still billed\\)`));
    await destroyCluster(record.name, quiet);
    expect(digitaloceanLeftovers(fake, record.name)).toEqual([]);
  });

  it('dcp doctor reads every firewall that reaches a member: dcp’s and one added by a tag they carry', async () => {
    const record = await up();
    const view = await digitaloceanProvider.firewall!((await readRecord(record.name))!);
    expect(firewallDoors(view).filter((door) => door.verdict === 'open')).toEqual([]);
    // Someone opens SSH to the world on every worker, by the role tag.
    const response = await api('POST', 'firewalls', {
      name: 'wide-open',
      inbound_rules: [{ protocol: 'tcp', ports: '22', sources: { addresses: ['0.0.0.0/0'] } }],
      outbound_rules: [],
      tags: ['dcp:role:worker'],
    });
    expect(response.status).toBe(202);
    const open = firewallDoors(await digitaloceanProvider.firewall!((await readRecord(record.name))!)).filter(
      (door) => door.verdict === 'open',
    );
    expect(open.map((door) => door.detail).join('\n')).toMatch(/0\.0\.0\.0\/0/);
    const wide = fake.firewalls().find((f) => f.name === 'wide-open')!;
    await api('DELETE', `firewalls/${wide.id}`);
    await destroyCluster(record.name, quiet);
  });

  it('up --no-wait --json, then down from a machine with no state: printed, billed warning, nothing left', async () => {
    const env = { ...process.env, CI: 'true' };
    const name = 'do-cli';
    const upRun = await execa(
      'node',
      [
        CLI,
        'up',
        '--provider',
        'digitalocean',
        '--region',
        SEED.region,
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
    expect(upRun.stderr).toMatch(/still bills a powered-off droplet/);
    const out = JSON.parse(upRun.stdout) as { scheduler_address: string; provider: string; workers: number };
    const scheduler = digitaloceanMembers(fake, name).find((m) => m.role === 'scheduler')!;
    expect(out).toMatchObject({
      provider: 'digitalocean',
      scheduler_address: `tls://${scheduler.publicIp}:8786`,
      workers: 2,
    });
    const downRun = await execa(
      'node',
      [CLI, 'down', name, '--provider', 'digitalocean', '--yes', '--json'],
      {
        env: { ...env, XDG_STATE_HOME: tempDir('dcp-do-elsewhere-') },
        reject: false,
      },
    );
    expect(downRun.exitCode, downRun.stderr).toBe(0);
    expect(digitaloceanLeftovers(fake, name)).toEqual([]);
    // And the state this machine kept is gone with it once down runs here.
    const here = await execa('node', [CLI, 'down', name, '--yes'], { env, reject: false });
    expect(here.exitCode, here.stderr).toBe(0);
  });

  it('the user’s own SSH key: used for every droplet, never deleted', async () => {
    const mine = await makeSshKey(tempDir('dcp-do-key-'), 'mine');
    const own = await api('POST', 'account/keys', { name: 'mine', public_key: mine.publicKey });
    expect(own.status).toBe(201);
    const key = ((await own.json()) as { ssh_key: { id: number; fingerprint: string } }).ssh_key;
    expect(key.fingerprint).toBe(mine.md5Fingerprint);
    fake.calls.length = 0;
    const plan = await planUp(flags());
    plan.spec.cloud.ssh_key = key.fingerprint;
    const record = await createCluster(plan, digitaloceanProvider, quiet, new AbortController().signal);
    expect(droplets(record.name).every((d) => d.sshKeys.length === 1 && d.sshKeys[0] === key.id)).toBe(true);
    expect(fake.mutatingCalls().map((call) => call.method)).not.toContain('sshKeys.create');
    await destroyCluster(record.name, quiet);
    expect(fake.sshKeys().map((k) => k.id)).toContain(key.id);
  });
});

// A plain DcpError is what every failure above is: checked once, so a thrown string never passes.
it('errors are DcpErrors', async () => {
  const error = await failure(up({ region: 'nowhere' }));
  expect(error).toBeInstanceOf(DcpError);
});

describe('what the review found', () => {
  it('down NAME --region R removes the cluster of that name in R only; two regions without --region are asked apart', async () => {
    const there = await up({ name: 'do-twice', region: SEED.otherRegion });
    rmSync(clusterDir(there.name), { recursive: true });
    // Racing from another machine: the same name in ams3.
    const racing: Provider = {
      ...digitaloceanProvider,
      prepare: async (spec) => ({
        ...(await digitaloceanProvider.prepare({ ...spec, name: 'do-twice-free' })),
        name: spec.name,
      }),
    };
    const here = await createCluster(
      await planUp(flags({ name: 'do-twice' })),
      racing,
      quiet,
      new AbortController().signal,
    ).catch((error: unknown) => error as DcpError);
    // DigitalOcean keeps firewall names unique: the second run could not make its own, and rolled back.
    expect((here as DcpError).message).toMatch(/conflict/);
    const byName = (region?: string) =>
      destroyCluster('do-twice', quiet, process.env, {
        provider: 'digitalocean',
        ...(region ? { location: region } : {}),
      });
    expect(await byName(SEED.region)).toBeUndefined();
    expect(droplets('do-twice')).toHaveLength(3);
    expect(await byName(SEED.otherRegion)).toEqual(
      expect.arrayContaining([expect.stringMatching(/droplet/)]),
    );
    expect(digitaloceanLeftovers(fake, 'do-twice')).toEqual([]);
  });

  it('two clusters of one name in two regions: down by name without --region removes neither', async () => {
    const record = await up({ name: 'do-pair' });
    rmSync(clusterDir(record.name), { recursive: true });
    // Another of that name in nyc3 (made by hand, or by a dcp elsewhere whose firewall went).
    const other = `dcp:cluster-id:${randomUUID()}`;
    const made = await api('POST', 'droplets', {
      name: 'do-pair-scheduler',
      region: SEED.otherRegion,
      size: SEED.size,
      image: SEED.image,
      tags: ['dcp:cluster:do-pair', other, 'dcp:role:scheduler'],
    });
    expect(made.status).toBe(202);
    const error = await failure(destroyCluster('do-pair', quiet, process.env, { provider: 'digitalocean' }));
    expect(error?.exitCode).toBe(ExitCode.usage);
    expect(error?.message).toMatch(/clusters named do-pair in ams3 and nyc3/);
    expect(droplets('do-pair')).toHaveLength(4);
    await destroyCluster('do-pair', quiet, process.env, { provider: 'digitalocean', location: SEED.region });
    expect(droplets('do-pair')).toHaveLength(1);
    await destroyCluster('do-pair', quiet, process.env, {
      provider: 'digitalocean',
      location: SEED.otherRegion,
    });
    expect(digitaloceanLeftovers(fake, 'do-pair')).toEqual([]);
  });

  it('the user’s own key named like dcp’s (dcp-prod laptop) neither blocks up nor goes at down', async () => {
    const mine = await makeSshKey(tempDir('dcp-do-key-'), 'laptop');
    expect(
      (await api('POST', 'account/keys', { name: 'dcp-do-prod laptop', public_key: mine.publicKey })).status,
    ).toBe(201);
    const record = await up({ name: 'do-prod' });
    rmSync(clusterDir(record.name), { recursive: true });
    await destroyCluster('do-prod', quiet, process.env, { provider: 'digitalocean' });
    expect(fake.sshKeys().map((k) => k.name)).toContain('dcp-do-prod laptop');
    expect(digitaloceanLeftovers(fake, 'do-prod')).toEqual([]);
  });

  it('a firewall of the user’s that also names the run’s tag is never deleted', async () => {
    const record = await up();
    const idTag = droplets(record.name)[0]!.tags.find((tag) => tag.startsWith('dcp:cluster-id:'))!;
    await api('POST', 'tags', { name: 'web' });
    const made = await api('POST', 'firewalls', {
      name: 'office-ssh',
      inbound_rules: [{ protocol: 'tcp', ports: '22', sources: { addresses: ['198.51.100.0/24'] } }],
      outbound_rules: [{ protocol: 'tcp', ports: 'all', destinations: { addresses: ['0.0.0.0/0'] } }],
      tags: ['web', idTag],
    });
    expect(made.status).toBe(202);
    await destroyCluster(record.name, quiet);
    expect(fake.firewalls().map((f) => f.name)).toContain('office-ssh');
    const office = fake.firewalls().find((f) => f.name === 'office-ssh')!;
    await api('DELETE', `firewalls/${office.id}`);
  });

  it('doctor: a droplet no firewall covers is open to the world; a ping rule opens no port', async () => {
    const record = await up();
    await api('POST', 'firewalls', {
      name: 'ping',
      inbound_rules: [{ protocol: 'icmp', sources: { addresses: ['0.0.0.0/0'] } }],
      outbound_rules: [],
      tags: ['dcp:role:worker'],
    });
    const doors = async () =>
      firewallDoors(await digitaloceanProvider.firewall!((await readRecord(record.name))!)).filter(
        (door) => door.verdict === 'open',
      );
    expect(await doors()).toEqual([]);
    for (const firewall of fake
      .firewalls()
      .filter((f) => f.name === `dcp-${record.name}` || f.name === 'ping'))
      await api('DELETE', `firewalls/${firewall.id}`);
    expect((await doors()).map((door) => door.detail).join('\n')).toMatch(/0\.0\.0\.0\/0/);
    await destroyCluster(record.name, quiet);
  });

  it('a project file’s ssh_key and egress are shown before up acts on them; --egress needs --private', async () => {
    const project = tempDir('dcp-do-project-');
    mkdirSync(join(project, '.git'));
    writeFileSync(
      join(project, '.dcprc.yaml'),
      'digitalocean:\n  ssh_key: "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"\n  egress: public\n',
    );
    const plan = await planUp(flags({ private: true }), process.env, project);
    expect(plan.fromProject.join('\n')).toMatch(/digitalocean\.ssh_key: aa:bb.*root on every droplet/);
    expect(plan.fromProject.join('\n')).toMatch(/digitalocean\.egress: public/);
    await expect(planUp(flags({ egress: 'public' }))).rejects.toThrow(/--egress .* goes with --private/);
    const bad = await planUp(flags());
    bad.spec.cloud.ssh_key = '..';
    await expect(digitaloceanProvider.prepare(bad.spec)).rejects.toThrow(
      /neither a key id nor an MD5 fingerprint/,
    );
  });
});

describe('what the second review found', () => {
  it('doctor while firewalls are being applied: dcp’s covers the droplets, a user’s opening to the world is read', async () => {
    const record = await up();
    const doors = async () =>
      firewallDoors(await digitaloceanProvider.firewall!((await readRecord(record.name))!)).filter(
        (door) => door.verdict === 'open',
      );
    const ours = fake.firewalls().find((f) => f.name === `dcp-${record.name}`)!;
    fake.applyingFirewall(ours.id, 60_000);
    expect(await doors()).toEqual([]);
    await api('POST', 'firewalls', {
      name: 'ssh-anywhere',
      inbound_rules: [{ protocol: 'tcp', ports: '22', sources: { addresses: ['0.0.0.0/0'] } }],
      outbound_rules: [],
      tags: ['dcp:role:worker'],
    });
    const theirs = fake.firewalls().find((f) => f.name === 'ssh-anywhere')!;
    fake.applyingFirewall(theirs.id, 60_000);
    expect((await doors()).map((door) => door.detail).join('\n')).toMatch(/0\.0\.0\.0\/0/);
    await api('DELETE', `firewalls/${theirs.id}`);
    await destroyCluster(record.name, quiet);
  });

  it('list: any powered-off member is still billed, whether or not the scheduler is left', async () => {
    const record = await up();
    const made = droplets(record.name);
    const scheduler = made.find((d) => d.tags.includes('dcp:role:scheduler'))!;
    await api('DELETE', `droplets/${scheduler.id}`);
    for (const worker of made.filter((d) => d !== scheduler)) fake.powerOffFromInside(worker.id);
    const found = (await digitaloceanProvider.discover!(undefined)).find((c) => c.name === record.name);
    expect(found?.stoppedStatus).toBe('off (still billed)');
    await destroyCluster(record.name, quiet);
    expect(digitaloceanLeftovers(fake, record.name)).toEqual([]);
  });
});

describe('what the third review found', () => {
  it('list --region: a cluster elsewhere is not shown there, its firewall included', async () => {
    const record = await up();
    const there = (await digitaloceanProvider.discover!(SEED.otherRegion)).find(
      (c) => c.name === record.name,
    );
    expect(there).toBeUndefined();
    const here = (await digitaloceanProvider.discover!(SEED.region)).find((c) => c.name === record.name);
    expect(here).toMatchObject({ location: SEED.region, resources: [`firewall dcp-${record.name}`] });
    await destroyCluster(record.name, quiet);
  });

  it('config set digitalocean.ssh_key takes what up takes, and nothing else', async () => {
    const env = { ...process.env, CI: 'true' };
    const bad = await execa('node', [CLI, 'config', 'set', 'digitalocean.ssh_key', 'a b'], {
      env,
      reject: false,
    });
    expect(bad.exitCode).toBe(ExitCode.usage);
    expect(bad.stderr).toMatch(/key id or its MD5 fingerprint/);
    const good = await execa('node', [CLI, 'config', 'set', 'digitalocean.ssh_key', '41000001'], {
      env,
      reject: false,
    });
    expect(good.exitCode, good.stderr).toBe(0);
    await execa('node', [CLI, 'config', 'unset', 'digitalocean.ssh_key'], { env });
  });
});
