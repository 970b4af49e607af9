/**
 * A fake Google Compute Engine endpoint (REST API v1) for tests: an HTTP server on 127.0.0.1 that
 * speaks GCE's JSON well enough for dcp's GCP provider (`CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE =
 * fake.computeBase`), plus an OAuth token endpoint that an `external_account_authorized_user` ADC
 * file (`writeAdcFile`) points at, so google-auth-library's real ADC path runs unchanged.
 *
 * Covers: projects, zones, regions (CPU quota), networks, subnetworks, routers, machine types,
 * images and image families, firewalls, instances (insert, bulkInsert, get, list, aggregatedList,
 * delete, serial port), zonal and global operations (get, and wait's long poll), `requestId`
 * idempotency, list filters (AIP-160 `=`/`!=`/`:` and regex `eq`/`ne`) and paging; GCE's errors for
 * the mistakes a provider can make (bad names, labels and tags, a URL where a name belongs and the
 * reverse, a pd-* disk on a Hyperdisk-only machine, an ARM image on an x86 type, oversized
 * metadata, duplicate names, an unknown requestId format); capacity and CPU quota (an operation
 * error for insert, a synchronous one for bulkInsert); the life cycle, computed lazily from
 * timestamps (no timers); fault injection before or after the work is done, or as a failed
 * operation; `GET /checkip`.
 * Like GCE it opens an ingress rule without sources to 0.0.0.0/0, gives a VM the default service
 * account unless `serviceAccounts: []`, leaves a VM powered off from inside TERMINATED (and billed),
 * drops a stopped VM's ephemeral external IP, omits `items` from empty lists and keeps 64-bit
 * integers as strings.
 *
 * Deliberately not covered: IAM and scopes (any token from /token may do anything), disks as
 * resources (a disk lives and dies with its VM whatever autoDelete says; `source` disks are
 * unknown), more than one network interface, IPv6 addresses, start/stop/setMetadata and other
 * instance updates (use `setStatus`), regional bulkInsert, instance templates, OR/NOT in filters.
 * selfLinks point at this fake rather than www.googleapis.com, so a client that follows one stays
 * on 127.0.0.1. Fields the fake does not know are ignored, not refused; they are in `calls`.
 */
import { listenOnLoopback } from '../server.js';
import { FaultQueue, type FailOptions } from '../faults.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Public types

export type FakeGceInstanceStatus =
  'PROVISIONING' | 'STAGING' | 'RUNNING' | 'STOPPING' | 'TERMINATED' | 'SUSPENDING' | 'SUSPENDED';

export interface FakeGceOptions {
  /** Default 'dcp-test-project'. */
  project?: string;
  /** Default '123456789012'; also names the default service account. */
  projectNumber?: string;
  /** Default 0: PROVISIONING for the first half, STAGING for the second, then RUNNING (and the insert operation DONE). */
  provisioningMs?: number;
  /** Default 0: a deleted (or powered off) instance is STOPPING this long, then gone (or TERMINATED). */
  deletingMs?: number;
  /** Default 0: firewall insert/delete operations are DONE (and the change visible) after this long. */
  firewallMs?: number;
  /** Default 120000: operations' `wait` answers after at most this long, DONE or not, as GCE's does. */
  waitMaxMs?: number;
  /** Most instances not deleted at once in the project; beyond it inserts fail for lack of resources. */
  capacity?: number;
  /** Most vCPUs of instances not deleted, per region; beyond it inserts fail with QUOTA_EXCEEDED. */
  cpuQuota?: number;
  /** Default '203.0.113.7', served by `GET /checkip`. */
  myIp?: string;
  /** Default 500: the most items a list page holds, whatever maxResults asks. */
  pageSize?: number;
  /** The project metadata's VmDnsSetting; default unset (absent, as in most projects). */
  vmDnsSetting?: 'ZonalOnly' | 'GlobalOnly' | 'GlobalDefault';
}

export interface FakeGceCall {
  /**
   * GCE's method name ('instances.insert', 'zoneOperations.wait', …), 'token', 'metadata' (a
   * metadata-server probe, when GCE_METADATA_HOST points here), or 'unknown'.
   */
  method: string;
  httpMethod: string;
  /** The URL path, e.g. '/compute/v1/projects/p/zones/z/instances'. */
  path: string;
  query: Record<string, string>;
  /** The parsed JSON body (the form fields for 'token'). */
  body?: unknown;
  at: number;
  /** The HTTP status answered (0 while a wait is pending, or when the client was gone before the answer). */
  status: number;
  /** The error reason answered, if any. */
  reason?: string;
}

export interface FakeGceFault {
  /** Default by reason: 403 for rate and quota limits, 503 for backendError and capacity, 500 for internalError, else 400. */
  status?: number;
  reason: string;
  message?: string;
  /**
   * Instead of a synchronous error the call succeeds (200 with an Operation), the operation ends
   * DONE with this error (`code` = reason) and nothing is made or deleted. Mutating calls only.
   */
  operation?: boolean;
  /** The operation's httpErrorStatusCode; default `status`, else 400. */
  httpErrorStatusCode?: number;
}

export type FakeGceFailOptions = FailOptions;

export interface FakeGceAccessConfig {
  kind: 'compute#accessConfig';
  type: 'ONE_TO_ONE_NAT';
  name: string;
  /** Absent while the instance is TERMINATED or SUSPENDED: the ephemeral address is released. */
  natIP?: string;
  networkTier: string;
}

export interface FakeGceNetworkInterface {
  kind: 'compute#networkInterface';
  name: string;
  network: string;
  subnetwork: string;
  networkIP: string;
  stackType: 'IPV4_ONLY';
  fingerprint: string;
  accessConfigs?: FakeGceAccessConfig[];
}

export interface FakeGceAttachedDisk {
  kind: 'compute#attachedDisk';
  type: 'PERSISTENT';
  mode: 'READ_WRITE';
  index: number;
  boot: boolean;
  /** As sent; the API's default is false (a deleted VM would leave its disk behind, billed). */
  autoDelete: boolean;
  deviceName: string;
  source: string;
  diskSizeGb: string;
  interface: 'SCSI' | 'NVME';
  architecture?: 'X86_64' | 'ARM64';
  /** Test view only (GCE does not return it): the initializeParams the insert sent. */
  initializeParams?: Record<string, unknown>;
}

export interface FakeGceServiceAccount {
  email: string;
  scopes: string[];
}

/** An instance as GCE returns it, plus test-only fields (marked) that never go on the wire. */
export interface FakeGceInstance {
  kind: 'compute#instance';
  id: string;
  creationTimestamp: string;
  name: string;
  description?: string;
  tags: { items?: string[]; fingerprint: string };
  machineType: string;
  status: FakeGceInstanceStatus;
  statusMessage?: string;
  zone: string;
  canIpForward: boolean;
  networkInterfaces: FakeGceNetworkInterface[];
  disks: FakeGceAttachedDisk[];
  metadata: { kind: 'compute#metadata'; fingerprint: string; items?: { key: string; value: string }[] };
  /** Absent when the insert sent `serviceAccounts: []`. */
  serviceAccounts?: FakeGceServiceAccount[];
  selfLink: string;
  scheduling: {
    onHostMaintenance: string;
    automaticRestart: boolean;
    preemptible: boolean;
    provisioningModel: string;
    [key: string]: unknown;
  };
  cpuPlatform: string;
  labels?: Record<string, string>;
  labelFingerprint: string;
  startRestricted: boolean;
  deletionProtection: boolean;
  shieldedInstanceConfig: {
    enableSecureBoot: boolean;
    enableVtpm: boolean;
    enableIntegrityMonitoring: boolean;
  };
  fingerprint: string;
  lastStartTimestamp?: string;
  lastStopTimestamp?: string;
  /** Test only. */
  insertedAt: number;
  /** Test only: when it first became RUNNING. */
  runningAt?: number;
  /** Test only: when it was gone (GET answers 404 from then on). */
  deletedAt?: number;
  /** Test only: the requestId of the insert that made it. */
  requestId?: string;
  /** Test only: the bare zone name. */
  zoneName: string;
  /** Test only: the `startup-script` metadata value, else `user-data`. */
  startupScript?: string;
  /** Test only: the boot disk's type, a bare name ('pd-balanced'). */
  bootDiskType: string;
  /** Test only: the selfLink of the image the boot disk was made from (families resolved). */
  sourceImage: string;
  /** Test only: made by bulkInsert. */
  fromBulk: boolean;
}

export interface FakeGceFirewallRule {
  IPProtocol: string;
  ports?: string[];
}

export interface FakeGceFirewall {
  kind: 'compute#firewall';
  id: string;
  creationTimestamp: string;
  name: string;
  description: string;
  network: string;
  priority: number;
  direction: 'INGRESS' | 'EGRESS';
  sourceRanges?: string[];
  destinationRanges?: string[];
  sourceTags?: string[];
  targetTags?: string[];
  sourceServiceAccounts?: string[];
  targetServiceAccounts?: string[];
  allowed?: FakeGceFirewallRule[];
  denied?: FakeGceFirewallRule[];
  logConfig: { enable: boolean };
  disabled: boolean;
  selfLink: string;
}

export interface FakeGce {
  /** http://127.0.0.1:PORT */
  url: string;
  /** `${url}/compute/v1/`: what CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE is set to. */
  computeBase: string;
  project: string;
  myIp: string;
  /** Every request but /checkip, in order. */
  calls: FakeGceCall[];
  /** POST/PUT/PATCH/DELETE calls to the compute API, except operation waits. */
  mutatingCalls(): FakeGceCall[];
  /**
   * The next call(s) of `method` ('*' for any) answer this fault. Faults queue up in order: the
   * first one for a method must be used up before the next (so `times: Infinity` ends the queue).
   */
  fail(method: string, fault: FakeGceFault, options?: FakeGceFailOptions): void;
  /** Drops the queued faults of `method`, or all of them. */
  clearFaults(method?: string): void;
  /** Every instance ever inserted, deleted ones included (with deletedAt). */
  instances(): FakeGceInstance[];
  /** Live firewall rules (inserted and not deleted, operations done). */
  firewalls(): FakeGceFirewall[];
  /**
   * What is left of a cluster: instances not deleted (TERMINATED ones included) labelled
   * dcp-cluster=<name>, and firewall rules not deleted whose name starts with `dcp-<name>-`.
   */
  leftovers(cluster: string): { instances: FakeGceInstance[]; firewalls: FakeGceFirewall[] };
  /** Moves an instance to a status at once (no timed transitions follow); statusMessage is optional. */
  setStatus(
    zone: string,
    name: string,
    status: 'RUNNING' | 'STOPPING' | 'TERMINATED' | 'SUSPENDED',
    statusMessage?: string,
  ): void;
  /** Guest `shutdown -h now`: STOPPING (for deletingMs), then TERMINATED; the instance and its disk stay. */
  powerOffFromInside(zone: string, name: string): void;
  setSerialOutput(zone: string, name: string, text: string): void;
  /** As if someone added a rule in the console (for doctor tests): validated, visible at once, no call logged. */
  insertFirewall(body: object): void;
  /**
   * Zones that do not answer aggregated lists: with `returnPartialSuccess=true` they come back as
   * an UNREACHABLE warning (their instances left out), without it the whole list fails (503).
   */
  unreachableZones: Set<string>;
  /** Writes an ADC file of type external_account_authorized_user whose token_url is this fake's /token; its path. */
  writeAdcFile(dir: string, extra?: Record<string, unknown>): string;
  /** A valid access token without the OAuth round trip (for plain `fetch` and bench scripts). */
  issueToken(): string;
  close(): Promise<void>;
}

const MACHINE_TYPES: Record<string, { guestCpus: number; memoryMb: number; architecture?: 'ARM64' }> = {
  'e2-standard-2': { guestCpus: 2, memoryMb: 8192 },
  'e2-standard-4': { guestCpus: 4, memoryMb: 16384 },
  'n2-standard-8': { guestCpus: 8, memoryMb: 32768 },
  'c4-standard-4': { guestCpus: 4, memoryMb: 15360 },
  't2a-standard-4': { guestCpus: 4, memoryMb: 16384, architecture: 'ARM64' },
  'c4a-standard-4': { guestCpus: 4, memoryMb: 16384, architecture: 'ARM64' },
};

