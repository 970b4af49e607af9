/**
 * A fake DigitalOcean API v2 for tests: one HTTP server on 127.0.0.1 that speaks the API's JSON well
 * enough for dcp's DigitalOcean provider (`DIGITALOCEAN_API_URL = fake.url`; the client appends
 * `/v2/...`). Shapes follow digitalocean/openapi (`specification/resources/...`) and its examples.
 *
 * Covers: account, regions, sizes, images (by slug or id), VPCs, VPC NAT gateways, tags (create,
 * get with resource counts, delete, which untags), firewalls (create, list, get, delete), droplets
 * (create by `name` or `names`, list with `tag_name`/`name`/`type`, get, delete by id or by tag),
 * actions, SSH keys (create, list, get and delete by id or fingerprint), paging (`page`/`per_page`,
 * `links.pages` as full URLs on this fake's origin, `meta.total`), the rate-limit headers on every
 * answer, fault injection before or after the work is done, a burst of 429s (`rateLimit`), and
 * `GET /checkip`. The life cycle is computed lazily from timestamps (no timers): a droplet is 'new'
 * with empty `networks` until addressingMs and provisioningMs pass; a deleted one still lists,
 * status unchanged, for deletingMs; a firewall is 'waiting' for firewallMs.
 * Like DigitalOcean it answers errors as `{id, message, request_id}` (messages are the API's own where
 * a source shows them), answers 202 with empty networks for a create, creates a droplet's missing
 * tags but refuses a firewall's unknown ones (422 `tag X does not exist`), refuses a second firewall
 * of the same name (409 `duplicate name`), gives a firewall made without outbound rules none at all
 * (all egress blocked), stores port range "all" (and an ICMP rule's) as "0", answers an existing
 * tag's create with that tag, counts the account's other droplets against droplet_limit, gives a
 * `public_networking: false` droplet only a private address, fingerprints SSH keys with MD5 of the
 * key blob, leaves a droplet powered off from inside 'off' (and billed), and, when `region` is
 * omitted, places the droplet in its VPC's region or else in nyc3 (DO picks one for you).
 *
 * Deliberately not covered: token scopes (the one token may do anything), droplet actions (power,
 * resize...), updates (PUT/PATCH) of firewalls, tags' resources endpoints, VPC and NAT gateway
 * writes, volumes, reserved IPs, projects, the 10-per-minute limit on listing SSH keys, real
 * rate-limit accounting (remaining counts this fake's requests of the last hour, never 429s by
 * itself). Firewalls keep a deleted tag's name. Fields the fake does not know are ignored, not
 * refused; they are in `calls`. Links and hrefs point at this fake, not api.digitalocean.com.
 * Where no source shows what the API does, the fake picks the strict reading: a delete by an unknown
 * tag_name is 404 (the spec lists 404), a firewall naming an unknown droplet is 422, and the wording
 * of such refusals (and of the limits on names, user data, rules, tags and droplet ids) is its own.
 */
import { listenOnLoopback } from '../server.js';
import { FaultQueue, type FailOptions } from '../faults.js';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';

// ---------------------------------------------------------------------------------------------
// Public types

export interface FakeDigitalOceanOptions {
  /** Default 'dop_v1_fake_token'; any other Bearer token is answered 401. */
  token?: string;
  /** Default 0: a droplet is status 'new' until then, then 'active' (and its create action completed). */
  provisioningMs?: number;
  /** Default provisioningMs: until then `networks.v4`/`v6` are []; may be shorter than provisioningMs. */
  addressingMs?: number;
  /** Default 0: a deleted droplet still lists (status unchanged) this long, then it is gone (404). */
  deletingMs?: number;
  /** Default 0: a firewall's status is 'waiting' this long after it is made, then 'succeeded'. */
  firewallMs?: number;
  /** Default 25 (account.droplet_limit); droplets count against it until they are gone. */
  dropletLimit?: number;
  /** Default 0: droplets the account already has (not dcp's, untagged, in nyc3), counted against the limit. */
  otherDroplets?: number;
  /** Default '203.0.113.7', served by `GET /checkip`; never given to a droplet. */
  myIp?: string;
  /** Default 200: the most items a page holds, whatever per_page asks (the API's max is 200, default 20). */
  pageSize?: number;
}

export interface FakeDoCall {
  /** 'droplets.create', 'tags.get', ... or 'unknown'. */
  method: string;
  httpMethod: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  at: number;
  /** The HTTP status answered (0 if the client was gone first). */
  status: number;
  /** The error `id` answered, if any. */
  errorId?: string;
}

export interface FakeDoFault {
  status: number;
  id: string;
  message?: string;
  /** Seconds: sets `retry-after` on the answer. */
  retryAfter?: number;
}

export type FakeDoFailOptions = FailOptions;

export interface FakeDoRegion {
  name: string;
  slug: string;
  features: string[];
  available: boolean;
  sizes: string[];
}

export interface FakeDoSize {
  slug: string;
  memory: number;
  vcpus: number;
  disk: number;
  transfer: number;
  price_monthly: number;
  price_hourly: number;
  regions: string[];
  available: boolean;
  description: string;
}

export interface FakeDoImage {
  id: number;
  name: string;
  distribution: string;
  slug: string;
  public: boolean;
  regions: string[];
  created_at: string;
  type: string;
  min_disk_size: number;
  size_gigabytes: number;
  description: string;
  tags: string[];
  status: string;
  error_message: string;
}

export interface FakeDoNetworkV4 {
  ip_address: string;
  netmask: string;
  gateway: string;
  type: 'public' | 'private';
}

export interface FakeDoNetworkV6 {
  ip_address: string;
  netmask: number;
  gateway: string;
  type: 'public';
}

/** A droplet exactly as `GET /v2/droplets/{id}` answers it, plus test-only fields (marked). */
export interface FakeDroplet {
  id: number;
  name: string;
  memory: number;
  vcpus: number;
  disk: number;
  locked: boolean;
  status: 'new' | 'active' | 'off' | 'archive';
  kernel: null;
  created_at: string;
  features: string[];
  backup_ids: number[];
  next_backup_window: null;
  snapshot_ids: number[];
  image: FakeDoImage;
  volume_ids: string[];
  size: FakeDoSize;
  size_slug: string;
  networks: { v4: FakeDoNetworkV4[]; v6: FakeDoNetworkV6[] };
  region: FakeDoRegion;
  tags: string[];
  vpc_uuid: string;
  /** Test only: `user_data` as sent. */
  userData?: string;
  /** Test only: `ssh_keys` as sent (ids or fingerprints). */
  sshKeys: (number | string)[];
  /** Test only: false when created with `public_networking: false`. */
  publicNetworking: boolean;
  /** Test only: created without ssh_keys, so DigitalOcean would email a root password. */
  rootPasswordEmailed: boolean;
  /** Test only: when the create was accepted. */
  requestedAt: number;
  /** Test only: when it became 'active'. */
  activeAt?: number;
  /** Test only: when it is (or will be) gone, GET answering 404 from then on. */
  deletedAt?: number;
  /** Test only: the create request's body (undefined for the seeded other droplets). */
  createBody: unknown;
}

export interface FakeDoFirewall {
  id: string;
  name: string;
  status: 'waiting' | 'succeeded' | 'failed';
  created_at: string;
  pending_changes: unknown[];
  inbound_rules: {
    protocol: string;
    ports: string;
    sources: {
      addresses?: string[];
      tags?: string[];
      droplet_ids?: number[];
      load_balancer_uids?: string[];
      kubernetes_ids?: string[];
    };
  }[];
  outbound_rules: {
    protocol: string;
    ports: string;
    destinations: { addresses?: string[]; tags?: string[]; droplet_ids?: number[] };
  }[];
  droplet_ids: number[];
  tags: string[];
}

export interface FakeDigitalOcean {
  /** http://127.0.0.1:PORT: what DIGITALOCEAN_API_URL is set to. */
  url: string;
  token: string;
  myIp: string;
  /** Every request but /checkip, in order. */
  calls: FakeDoCall[];
  /** POST/PUT/PATCH/DELETE calls. */
  mutatingCalls(): FakeDoCall[];
  /**
   * The next call(s) of `method` ('*' for any) answer this fault. Faults queue up in order: the
   * first one for a method must be used up before the next (so `times: Infinity` ends the queue).
   */
  fail(method: string, fault: FakeDoFault, options?: FakeDoFailOptions): void;
  /** Drops the queued faults of `method`, or all of them. */
  clearFaults(method?: string): void;
  /** Every droplet ever made (the seeded other droplets first), deleted ones included (deletedAt). */
  droplets(): FakeDroplet[];
  /** Live firewalls. */
  firewalls(): FakeDoFirewall[];
  /** Live tag names. */
  tags(): string[];
  sshKeys(): { id: number; fingerprint: string; public_key: string; name: string }[];
  natGateways(): unknown[];
  /** Guest shutdown: status 'off', still there (and billed). */
  powerOffFromInside(id: number): void;
  /** As DigitalOcean does while it applies a firewall to droplets that joined: 'waiting' for `ms` from now. */
  applyingFirewall(id: string, ms: number): void;
  /** Next API requests (any method) answer 429 {id:'too_many_requests'} with retry-after: seconds, `times` times. */
  rateLimit(times: number, retryAfterSeconds: number): void;
  close(): Promise<void>;
}

/** The seeded resources, so tests need not look them up. */
export const SEED = {
  region: 'ams3',
  otherRegion: 'nyc3',
  size: 's-2vcpu-4gb',
  image: 'ubuntu-24-04-x64',
  /** ams3's default VPC. */
  defaultVpc: '5a4981aa-9653-4bd1-bef5-d6bff52042e4',
  defaultCidr: '10.110.0.0/20',
  /** A custom VPC in ams3 named 'dcp-test-private' whose default route is a NAT gateway. */
  natVpc: '0eb1752f-807b-4562-a077-8018e13ab1fb',
  natCidr: '10.20.0.0/16',
  /** A custom VPC in ams3 without NAT. */
  bareVpc: '7d3c9a10-2b4e-4f61-9a8d-3e5f6a7b8c9d',
  bareCidr: '10.30.0.0/16',
  /** nyc3's default VPC. */
  otherRegionVpc: '760e09ef-dc84-11e8-981e-3cfdfeaae000',
} as const;

// ---------------------------------------------------------------------------------------------
// Seed data

const SEEDED_AT = '2026-01-05T09:00:00Z';
const REGION_FEATURES = ['backups', 'ipv6', 'metadata', 'install_agent', 'storage', 'image_transfer'];
const REGION_NAMES: Record<string, string> = {
  ams3: 'Amsterdam 3',
  nyc3: 'New York 3',
  sfo3: 'San Francisco 3',
};
const SIZES: FakeDoSize[] = [
  ['s-1vcpu-1gb', 1, 1024, 25, 1, 6, 'Basic', ['ams3', 'nyc3', 'sfo3']],
  ['s-2vcpu-4gb', 2, 4096, 80, 4, 24, 'Basic', ['ams3', 'nyc3', 'sfo3']],
  ['s-4vcpu-8gb', 4, 8192, 160, 5, 48, 'Basic', ['ams3', 'nyc3', 'sfo3']],
  // Not in sfo3: a size not offered where it is asked for.
  ['c-4', 4, 8192, 50, 5, 84, 'CPU-Optimized', ['ams3', 'nyc3']],
].map(([slug, vcpus, memory, disk, transfer, price, description, regions]) => ({
  slug: slug as string,
  memory: memory as number,
  vcpus: vcpus as number,
  disk: disk as number,
  transfer: transfer as number,
  price_monthly: price as number,
  price_hourly: Math.round(((price as number) / 672) * 1e6) / 1e6,
  regions: regions as string[],
  available: true,
  description: description as string,
}));
const REGIONS: FakeDoRegion[] = Object.entries(REGION_NAMES).map(([slug, name]) => ({
  name,
  slug,
  features: REGION_FEATURES,
  available: true,
  sizes: SIZES.filter((s) => s.regions.includes(slug)).map((s) => s.slug),
}));
const IMAGES: FakeDoImage[] = [
  [170000001, 'ubuntu-24-04-x64', '24.04 (LTS) x64', 'Ubuntu', 'Ubuntu 24.04 (LTS) x64'],
  [170000002, 'debian-12-x64', '12 x64', 'Debian', 'Debian 12 x64'],
].map(([id, slug, name, distribution, description]) => ({
  id: id as number,
  name: name as string,
  distribution: distribution as string,
  slug: slug as string,
  public: true,
  regions: Object.keys(REGION_NAMES),
  created_at: '2025-11-20T15:37:20Z',
  type: 'base',
  min_disk_size: 7,
  size_gigabytes: 2.36,
  description: description as string,
  tags: [],
  status: 'available',
  error_message: '',
}));

interface Vpc {
  id: string;
  urn: string;
  name: string;
  description: string;
  region: string;
  ip_range: string;
  default: boolean;
  created_at: string;
}

const VPCS: Vpc[] = [
  [SEED.defaultVpc, 'default-ams3', 'ams3', SEED.defaultCidr, true],
  [SEED.otherRegionVpc, 'default-nyc3', 'nyc3', '10.108.0.0/20', true],
  ['9f2c1e44-5b6a-4c7d-8e9f-0a1b2c3d4e5f', 'default-sfo3', 'sfo3', '10.124.0.0/20', true],
  [SEED.natVpc, 'dcp-test-private', 'ams3', SEED.natCidr, false],
  [SEED.bareVpc, 'dcp-test-bare', 'ams3', SEED.bareCidr, false],
].map(([id, name, region, ipRange, isDefault]) => ({
  id: id as string,
  urn: `do:vpc:${id as string}`,
  name: name as string,
  description: '',
  region: region as string,
  ip_range: ipRange as string,
  default: isDefault as boolean,
  created_at: SEEDED_AT,
}));