/** Names of the seeded resources (with the default project options), so tests need not look them up. */
export const SEED = {
  project: 'dcp-test-project',
  projectNumber: '123456789012',
  /** The zone tests use unless they need another. */
  zone: 'us-central1-a',
  region: 'us-central1',
  zones: ['us-central1-a', 'us-central1-b', 'us-central1-f', 'europe-west1-b'],
  regions: ['us-central1', 'europe-west1'],
  /** Auto mode, a subnet `default` per region, and GCE's four default-allow-* rules. */
  defaultNetwork: 'default',
  defaultSubnet: 'default',
  defaultSubnetCidrs: { 'us-central1': '10.128.0.0/20', 'europe-west1': '10.132.0.0/20' },
  defaultFirewalls: [
    'default-allow-internal',
    'default-allow-ssh',
    'default-allow-rdp',
    'default-allow-icmp',
  ],
  /** Custom mode: one subnet in us-central1, with Cloud NAT. */
  customNetwork: 'dcp-custom',
  customSubnet: 'private-a',
  customCidr: '10.20.0.0/24',
  natRouter: 'nat-router',
  natName: 'nat-config',
  /**
   * A subnet inside 127.0.0.0/8: its instances' addresses are this machine's loopback, so a test
   * may let dcp wait for readiness without a single packet leaving the machine.
   */
  loopbackNetwork: 'loopback',
  loopbackSubnet: 'loopback',
  loopbackCidr: '127.100.0.0/24',
  /** Where external (NAT) addresses come from, in order. */
  natCidr: '198.51.100.0/24',
  machineTypes: MACHINE_TYPES,
  images: {
    ubuntuProject: 'ubuntu-os-cloud',
    amd64Family: 'ubuntu-2404-lts-amd64',
    arm64Family: 'ubuntu-2404-lts-arm64',
    amd64Old: 'ubuntu-2404-noble-amd64-v20261001',
    amd64New: 'ubuntu-2404-noble-amd64-v20261101',
    arm64New: 'ubuntu-2404-noble-arm64-v20261101',
    /** In the test project. */
    daskFamily: 'dask-preinstalled',
    dask: 'dask-preinstalled-v1',
  },
  defaultServiceAccount: '123456789012-compute@developer.gserviceaccount.com',
  defaultScopes: [
    'https://www.googleapis.com/auth/devstorage.read_only',
    'https://www.googleapis.com/auth/logging.write',
  ],
  adcClientId: 'dcp-test-client.apps.googleusercontent.com',
} as const;

// ---------------------------------------------------------------------------------------------
// Constants and small helpers

const COMPUTE_PREFIX = '/compute/v1/';
const ZONE_REGION: Record<string, string> = {
  'us-central1-a': 'us-central1',
  'us-central1-b': 'us-central1',
  'us-central1-f': 'us-central1',
  'europe-west1-b': 'europe-west1',
};
const NAME = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const NAME_RULE = "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'";
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const METADATA_VALUE_LIMIT = 256 * 1024;
const METADATA_TOTAL_LIMIT = 512 * 1024;
/** Machine series that take Hyperdisk only, and series that take no Hyperdisk at all. */
const HYPERDISK_ONLY = new Set(['c4', 'c4a', 'c4d', 'n4', 'n4a', 'n4d']);
const NO_HYPERDISK = new Set(['e2', 't2a']);
const DISK_TYPES = new Set([
  'pd-standard',
  'pd-balanced',
  'pd-ssd',
  'pd-extreme',
  'hyperdisk-balanced',
  'hyperdisk-extreme',
  'hyperdisk-throughput',
]);
const PROTOCOLS = new Set(['tcp', 'udp', 'icmp', 'esp', 'ah', 'sctp', 'ipip', 'all']);
const HTTP_TEXT: Record<number, string> = {
  400: 'BAD REQUEST',
  403: 'FORBIDDEN',
  404: 'NOT FOUND',
  409: 'CONFLICT',
  412: 'PRECONDITION FAILED',
  429: 'TOO MANY REQUESTS',
  500: 'INTERNAL SERVER ERROR',
  503: 'SERVICE UNAVAILABLE',
};
const INSTANCE_FIELDS = new Set([
  'kind',
  'id',
  'name',
  'description',
  'status',
  'statusMessage',
  'zone',
  'machineType',
  'labels',
  'tags',
  'networkInterfaces',
  'disks',
  'metadata',
  'serviceAccounts',
  'scheduling',
  'creationTimestamp',
  'selfLink',
  'cpuPlatform',
  'canIpForward',
  'deletionProtection',
  'shieldedInstanceConfig',
  'lastStartTimestamp',
  'lastStopTimestamp',
  'fingerprint',
  'labelFingerprint',
  'startRestricted',
]);
const FIREWALL_FIELDS = new Set([
  'kind',
  'id',
  'name',
  'description',
  'network',
  'priority',
  'direction',
  'sourceRanges',
  'destinationRanges',
  'sourceTags',
  'targetTags',
  'sourceServiceAccounts',
  'targetServiceAccounts',
  'allowed',
  'denied',
  'disabled',
  'logConfig',
  'creationTimestamp',
  'selfLink',
]);
const TEST_ONLY_FIELDS = [
  'insertedAt',
  'runningAt',
  'deletedAt',
  'requestId',
  'zoneName',
  'startupScript',
  'bootDiskType',
  'sourceImage',
  'fromBulk',
] as const;
const AUTH_HELP =
  'Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.';

class GceError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const hex = (bytes: number) => randomBytes(bytes).toString('hex');
/** A uint64 id as GCE writes it: 19 decimal digits, in a string. */
const numericId = () =>
  ((BigInt(`0x${hex(8)}`) % 9_000_000_000_000_000_000n) + 1_000_000_000_000_000_000n).toString();
const fingerprint = () => randomBytes(8).toString('base64');
const iso = (ms: number) => new Date(ms).toISOString();
const regionOf = (zone: string) => ZONE_REGION[zone] ?? zone.replace(/-[a-z]$/, '');
const seriesOf = (machineType: string) => machineType.split('-')[0] ?? '';
const ipToInt = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
const text = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''));

const notFound = (resource: string) =>
  new GceError(404, 'notFound', `The resource '${resource}' was not found`);
const invalidValue = (field: string, value: unknown, why: string) =>
  new GceError(400, 'invalid', `Invalid value for field '${field}': '${text(value)}'. ${why}`);
const requiredField = (field: string) =>
  new GceError(400, 'required', `Required field '${field}' not specified`);

function defaultStatus(reason: string): number {
  if (
    /^(rateLimitExceeded|userRateLimitExceeded|quotaExceeded|forbidden|insufficientPermissions)$/.test(reason)
  )
    return 403;
  if (/^(backendError|insufficientCapacity|resourcePoolExhausted|ZONE_RESOURCE_POOL_EXHAUSTED)$/.test(reason))
    return 503;
  if (reason === 'internalError') return 500;
  if (reason === 'notFound') return 404;
  if (reason === 'alreadyExists') return 409;
  if (reason === 'authError') return 401;
  return 400;
}

/** The usable addresses of a subnet: GCE keeps the network address, .1 (gateway), and the last two. */
function subnetRange(cidr: string): { first: number; last: number; gateway: string } {
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const network = ipToInt(base) - (ipToInt(base) % size);
  return { first: network + 2, last: network + size - 3, gateway: intToIp(network + 1) };
}

function validCidr(range: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/.exec(range);
  if (v4) {
    const octetsOk = v4.slice(1, 5).every((o) => Number(o) <= 255);
    return octetsOk && (v4[5] === undefined || Number(v4[5]) <= 32);
  }
  const v6 = /^[0-9a-fA-F:]+(?:\/(\d{1,3}))?$/.exec(range);
  return v6 !== null && range.includes(':') && (v6[1] === undefined || Number(v6[1]) <= 128);
}

// --- Body field access: wrong types answer GCE's 400, not a crash ---------------------------

function optString(o: Json, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalidValue(field, v, 'Expected a string.');
  return v;
}

function optArray(o: Json, key: string, field: string): unknown[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalidValue(field, v, 'Expected a list.');
  return v;
}

function optStrings(o: Json, key: string, field: string): string[] | undefined {
  const list = optArray(o, key, field);
  list?.forEach((v, i) => {
    if (typeof v !== 'string') throw invalidValue(`${field}[${i}]`, v, 'Expected a string.');
  });
  return list as string[] | undefined;
}

function optObject(o: Json, key: string, field: string): Json | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalidValue(field, v, 'Expected an object.');
  return v;
}

function optBool(o: Json, key: string, field: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalidValue(field, v, 'Expected a boolean.');
  return v;
}

/** int64 fields arrive as strings (JSON's numbers cannot hold them); hand-written JSON sends numbers. */
function optInt(o: Json, key: string, field: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
  throw invalidValue(field, v, 'Expected an integer.');
}

// --- List filters ----------------------------------------------------------------------------

type Predicate = (resource: Json) => boolean;

/** The values at a dotted path; lists along the way fan out (`tags.items`, `networkInterfaces.network`). */
function resolvePath(value: unknown, path: string[]): unknown[] {
  if (Array.isArray(value)) return value.flatMap((v) => resolvePath(v, path));
  if (path.length === 0) return value === undefined || value === null ? [] : [value];
  if (!isObj(value)) return [];
  const [head = '', ...rest] = path;
  return resolvePath(value[head], rest);
}

const scalars = (values: unknown[]) => values.filter((v) => typeof v !== 'object').map((v) => String(v));

/**
 * GCE's list filters: terms joined by spaces or AND, each optionally in parentheses:
 * `FIELD = VALUE`, `FIELD != VALUE`, `FIELD:VALUE` (`:*` = the key exists), and the older
 * `FIELD eq REGEX` / `FIELD ne REGEX` (RE2, matching the whole value). Anything else is a 400, so
 * a filter the real API would read differently fails loudly here.
 */