const NAT_GATEWAY_IP = '10.20.0.2';
const NAT_EGRESS_IP = '198.51.100.250';
const NAT_GATEWAYS = [
  {
    id: '70e1b58d-cdec-4e95-b3ee-2d4d95feff51',
    name: 'dcp-test-nat',
    type: 'PUBLIC',
    // Upper case, as the spec's response examples and terraform-provider-digitalocean's waiter have it
    // (the schema's enum says lower case).
    state: 'ACTIVE',
    region: 'ams3',
    size: 1,
    vpcs: [{ vpc_uuid: SEED.natVpc, gateway_ip: NAT_GATEWAY_IP, default_gateway: true }],
    egresses: { public_gateways: [{ ipv4: NAT_EGRESS_IP }] },
    udp_timeout_seconds: 30,
    icmp_timeout_seconds: 30,
    tcp_timeout_seconds: 300,
    created_at: SEEDED_AT,
    updated_at: SEEDED_AT,
    project_id: '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30',
  },
];

// ---------------------------------------------------------------------------------------------
// Constants and small helpers

const TAG = /^[a-zA-Z0-9_\-:]+$/;
const HOSTNAME = /^[a-zA-Z0-9.-]+$/;
const FIREWALL_NAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]+$/;
const USER_DATA_LIMIT = 64 * 1024;
const MAX_NAMES = 10;
const RATE_LIMIT = 5000;
const KEY_TYPES = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);
const DEFAULT_MESSAGES: Record<number, string> = {
  400: 'The request could not be understood.',
  401: 'Unable to authenticate you',
  403: 'You do not have access for the attempted action.',
  404: 'The resource you were accessing could not be found.',
  409: 'The request conflicts with the current state of the resource.',
  422: 'The request could not be processed.',
  // description.md's "Sample Rate Exceeded Response".
  429: 'API Rate limit exceeded.',
  500: 'Server was unable to give you a response.',
  503: 'The service is temporarily unavailable.',
};

class DoError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? DEFAULT_MESSAGES[status] ?? 'Unexpected error');
  }
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const ipToInt = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
const notFound = () => new DoError(404, 'not_found');
const unprocessable = (message: string) => new DoError(422, 'unprocessable_entity', message);

function cidr(range: string): { network: number; size: number; netmask: string } {
  const [base = '', bits = '32'] = range.split('/');
  const size = 2 ** (32 - Number(bits));
  return { network: ipToInt(base) - (ipToInt(base) % size), size, netmask: intToIp(2 ** 32 - size) };
}

function validAddress(address: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(address);
  if (v4)
    return v4.slice(1, 5).every((o) => Number(o) <= 255) && (v4[5] === undefined || Number(v4[5]) <= 32);
  const v6 = /^[0-9a-fA-F:]+(?:\/(\d{1,3}))?$/.exec(address);
  return v6 !== null && address.includes(':') && (v6[1] === undefined || Number(v6[1]) <= 128);
}

/** The MD5 fingerprint DigitalOcean shows (as `ssh-keygen -l -E md5`), or undefined if not an OpenSSH key. */
function sshFingerprint(publicKey: string): string | undefined {
  const m = /^(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+.*)?$/.exec(publicKey.trim());
  if (!m || !KEY_TYPES.has(m[1] ?? '')) return undefined;
  const blob = Buffer.from(m[2] ?? '', 'base64');
  if (blob.length < 4) return undefined;
  const typeLength = blob.readUInt32BE(0);
  if (blob.length < 4 + typeLength + 4 || blob.subarray(4, 4 + typeLength).toString() !== m[1])
    return undefined;
  const hex = createHash('md5').update(blob).digest('hex');
  return hex.match(/../g)?.join(':');
}

function strings(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string'))
    throw unprocessable(`${field} must be an array of strings`);
  return v as string[];
}

// ---------------------------------------------------------------------------------------------
// Internal records

interface Drop {
  id: number;
  name: string;
  size: FakeDoSize;
  image: FakeDoImage;
  region: FakeDoRegion;
  vpc: Vpc;
  tags: string[];
  features: string[];
  privateIp: string;
  publicIp?: string;
  ipv6?: string;
  requestedAt: number;
  offAt?: number;
  deleteRequestedAt?: number;
  userData?: string;
  sshKeys: (number | string)[];
  publicNetworking: boolean;
  createBody: unknown;
  actionId: number;
}

interface Tag {
  name: string;
  /** When each droplet was last tagged with it, for last_tagged_uri. */
  taggedAt: Map<number, number>;
}

interface Fw {
  v: Omit<FakeDoFirewall, 'status' | 'pending_changes'>;
  changedAt: number;
  /** Set by applyingFirewall. */
  busyUntil?: number;
}

interface SshKey {
  id: number;
  fingerprint: string;
  public_key: string;
  name: string;
}

interface Ctx {
  path: string;
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
}

interface Reply {
  status: number;
  body?: unknown;
}

type Route = (c: Ctx) => Reply;

const ok = (body: unknown): Reply => ({ status: 200, body });

function remove<T>(list: T[], item: T): Reply {
  list.splice(list.indexOf(item), 1);
  return { status: 204 };
}

// ---------------------------------------------------------------------------------------------
// The fake

class FakeDigitalOceanImpl implements FakeDigitalOcean {
  url = '';
  readonly token: string;
  readonly myIp: string;
  readonly calls: FakeDoCall[] = [];
  server: http.Server | undefined;
  private readonly provisioningMs: number;
  private readonly addressingMs: number;
  private readonly deletingMs: number;
  private readonly firewallMs: number;
  private readonly dropletLimit: number;
  private readonly pageSize: number;
  private readonly drops: Drop[] = [];
  private readonly tagList: Tag[] = [];
  private readonly fws: Fw[] = [];
  private readonly keys: SshKey[] = [];
  private readonly usedPrivate = new Map<string, Set<number>>();
  private readonly publicPool: string[];
  private readonly publicUsed = new Set<string>();
  private readonly faults = new FaultQueue<FakeDoFault>();
  private readonly requestTimes: number[] = [];
  private limited = { times: 0, retryAfter: 0 };
  private nextDropletId = 512000001;
  private nextActionId = 2600000001;
  private nextKeyId = 41000001;
  private nextV6 = 1;