function parseFilter(filter: string, fields: ReadonlySet<string>): Predicate {
  const bad = (why: string) =>
    new GceError(
      400,
      'invalid',
      `Invalid value for field 'filter': '${filter}'. Invalid list filter expression: ${why}`,
    );
  let pos = 0;
  const skipSpace = () => {
    while (pos < filter.length && /\s/.test(filter.charAt(pos))) pos++;
  };

  const readValue = (): string => {
    const quote = filter.charAt(pos);
    if (quote === '"' || quote === "'") {
      let out = '';
      pos++;
      while (pos < filter.length && filter.charAt(pos) !== quote) {
        // Only an escaped quote is unescaped: a regex's `\.` must reach the regex.
        if (filter.charAt(pos) === '\\' && filter.charAt(pos + 1) === quote) pos++;
        out += filter.charAt(pos);
        pos++;
      }
      if (pos >= filter.length) throw bad('unterminated string');
      pos++;
      return out;
    }
    // A bare value ends at a space or at the ')' that closes its term: `(name eq dcp-(a|b))`.
    const start = pos;
    let depth = 0;
    while (pos < filter.length) {
      const ch = filter.charAt(pos);
      if (/\s/.test(ch)) break;
      if (ch === '(') depth++;
      else if (ch === ')') {
        if (depth === 0) break;
        depth--;
      }
      pos++;
    }
    if (pos === start) throw bad('a value is missing');
    return filter.slice(start, pos);
  };

  const comparison = (): Predicate => {
    const m = /^([A-Za-z_][\w.-]*)(?:\s*(!=|=|:)\s*|\s+(eq|ne)\s+)/.exec(filter.slice(pos));
    if (!m)
      throw bad(
        `expected FIELD = VALUE, FIELD != VALUE, FIELD:VALUE or FIELD eq REGEX at '${filter.slice(pos)}'`,
      );
    const field = m[1] ?? '';
    const op = m[2] ?? m[3] ?? '';
    pos += m[0].length;
    const value = readValue();
    const path = field.split('.');
    if (!fields.has(path[0] ?? ''))
      throw new GceError(
        400,
        'invalid',
        `Invalid value for field 'filter': '${filter}'. Invalid field name '${field}'.`,
      );
    const at = (r: Json) => resolvePath(r, path);
    switch (op) {
      case '=':
        return (r) => scalars(at(r)).includes(value);
      case '!=':
        return (r) => !scalars(at(r)).includes(value);
      case ':':
        if (value === '*') return (r) => at(r).length > 0;
        return (r) => at(r).some((v) => (isObj(v) ? value in v : String(v).includes(value)));
      default: {
        let re: RegExp;
        try {
          re = new RegExp(`^(?:${value})$`);
        } catch {
          throw bad(`'${value}' is not a regular expression`);
        }
        const matches = (r: Json) => scalars(at(r)).some((v) => re.test(v));
        return op === 'eq' ? matches : (r) => !matches(r);
      }
    }
  };

  const conjunction = (depth: number): Predicate => {
    const terms: Predicate[] = [];
    let danglingAnd = false;
    for (;;) {
      skipSpace();
      if (pos >= filter.length) {
        if (depth > 0) throw bad('unbalanced parentheses');
        break;
      }
      if (filter.charAt(pos) === ')') {
        if (depth === 0) throw bad('unbalanced parentheses');
        break;
      }
      const word = /^(AND|OR|NOT)(?=[\s(]|$)/.exec(filter.slice(pos));
      if (word) {
        if (word[1] !== 'AND' || terms.length === 0 || danglingAnd)
          throw bad(`unexpected ${word[1]} (this fake takes terms joined by spaces or AND)`);
        danglingAnd = true;
        pos += 3;
        continue;
      }
      if (filter.charAt(pos) === '-') throw bad('negation is not supported by this fake');
      if (filter.charAt(pos) === '(') {
        pos++;
        terms.push(conjunction(depth + 1));
        pos++; // the ')'
      } else terms.push(comparison());
      danglingAnd = false;
    }
    if (danglingAnd || terms.length === 0) throw bad('an empty expression');
    return (r) => terms.every((t) => t(r));
  };

  return conjunction(0);
}

// ---------------------------------------------------------------------------------------------
// Internal state

interface Network {
  name: string;
  id: string;
  auto: boolean;
  creationTimestamp: string;
}

interface Subnet {
  name: string;
  id: string;
  region: string;
  network: string;
  range: string;
  creationTimestamp: string;
}

interface Router {
  name: string;
  id: string;
  region: string;
  network: string;
  nats: { name: string; sourceSubnetworkIpRangesToNat: string; natIpAllocateOption: string }[];
}

interface Image {
  project: string;
  name: string;
  id: string;
  family: string;
  architecture: 'X86_64' | 'ARM64';
  created: number;
  deprecated?: 'DEPRECATED' | 'OBSOLETE' | 'DELETED';
}

interface Inst {
  v: FakeGceInstance;
  guestCpus: number;
  region: string;
  serial: string;
  /** A pending STOPPING: when it ends, and what follows. */
  stopUntil?: number;
  stopThen?: 'TERMINATED' | 'GONE';
}

interface Fw {
  v: FakeGceFirewall;
  visibleAt: number;
  goneAt?: number;
}

interface Failure {
  code: string;
  message: string;
  httpStatus: number;
}

interface Op {
  id: string;
  name: string;
  operationType: string;
  targetLink: string;
  targetId?: string;
  zone?: string;
  insertedAt: number;
  doneAt: number;
  failure?: Failure;
  bulk?: { zone: string; count: number };
}

interface DiskSpec {
  boot: boolean;
  autoDelete: boolean;
  deviceName?: string;
  diskName?: string;
  diskType: string;
  sizeGb: number;
  image: Image;
  interface: 'SCSI' | 'NVME';
  initializeParams: Json;
}

interface InstanceSpec {
  machineType: string;
  guestCpus: number;
  labels: Record<string, string>;
  tags: string[];
  metadata: { key: string; value: string }[];
  disks: DiskSpec[];
  subnet: Subnet;
  networkIP?: string;
  accessConfigs?: { name: string; natIP?: string; networkTier: string }[];
  serviceAccounts: FakeGceServiceAccount[];
  shielded: FakeGceInstance['shieldedInstanceConfig'];
  scheduling: FakeGceInstance['scheduling'];
  description?: string;
  deletionProtection: boolean;
  canIpForward: boolean;
}

interface Ctx {
  params: Record<string, string>;
  query: Record<string, string>;
  body: unknown;
  /** A fault to turn into the operation's error (mutating calls only). */
  opFault?: FakeGceFault;
}

interface Route {
  verb: string;
  parts: string[];
  name: string;
  run: (c: Ctx) => unknown;
  /** Images may be read from any project (ubuntu-os-cloud). */
  anyProject?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The fake

class FakeGceImpl implements FakeGce {
  url = '';
  computeBase = '';
  readonly project: string;
  readonly myIp: string;
  readonly calls: FakeGceCall[] = [];
  server: http.Server | undefined;
  private readonly projectNumber: string;
  private readonly provisioningMs: number;
  private readonly deletingMs: number;
  private readonly firewallMs: number;
  private readonly waitMaxMs: number;
  private readonly capacity: number;
  private readonly cpuQuota: number | undefined;
  private readonly pageSize: number;
  private readonly vmDnsSetting: string | undefined;
  private readonly networks: Network[] = [];
  private readonly subnets: Subnet[] = [];
  private readonly routers: Router[] = [];
  private readonly images: Image[] = [];
  private readonly fws: Fw[] = [];
  private readonly insts: Inst[] = [];
  private readonly ops = new Map<string, Op>();
  private readonly requestIds = new Map<string, Op>();
  private readonly accessTokens = new Map<string, number>();
  private readonly refreshTokens = new Map<string, { clientId: string; clientSecret: string }>();
  private readonly faults = new FaultQueue<FakeGceFault>();
  private readonly natPool: string[];
  private readonly waiters = new Set<() => void>();
  private closed = false;
  private readonly zoneIds = new Map(Object.keys(ZONE_REGION).map((z) => [z, numericId()]));

  constructor(options: FakeGceOptions) {
    this.project = options.project ?? SEED.project;
    this.projectNumber = options.projectNumber ?? SEED.projectNumber;
    this.provisioningMs = options.provisioningMs ?? 0;
    this.deletingMs = options.deletingMs ?? 0;
    this.firewallMs = options.firewallMs ?? 0;
    this.waitMaxMs = options.waitMaxMs ?? 120_000;
    this.capacity = options.capacity ?? Infinity;
    this.cpuQuota = options.cpuQuota;
    this.pageSize = options.pageSize ?? 500;
    this.vmDnsSetting = options.vmDnsSetting;
    this.myIp = options.myIp ?? '203.0.113.7';
    // External addresses come from the documentation ranges, never the tester's own "my IP".
    this.natPool = ['198.51.100', '203.0.113']
      .flatMap((net) => Array.from({ length: 254 }, (_, i) => `${net}.${i + 1}`))
      .filter((ip) => ip !== this.myIp);
  }

  private link(rel: string): string {
    return `${this.computeBase}${rel}`;
  }

  private get projectRel(): string {
    return `projects/${this.project}`;
  }

  /** Seeded once the URL is known, since every selfLink carries it. */
  seed(): void {
    const created = iso(Date.parse('2026-01-05T09:00:00Z'));
    const network = (name: string, auto: boolean) =>
      this.networks.push({ name, id: numericId(), auto, creationTimestamp: created });
    const subnet = (name: string, region: string, net: string, range: string) =>
      this.subnets.push({ name, id: numericId(), region, network: net, range, creationTimestamp: created });
    network(SEED.defaultNetwork, true);
    for (const [region, range] of Object.entries(SEED.defaultSubnetCidrs))
      subnet(SEED.defaultSubnet, region, SEED.defaultNetwork, range);
    network(SEED.customNetwork, false);
    subnet(SEED.customSubnet, 'us-central1', SEED.customNetwork, SEED.customCidr);
    this.routers.push({
      name: SEED.natRouter,
      id: numericId(),
      region: 'us-central1',
      network: SEED.customNetwork,
      nats: [
        {
          name: SEED.natName,
          sourceSubnetworkIpRangesToNat: 'ALL_SUBNETWORKS_ALL_IP_RANGES',
          natIpAllocateOption: 'AUTO_ONLY',
        },
      ],
    });
    network(SEED.loopbackNetwork, false);
    subnet(SEED.loopbackSubnet, 'us-central1', SEED.loopbackNetwork, SEED.loopbackCidr);

    const rule = (
      name: string,
      description: string,
      sourceRanges: string[],
      allowed: FakeGceFirewallRule[],
    ) =>
      this.addFirewall(
        { name, description, network: 'global/networks/default', priority: 65534, sourceRanges, allowed },
        0,
      );
    rule(
      'default-allow-internal',
      'Allow internal traffic on the default network',
      ['10.128.0.0/9'],
      [
        { IPProtocol: 'tcp', ports: ['0-65535'] },
        { IPProtocol: 'udp', ports: ['0-65535'] },
        { IPProtocol: 'icmp' },
      ],
    );
    rule(
      'default-allow-ssh',
      'Allow SSH from anywhere',
      ['0.0.0.0/0'],
      [{ IPProtocol: 'tcp', ports: ['22'] }],
    );
    rule(
      'default-allow-rdp',
      'Allow RDP from anywhere',
      ['0.0.0.0/0'],
      [{ IPProtocol: 'tcp', ports: ['3389'] }],
    );
    rule('default-allow-icmp', 'Allow ICMP from anywhere', ['0.0.0.0/0'], [{ IPProtocol: 'icmp' }]);

    const image = (
      project: string,
      name: string,
      family: string,
      architecture: Image['architecture'],
      day: string,
    ) =>
      this.images.push({
        project,
        name,
        id: numericId(),
        family,
        architecture,
        created: Date.parse(`${day}T00:00:00Z`),
      });
    const { images } = SEED;
    // Newest first for one family, oldest first for none: the family lookup must sort, not take [0].
    image(images.ubuntuProject, images.amd64New, images.amd64Family, 'X86_64', '2026-11-01');
    image(images.ubuntuProject, images.amd64Old, images.amd64Family, 'X86_64', '2026-10-01');
    image(images.ubuntuProject, images.arm64New, images.arm64Family, 'ARM64', '2026-11-01');
    image(this.project, images.dask, images.daskFamily, 'X86_64', '2026-11-15');
  }

  // --- Introspection API ---------------------------------------------------------------------

  mutatingCalls(): FakeGceCall[] {
    return this.calls.filter(
      (c) =>
        ['POST', 'PUT', 'PATCH', 'DELETE'].includes(c.httpMethod) &&
        c.path.startsWith(COMPUTE_PREFIX) &&
        !c.method.endsWith('Operations.wait'),
    );
  }

  fail(method: string, fault: FakeGceFault, options: FakeGceFailOptions = {}): void {
    this.faults.add(method, fault, options);
  }

  clearFaults(method?: string): void {
    this.faults.clear(method);
  }

  instances(): FakeGceInstance[] {
    this.advanceAll();
    return this.insts.map((i) => structuredClone(i.v));
  }

  firewalls(): FakeGceFirewall[] {
    return this.visibleFirewalls().map((f) => structuredClone(f.v));
  }

  leftovers(cluster: string): { instances: FakeGceInstance[]; firewalls: FakeGceFirewall[] } {
    this.advanceAll();
    const now = Date.now();
    return {
      instances: this.liveInsts()
        .filter((i) => i.v.labels?.['dcp-cluster'] === cluster)
        .map((i) => structuredClone(i.v)),
      // Not yet visible ones too: their insert is under way and will leave them behind.
      firewalls: this.fws
        .filter((f) => (f.goneAt === undefined || now < f.goneAt) && f.v.name.startsWith(`dcp-${cluster}-`))
        .map((f) => structuredClone(f.v)),
    };
  }

  setStatus(
    zone: string,
    name: string,
    status: 'RUNNING' | 'STOPPING' | 'TERMINATED' | 'SUSPENDED',
    statusMessage?: string,
  ): void {
    const inst = this.mustFind(zone, name);
    inst.stopUntil = undefined;
    inst.stopThen = undefined;
    this.moveTo(inst, status, Date.now());
    if (statusMessage === undefined) delete inst.v.statusMessage;
    else inst.v.statusMessage = statusMessage;
  }

  powerOffFromInside(zone: string, name: string): void {
    const inst = this.mustFind(zone, name);
    const now = Date.now();
    this.moveTo(inst, 'STOPPING', now);
    inst.stopUntil = now + this.deletingMs;
    inst.stopThen = 'TERMINATED';
    this.advance(inst, now);
  }

  setSerialOutput(zone: string, name: string, output: string): void {
    this.mustFind(zone, name).serial = output;
  }

  readonly unreachableZones = new Set<string>();

  insertFirewall(body: object): void {
    const rule = this.buildFirewall(body);
    const now = Date.now();
    if (this.fws.some((f) => (f.goneAt === undefined || now < f.goneAt) && f.v.name === rule.name))
      throw new Error(`fake GCE: a firewall rule ${rule.name} exists already`);
    this.fws.push({ v: rule, visibleAt: 0 });
  }

  writeAdcFile(dir: string, extra: Record<string, unknown> = {}): string {
    const clientSecret = `fake-secret-${hex(8)}`;
    const refreshToken = `1//fake-refresh-${hex(16)}`;
    this.refreshTokens.set(refreshToken, { clientId: SEED.adcClientId, clientSecret });
    const file = join(dir, 'application_default_credentials.json');
    const adc = {
      type: 'external_account_authorized_user',
      audience: '//iam.googleapis.com/locations/global/workforcePools/dcp-test/providers/fake',
      client_id: SEED.adcClientId,
      client_secret: clientSecret,
      refresh_token: refreshToken,
      token_url: `${this.url}/token`,
      token_info_url: `${this.url}/tokeninfo`,
      revoke_url: `${this.url}/revoke`,
      universe_domain: 'googleapis.com',
      ...extra,
    };
    writeFileSync(file, `${JSON.stringify(adc, null, 2)}\n`, { mode: 0o600 });
    chmodSync(file, 0o600); // an existing file keeps its old mode through writeFileSync
    return file;
  }

  issueToken(): string {
    const token = `ya29.fake-${hex(24)}`;
    this.accessTokens.set(token, Date.now() + 3600_000);
    return token;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of [...this.waiters]) wake();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    // Clients keep connections alive; without this close() would wait for them to idle out.
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private mustFind(zone: string, name: string): Inst {
    this.advanceAll();
    const inst = this.liveInsts().find((i) => i.v.zoneName === zone && i.v.name === name);
    if (!inst) throw new Error(`fake GCE: no instance ${name} in ${zone}`);
    return inst;
  }

  // --- Life cycle ----------------------------------------------------------------------------

  /** Lazy transitions: each read catches the state up with the clock, so tests need no timers. */
  private advance(i: Inst, now = Date.now()): void {
    const v = i.v;
    if (v.deletedAt !== undefined) return;
    const ready = v.insertedAt + this.provisioningMs;
    if (v.status === 'PROVISIONING' && now >= v.insertedAt + this.provisioningMs / 2) v.status = 'STAGING';
    if (v.status === 'STAGING' && now >= ready) {
      v.status = 'RUNNING';
      v.runningAt ??= ready;
      v.lastStartTimestamp = iso(ready);
      v.cpuPlatform = 'Intel Cascade Lake';
    }
    if (v.status === 'STOPPING' && i.stopUntil !== undefined && now >= i.stopUntil) {
      if (i.stopThen === 'GONE') v.deletedAt = i.stopUntil;
      else this.moveTo(i, 'TERMINATED', i.stopUntil);
      i.stopUntil = undefined;
      i.stopThen = undefined;
    }
  }

  private advanceAll(): void {
    const now = Date.now();
    for (const i of this.insts) this.advance(i, now);
  }

  private moveTo(i: Inst, status: FakeGceInstanceStatus, at: number): void {
    const v = i.v;
    v.status = status;
    if (status === 'RUNNING') {
      v.runningAt ??= at;
      v.lastStartTimestamp = iso(at);
      // A restarted VM gets a new ephemeral external address.
      for (const ac of v.networkInterfaces[0]?.accessConfigs ?? []) ac.natIP ??= this.allocateNatIp();
    }
    if (status === 'TERMINATED' || status === 'SUSPENDED') {
      v.lastStopTimestamp = iso(at);
      for (const ac of v.networkInterfaces[0]?.accessConfigs ?? []) delete ac.natIP;
    }
  }

  private liveInsts(): Inst[] {
    return this.insts.filter((i) => i.v.deletedAt === undefined);
  }

  private visibleFirewalls(): Fw[] {
    const now = Date.now();
    return this.fws.filter((f) => now >= f.visibleAt && (f.goneAt === undefined || now < f.goneAt));
  }

  private allocateNetworkIp(subnet: Subnet, wanted: string | undefined, field: string): string {
    const selfLink = this.subnetLink(subnet);
    const used = new Set(
      this.liveInsts()
        .filter((i) => i.v.networkInterfaces[0]?.subnetwork === selfLink)
        .map((i) => i.v.networkInterfaces[0]?.networkIP),
    );
    const { first, last } = subnetRange(subnet.range);
    if (wanted !== undefined) {
      const n = /^\d+\.\d+\.\d+\.\d+$/.test(wanted) ? ipToInt(wanted) : NaN;
      if (!(n >= first && n <= last))
        throw invalidValue(
          field,
          wanted,
          `Requested internal IP is outside the subnetwork CIDR range ${subnet.range}.`,
        );
      if (used.has(wanted))
        throw invalidValue(field, wanted, `IP '${wanted}' is already being used by another resource.`);
      return wanted;
    }
    for (let n = first; n <= last; n++) if (!used.has(intToIp(n))) return intToIp(n);
    throw new GceError(400, 'invalid', `IP space of '${this.relOf(selfLink)}' is exhausted.`);
  }

  private allocateNatIp(): string {
    const used = new Set(
      this.liveInsts().flatMap((i) => (i.v.networkInterfaces[0]?.accessConfigs ?? []).map((ac) => ac.natIP)),
    );
    const ip = this.natPool.find((candidate) => !used.has(candidate));
    if (ip === undefined) throw new GceError(400, 'invalid', 'The fake has no external addresses left.');
    return ip;
  }

  private relOf(link: string): string {
    const at = link.indexOf('projects/');
    return at >= 0 ? link.slice(at) : link;
  }

  // --- Wire shapes ---------------------------------------------------------------------------

  private zoneLink(zone: string): string {
    return this.link(`${this.projectRel}/zones/${zone}`);
  }

  private regionLink(region: string): string {
    return this.link(`${this.projectRel}/regions/${region}`);
  }

  private networkLink(name: string): string {
    return this.link(`${this.projectRel}/global/networks/${name}`);
  }

  private subnetLink(s: Subnet): string {
    return this.link(`${this.projectRel}/regions/${s.region}/subnetworks/${s.name}`);
  }

  private imageLink(img: Image): string {
    return this.link(`projects/${img.project}/global/images/${img.name}`);
  }

  private instanceWire(i: Inst): Json {
    const out = structuredClone(i.v) as unknown as Json;
    for (const key of TEST_ONLY_FIELDS) delete out[key];
    for (const disk of out.disks as Json[]) delete disk.initializeParams;
    return out;
  }

  private imageWire(img: Image): Json {
    return {
      kind: 'compute#image',
      id: img.id,
      creationTimestamp: iso(img.created),
      name: img.name,
      description:
        img.project === SEED.images.ubuntuProject
          ? `Canonical, Ubuntu, 24.04 LTS, ${img.architecture === 'ARM64' ? 'arm64' : 'amd64'} noble image`
          : `${img.name} (seeded by the fake)`,
      sourceType: 'RAW',
      status: 'READY',
      archiveSizeBytes: '1234567890',
      diskSizeGb: '10',
      family: img.family,
      selfLink: this.imageLink(img),
      architecture: img.architecture,
      ...(img.deprecated ? { deprecated: { state: img.deprecated } } : {}),
    };
  }

  private opWire(op: Op): Json {
    const done = Date.now() >= op.doneAt;
    const failure = done ? op.failure : undefined;
    return {
      kind: 'compute#operation',
      id: op.id,
      name: op.name,
      ...(op.zone ? { zone: this.zoneLink(op.zone) } : {}),
      operationType: op.operationType,
      targetLink: op.targetLink,
      ...(op.targetId ? { targetId: op.targetId } : {}),
      status: done ? 'DONE' : 'RUNNING',
      user: `dcp-test@${this.project}.iam.gserviceaccount.com`,
      progress: done ? 100 : 0,
      insertTime: iso(op.insertedAt),
      startTime: iso(op.insertedAt),
      ...(done ? { endTime: iso(op.doneAt) } : {}),
      ...(failure
        ? {
            error: { errors: [{ code: failure.code, message: failure.message }] },
            httpErrorStatusCode: failure.httpStatus,
            httpErrorMessage: HTTP_TEXT[failure.httpStatus] ?? 'ERROR',
          }
        : {}),
      ...(done && op.bulk && !failure
        ? {
            instancesBulkInsertOperationMetadata: {
              perLocationStatus: {
                [`zones/${op.bulk.zone}`]: {
                  status: 'DONE',
                  targetVmCount: op.bulk.count,
                  createdVmCount: op.bulk.count,
                  failedToCreateVmCount: 0,
                  deletedVmCount: 0,
                },
              },
            },
          }
        : {}),
      selfLink: this.link(
        op.zone
          ? `${this.projectRel}/zones/${op.zone}/operations/${op.name}`
          : `${this.projectRel}/global/operations/${op.name}`,
      ),
    };
  }

  private newOp(
    operationType: string,
    target: { link: string; id?: string },
    zone: string | undefined,
    doneAt: number,
    failure?: Failure,
  ): Op {
    const now = Date.now();
    const op: Op = {
      id: numericId(),
      name: `operation-${now}-${hex(7).slice(0, 13)}-${hex(4)}-${hex(4)}`,
      operationType,
      targetLink: target.link,
      targetId: target.id,
      zone,
      insertedAt: now,
      // A failed operation ends at once: nothing was made that could take time.
      doneAt: failure ? now : doneAt,
      failure,
    };
    this.ops.set(op.name, op);
    return op;
  }

  private faultFailure(f: FakeGceFault): Failure {
    return {
      code: f.reason,
      message: f.message ?? `${f.reason} (injected by the fake)`,
      httpStatus: f.httpErrorStatusCode ?? f.status ?? 400,
    };
  }

  /** A list page: GCE caps maxResults at 500 and omits `items` when there are none. */
  private page<T>(items: T[], query: Record<string, string>): { items?: T[]; nextPageToken?: string } {
    let max = 500;
    if (query.maxResults !== undefined) {
      max = Number(query.maxResults);
      if (!Number.isInteger(max) || max < 0)
        throw invalidValue('maxResults', query.maxResults, 'Must be an integer.');
      if (max > 500) throw invalidValue('maxResults', query.maxResults, 'Must be less than or equal to 500');
      if (max === 0) max = 500;
    }
    let start = 0;
    if (query.pageToken) {
      const m = /^fake:(\d+)$/.exec(Buffer.from(query.pageToken, 'base64url').toString());
      if (!m) throw invalidValue('pageToken', query.pageToken, 'Invalid page token.');
      start = Number(m[1]);
    }
    const end = start + Math.min(max, this.pageSize);
    const pageItems = items.slice(start, end);
    return {
      ...(pageItems.length > 0 ? { items: pageItems } : {}),
      ...(end < items.length ? { nextPageToken: Buffer.from(`fake:${end}`).toString('base64url') } : {}),
    };
  }

  private filterOf(query: Record<string, string>, fields: ReadonlySet<string>): Predicate {
    const filter = query.filter?.trim();
    return filter ? parseFilter(filter, fields) : () => true;
  }

  /** GCE lists by name; `orderBy` takes `name` and `creationTimestamp desc` here. */
  private ordered(insts: Inst[], query: Record<string, string>): Inst[] {
    const byName = [...insts].sort((a, b) => (a.v.name < b.v.name ? -1 : a.v.name > b.v.name ? 1 : 0));
    const orderBy = query.orderBy?.trim();
    if (orderBy === undefined || orderBy === '' || orderBy === 'name') return byName;
    if (orderBy === 'creationTimestamp desc')
      return [...insts].sort((a, b) => b.v.insertedAt - a.v.insertedAt);
    throw invalidValue('orderBy', orderBy, 'This fake sorts by name or creationTimestamp desc only.');
  }

  // --- HTTP ----------------------------------------------------------------------------------

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.invalid');
    const path = url.pathname;
    const httpMethod = req.method ?? 'GET';
    if (httpMethod === 'GET' && path === '/checkip') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${this.myIp}\n`);
      return;
    }
    const query = Object.fromEntries(url.searchParams);
    if (path.startsWith('/computeMetadata/')) {
      // Reached only when a test points GCE_METADATA_HOST here: google-auth-library asks the metadata
      // server for a project id unless it is given one. Logged so a test can assert nothing asked.
      const at = Date.now();
      this.calls.push({ method: 'metadata', httpMethod, path, query, at, status: 404, reason: 'notFound' });
      res.writeHead(404, { 'content-type': 'text/plain' }).end('fake GCE: this is not a GCE VM\n');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    if (path === '/token') return this.handleToken(req, res, httpMethod, path, query, raw);

    const match = path.startsWith(COMPUTE_PREFIX)
      ? this.route(httpMethod, path.slice(COMPUTE_PREFIX.length))
      : undefined;
    let body: unknown;
    let parseError = false;
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        parseError = true;
      }
    }
    const call: FakeGceCall = {
      method: match?.route.name ?? 'unknown',
      httpMethod,
      path,
      query,
      ...(body === undefined ? {} : { body }),
      at: Date.now(),
      status: 0,
    };
    this.calls.push(call);
    try {
      if (!match)
        throw new GceError(404, 'notFound', `The requested URL ${path} was not found on this server.`);
      this.checkAuth(req);
      if (parseError) throw new GceError(400, 'parseError', 'Parse Error');
      const { route, params } = match;
      if (!route.anyProject && params.project !== this.project)
        throw notFound(`projects/${params.project ?? ''}`);
      if (params.zone !== undefined && !(params.zone in ZONE_REGION))
        throw notFound(`projects/${this.project}/zones/${params.zone}`);
      if (params.region !== undefined && !Object.values(ZONE_REGION).includes(params.region))
        throw notFound(`projects/${this.project}/regions/${params.region}`);
      const fault = this.takeFault(route.name);
      const mutating = httpMethod !== 'GET' && !route.name.endsWith('Operations.wait');
      const opFault = fault?.fault.operation && mutating ? fault.fault : undefined;
      if (fault && !opFault && !fault.afterEffect) throw this.faultError(fault.fault);
      this.advanceAll();
      const result = await route.run({ params, query, body, ...(opFault ? { opFault } : {}) });
      if (fault && !opFault) throw this.faultError(fault.fault);
      this.json(res, call, 200, result);
    } catch (err) {
      const e =
        err instanceof GceError
          ? err
          : new GceError(500, 'internalError', `fake GCE bug: ${(err as Error).stack ?? String(err)}`);
      call.reason = e.reason;
      this.json(
        res,
        call,
        e.status,
        {
          error: {
            code: e.status,
            message: e.message,
            errors: [{ message: e.message, domain: 'global', reason: e.reason }],
          },
        },
        e.status === 401 ? { 'www-authenticate': 'Bearer realm="https://accounts.google.com/"' } : {},
      );
    }
  }

  private json(
    res: http.ServerResponse,
    call: FakeGceCall,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    if (res.destroyed) return; // the client gave up on a long wait, or close() cut it: status stays 0
    call.status = status;
    res
      .writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers })
      .end(JSON.stringify(body));
  }

  private checkAuth(req: http.IncomingMessage): void {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m)
      throw new GceError(
        401,
        'authError',
        `Request is missing required authentication credential. ${AUTH_HELP}`,
      );
    const expires = this.accessTokens.get(m[1] ?? '');
    if (expires === undefined || expires <= Date.now())
      throw new GceError(401, 'authError', `Request had invalid authentication credentials. ${AUTH_HELP}`);
  }

  private takeFault(method: string): { fault: FakeGceFault; afterEffect: boolean } | undefined {
    const entry = this.faults.take(method);
    if (!entry) return undefined;
    return { fault: entry.fault, afterEffect: entry.afterEffect };
  }

  private faultError(f: FakeGceFault): GceError {
    return new GceError(
      f.status ?? defaultStatus(f.reason),
      f.reason,
      f.message ?? `${f.reason} (injected by the fake)`,
    );
  }

  /**
   * What google-auth-library's ExternalAccountAuthorizedUserClient sends to refresh: a form POST
   * `grant_type=refresh_token&refresh_token=…` with the client in basic auth. The client may also
   * come in the body (`client_id`, `client_secret`), as RFC 6749 allows. Errors are OAuth's.
   */
  private handleToken(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    httpMethod: string,
    path: string,
    query: Record<string, string>,
    raw: string,
  ): void {
    let form: Record<string, string> = {};
    const json = (req.headers['content-type'] ?? '').startsWith('application/json');
    try {
      form = json
        ? (JSON.parse(raw) as Record<string, string>)
        : Object.fromEntries(new URLSearchParams(raw));
    } catch {
      // an unreadable body: the grant_type check below refuses it
    }
    const call: FakeGceCall = {
      method: 'token',
      httpMethod,
      path,
      query,
      body: form,
      at: Date.now(),
      status: 0,
    };
    this.calls.push(call);
    const oauthError = (status: number, error: string, description: string) => {
      call.reason = error;
      this.json(res, call, status, { error, error_description: description });
    };
    if (httpMethod !== 'POST') return oauthError(400, 'invalid_request', 'POST the token request.');
    const fault = this.takeFault('token');
    if (fault && !fault.afterEffect) {
      const e = this.faultError(fault.fault);
      return oauthError(e.status, e.reason, e.message);
    }
    let clientId = form.client_id;
    let clientSecret = form.client_secret;
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      clientId = decoded.slice(0, colon);
      clientSecret = decoded.slice(colon + 1);
    }
    if (form.grant_type !== 'refresh_token')
      return oauthError(
        400,
        'unsupported_grant_type',
        `Unsupported grant_type: ${form.grant_type ?? '(none)'}`,
      );
    const grant = this.refreshTokens.get(form.refresh_token ?? '');
    if (!grant) return oauthError(400, 'invalid_grant', 'The refresh token is invalid or has been revoked.');
    if (clientId !== grant.clientId || clientSecret !== grant.clientSecret)
      return oauthError(401, 'invalid_client', 'The OAuth client was not found or its secret is wrong.');
    const accessToken = this.issueToken();
    if (fault) {
      const e = this.faultError(fault.fault);
      return oauthError(e.status, e.reason, e.message);
    }
    this.json(res, call, 200, { access_token: accessToken, expires_in: 3600, token_type: 'Bearer' });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(1, ms));
      this.waiters.add(wake);
    });
  }

  // --- Routing -------------------------------------------------------------------------------

  private readonly routes: Route[] = [
    ['GET', 'projects/:project', 'projects.get', () => this.getProject()],
    ['GET', 'projects/:project/zones', 'zones.list', () => this.listZones()],
    ['GET', 'projects/:project/zones/:zone', 'zones.get', (c: Ctx) => this.zoneWire(c.params.zone ?? '')],
    ['GET', 'projects/:project/regions/:region', 'regions.get', (c: Ctx) => this.getRegion(c)],
    ['GET', 'projects/:project/global/networks', 'networks.list', (c: Ctx) => this.listNetworks(c)],
    ['GET', 'projects/:project/global/networks/:network', 'networks.get', (c: Ctx) => this.getNetwork(c)],
    [
      'GET',
      'projects/:project/regions/:region/subnetworks',
      'subnetworks.list',
      (c: Ctx) => this.listSubnets(c),
    ],
    [
      'GET',
      'projects/:project/regions/:region/subnetworks/:subnetwork',
      'subnetworks.get',
      (c: Ctx) => this.getSubnet(c),
    ],
    ['GET', 'projects/:project/regions/:region/routers', 'routers.list', (c: Ctx) => this.listRouters(c)],
    [
      'GET',
      'projects/:project/zones/:zone/machineTypes/:machineType',
      'machineTypes.get',
      (c: Ctx) => this.getMachineType(c),
    ],
    [
      'GET',
      'projects/:project/global/images/family/:family',
      'images.getFromFamily',
      (c: Ctx) => this.imageWire(this.imageFromFamily(c.params.project ?? '', c.params.family ?? '')),
      true,
    ],
    [
      'GET',
      'projects/:project/global/images/:image',
      'images.get',
      (c: Ctx) => this.imageWire(this.imageByName(c.params.project ?? '', c.params.image ?? '')),
      true,
    ],
    [
      'POST',
      'projects/:project/global/firewalls',
      'firewalls.insert',
      (c: Ctx) => this.insertFirewallCall(c),
    ],
    ['GET', 'projects/:project/global/firewalls', 'firewalls.list', (c: Ctx) => this.listFirewalls(c)],
    ['GET', 'projects/:project/global/firewalls/:firewall', 'firewalls.get', (c: Ctx) => this.getFirewall(c)],
    [
      'DELETE',
      'projects/:project/global/firewalls/:firewall',
      'firewalls.delete',
      (c: Ctx) => this.deleteFirewall(c),
    ],
    [
      'GET',
      'projects/:project/global/operations/:operation',
      'globalOperations.get',
      (c: Ctx) => this.opWire(this.findOp(c)),
    ],
    [
      'POST',
      'projects/:project/global/operations/:operation/wait',
      'globalOperations.wait',
      (c: Ctx) => this.waitOp(c),
    ],
    [
      'GET',
      'projects/:project/zones/:zone/operations/:operation',
      'zoneOperations.get',
      (c: Ctx) => this.opWire(this.findOp(c)),
    ],
    [
      'POST',
      'projects/:project/zones/:zone/operations/:operation/wait',
      'zoneOperations.wait',
      (c: Ctx) => this.waitOp(c),
    ],
    [
      'POST',
      'projects/:project/zones/:zone/instances',
      'instances.insert',
      (c: Ctx) => this.insertInstance(c),
    ],
    ['GET', 'projects/:project/zones/:zone/instances', 'instances.list', (c: Ctx) => this.listInstances(c)],
    [
      'POST',
      'projects/:project/zones/:zone/instances/bulkInsert',
      'instances.bulkInsert',
      (c: Ctx) => this.bulkInsert(c),
    ],
    [
      'GET',
      'projects/:project/zones/:zone/instances/:instance',
      'instances.get',
      (c: Ctx) => this.getInstance(c),
    ],
    [
      'DELETE',
      'projects/:project/zones/:zone/instances/:instance',
      'instances.delete',
      (c: Ctx) => this.deleteInstance(c),
    ],
    [
      'GET',
      'projects/:project/zones/:zone/instances/:instance/serialPort',
      'instances.getSerialPortOutput',
      (c: Ctx) => this.serialPort(c),
    ],
    [
      'GET',
      'projects/:project/aggregated/instances',
      'instances.aggregatedList',
      (c: Ctx) => this.aggregated(c),
    ],
  ].map(([verb, pattern, name, run, anyProject]) => ({
    verb: verb as string,
    parts: (pattern as string).split('/'),
    name: name as string,
    run: run as Route['run'],
    anyProject: anyProject === true,
  }));

  private route(verb: string, rest: string): { route: Route; params: Record<string, string> } | undefined {
    let segments: string[];
    try {
      segments = rest.replace(/\/+$/, '').split('/').map(decodeURIComponent);
    } catch {
      return undefined;
    }
    for (const route of this.routes) {
      if (route.verb !== verb || route.parts.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const ok = route.parts.every((part, i) => {
        const seg = segments[i] ?? '';
        if (part.startsWith(':')) {
          params[part.slice(1)] = seg;
          return seg !== '';
        }
        return part === seg;
      });
      if (ok) return { route, params };
    }
    return undefined;
  }

  // --- Project, zones, regions, networks -----------------------------------------------------

  private getProject(): Json {
    return {
      kind: 'compute#project',
      id: this.projectNumber,
      creationTimestamp: iso(Date.parse('2026-01-05T09:00:00Z')),
      name: this.project,
      // GCE omits `items` when the project has no metadata.
      commonInstanceMetadata: {
        kind: 'compute#metadata',
        fingerprint: 'fakeFingerprint=',
        ...(this.vmDnsSetting ? { items: [{ key: 'VmDnsSetting', value: this.vmDnsSetting }] } : {}),
      },
      defaultServiceAccount: `${this.projectNumber}-compute@developer.gserviceaccount.com`,
      defaultNetworkTier: 'PREMIUM',
      xpnProjectStatus: 'UNSPECIFIED_XPN_PROJECT_STATUS',
      selfLink: this.link(this.projectRel),
    };
  }

  private zoneWire(zone: string): Json {
    return {
      kind: 'compute#zone',
      id: this.zoneIds.get(zone) ?? '0',
      name: zone,
      description: zone,
      status: 'UP',
      region: this.regionLink(regionOf(zone)),
      selfLink: this.zoneLink(zone),
    };
  }

  private listZones(): Json {
    return {
      kind: 'compute#zoneList',
      items: Object.keys(ZONE_REGION).map((z) => this.zoneWire(z)),
      selfLink: this.link(`${this.projectRel}/zones`),
    };
  }

  private cpusInUse(region: string): number {
    return this.liveInsts()
      .filter((i) => i.region === region)
      .reduce((sum, i) => sum + i.guestCpus, 0);
  }

  private getRegion(c: Ctx): Json {
    const region = c.params.region ?? '';
    return {
      kind: 'compute#region',
      name: region,
      status: 'UP',
      zones: Object.keys(ZONE_REGION)
        .filter((z) => regionOf(z) === region)
        .map((z) => this.zoneLink(z)),
      quotas: [{ metric: 'CPUS', limit: this.cpuQuota ?? 2400, usage: this.cpusInUse(region) }],
      selfLink: this.regionLink(region),
    };
  }

  private networkWire(n: Network): Json {
    return {
      kind: 'compute#network',
      id: n.id,
      creationTimestamp: n.creationTimestamp,
      name: n.name,
      selfLink: this.networkLink(n.name),
      autoCreateSubnetworks: n.auto,
      subnetworks: this.subnets.filter((s) => s.network === n.name).map((s) => this.subnetLink(s)),
      routingConfig: { routingMode: 'REGIONAL' },
      networkFirewallPolicyEnforcementOrder: 'AFTER_CLASSIC_FIREWALL',
    };
  }

  private getNetwork(c: Ctx): Json {
    const n = this.networks.find((x) => x.name === c.params.network);
    if (!n) throw notFound(`${this.projectRel}/global/networks/${c.params.network ?? ''}`);
    return this.networkWire(n);
  }

  private listNetworks(c: Ctx): Json {
    return {
      kind: 'compute#networkList',
      ...this.page(
        this.networks.map((n) => this.networkWire(n)),
        c.query,
      ),
      selfLink: this.link(`${this.projectRel}/global/networks`),
    };
  }

  private subnetWire(s: Subnet): Json {
    return {
      kind: 'compute#subnetwork',
      id: s.id,
      creationTimestamp: s.creationTimestamp,
      name: s.name,
      network: this.networkLink(s.network),
      ipCidrRange: s.range,
      gatewayAddress: subnetRange(s.range).gateway,
      region: this.regionLink(s.region),
      privateIpGoogleAccess: false,
      stackType: 'IPV4_ONLY',
      purpose: 'PRIVATE',
      fingerprint: 'fakeFingerprint=',
      selfLink: this.subnetLink(s),
    };
  }

  private getSubnet(c: Ctx): Json {
    const s = this.subnets.find((x) => x.region === c.params.region && x.name === c.params.subnetwork);
    if (!s)
      throw notFound(
        `${this.projectRel}/regions/${c.params.region ?? ''}/subnetworks/${c.params.subnetwork ?? ''}`,
      );
    return this.subnetWire(s);
  }

  private listSubnets(c: Ctx): Json {
    return {
      kind: 'compute#subnetworkList',
      ...this.page(
        this.subnets.filter((s) => s.region === c.params.region).map((s) => this.subnetWire(s)),
        c.query,
      ),
      selfLink: this.link(`${this.projectRel}/regions/${c.params.region ?? ''}/subnetworks`),
    };
  }

  private listRouters(c: Ctx): Json {
    const region = c.params.region ?? '';
    const routers = this.routers
      .filter((r) => r.region === region)
      .map((r) => ({
        kind: 'compute#router',
        id: r.id,
        name: r.name,
        region: this.regionLink(r.region),
        network: this.networkLink(r.network),
        nats: r.nats.map((n) => ({ ...n })),
        selfLink: this.link(`${this.projectRel}/regions/${region}/routers/${r.name}`),
      }));
    return {
      kind: 'compute#routerList',
      ...this.page(routers, c.query),
      selfLink: this.link(`${this.projectRel}/regions/${region}/routers`),
    };
  }

  private getMachineType(c: Ctx): Json {
    const zone = c.params.zone ?? '';
    const name = c.params.machineType ?? '';
    const mt = MACHINE_TYPES[name];
    if (!mt) throw notFound(`${this.projectRel}/zones/${zone}/machineTypes/${name}`);
    return {
      kind: 'compute#machineType',
      id: String(900000 + Object.keys(MACHINE_TYPES).indexOf(name)),
      name,
      description: `${mt.guestCpus} vCPUs, ${mt.memoryMb / 1024} GB RAM`,
      guestCpus: mt.guestCpus,
      memoryMb: mt.memoryMb,
      maximumPersistentDisks: 128,
      maximumPersistentDisksSizeGb: '263168',
      // GCE names the zone here, not its URL.
      zone,
      isSharedCpu: false,
      ...(mt.architecture ? { architecture: mt.architecture } : {}),
      selfLink: this.link(`${this.projectRel}/zones/${zone}/machineTypes/${name}`),
    };
  }

  // --- Images --------------------------------------------------------------------------------

  private imageFromFamily(project: string, family: string): Image {
    const newest = this.images
      .filter((i) => i.project === project && i.family === family && i.deprecated === undefined)
      .sort((a, b) => b.created - a.created)[0];
    if (!newest) throw notFound(`projects/${project}/global/images/family/${family}`);
    return newest;
  }

  private imageByName(project: string, name: string): Image {
    const img = this.images.find((i) => i.project === project && i.name === name);
    if (!img) throw notFound(`projects/${project}/global/images/${name}`);
    return img;
  }

  /** `projects/P/…` from a full URL (any host, /compute/v1/ only) or a partial path; our project if it is omitted. */
  private qualify(ref: string, field: string): string {
    let rest = ref;
    const url = /^https?:\/\/[^/]+\/compute\/v1\/(.*)$/.exec(ref);
    if (url) rest = url[1] ?? '';
    else if (/^[a-z]+:\/\//i.test(ref)) throw invalidValue(field, ref, 'The URL is malformed.');
    rest = rest.replace(/^\/+/, '');
    return rest.startsWith('projects/') ? rest : `${this.projectRel}/${rest}`;
  }

  private resolveImage(ref: string, field: string): Image {
    const m = /^projects\/([^/]+)\/global\/images\/(?:family\/([^/]+)|([^/]+))$/.exec(
      this.qualify(ref, field),
    );
    if (!m) throw invalidValue(field, ref, 'The URL is malformed.');
    const project = m[1] ?? '';
    return m[2] !== undefined ? this.imageFromFamily(project, m[2]) : this.imageByName(project, m[3] ?? '');
  }

  private resolveNetwork(ref: string, field: string): Network {
    const m = /^projects\/([^/]+)\/global\/networks\/([^/]+)$/.exec(this.qualify(ref, field));
    if (!m) throw invalidValue(field, ref, 'The URL is malformed.');
    const network = m[1] === this.project ? this.networks.find((n) => n.name === m[2]) : undefined;
    if (!network) throw notFound(`projects/${m[1] ?? ''}/global/networks/${m[2] ?? ''}`);
    return network;
  }

  private resolveSubnet(ref: string, field: string): Subnet {
    const m = /^projects\/([^/]+)\/regions\/([^/]+)\/subnetworks\/([^/]+)$/.exec(this.qualify(ref, field));
    if (!m) throw invalidValue(field, ref, 'The URL is malformed.');
    const subnet =
      m[1] === this.project ? this.subnets.find((s) => s.region === m[2] && s.name === m[3]) : undefined;
    if (!subnet) throw notFound(`projects/${m[1] ?? ''}/regions/${m[2] ?? ''}/subnetworks/${m[3] ?? ''}`);
    return subnet;
  }

  // --- Firewalls -----------------------------------------------------------------------------

  private buildFirewall(input: unknown): FakeGceFirewall {
    if (!isObj(input)) throw requiredField('resource');
    const name = optString(input, 'name', 'resource.name');
    if (!name) throw requiredField('resource.name');
    if (!NAME.test(name)) throw invalidValue('resource.name', name, NAME_RULE);
    const network = this.resolveNetwork(
      optString(input, 'network', 'resource.network') ?? 'global/networks/default',
      'resource.network',
    );
    const direction = optString(input, 'direction', 'resource.direction') ?? 'INGRESS';
    if (direction !== 'INGRESS' && direction !== 'EGRESS')
      throw invalidValue('resource.direction', direction, 'Must be INGRESS or EGRESS.');
    const priority = optInt(input, 'priority', 'resource.priority') ?? 1000;
    if (priority < 0 || priority > 65535)
      throw invalidValue(
        'resource.priority',
        priority,
        'Must be greater than or equal to 0 and less than or equal to 65535.',
      );
    const list = (key: string) => {
      const values = optStrings(input, key, `resource.${key}`);
      return values && values.length > 0 ? values : undefined;
    };
    let sourceRanges = list('sourceRanges');
    let destinationRanges = list('destinationRanges');
    const sourceTags = list('sourceTags');
    const targetTags = list('targetTags');
    const sourceServiceAccounts = list('sourceServiceAccounts');
    const targetServiceAccounts = list('targetServiceAccounts');
    for (const [key, ranges] of [
      ['sourceRanges', sourceRanges],
      ['destinationRanges', destinationRanges],
    ] as const)
      ranges?.forEach((r, i) => {
        if (!validCidr(r))
          throw invalidValue(`resource.${key}[${i}]`, r, 'Must be a valid IPV4 or IPV6 CIDR range.');
      });
    for (const [key, tags] of [
      ['sourceTags', sourceTags],
      ['targetTags', targetTags],
    ] as const)
      tags?.forEach((t, i) => {
        if (!NAME.test(t)) throw invalidValue(`resource.${key}[${i}]`, t, NAME_RULE);
      });
    const rules = (key: 'allowed' | 'denied') =>
      optArray(input, key, `resource.${key}`)?.map((r, i): FakeGceFirewallRule => {
        const field = `resource.${key}[${i}]`;
        if (!isObj(r)) throw invalidValue(field, r, 'Expected an object.');
        const protocol = optString(r, 'IPProtocol', `${field}.IPProtocol`);
        if (!protocol) throw requiredField(`${field}.IPProtocol`);
        const numeric = /^\d+$/.test(protocol) && Number(protocol) <= 255;
        if (!PROTOCOLS.has(protocol) && !numeric)
          throw invalidValue(
            `${field}.IPProtocol`,
            protocol,
            'Must be tcp, udp, icmp, esp, ah, sctp, ipip, all or a protocol number.',
          );
        const ports = optStrings(r, 'ports', `${field}.ports`);
        if (ports && ports.length > 0) {
          if (!['tcp', 'udp', 'sctp'].includes(protocol))
            throw invalidValue(`${field}.ports`, ports, 'Ports may only be specified for tcp, udp or sctp.');
          ports.forEach((p, j) => {
            const m = /^(\d+)(?:-(\d+))?$/.exec(p);
            const lo = Number(m?.[1]);
            const hi = Number(m?.[2] ?? m?.[1]);
            if (!m || lo > 65535 || hi > 65535 || lo > hi)
              throw invalidValue(`${field}.ports[${j}]`, p, 'Must be a port or a port range within 0-65535.');
          });
        }
        return { IPProtocol: protocol, ...(ports && ports.length > 0 ? { ports: [...ports] } : {}) };
      });
    const allowed = rules('allowed');
    const denied = rules('denied');
    if (allowed && allowed.length > 0 && denied && denied.length > 0)
      throw invalidValue('resource', '', "Only one of 'allowed' or 'denied' may be specified.");
    if (!allowed?.length && !denied?.length)
      throw invalidValue('resource', '', "Exactly one of 'allowed' or 'denied' must be specified.");
    if (direction === 'EGRESS' && (sourceTags || sourceServiceAccounts))
      throw invalidValue(
        'resource.sourceTags',
        sourceTags ?? sourceServiceAccounts,
        'Source tags and service accounts cannot be used in an EGRESS rule.',
      );
    if (targetTags && targetServiceAccounts)
      throw invalidValue(
        'resource.targetTags',
        targetTags,
        'Target tags cannot be used with target service accounts.',
      );
    // GCE's own rule: an ingress rule without any source is open to the world.
    if (direction === 'INGRESS' && !sourceRanges && !sourceTags && !sourceServiceAccounts)
      sourceRanges = ['0.0.0.0/0'];
    if (direction === 'EGRESS' && !destinationRanges) destinationRanges = ['0.0.0.0/0'];
    return {
      kind: 'compute#firewall',
      id: numericId(),
      creationTimestamp: iso(Date.now()),
      name,
      description: optString(input, 'description', 'resource.description') ?? '',
      network: this.networkLink(network.name),
      priority,
      direction,
      ...(sourceRanges ? { sourceRanges } : {}),
      ...(destinationRanges ? { destinationRanges } : {}),
      ...(sourceTags ? { sourceTags } : {}),
      ...(targetTags ? { targetTags } : {}),
      ...(sourceServiceAccounts ? { sourceServiceAccounts } : {}),
      ...(targetServiceAccounts ? { targetServiceAccounts } : {}),
      ...(allowed?.length ? { allowed } : {}),
      ...(denied?.length ? { denied } : {}),
      logConfig: { enable: false },
      disabled: optBool(input, 'disabled', 'resource.disabled') ?? false,
      selfLink: this.link(`${this.projectRel}/global/firewalls/${name}`),
    };
  }

  private addFirewall(body: object, visibleAt: number): FakeGceFirewall {
    const rule = this.buildFirewall(body);
    this.fws.push({ v: rule, visibleAt });
    return rule;
  }

  /** The operation of an earlier call with this requestId, if any (then nothing more is done). */
  private replay(c: Ctx): Op | undefined {
    const requestId = c.query.requestId;
    if (requestId === undefined) return undefined;
    if (!UUID.test(requestId) || /^[0-]+$/.test(requestId))
      throw invalidValue(
        'requestId',
        requestId,
        'The request ID must be a valid UUID with the exception that zero UUID is not supported (00000000-0000-0000-0000-000000000000).',
      );
    return this.requestIds.get(requestId);
  }

  private remember(c: Ctx, op: Op): Json {
    if (c.query.requestId !== undefined) this.requestIds.set(c.query.requestId, op);
    return this.opWire(op);
  }

  private insertFirewallCall(c: Ctx): Json {
    const earlier = this.replay(c);
    if (earlier) return this.opWire(earlier);
    const rule = this.buildFirewall(c.body);
    const now = Date.now();
    if (this.fws.some((f) => (f.goneAt === undefined || now < f.goneAt) && f.v.name === rule.name))
      throw new GceError(
        409,
        'alreadyExists',
        `The resource '${this.projectRel}/global/firewalls/${rule.name}' already exists`,
      );
    const target = { link: rule.selfLink, id: rule.id };
    if (c.opFault)
      return this.remember(c, this.newOp('insert', target, undefined, now, this.faultFailure(c.opFault)));
    const doneAt = now + this.firewallMs;
    this.fws.push({ v: rule, visibleAt: doneAt });
    return this.remember(c, this.newOp('insert', target, undefined, doneAt));
  }

  private findFirewall(name: string): Fw {
    const fw = this.visibleFirewalls().find((f) => f.v.name === name);
    if (!fw) throw notFound(`${this.projectRel}/global/firewalls/${name}`);
    return fw;
  }

  private getFirewall(c: Ctx): Json {
    return structuredClone(this.findFirewall(c.params.firewall ?? '').v) as unknown as Json;
  }

  private listFirewalls(c: Ctx): Json {
    const pred = this.filterOf(c.query, FIREWALL_FIELDS);
    const items = this.visibleFirewalls()
      .map((f) => structuredClone(f.v) as unknown as Json)
      .filter(pred);
    return {
      kind: 'compute#firewallList',
      id: `${this.projectRel}/global/firewalls`,
      ...this.page(items, c.query),
      selfLink: this.link(`${this.projectRel}/global/firewalls`),
    };
  }

  private deleteFirewall(c: Ctx): Json {
    const earlier = this.replay(c);
    if (earlier) return this.opWire(earlier);
    const fw = this.findFirewall(c.params.firewall ?? '');
    if (fw.goneAt !== undefined)
      throw new GceError(400, 'resourceNotReady', `The resource '${this.relOf(fw.v.selfLink)}' is not ready`);
    const now = Date.now();
    const target = { link: fw.v.selfLink, id: fw.v.id };
    if (c.opFault)
      return this.remember(c, this.newOp('delete', target, undefined, now, this.faultFailure(c.opFault)));
    fw.goneAt = now + this.firewallMs;
    return this.remember(c, this.newOp('delete', target, undefined, fw.goneAt));
  }

  // --- Operations ----------------------------------------------------------------------------

  private findOp(c: Ctx): Op {
    const zone = c.params.zone;
    const op = this.ops.get(c.params.operation ?? '');
    if (!op || op.zone !== zone)
      throw notFound(
        zone
          ? `${this.projectRel}/zones/${zone}/operations/${c.params.operation ?? ''}`
          : `${this.projectRel}/global/operations/${c.params.operation ?? ''}`,
      );
    return op;
  }

  /** GCE's wait: answers when the operation is DONE, or after about two minutes (waitMaxMs) anyway. */
  private async waitOp(c: Ctx): Promise<Json> {
    const op = this.findOp(c);
    const deadline = Date.now() + this.waitMaxMs;
    while (!this.closed && Date.now() < Math.min(op.doneAt, deadline))
      await this.sleep(Math.min(op.doneAt, deadline) - Date.now());
    this.advanceAll();
    return this.opWire(op);
  }

  // --- Instances -----------------------------------------------------------------------------

  private checkLabels(input: Json, field: string): Record<string, string> {
    const labels = optObject(input, 'labels', field) ?? {};
    const entries = Object.entries(labels);
    if (entries.length > 64) throw invalidValue(field, '', 'Resources can have at most 64 labels.');
    for (const [key, value] of entries) {
      if (!LABEL_KEY.test(key))
        throw invalidValue(
          field,
          '',
          `Label key '${key}' violates format constraints. The key must start with a lowercase character, can only contain lowercase letters, numeric characters, underscores and dashes. The key can be at most 63 characters long. International characters are allowed.`,
        );
      if (typeof value !== 'string' || !LABEL_VALUE.test(value))
        throw invalidValue(
          field,
          '',
          `Label value '${text(value)}' violates format constraints. The value can only contain lowercase letters, numeric characters, underscores and dashes. The value can be at most 63 characters long. International characters are allowed.`,
        );
    }
    return labels as Record<string, string>;
  }

  private checkMetadata(input: Json, field: string): { key: string; value: string }[] {
    const metadata = optObject(input, 'metadata', field);
    const items = metadata ? (optArray(metadata, 'items', `${field}.items`) ?? []) : [];
    const seen = new Set<string>();
    let total = 0;
    const out = items.map((item, i) => {
      const at = `${field}.items[${i}]`;
      if (!isObj(item)) throw invalidValue(at, item, 'Expected an object.');
      const key = optString(item, 'key', `${at}.key`) ?? '';
      const value = optString(item, 'value', `${at}.value`) ?? '';
      if (!/^[a-zA-Z0-9_-]{1,128}$/.test(key))
        throw invalidValue(`${at}.key`, key, "Must be a match of regex '[a-zA-Z0-9-_]{1,128}'");
      if (seen.has(key)) throw invalidValue(field, '', `Duplicate metadata key '${key}'.`);
      seen.add(key);
      const size = Buffer.byteLength(value);
      if (size > METADATA_VALUE_LIMIT)
        throw new GceError(
          400,
          'invalid',
          `Value for field '${at}.value' is too large: maximum size ${METADATA_VALUE_LIMIT} character(s); actual size ${size}.`,
        );
      total += Buffer.byteLength(key) + size;
      return { key, value };
    });
    if (total > METADATA_TOTAL_LIMIT)
      throw new GceError(
        400,
        'invalid',
        `Value for field '${field}' is too large: maximum size ${METADATA_TOTAL_LIMIT} character(s); actual size ${total}.`,
      );
    return out;
  }

  /** An Instance body (or bulkInsert's instanceProperties, where machineType and diskType are bare names), checked. */
  private instanceSpec(zone: string, input: Json, pre: string, bulk: boolean): InstanceSpec {
    const region = regionOf(zone);
    // Machine type: a zonal path or URL for insert, a bare name for bulkInsert.
    const mtRef = optString(input, 'machineType', `${pre}.machineType`);
    if (!mtRef) throw requiredField(`${pre}.machineType`);
    let machineType: string;
    if (bulk) {
      if (mtRef.includes('/'))
        throw invalidValue(
          `${pre}.machineType`,
          mtRef,
          "Machine type in instanceProperties must be a name (like 'e2-standard-2'), not a URL or path.",
        );
      machineType = mtRef;
    } else {
      const m = /^projects\/([^/]+)\/zones\/([^/]+)\/machineTypes\/([^/]+)$/.exec(
        this.qualify(mtRef, `${pre}.machineType`),
      );
      if (!m) throw invalidValue(`${pre}.machineType`, mtRef, 'The URL is malformed.');
      if (m[1] !== this.project) throw notFound(`projects/${m[1] ?? ''}`);
      if (m[2] !== zone)
        throw invalidValue(
          `${pre}.machineType`,
          mtRef,
          `Machine type specified '${m[3] ?? ''}' is in a different scope than the instance (zone ${zone}).`,
        );
      machineType = m[3] ?? '';
    }
    const mt = MACHINE_TYPES[machineType];
    if (!mt)
      throw invalidValue(
        `${pre}.machineType`,
        mtRef,
        `Machine type with name '${machineType}' does not exist in zone '${zone}'.`,
      );
    const series = seriesOf(machineType);
    const machineArch = mt.architecture ?? 'X86_64';

    const labels = this.checkLabels(input, `${pre}.labels`);
    const tagsObj = optObject(input, 'tags', `${pre}.tags`);
    const tags = (tagsObj && optStrings(tagsObj, 'items', `${pre}.tags.items`)) ?? [];
    tags.forEach((t, i) => {
      if (!NAME.test(t)) throw invalidValue(`${pre}.tags.items[${i}]`, t, NAME_RULE);
    });
    if (tags.length > 64) throw invalidValue(`${pre}.tags.items`, '', 'Resources can have at most 64 tags.');
    const metadata = this.checkMetadata(input, `${pre}.metadata`);

    // Disks: the boot disk first, each made from an image.
    const disksIn = optArray(input, 'disks', `${pre}.disks`) ?? [];
    if (disksIn.length === 0) throw requiredField(`${pre}.disks`);
    const disks = disksIn.map((d, i): DiskSpec => {
      const at = `${pre}.disks[${i}]`;
      if (!isObj(d)) throw invalidValue(at, d, 'Expected an object.');
      const boot = optBool(d, 'boot', `${at}.boot`) ?? false;
      if (boot !== (i === 0))
        throw invalidValue(
          `${at}.boot`,
          boot,
          'Exactly one boot disk is required, and it must be the first disk.',
        );
      const source = optString(d, 'source', `${at}.source`);
      if (source) throw notFound(this.relOf(this.qualify(source, `${at}.source`)));
      const init = optObject(d, 'initializeParams', `${at}.initializeParams`);
      const imageRef = init && optString(init, 'sourceImage', `${at}.initializeParams.sourceImage`);
      if (!init || !imageRef) throw requiredField(`${at}.initializeParams.sourceImage`);
      const image = this.resolveImage(imageRef, `${at}.initializeParams.sourceImage`);
      if (image.architecture !== machineArch)
        throw new GceError(
          400,
          'invalid',
          `Invalid resource usage: 'Requested boot disk architecture (${image.architecture}) is not compatible with machine type architecture (${machineArch}).'`,
        );
      const typeRef = optString(init, 'diskType', `${at}.initializeParams.diskType`);
      let diskType = 'pd-balanced';
      if (typeRef !== undefined) {
        const typeField = `${at}.initializeParams.diskType`;
        if (bulk) {
          if (typeRef.includes('/'))
            throw invalidValue(
              typeField,
              typeRef,
              "Disk type in instanceProperties must be a name (like 'pd-balanced'), not a URL or path.",
            );
          diskType = typeRef;
        } else {
          const m = /^projects\/([^/]+)\/zones\/([^/]+)\/diskTypes\/([^/]+)$/.exec(
            this.qualify(typeRef, typeField),
          );
          if (!m) throw invalidValue(typeField, typeRef, 'The URL is malformed.');
          if (m[1] !== this.project || m[2] !== zone)
            throw invalidValue(typeField, typeRef, `Disk type must be in the instance's zone (${zone}).`);
          diskType = m[3] ?? '';
        }
        if (!DISK_TYPES.has(diskType))
          throw invalidValue(typeField, typeRef, 'The referenced diskType resource cannot be found.');
      }
      const hyperdisk = diskType.startsWith('hyperdisk-');
      if ((HYPERDISK_ONLY.has(series) && !hyperdisk) || (NO_HYPERDISK.has(series) && hyperdisk))
        throw new GceError(
          400,
          'invalid',
          `Invalid resource usage: '[${diskType}] disk type cannot be used by [${machineType}] machine type.'`,
        );
      const sizeGb = optInt(init, 'diskSizeGb', `${at}.initializeParams.diskSizeGb`) ?? 10;
      if (sizeGb < 10)
        throw invalidValue(
          `${at}.initializeParams.diskSizeGb`,
          sizeGb,
          'Requested disk size cannot be smaller than the image size (10 GB)',
        );
      const iface =
        optString(d, 'interface', `${at}.interface`) ?? (HYPERDISK_ONLY.has(series) ? 'NVME' : 'SCSI');
      if (iface !== 'SCSI' && iface !== 'NVME')
        throw invalidValue(`${at}.interface`, iface, 'Must be SCSI or NVME.');
      return {
        boot,
        autoDelete: optBool(d, 'autoDelete', `${at}.autoDelete`) ?? false,
        deviceName: optString(d, 'deviceName', `${at}.deviceName`),
        diskName: optString(init, 'diskName', `${at}.initializeParams.diskName`),
        diskType,
        sizeGb,
        image,
        interface: iface,
        initializeParams: structuredClone(init),
      };
    });

    // Network: the subnet named, else the network's subnet in this region (default: `default`).
    const nics = optArray(input, 'networkInterfaces', `${pre}.networkInterfaces`) ?? [{}];
    if (nics.length === 0) throw requiredField(`${pre}.networkInterfaces`);
    if (nics.length > 1)
      throw invalidValue(`${pre}.networkInterfaces`, '', 'This fake supports one network interface.');
    const nic = nics[0];
    const nicField = `${pre}.networkInterfaces[0]`;
    if (!isObj(nic)) throw invalidValue(nicField, nic, 'Expected an object.');
    const subRef = optString(nic, 'subnetwork', `${nicField}.subnetwork`);
    const netRef = optString(nic, 'network', `${nicField}.network`);
    let subnet: Subnet;
    if (subRef) {
      subnet = this.resolveSubnet(subRef, `${nicField}.subnetwork`);
      if (subnet.region !== region)
        throw invalidValue(
          `${nicField}.subnetwork`,
          subRef,
          `Subnetwork must be in the instance's region (${region}).`,
        );
      if (netRef && this.resolveNetwork(netRef, `${nicField}.network`).name !== subnet.network)
        throw invalidValue(`${nicField}.network`, netRef, 'The subnetwork does not belong to this network.');
    } else {
      const network = this.resolveNetwork(netRef ?? 'global/networks/default', `${nicField}.network`);
      if (!network.auto)
        throw invalidValue(nicField, '', 'Subnetwork should be specified for custom subnetmode network');
      const found = this.subnets.find((s) => s.network === network.name && s.region === region);
      if (!found) throw invalidValue(nicField, '', `The network has no subnetwork in region ${region}.`);
      subnet = found;
    }
    const accessIn = optArray(nic, 'accessConfigs', `${nicField}.accessConfigs`);
    if (accessIn && accessIn.length > 1)
      throw invalidValue(
        `${nicField}.accessConfigs`,
        '',
        'At most one access config is allowed per network interface.',
      );
    const accessConfigs = accessIn?.map((ac, i) => {
      const at = `${nicField}.accessConfigs[${i}]`;
      if (!isObj(ac)) throw invalidValue(at, ac, 'Expected an object.');
      const type = optString(ac, 'type', `${at}.type`) ?? 'ONE_TO_ONE_NAT';
      if (type !== 'ONE_TO_ONE_NAT') throw invalidValue(`${at}.type`, type, 'Must be ONE_TO_ONE_NAT.');
      return {
        name: optString(ac, 'name', `${at}.name`) ?? 'External NAT',
        natIP: optString(ac, 'natIP', `${at}.natIP`),
        networkTier: optString(ac, 'networkTier', `${at}.networkTier`) ?? 'PREMIUM',
      };
    });

    // Service accounts: absent means the default one, with GCE's default scopes; [] means none.
    const saIn = optArray(input, 'serviceAccounts', `${pre}.serviceAccounts`);
    const defaultSa = `${this.projectNumber}-compute@developer.gserviceaccount.com`;
    const serviceAccounts =
      saIn === undefined
        ? [{ email: defaultSa, scopes: [...SEED.defaultScopes] }]
        : saIn.map((sa, i) => {
            const at = `${pre}.serviceAccounts[${i}]`;
            if (!isObj(sa)) throw invalidValue(at, sa, 'Expected an object.');
            const email = optString(sa, 'email', `${at}.email`) ?? 'default';
            return {
              email: email === 'default' ? defaultSa : email,
              scopes: [...(optStrings(sa, 'scopes', `${at}.scopes`) ?? [])],
            };
          });

    const shieldedIn = optObject(input, 'shieldedInstanceConfig', `${pre}.shieldedInstanceConfig`) ?? {};
    const shielded = {
      enableSecureBoot:
        optBool(shieldedIn, 'enableSecureBoot', `${pre}.shieldedInstanceConfig.enableSecureBoot`) ?? false,
      enableVtpm: optBool(shieldedIn, 'enableVtpm', `${pre}.shieldedInstanceConfig.enableVtpm`) ?? true,
      enableIntegrityMonitoring:
        optBool(
          shieldedIn,
          'enableIntegrityMonitoring',
          `${pre}.shieldedInstanceConfig.enableIntegrityMonitoring`,
        ) ?? true,
    };
    const schedulingIn = optObject(input, 'scheduling', `${pre}.scheduling`) ?? {};
    const scheduling = {
      onHostMaintenance: 'MIGRATE',
      automaticRestart: true,
      preemptible: false,
      provisioningModel: 'STANDARD',
      ...structuredClone(schedulingIn),
    };
    return {
      machineType,
      guestCpus: mt.guestCpus,
      labels,
      tags,
      metadata,
      disks,
      subnet,
      networkIP: optString(nic, 'networkIP', `${nicField}.networkIP`),
      accessConfigs,
      serviceAccounts,
      shielded,
      scheduling,
      description: optString(input, 'description', `${pre}.description`),
      deletionProtection: optBool(input, 'deletionProtection', `${pre}.deletionProtection`) ?? false,
      canIpForward: optBool(input, 'canIpForward', `${pre}.canIpForward`) ?? false,
    };
  }

  private createInstance(
    zone: string,
    name: string,
    spec: InstanceSpec,
    at: number,
    requestId: string | undefined,
    fromBulk: boolean,
  ): Inst {
    const zoneRel = `${this.projectRel}/zones/${zone}`;
    const networkIP = this.allocateNetworkIp(
      spec.subnet,
      spec.networkIP,
      'resource.networkInterfaces[0].networkIP',
    );
    const accessConfigs = spec.accessConfigs?.map((ac): FakeGceAccessConfig => ({
      kind: 'compute#accessConfig',
      type: 'ONE_TO_ONE_NAT',
      name: ac.name,
      natIP: ac.natIP ?? this.allocateNatIp(),
      networkTier: ac.networkTier,
    }));
    const disks = spec.disks.map((d, index): FakeGceAttachedDisk => ({
      kind: 'compute#attachedDisk',
      type: 'PERSISTENT',
      mode: 'READ_WRITE',
      index,
      boot: d.boot,
      autoDelete: d.autoDelete,
      deviceName: d.deviceName ?? `persistent-disk-${index}`,
      source: this.link(`${zoneRel}/disks/${d.diskName ?? (index === 0 ? name : `${name}-${index}`)}`),
      diskSizeGb: String(d.sizeGb),
      interface: d.interface,
      architecture: d.image.architecture,
      initializeParams: d.initializeParams,
    }));
    const boot = spec.disks[0];
    const metadataValue = (key: string) => spec.metadata.find((m) => m.key === key)?.value;
    const startupScript = metadataValue('startup-script') ?? metadataValue('user-data');
    const v: FakeGceInstance = {
      kind: 'compute#instance',
      id: numericId(),
      creationTimestamp: iso(at),
      name,
      ...(spec.description !== undefined ? { description: spec.description } : {}),
      tags: { ...(spec.tags.length > 0 ? { items: [...spec.tags] } : {}), fingerprint: fingerprint() },
      machineType: this.link(`${zoneRel}/machineTypes/${spec.machineType}`),
      status: 'PROVISIONING',
      zone: this.zoneLink(zone),
      canIpForward: spec.canIpForward,
      networkInterfaces: [
        {
          kind: 'compute#networkInterface',
          name: 'nic0',
          network: this.networkLink(spec.subnet.network),
          subnetwork: this.subnetLink(spec.subnet),
          networkIP,
          stackType: 'IPV4_ONLY',
          fingerprint: fingerprint(),
          ...(accessConfigs ? { accessConfigs } : {}),
        },
      ],
      disks,
      metadata: {
        kind: 'compute#metadata',
        fingerprint: fingerprint(),
        ...(spec.metadata.length > 0 ? { items: spec.metadata.map((m) => ({ ...m })) } : {}),
      },
      ...(spec.serviceAccounts.length > 0 ? { serviceAccounts: structuredClone(spec.serviceAccounts) } : {}),
      selfLink: this.link(`${zoneRel}/instances/${name}`),
      scheduling: structuredClone(spec.scheduling),
      cpuPlatform: 'Unknown CPU Platform',
      ...(Object.keys(spec.labels).length > 0 ? { labels: { ...spec.labels } } : {}),
      labelFingerprint: fingerprint(),
      startRestricted: false,
      deletionProtection: spec.deletionProtection,
      shieldedInstanceConfig: { ...spec.shielded },
      fingerprint: fingerprint(),
      insertedAt: at,
      ...(requestId !== undefined ? { requestId } : {}),
      zoneName: zone,
      ...(startupScript !== undefined ? { startupScript } : {}),
      bootDiskType: boot?.diskType ?? 'pd-balanced',
      sourceImage: boot ? this.imageLink(boot.image) : '',
      fromBulk,
    };
    const inst: Inst = { v, guestCpus: spec.guestCpus, region: regionOf(zone), serial: '' };
    this.insts.push(inst);
    this.advance(inst, at);
    return inst;
  }

  /** How many more instances of `cpus` vCPUs each the capacity and the region's CPU quota allow now. */
  private room(zone: string, cpus: number): { capacity: number; quota: number } {
    const region = regionOf(zone);
    const capacity = this.capacity - this.liveInsts().length;
    const quota =
      this.cpuQuota === undefined ? Infinity : Math.floor((this.cpuQuota - this.cpusInUse(region)) / cpus);
    return { capacity: Math.max(0, capacity), quota: Math.max(0, quota) };
  }

  private capacityMessage(zone: string): string {
    return `The zone '${this.projectRel}/zones/${zone}' does not have enough resources available to fulfill the request. Try a different zone, or try again later.`;
  }

  private quotaMessage(zone: string, spaces: string): string {
    return `Quota 'CPUS' exceeded.${spaces}Limit: ${(this.cpuQuota ?? 0).toFixed(1)} in region ${regionOf(zone)}.`;
  }

  private insertInstance(c: Ctx): Json {
    const earlier = this.replay(c);
    if (earlier) return this.opWire(earlier);
    const zone = c.params.zone ?? '';
    if (!isObj(c.body)) throw requiredField('resource');
    const name = optString(c.body, 'name', 'resource.name');
    if (!name) throw requiredField('resource.name');
    if (!NAME.test(name)) throw invalidValue('resource.name', name, NAME_RULE);
    const spec = this.instanceSpec(zone, c.body, 'resource', false);
    if (this.liveInsts().some((i) => i.v.zoneName === zone && i.v.name === name))
      throw new GceError(
        409,
        'alreadyExists',
        `The resource '${this.projectRel}/zones/${zone}/instances/${name}' already exists`,
      );
    const now = Date.now();
    const target = { link: this.link(`${this.projectRel}/zones/${zone}/instances/${name}`), id: numericId() };
    const room = this.room(zone, spec.guestCpus);
    let failure: Failure | undefined;
    if (c.opFault) failure = this.faultFailure(c.opFault);
    else if (room.capacity < 1)
      failure = {
        code: 'ZONE_RESOURCE_POOL_EXHAUSTED',
        message: this.capacityMessage(zone),
        httpStatus: 503,
      };
    else if (room.quota < 1)
      failure = { code: 'QUOTA_EXCEEDED', message: this.quotaMessage(zone, '  '), httpStatus: 403 };
    if (failure) return this.remember(c, this.newOp('insert', target, zone, now, failure));
    const inst = this.createInstance(zone, name, spec, now, c.query.requestId, false);
    return this.remember(
      c,
      this.newOp('insert', { link: inst.v.selfLink, id: inst.v.id }, zone, now + this.provisioningMs),
    );
  }

  private bulkInsert(c: Ctx): Json {
    const earlier = this.replay(c);
    if (earlier) return this.opWire(earlier);
    const zone = c.params.zone ?? '';
    if (!isObj(c.body)) throw requiredField('resource');
    const body = c.body;
    for (const unsupported of ['perInstanceProperties', 'sourceInstanceTemplate', 'predefinedNames'])
      if (body[unsupported] !== undefined)
        throw invalidValue(
          `resource.${unsupported}`,
          '',
          'This fake supports namePattern and instanceProperties only.',
        );
    const count = optInt(body, 'count', 'resource.count');
    if (count === undefined) throw requiredField('resource.count');
    if (count < 1 || count > 5000) throw invalidValue('resource.count', count, 'Must be between 1 and 5000.');
    const minCount = optInt(body, 'minCount', 'resource.minCount') ?? count;
    if (minCount < 1 || minCount > count)
      throw invalidValue('resource.minCount', minCount, 'Must be between 1 and count.');
    const pattern = optString(body, 'namePattern', 'resource.namePattern');
    if (!pattern) throw requiredField('resource.namePattern');
    const runs = pattern.match(/#+/g) ?? [];
    const run = runs[0];
    if (runs.length !== 1 || run === undefined)
      throw invalidValue(
        'resource.namePattern',
        pattern,
        "Name pattern must contain exactly one sequence of '#' characters.",
      );
    const [prefix = '', suffix = ''] = pattern.split(run);
    const props = optObject(body, 'instanceProperties', 'resource.instanceProperties');
    if (!props) throw requiredField('resource.instanceProperties');
    const spec = this.instanceSpec(zone, props, 'resource.instanceProperties', true);

    // Numbering continues after the highest number among the zone's matching names.
    const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const numbered = new RegExp(`^${escape(prefix)}(\\d{${run.length},})${escape(suffix)}$`);
    const highest = this.liveInsts()
      .filter((i) => i.v.zoneName === zone)
      .map((i) => numbered.exec(i.v.name)?.[1])
      .reduce((max, n) => (n === undefined ? max : Math.max(max, Number(n))), 0);
    const nameAt = (k: number) => `${prefix}${String(highest + k).padStart(run.length, '0')}${suffix}`;
    for (const k of [1, count]) {
      if (!NAME.test(nameAt(k)))
        throw invalidValue('resource.namePattern', pattern, `The name '${nameAt(k)}' ${NAME_RULE}`);
    }

    // All or nothing, checked before anything is made: fewer than minCount fails at once.
    const room = this.room(zone, spec.guestCpus);
    if (room.capacity < minCount) throw new GceError(503, 'insufficientCapacity', this.capacityMessage(zone));
    if (room.quota < minCount) throw new GceError(403, 'quotaExceeded', this.quotaMessage(zone, ' '));
    const made = Math.min(count, room.capacity, room.quota);
    const now = Date.now();
    const target = { link: this.zoneLink(zone) };
    if (c.opFault)
      return this.remember(c, this.newOp('bulkInsert', target, zone, now, this.faultFailure(c.opFault)));
    for (let k = 1; k <= made; k++) this.createInstance(zone, nameAt(k), spec, now, c.query.requestId, true);
    const op = this.newOp('bulkInsert', target, zone, now + this.provisioningMs);
    op.bulk = { zone, count: made };
    return this.remember(c, op);
  }

  private findInstance(c: Ctx): Inst {
    const zone = c.params.zone ?? '';
    const name = c.params.instance ?? '';
    const inst = this.liveInsts().find((i) => i.v.zoneName === zone && i.v.name === name);
    if (!inst) throw notFound(`${this.projectRel}/zones/${zone}/instances/${name}`);
    return inst;
  }

  private getInstance(c: Ctx): Json {
    return this.instanceWire(this.findInstance(c));
  }

  private listInstances(c: Ctx): Json {
    const zone = c.params.zone ?? '';
    const pred = this.filterOf(c.query, INSTANCE_FIELDS);
    const items = this.ordered(
      this.liveInsts().filter((i) => i.v.zoneName === zone),
      c.query,
    )
      .map((i) => this.instanceWire(i))
      .filter(pred);
    return {
      kind: 'compute#instanceList',
      id: `${this.projectRel}/zones/${zone}/instances`,
      ...this.page(items, c.query),
      selfLink: this.link(`${this.projectRel}/zones/${zone}/instances`),
    };
  }

  private aggregated(c: Ctx): Json {
    const pred = this.filterOf(c.query, INSTANCE_FIELDS);
    const down = [...this.unreachableZones];
    if (down.length > 0 && c.query.returnPartialSuccess !== 'true')
      throw new GceError(503, 'backendError', `Zones ${down.join(', ')} are unavailable.`);
    const zones = Object.keys(ZONE_REGION).filter((zone) => !this.unreachableZones.has(zone));
    const all = zones.flatMap((zone) =>
      this.ordered(
        this.liveInsts().filter((i) => i.v.zoneName === zone),
        c.query,
      )
        .map((i) => ({ zone, wire: this.instanceWire(i) }))
        .filter((x) => pred(x.wire)),
    );
    const { items: pageItems = [], nextPageToken } = this.page(all, c.query);
    // Every zone has an entry on every page: its instances, or a warning that it has none here.
    const items = Object.fromEntries([
      ...down.map((zone) => [
        `zones/${zone}`,
        { warning: { code: 'UNREACHABLE', message: `The zone '${zone}' is unavailable.`, data: [] } },
      ]),
      ...zones.map((zone) => {
        const here = pageItems.filter((x) => x.zone === zone).map((x) => x.wire);
        const scope = `zones/${zone}`;
        return [
          scope,
          here.length > 0
            ? { instances: here }
            : {
                warning: {
                  code: 'NO_RESULTS_ON_PAGE',
                  message: `There are no results for scope '${scope}' on this page.`,
                  data: [{ key: 'scope', value: scope }],
                },
              },
        ];
      }),
    ]);
    return {
      kind: 'compute#instanceAggregatedList',
      id: `${this.projectRel}/aggregated/instances`,
      items,
      ...(nextPageToken ? { nextPageToken } : {}),
      selfLink: this.link(`${this.projectRel}/aggregated/instances`),
    };
  }

  private deleteInstance(c: Ctx): Json {
    const earlier = this.replay(c);
    if (earlier) return this.opWire(earlier);
    const inst = this.findInstance(c);
    const zone = inst.v.zoneName;
    if (inst.stopThen === 'GONE')
      throw new GceError(
        400,
        'resourceNotReady',
        `The resource '${this.relOf(inst.v.selfLink)}' is not ready`,
      );
    const now = Date.now();
    const target = { link: inst.v.selfLink, id: inst.v.id };
    if (c.opFault)
      return this.remember(c, this.newOp('delete', target, zone, now, this.faultFailure(c.opFault)));
    this.moveTo(inst, 'STOPPING', now);
    inst.stopUntil = now + this.deletingMs;
    inst.stopThen = 'GONE';
    const doneAt = inst.stopUntil;
    this.advance(inst, now);
    return this.remember(c, this.newOp('delete', target, zone, doneAt));
  }

  private serialPort(c: Ctx): Json {
    const inst = this.findInstance(c);
    const port = c.query.port === undefined ? 1 : Number(c.query.port);
    if (!Number.isInteger(port) || port < 1 || port > 4)
      throw invalidValue('port', c.query.port, 'Must be between 1 and 4.');
    const contents = port === 1 ? inst.serial : '';
    const start = Math.min(Math.max(0, Number(c.query.start ?? 0) || 0), contents.length);
    return {
      kind: 'compute#serialPortOutput',
      contents: contents.slice(start),
      start: String(start),
      next: String(contents.length),
      selfLink: `${inst.v.selfLink}/serialPort?port=${port}`,
    };
  }
}

export async function startFakeGce(options: FakeGceOptions = {}): Promise<FakeGce> {
  const fake = new FakeGceImpl(options);
  const server = http.createServer((req, res) => {
    fake.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  const port = await listenOnLoopback(server);
  fake.server = server;
  fake.url = `http://127.0.0.1:${port}`;
  fake.computeBase = `${fake.url}${COMPUTE_PREFIX}`;
  fake.seed();
  return fake;
}