  constructor(options: FakeDigitalOceanOptions) {
    this.token = options.token ?? 'dop_v1_fake_token';
    this.myIp = options.myIp ?? '203.0.113.7';
    this.provisioningMs = options.provisioningMs ?? 0;
    this.addressingMs = options.addressingMs ?? this.provisioningMs;
    this.deletingMs = options.deletingMs ?? 0;
    this.firewallMs = options.firewallMs ?? 0;
    this.dropletLimit = options.dropletLimit ?? 25;
    this.pageSize = options.pageSize ?? 200;
    // Public addresses come from the documentation ranges, never the tester's own "my IP", a
    // network's .0/.1/.255 or the NAT gateway's egress address.
    this.publicPool = ['203.0.113', '198.51.100']
      .flatMap((net) => Array.from({ length: 253 }, (_, i) => `${net}.${i + 2}`))
      .filter((ip) => ip !== this.myIp && ip !== NAT_EGRESS_IP && !ip.endsWith('.255'));
    this.usedPrivate.set(SEED.natVpc, new Set([ipToInt(NAT_GATEWAY_IP)]));
    const seededAt = Date.parse(SEEDED_AT);
    const nyc3 = this.regionOf('nyc3');
    for (let i = 0; i < (options.otherDroplets ?? 0); i++) {
      this.drops.push(
        this.newDrop({
          name: `web-${i + 1}`,
          size: SIZES[0] as FakeDoSize,
          image: IMAGES[0] as FakeDoImage,
          region: nyc3,
          vpc: this.vpcById(SEED.otherRegionVpc),
          tags: [],
          features: ['droplet_agent', 'private_networking'],
          publicNetworking: true,
          ipv6: false,
          requestedAt: seededAt,
          sshKeys: [],
          createBody: undefined,
        }),
      );
    }
  }

  // --- Introspection API ---------------------------------------------------------------------

  mutatingCalls(): FakeDoCall[] {
    return this.calls.filter((c) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(c.httpMethod));
  }

  fail(method: string, fault: FakeDoFault, options: FakeDoFailOptions = {}): void {
    this.faults.add(method, fault, options);
  }

  clearFaults(method?: string): void {
    this.faults.clear(method);
  }

  droplets(): FakeDroplet[] {
    const now = Date.now();
    return this.drops.map((d) => {
      const activeAt = d.requestedAt + this.provisioningMs;
      const deletedAt = d.deleteRequestedAt === undefined ? undefined : d.deleteRequestedAt + this.deletingMs;
      return {
        ...this.dropletWire(d, now),
        ...(d.userData === undefined ? {} : { userData: d.userData }),
        sshKeys: [...d.sshKeys],
        publicNetworking: d.publicNetworking,
        rootPasswordEmailed: d.sshKeys.length === 0,
        requestedAt: d.requestedAt,
        ...(now >= activeAt ? { activeAt } : {}),
        ...(deletedAt === undefined ? {} : { deletedAt }),
        createBody: structuredClone(d.createBody),
      };
    });
  }

  firewalls(): FakeDoFirewall[] {
    return this.fws.map((f) => this.firewallWire(f));
  }

  tags(): string[] {
    return this.tagList.map((t) => t.name);
  }

  sshKeys(): SshKey[] {
    return this.keys.map((k) => ({ ...k }));
  }

  natGateways(): unknown[] {
    return structuredClone(NAT_GATEWAYS);
  }

  powerOffFromInside(id: number): void {
    const d = this.liveDrops().find((x) => x.id === id);
    if (!d) throw new Error(`fake DigitalOcean: no droplet ${id}`);
    d.offAt = Date.now();
  }

  applyingFirewall(id: string, ms: number): void {
    const f = this.fws.find((x) => x.v.id === id);
    if (!f) throw new Error(`fake DigitalOcean: no firewall ${id}`);
    f.busyUntil = Date.now() + ms;
  }

  rateLimit(times: number, retryAfterSeconds: number): void {
    this.limited = { times, retryAfter: retryAfterSeconds };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    // Clients keep connections alive; without this close() would wait for them to idle out.
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // --- Lookups -------------------------------------------------------------------------------

  private regionOf(slug: string): FakeDoRegion {
    return REGIONS.find((r) => r.slug === slug) as FakeDoRegion;
  }

  private vpcById(id: string): Vpc {
    return VPCS.find((v) => v.id === id) as Vpc;
  }

  /** Droplets not gone yet (deleting ones included, for deletingMs). */
  private liveDrops(now = Date.now()): Drop[] {
    return this.drops.filter(
      (d) => d.deleteRequestedAt === undefined || now < d.deleteRequestedAt + this.deletingMs,
    );
  }

  private findDrop(id: string | undefined): Drop {
    const d = this.liveDrops().find((x) => String(x.id) === id);
    if (!d) throw notFound();
    return d;
  }

  /** Tags are case-stable: a name matches its tag whatever the capitalization, and the tag keeps its own. */
  private findTag(name: string): Tag | undefined {
    return this.tagList.find((t) => t.name.toLowerCase() === name.toLowerCase());
  }

  private findKey(idOrFingerprint: string | undefined): SshKey {
    const key = this.keys.find((k) => String(k.id) === idOrFingerprint || k.fingerprint === idOrFingerprint);
    if (!key) throw notFound();
    return key;
  }

  // --- Wire shapes ---------------------------------------------------------------------------

  private dropletWire(
    d: Drop,
    now = Date.now(),
  ): Omit<
    FakeDroplet,
    'sshKeys' | 'publicNetworking' | 'rootPasswordEmailed' | 'requestedAt' | 'createBody'
  > {
    const addressed = now >= d.requestedAt + this.addressingMs;
    const { network, netmask } = cidr(d.vpc.ip_range);
    const v4: FakeDoNetworkV4[] = [];
    const v6: FakeDoNetworkV6[] = [];
    if (addressed) {
      v4.push({ ip_address: d.privateIp, netmask, gateway: intToIp(network + 1), type: 'private' });
      if (d.publicIp) {
        const gateway = d.publicIp.replace(/\.\d+$/, '.1');
        v4.push({ ip_address: d.publicIp, netmask: '255.255.255.0', gateway, type: 'public' });
      }
      if (d.ipv6) v6.push({ ip_address: d.ipv6, netmask: 64, gateway: '2001:db8:a0::1', type: 'public' });
    }
    const status =
      d.offAt !== undefined ? 'off' : now >= d.requestedAt + this.provisioningMs ? 'active' : 'new';
    return {
      id: d.id,
      name: d.name,
      memory: d.size.memory,
      vcpus: d.size.vcpus,
      disk: d.size.disk,
      locked: false,
      status,
      kernel: null,
      created_at: iso(d.requestedAt),
      features: [...d.features],
      backup_ids: [],
      next_backup_window: null,
      snapshot_ids: [],
      image: structuredClone(d.image),
      volume_ids: [],
      size: structuredClone(d.size),
      size_slug: d.size.slug,
      networks: { v4, v6 },
      region: structuredClone(d.region),
      tags: [...d.tags],
      vpc_uuid: d.vpc.id,
    };
  }

  private firewallWire(f: Fw, now = Date.now()): FakeDoFirewall {
    const waiting = now < Math.max(f.changedAt + this.firewallMs, f.busyUntil ?? 0);
    const members = new Set([
      ...f.v.droplet_ids,
      ...this.liveDrops(now)
        .filter((d) => d.tags.some((t) => f.v.tags.includes(t)))
        .map((d) => d.id),
    ]);
    return {
      ...structuredClone(f.v),
      status: waiting ? 'waiting' : 'succeeded',
      pending_changes: waiting
        ? [...members].map((id) => ({ droplet_id: id, removing: false, status: 'waiting' }))
        : [],
    };
  }

  private tagWire(t: Tag): Json {
    const tagged = this.liveDrops()
      .filter((d) => d.tags.includes(t.name))
      .sort((a, b) => (t.taggedAt.get(a.id) ?? 0) - (t.taggedAt.get(b.id) ?? 0));
    const last = tagged.at(-1);
    const droplets = {
      count: tagged.length,
      ...(last ? { last_tagged_uri: `${this.url}/v2/droplets/${last.id}` } : {}),
    };
    return {
      name: t.name,
      resources: {
        ...droplets,
        droplets,
        images: { count: 0 },
        volumes: { count: 0 },
        volume_snapshots: { count: 0 },
        databases: { count: 0 },
      },
    };
  }

  private actionWire(d: Drop): Json {
    const activeAt = d.requestedAt + this.provisioningMs;
    const now = Date.now();
    const erroredAt =
      d.deleteRequestedAt !== undefined && d.deleteRequestedAt < activeAt ? d.deleteRequestedAt : undefined;
    const status = erroredAt !== undefined ? 'errored' : now >= activeAt ? 'completed' : 'in-progress';
    return {
      id: d.actionId,
      status,
      type: 'create',
      started_at: iso(d.requestedAt),
      completed_at: status === 'in-progress' ? null : iso(erroredAt ?? activeAt),
      resource_id: d.id,
      resource_type: 'droplet',
      region: structuredClone(d.region),
      region_slug: d.region.slug,
    };
  }

  /** One page of a list, with `links.pages` (full URLs keeping the query) and `meta.total`. */
  private page({ path, query }: Ctx, key: string, items: unknown[]): Reply {
    const asked = Number(query.per_page ?? 20);
    const perPage = Math.min(
      Number.isInteger(asked) && asked >= 1 ? Math.min(asked, 200) : 20,
      this.pageSize,
    );
    const askedPage = Number(query.page ?? 1);
    const page = Number.isInteger(askedPage) && askedPage >= 1 ? askedPage : 1;
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (n: number) => {
      const params = new URLSearchParams({ ...query, page: String(n) });
      return `${this.url}${path}?${params.toString()}`;
    };
    const pages: Record<string, string> = {};
    if (page > 1) Object.assign(pages, { first: link(1), prev: link(Math.min(page - 1, last)) });
    if (page < last) Object.assign(pages, { last: link(last), next: link(page + 1) });
    return {
      status: 200,
      body: {
        [key]: items.slice((page - 1) * perPage, page * perPage),
        links: Object.keys(pages).length > 0 ? { pages } : {},
        meta: { total: items.length },
      },
    };
  }

  // --- Droplets ------------------------------------------------------------------------------

  private newDrop(spec: {
    name: string;
    size: FakeDoSize;
    image: FakeDoImage;
    region: FakeDoRegion;
    vpc: Vpc;
    tags: string[];
    features: string[];
    publicNetworking: boolean;
    ipv6: boolean;
    requestedAt: number;
    userData?: string;
    sshKeys: (number | string)[];
    createBody: unknown;
  }): Drop {
    const id = this.nextDropletId++;
    const publicIp = spec.publicNetworking
      ? this.publicPool.find((ip) => !this.publicUsed.has(ip))
      : undefined;
    if (spec.publicNetworking && publicIp === undefined)
      throw new Error('fake DigitalOcean: out of public IPs');
    if (publicIp) this.publicUsed.add(publicIp);
    for (const t of spec.tags) this.findTag(t)?.taggedAt.set(id, spec.requestedAt);
    return {
      id,
      name: spec.name,
      size: spec.size,
      image: spec.image,
      region: spec.region,
      vpc: spec.vpc,
      tags: spec.tags,
      features: spec.features,
      privateIp: this.allocatePrivate(spec.vpc),
      ...(publicIp ? { publicIp } : {}),
      ...(spec.ipv6 && spec.publicNetworking ? { ipv6: `2001:db8:a0::${(this.nextV6++).toString(16)}` } : {}),
      requestedAt: spec.requestedAt,
      ...(spec.userData === undefined ? {} : { userData: spec.userData }),
      sshKeys: spec.sshKeys,
      publicNetworking: spec.publicNetworking,
      createBody: spec.createBody,
      actionId: this.nextActionId++,
    };
  }

  /** The VPC's addresses in order, skipping the network address, the gateway (.1) and broadcast. */
  private allocatePrivate(vpc: Vpc): string {
    const { network, size } = cidr(vpc.ip_range);
    const used = this.usedPrivate.get(vpc.id) ?? new Set<number>();
    this.usedPrivate.set(vpc.id, used);
    for (let n = network + 2; n < network + size - 1; n++) {
      if (!used.has(n)) {
        used.add(n);
        return intToIp(n);
      }
    }
    throw new Error(`fake DigitalOcean: VPC ${vpc.name} is full`);
  }

  private createDroplets(c: Ctx): Reply {
    const body = c.body;
    if (!isObj(body)) throw unprocessable('The request body must be a JSON object.');
    const multi = body.names !== undefined && body.names !== null;
    let names: string[];
    if (multi) {
      names = strings(body.names, 'names');
      if (body.name !== undefined) throw unprocessable('Specify either name or names, not both.');
      if (names.length === 0) throw unprocessable('names must not be empty.');
      if (names.length > MAX_NAMES)
        throw unprocessable(`You may only create up to ${MAX_NAMES} Droplets at a time.`);
    } else {
      if (typeof body.name !== 'string' || body.name === '') throw unprocessable('Name is required.');
      names = [body.name];
    }
    for (const n of names) {
      if (!HOSTNAME.test(n) || n.length > 255)
        throw unprocessable('Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)');
    }
    // The VPC first: without a region the droplet goes where its VPC is.
    const vpcId = body.vpc_uuid;
    const vpc = typeof vpcId === 'string' && vpcId !== '' ? VPCS.find((v) => v.id === vpcId) : undefined;
    if (vpcId !== undefined && vpcId !== null && !vpc)
      throw unprocessable('You specified invalid VPC parameters for Droplet creation.');
    const regionSlug = body.region ?? vpc?.region ?? SEED.otherRegion;
    const region = REGIONS.find((r) => r.slug === regionSlug && r.available);
    if (!region) throw unprocessable('You specified an invalid region for Droplet creation.');
    const size = SIZES.find((s) => s.slug === body.size);
    if (!size) throw unprocessable('You specified an invalid size for Droplet creation.');
    if (!size.available || !size.regions.includes(region.slug))
      throw unprocessable('Size is not available in this region.');
    const image = IMAGES.find((i) => i.slug === body.image || i.id === Number(body.image));
    if (!image || body.image === undefined || body.image === null || body.image === '')
      throw unprocessable('You specified an invalid image for Droplet creation.');
    if (vpc && vpc.region !== region.slug)
      throw unprocessable('You specified invalid VPC parameters for Droplet creation.');
    const dropletVpc = vpc ?? (VPCS.find((v) => v.region === region.slug && v.default) as Vpc);

    const rawKeys = body.ssh_keys ?? [];
    if (!Array.isArray(rawKeys) || rawKeys.some((k) => typeof k !== 'string' && typeof k !== 'number'))
      throw unprocessable('ssh_keys must be an array of key ids or fingerprints.');
    const sshKeys = rawKeys as (number | string)[];
    const unknownKeys = sshKeys.filter((k) => {
      try {
        this.findKey(String(k));
        return false;
      } catch {
        return true;
      }
    });
    if (unknownKeys.length > 0)
      throw unprocessable(`${unknownKeys.join(', ')} are invalid key identifiers for Droplet creation.`);

    const tagNames = strings(body.tags, 'tags');
    for (const t of tagNames) {
      if (!TAG.test(t) || t.length > 255)
        throw unprocessable(
          `tag ${t} is invalid: tags may contain letters, numbers, colons, dashes, and underscores, up to 255 characters`,
        );
    }
    const userData = body.user_data;
    if (userData !== undefined && userData !== null) {
      if (typeof userData !== 'string') throw unprocessable('user_data must be a string.');
      if (Buffer.byteLength(userData) > USER_DATA_LIMIT)
        throw unprocessable('user_data must not exceed 64 KiB.');
    }
    const publicNetworking = body.public_networking !== false;
    if (!publicNetworking && body.ipv6 === true)
      throw unprocessable('ipv6 must be false when public_networking is false.');
    const now = Date.now();
    if (this.liveDrops(now).length + names.length > this.dropletLimit)
      throw unprocessable('creating this/these droplet(s) will exceed your droplet limit');

    // Everything checked: from here on the request does its work.
    const tags = tagNames.map((t) => {
      const existing = this.findTag(t);
      if (existing) return existing.name;
      this.tagList.push({ name: t, taggedAt: new Map() });
      return t;
    });
    const features = [
      'droplet_agent',
      'private_networking',
      ...(body.ipv6 === true ? ['ipv6'] : []),
      ...(body.monitoring === true ? ['monitoring'] : []),
      ...(body.backups === true ? ['backups'] : []),
    ];
    const made = names.map((name) => {
      const d = this.newDrop({
        name,
        size,
        image,
        region,
        vpc: dropletVpc,
        tags: [...new Set(tags)],
        features,
        publicNetworking,
        ipv6: body.ipv6 === true,
        requestedAt: now,
        ...(typeof userData === 'string' ? { userData } : {}),
        sshKeys: [...sshKeys],
        createBody: structuredClone(body),
      });
      this.drops.push(d);
      return d;
    });
    const actions = made.map((d) => ({
      id: d.actionId,
      rel: 'create',
      href: `${this.url}/v2/actions/${d.actionId}`,
    }));
    // The create answer is 'new' with empty networks whatever provisioningMs is, as DigitalOcean's is.
    const wires = made.map((d) => ({
      ...this.dropletWire(d, now),
      status: 'new',
      networks: { v4: [], v6: [] },
    }));
    return {
      status: 202,
      body: multi ? { droplets: wires, links: { actions } } : { droplet: wires[0], links: { actions } },
    };
  }

  private listDroplets(c: Ctx): Reply {
    const { tag_name: tagName, name, type } = c.query;
    if (tagName !== undefined && (name !== undefined || type !== undefined))
      throw unprocessable('tag_name cannot be combined with name or type.');
    if (type !== undefined && type !== 'droplets' && type !== 'gpus')
      throw unprocessable('type must be droplets or gpus.');
    const now = Date.now();
    const items = this.liveDrops(now)
      .filter((d) => tagName === undefined || d.tags.includes(tagName))
      .filter((d) => name === undefined || d.name === name)
      .filter(() => type !== 'gpus')
      .map((d) => this.dropletWire(d, now));
    return this.page(c, 'droplets', items);
  }

  private deleteDroplet(d: Drop, now = Date.now()): Reply {
    d.deleteRequestedAt ??= now;
    return { status: 204 };
  }

  private deleteByTag(c: Ctx): Reply {
    const tagName = c.query.tag_name;
    if (tagName === undefined || tagName === '') throw unprocessable('tag_name is required.');
    if (!this.tagList.some((t) => t.name === tagName)) throw notFound();
    const now = Date.now();
    for (const d of this.liveDrops(now).filter((x) => x.tags.includes(tagName))) this.deleteDroplet(d, now);
    return { status: 204 };
  }

  private getAction(c: Ctx): Reply {
    const d = this.drops.find((x) => String(x.actionId) === c.params.id);
    if (!d) throw notFound();
    return { status: 200, body: { action: this.actionWire(d) } };
  }

  // --- Tags ----------------------------------------------------------------------------------

  private createTag(c: Ctx): Reply {
    const name = isObj(c.body) ? c.body.name : undefined;
    if (typeof name !== 'string' || !TAG.test(name) || name.length > 255)
      throw unprocessable(
        'tag name is invalid: tags may contain letters, numbers, colons, dashes, and underscores, up to 255 characters',
      );
    // An existing tag (in any capitalization) is answered as it is: creating is idempotent.
    let tag = this.findTag(name);
    if (!tag) {
      tag = { name, taggedAt: new Map() };
      this.tagList.push(tag);
    }
    return { status: 201, body: { tag: this.tagWire(tag) } };
  }

  private exactTag(name: string | undefined): Tag {
    const tag = this.tagList.find((t) => t.name === name);
    if (!tag) throw notFound();
    return tag;
  }

  private deleteTag(c: Ctx): Reply {
    const tag = this.exactTag(c.params.id);
    this.tagList.splice(this.tagList.indexOf(tag), 1);
    // "Deleting a tag also untags all the resources that have previously been tagged by the Tag."
    // Droplets already gone keep theirs in droplets(), so a test can still tell whose they were.
    for (const d of this.liveDrops()) d.tags = d.tags.filter((t) => t !== tag.name);
    return { status: 204 };
  }

  // --- Firewalls -----------------------------------------------------------------------------

  private createFirewall(c: Ctx): Reply {
    const body = c.body;
    if (!isObj(body)) throw unprocessable('The request body must be a JSON object.');
    const name = body.name;
    if (typeof name !== 'string' || !FIREWALL_NAME.test(name) || name.length > 255)
      throw unprocessable(
        'name must begin with an alphanumeric character, followed by alphanumeric characters, periods or dashes',
      );
    const tags = strings(body.tags, 'tags');
    const dropletIds = body.droplet_ids ?? [];
    if (!Array.isArray(dropletIds) || dropletIds.some((id) => !Number.isInteger(id)))
      throw unprocessable('droplet_ids must be an array of integers');
    const inboundRaw = body.inbound_rules ?? [];
    const outboundRaw = body.outbound_rules ?? [];
    if (!Array.isArray(inboundRaw) || !Array.isArray(outboundRaw))
      throw unprocessable('inbound_rules and outbound_rules must be arrays');
    if (inboundRaw.length + outboundRaw.length === 0)
      throw unprocessable('must specify at least one inbound or outbound rule');
    if (inboundRaw.length + outboundRaw.length > 50)
      throw unprocessable('a firewall may have at most 50 rules');
    if (tags.length > 5) throw unprocessable('a firewall may have at most 5 tags');
    if (dropletIds.length > 10) throw unprocessable('a firewall may have at most 10 droplets');
    const referencedTags = [...tags];
    const referencedDroplets = [...(dropletIds as number[])];
    const rule = (raw: unknown, side: 'sources' | 'destinations') => {
      if (!isObj(raw)) throw unprocessable('a rule must be an object');
      const protocol = raw.protocol;
      if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'icmp')
        throw unprocessable(`invalid protocol ${String(protocol)}: must be tcp, udp or icmp`);
      let ports = raw.ports;
      if (protocol === 'icmp' || ports === 'all') ports = '0';
      if (typeof ports !== 'string') throw unprocessable(`ports are required for ${protocol} rules`);
      const range = /^(\d+)(?:-(\d+))?$/.exec(ports);
      const low = Number(range?.[1]);
      const high = range?.[2] === undefined ? low : Number(range[2]);
      if (!range || (ports !== '0' && (low < 1 || high > 65535 || low > high)))
        throw unprocessable(`invalid port range ${ports}`);
      const target = raw[side];
      if (!isObj(target)) throw unprocessable(`${side} are required`);
      const out: Json = {};
      for (const key of ['addresses', 'tags', 'load_balancer_uids', 'kubernetes_ids']) {
        const list = strings(target[key], `${side}.${key}`);
        if (target[key] !== undefined) out[key] = list;
      }
      const ids = target.droplet_ids ?? [];
      if (!Array.isArray(ids) || ids.some((id) => !Number.isInteger(id)))
        throw unprocessable(`${side}.droplet_ids must be an array of integers`);
      if (target.droplet_ids !== undefined) out.droplet_ids = ids;
      if (Object.values(out).every((v) => (v as unknown[]).length === 0))
        throw unprocessable(`${side} must not be empty`);
      for (const address of (out.addresses as string[] | undefined) ?? []) {
        if (!validAddress(address)) throw unprocessable('invalid address');
      }
      referencedTags.push(...((out.tags as string[] | undefined) ?? []));
      referencedDroplets.push(...(ids as number[]));
      return { protocol, ports, [side]: out };
    };
    const inbound = inboundRaw.map((r) => rule(r, 'sources'));
    const outbound = outboundRaw.map((r) => rule(r, 'destinations'));
    for (const t of referencedTags) {
      if (!this.findTag(t)) throw unprocessable(`tag ${t} does not exist`);
    }
    for (const id of referencedDroplets) {
      if (!this.liveDrops().some((d) => d.id === id)) throw unprocessable(`droplet ${id} does not exist`);
    }
    if (this.fws.some((f) => f.v.name === name)) throw new DoError(409, 'conflict', 'duplicate name');
    const now = Date.now();
    const fw: Fw = {
      v: {
        id: randomUUID(),
        name,
        created_at: iso(now),
        inbound_rules: inbound as FakeDoFirewall['inbound_rules'],
        outbound_rules: outbound as FakeDoFirewall['outbound_rules'],
        droplet_ids: [...(dropletIds as number[])],
        tags: tags.map((t) => this.findTag(t)?.name ?? t),
      },
      changedAt: now,
    };
    this.fws.push(fw);
    // The create answer says 'waiting' whatever firewallMs is, as DigitalOcean's does.
    return { status: 202, body: { firewall: { ...this.firewallWire(fw, now), status: 'waiting' } } };
  }

  private findFirewall(c: Ctx): Fw {
    const fw = this.fws.find((f) => f.v.id === c.params.id);
    if (!fw) throw notFound();
    return fw;
  }

  // --- SSH keys ------------------------------------------------------------------------------

  private createKey(c: Ctx): Reply {
    const body = isObj(c.body) ? c.body : {};
    if (typeof body.name !== 'string' || body.name.trim() === '') throw unprocessable('Name is required');
    const publicKey = typeof body.public_key === 'string' ? body.public_key.trim() : '';
    const fingerprint = sshFingerprint(publicKey);
    if (!fingerprint) throw unprocessable('Key invalid, key should be of the format `type key [comment]`');
    if (this.keys.some((k) => k.fingerprint === fingerprint))
      throw unprocessable('SSH Key is already in use on your account');
    const key = { id: this.nextKeyId++, fingerprint, public_key: publicKey, name: body.name };
    this.keys.push(key);
    return { status: 201, body: { ssh_key: { ...key } } };
  }

  // --- HTTP ----------------------------------------------------------------------------------

  private readonly routes: Record<string, [name: string, run: (c: Ctx) => Reply]> = {
    'GET account': ['account.get', () => this.account()],
    'GET regions': ['regions.list', (c) => this.page(c, 'regions', structuredClone(REGIONS))],
    'GET sizes': ['sizes.list', (c) => this.page(c, 'sizes', structuredClone(SIZES))],
    'GET images/:id': [
      'images.get',
      (c) => ok({ image: this.byId(IMAGES, c, (i) => [i.slug, String(i.id)]) }),
    ],
    'GET vpcs': ['vpcs.list', (c) => this.page(c, 'vpcs', structuredClone(VPCS))],
    'GET vpcs/:id': ['vpcs.get', (c) => ok({ vpc: this.byId(VPCS, c, (v) => [v.id]) })],
    'GET vpc_nat_gateways': ['natGateways.list', (c) => this.page(c, 'vpc_nat_gateways', this.natGateways())],
    'POST tags': ['tags.create', (c) => this.createTag(c)],
    'GET tags/:id': ['tags.get', (c) => ok({ tag: this.tagWire(this.exactTag(c.params.id)) })],
    'DELETE tags/:id': ['tags.delete', (c) => this.deleteTag(c)],
    'POST firewalls': ['firewalls.create', (c) => this.createFirewall(c)],
    'GET firewalls': ['firewalls.list', (c) => this.page(c, 'firewalls', this.firewalls())],
    'GET firewalls/:id': ['firewalls.get', (c) => ok({ firewall: this.firewallWire(this.findFirewall(c)) })],
    'DELETE firewalls/:id': ['firewalls.delete', (c) => remove(this.fws, this.findFirewall(c))],
    'POST droplets': ['droplets.create', (c) => this.createDroplets(c)],
    'GET droplets': ['droplets.list', (c) => this.listDroplets(c)],
    'DELETE droplets': ['droplets.deleteByTag', (c) => this.deleteByTag(c)],
    'GET droplets/:id': [
      'droplets.get',
      (c) => ok({ droplet: this.dropletWire(this.findDrop(c.params.id)) }),
    ],
    'DELETE droplets/:id': ['droplets.delete', (c) => this.deleteDroplet(this.findDrop(c.params.id))],
    'GET actions/:id': ['actions.get', (c) => this.getAction(c)],
    'POST account/keys': ['sshKeys.create', (c) => this.createKey(c)],
    'GET account/keys': ['sshKeys.list', (c) => this.page(c, 'ssh_keys', this.sshKeys())],
    'GET account/keys/:id': ['sshKeys.get', (c) => ok({ ssh_key: { ...this.findKey(c.params.id) } })],
    'DELETE account/keys/:id': ['sshKeys.delete', (c) => remove(this.keys, this.findKey(c.params.id))],
  };

  private byId<T>(items: readonly T[], c: Ctx, ids: (item: T) => string[]): T {
    const item = items.find((i) => ids(i).includes(c.params.id ?? ''));
    if (!item) throw notFound();
    return structuredClone(item);
  }

  private account(): Reply {
    return {
      status: 200,
      body: {
        account: {
          droplet_limit: this.dropletLimit,
          floating_ip_limit: 3,
          reserved_ip_limit: 3,
          volume_limit: 100,
          email: 'sammy@example.com',
          name: 'Sammy the Shark',
          uuid: 'b6fc48dbf6d9906cace5f3c78dc9851e757381ef',
          email_verified: true,
          status: 'active',
          status_message: '',
          team: { uuid: '5df3e3004a17e242b7c20ca6c9fc25b701a47ece', name: 'My Team' },
        },
      },
    };
  }

  private route(
    verb: string,
    path: string,
  ): { name: string; run: Route; params: Record<string, string> } | undefined {
    if (!path.startsWith('/v2/')) return undefined;
    const parts = path.slice(4).replace(/\/$/, '').split('/');
    for (const [key, [name, run]] of Object.entries(this.routes)) {
      const [routeVerb = '', pattern = ''] = key.split(' ');
      const want = pattern.split('/');
      if (routeVerb !== verb || want.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const matches = want.every((w, i) => {
        const got = parts[i] ?? '';
        if (!w.startsWith(':')) return w === got;
        params[w.slice(1)] = decodeURIComponent(got);
        return got !== '';
      });
      if (matches) return { name, run, params };
    }
    return undefined;
  }

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const path = url.pathname;
    const httpMethod = req.method ?? 'GET';
    if (httpMethod === 'GET' && path === '/checkip') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${this.myIp}\n`);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const query = Object.fromEntries(url.searchParams);
    const match = this.route(httpMethod, path);
    let body: unknown;
    let parseError = false;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        parseError = true;
      }
    }
    const now = Date.now();
    const call: FakeDoCall = {
      method: match?.name ?? 'unknown',
      httpMethod,
      path,
      query,
      ...(body === undefined ? {} : { body }),
      at: now,
      status: 0,
    };
    this.calls.push(call);
    this.requestTimes.push(now);
    while ((this.requestTimes[0] ?? now) <= now - 3_600_000) this.requestTimes.shift();
    const requestId = randomUUID();
    let reply: Reply;
    let headers: Record<string, string> = {};
    try {
      const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (auth?.[1] !== this.token) throw new DoError(401, 'unauthorized');
      if (this.limited.times > 0) {
        this.limited.times--;
        throw new DoError(429, 'too_many_requests', undefined, {
          'retry-after': String(this.limited.retryAfter),
        });
      }
      if (!match) throw notFound();
      if (parseError) throw new DoError(400, 'bad_request', 'The request body is not valid JSON.');
      const fault = this.takeFault(match.name);
      if (fault && !fault.afterEffect) throw this.faultError(fault.fault);
      reply = match.run({ params: match.params, query, body, path });
      if (fault) throw this.faultError(fault.fault);
    } catch (err) {
      const e =
        err instanceof DoError
          ? err
          : new DoError(500, 'server_error', `fake DigitalOcean bug: ${(err as Error).stack ?? String(err)}`);
      call.errorId = e.id;
      reply = { status: e.status, body: { id: e.id, message: e.message, request_id: requestId } };
      headers = e.headers;
    }
    this.send(res, call, reply, { 'x-request-id': requestId, ...headers });
  }

  private send(
    res: http.ServerResponse,
    call: FakeDoCall,
    reply: Reply,
    headers: Record<string, string>,
  ): void {
    if (res.destroyed) return;
    call.status = reply.status;
    const oldest = this.requestTimes[0] ?? Date.now();
    const all: Record<string, string> = {
      'ratelimit-limit': String(RATE_LIMIT),
      'ratelimit-remaining': String(
        reply.status === 429 ? 0 : Math.max(0, RATE_LIMIT - this.requestTimes.length),
      ),
      'ratelimit-reset': String(Math.ceil((oldest + 3_600_000) / 1000)),
      ...headers,
    };
    if (reply.body === undefined) {
      res.writeHead(reply.status, all).end();
      return;
    }
    res
      .writeHead(reply.status, { 'content-type': 'application/json; charset=utf-8', ...all })
      .end(JSON.stringify(reply.body));
  }

  private takeFault(method: string): { fault: FakeDoFault; afterEffect: boolean } | undefined {
    const entry = this.faults.take(method);
    if (!entry) return undefined;
    return { fault: entry.fault, afterEffect: entry.afterEffect };
  }

  private faultError(f: FakeDoFault): DoError {
    return new DoError(
      f.status,
      f.id,
      f.message,
      f.retryAfter === undefined ? {} : { 'retry-after': String(f.retryAfter) },
    );
  }
}

export async function startFakeDigitalOcean(
  options: FakeDigitalOceanOptions = {},
): Promise<FakeDigitalOcean> {
  const fake = new FakeDigitalOceanImpl(options);
  const server = http.createServer((req, res) => {
    fake.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  const port = await listenOnLoopback(server);
  fake.server = server;
  fake.url = `http://127.0.0.1:${port}`;
  return fake;
}
