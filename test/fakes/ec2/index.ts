/**
 * A fake EC2 endpoint for tests: an HTTP server on 127.0.0.1 that speaks the EC2 Query protocol
 * well enough for the real `@aws-sdk/client-ec2` to drive it (`endpoint: fake.url`).
 *
 * Covers: DescribeVpcs, DescribeSubnets, DescribeImages, CreateSecurityGroup,
 * AuthorizeSecurityGroupIngress, DescribeSecurityGroups, DeleteSecurityGroup, RunInstances,
 * DescribeInstances, TerminateInstances, GetConsoleOutput; seeded VPCs/subnets/AMIs; the instance
 * life cycle (computed lazily from timestamps, so no timers); AWS's error codes and messages for the
 * mistakes a provider can make (unknown ids, duplicate rules and names, a group still in use, user
 * data over 16 KiB, an arm64 AMI on an x86 type, ClientToken reuse with other arguments…);
 * MaxResults/NextToken; fault injection, before or after the work is done; `GET /checkip`.
 * Like AWS it has a `default` security group per VPC, answers RunInstances before the public IP
 * is attached, and shows no network details of terminated instances.
 *
 * Deliberately not covered: SigV4 verification (an Authorization header is merely required), key
 * pairs (any KeyName is refused as AWS would refuse one it does not know), volumes and block device
 * mappings, IAM instance profiles (accepted, ignored), egress rule changes, more than one network
 * interface, stop/start through the API (use `setInstanceState`), Elastic IPs, IPv6 addresses on
 * instances. Parameters the fake does not know are ignored, not refused; they are in `calls`.
 */
import { listenOnLoopback } from '../server.js';
import { FaultQueue, type FailOptions } from '../faults.js';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { EC2ClientConfig } from '@aws-sdk/client-ec2';
import ipaddr from 'ipaddr.js';
import {
  decodeQuery,
  errorXml,
  responseXml,
  type QueryParams,
  type QueryValue,
  type XmlValue,
} from './xml.js';

export type { QueryParams, QueryValue } from './xml.js';

export type InstanceStateName =
  'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

export interface FakeCall {
  action: string;
  /** The decoded nested params (everything but Action and Version), e.g. `{ InstanceId: ['i-…'] }`. */
  params: QueryParams;
  at: number;
  /** The error code answered, if the call failed. */
  error?: string;
}

export interface FakeInstance {
  id: string;
  reservationId: string;
  state: InstanceStateName;
  stateReason?: { code: string; message: string };
  /** Kept after termination for inspection, although DescribeInstances stops showing it then, like AWS. */
  privateIp: string;
  publicIp?: string;
  tags: Record<string, string>;
  volumeTags: Record<string, string>;
  networkInterfaceTags: Record<string, string>;
  /** The user data as cloud-init reads it: UTF-8 text, gunzipped first when it was gzip. */
  userData: string;
  /** The exact bytes decoded from the base64 UserData parameter. */
  userDataRaw: Buffer;
  securityGroupIds: string[];
  subnetId: string;
  vpcId: string;
  availabilityZone: string;
  instanceType: string;
  imageId: string;
  metadataOptions: { httpTokens: string; httpPutResponseHopLimit: number; httpEndpoint: string };
  shutdownBehavior: 'stop' | 'terminate';
  clientToken: string;
  launchedAt: number;
}

export interface FakeIngressRule {
  ruleId: string;
  protocol: string;
  fromPort?: number;
  toPort?: number;
  cidrIp?: string;
  cidrIpv6?: string;
  sourceGroupId?: string;
  description?: string;
}

export interface FakeSecurityGroup {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  tags: Record<string, string>;
  ingress: FakeIngressRule[];
}

export interface FakeFault {
  code: string;
  message?: string;
  /** Default: 503 for RequestLimitExceeded and Unavailable, 500 for InternalError, else 400. */
  status?: number;
}

export type { FailOptions } from '../faults.js';

export interface FakeEc2 {
  url: string;
  region: string;
  calls: FakeCall[];
  mutatingCalls(): FakeCall[];
  /**
   * The next call(s) of `action` ('*' for any) answer this error. Faults queue up in order: the
   * first one for an action must be used up before the next (so `times: Infinity` ends the queue).
   */
  fail(action: string, error: FakeFault, options?: FailOptions): void;
  /** Drops the queued faults of `action`, or all of them. */
  clearFaults(action?: string): void;
  instances(): FakeInstance[];
  securityGroups(): FakeSecurityGroup[];
  /** What is left of a cluster: instances not terminated and security groups, tagged dcp:cluster=<name>. */
  leftovers(cluster: string): { instances: FakeInstance[]; securityGroups: FakeSecurityGroup[] };
  setInstanceState(id: string, state: InstanceStateName, reason?: { code: string; message: string }): void;
  /** `shutdown -h now` inside the instance: honours InstanceInitiatedShutdownBehavior. */
  shutdownFromInside(id: string): void;
  setConsoleOutput(id: string, text: string): void;
  myIp: string;
  close(): Promise<void>;
}

export interface FakeEc2Options {
  pendingMs?: number;
  shuttingDownMs?: number;
  noDefaultVpc?: boolean;
  /** Most instances alive (not terminated) at once; RunInstances beyond it is InsufficientInstanceCapacity. */
  capacity?: number;
  myIp?: string;
  /**
   * How long a terminated instance still holds its security groups (default 0). Real EC2 answers
   * DependencyViolation for a while after `terminated`, until the network interface is gone.
   */
  dependencyLingerMs?: number;
}

/** Ids of the seeded resources, so tests need not look them up. */
export const SEED = {
  accountId: '123456789012',
  canonicalOwnerId: '099720109477',
  defaultVpcId: 'vpc-0def0000000000001',
  defaultSubnetIds: {
    'us-east-1a': 'subnet-0def000000000001a',
    'us-east-1b': 'subnet-0def000000000001b',
    'us-east-1c': 'subnet-0def000000000001c',
  },
  customVpcId: 'vpc-0cafe000000000001',
  customSubnetId: 'subnet-0cafe00000000001a',
  /**
   * A private subnet inside 127.0.0.0/8: its instances' addresses are this machine's loopback, so
   * a test may let dcp wait for readiness without a single packet leaving the machine.
   */
  loopbackVpcId: 'vpc-07f0000000000001',
  loopbackSubnetId: 'subnet-07f00000000001a',
  images: {
    nobleAmd64Old: 'ami-0a000000000000a01',
    nobleAmd64New: 'ami-0a000000000000a02',
    nobleArm64Old: 'ami-0a000000000000b01',
    nobleArm64New: 'ami-0a000000000000b02',
    jammyAmd64: 'ami-0a000000000000c01',
    /** Same naming as Canonical's, newest of all, but another owner: only a missing Owners filter finds it. */
    impostorNobleAmd64: 'ami-0bad00000000000d1',
  },
} as const;

const REGION = 'us-east-1';
const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};
const USER_DATA_LIMIT = 16384;

/**
 * A retry strategy with the SDK's standard rules (retry throttling and transient errors, 3 attempts)
 * but millisecond delays: the SDK's own waits up to 1 s, then 2 s, on throttling.
 * Use: `new EC2Client({ …, retryStrategy: fastRetryStrategy() })`.
 */
export function fastRetryStrategy(
  maxAttempts = 3,
  delayMs = 1,
): NonNullable<EC2ClientConfig['retryStrategy']> {
  const token = (count: number) => ({
    getRetryCount: () => count,
    getRetryDelay: () => delayMs,
    getRetryCost: () => 0,
  });
  return {
    acquireInitialRetryToken: async () => token(0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const next = previous.getRetryCount() + 1;
      if ((info.errorType !== 'THROTTLING' && info.errorType !== 'TRANSIENT') || next >= maxAttempts) {
        throw new Error('No retry token available');
      }
      return token(next);
    },
    recordSuccess: () => {},
  };
}

// ---------------------------------------------------------------------------------------------
// Internal state

class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

interface Vpc {
  id: string;
  cidr: string;
  isDefault: boolean;
  tags: Record<string, string>;
}

interface Subnet {
  id: string;
  vpcId: string;
  cidr: string;
  az: string;
  azId: string;
  defaultForAz: boolean;
  mapPublicIpOnLaunch: boolean;
  tags: Record<string, string>;
}

interface Image {
  id: string;
  name: string;
  creationDate: string;
  architecture: 'x86_64' | 'arm64';
  ownerId: string;
  state: string;
  rootDeviceName: string;
}

interface SecurityGroup extends FakeSecurityGroup {
  isDefaultGroup: boolean;
}

interface Instance extends FakeInstance {
  stateSince: number;
  /** AWS's free-text `reason`, e.g. "User initiated (2025-…)". */
  transitionReason: string;
  associatePublicIp: boolean;
  amiLaunchIndex: number;
  networkInterfaceId: string;
  attachmentId: string;
  macAddress: string;
  deleteOnTermination: boolean;
  architecture: string;
  rootDeviceName: string;
  consoleOutput: string;
}

// --- Query parameter access ------------------------------------------------------------------

const isParams = (v: QueryValue | undefined): v is QueryParams => typeof v === 'object' && !Array.isArray(v);
const str = (p: QueryParams | undefined, key: string): string | undefined => {
  const v = p?.[key];
  return typeof v === 'string' ? v : undefined;
};
const list = (p: QueryParams | undefined, key: string): QueryValue[] => {
  const v = p?.[key];
  return Array.isArray(v) ? v : [];
};
const strList = (p: QueryParams | undefined, key: string): string[] =>
  list(p, key).filter((v): v is string => typeof v === 'string');
const objList = (p: QueryParams | undefined, key: string): QueryParams[] => list(p, key).filter(isParams);
const obj = (p: QueryParams | undefined, key: string): QueryParams | undefined => {
  const v = p?.[key];
  return isParams(v) ? v : undefined;
};
const bool = (p: QueryParams | undefined, key: string): boolean | undefined => {
  const v = str(p, key);
  return v === undefined ? undefined : v === 'true';
};
const required = (p: QueryParams, key: string): string => {
  const v = str(p, key);
  if (v === undefined || v === '')
    throw new Ec2Error('MissingParameter', `The request must contain the parameter ${key}`);
  return v;
};
const int = (p: QueryParams | undefined, key: string): number | undefined => {
  const v = str(p, key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Ec2Error('InvalidParameterValue', `Invalid value '${v}' for ${key}`);
  return n;
};

// --- Small helpers ---------------------------------------------------------------------------

const hexId = (prefix: string) => `${prefix}-0${randomBytes(8).toString('hex')}`; // 17 hex digits, like AWS's
const tagSet = (tags: Record<string, string>) => Object.entries(tags).map(([key, value]) => ({ key, value }));
const ipToInt = (ip: string) => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');

/** The usable addresses of a subnet: AWS keeps the network address, .1 (router), .2 (DNS), .3 and the broadcast. */
function subnetRange(cidr: string): { first: number; last: number } {
  const [base = '', bits = '32'] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const network = ipToInt(base) - (ipToInt(base) % size);
  return { first: network + 4, last: network + size - 2 };
}

/** EC2 filter values take `*` and `?` wildcards. */
function globMatch(pattern: string, value: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(value);
}

type FilterFields<T> = Record<string, (item: T) => string | string[] | undefined>;

/** Filters AND together, the values of one filter OR; `tag:K`, `tag-key`, `tag-value` work for every resource. */
function applyFilters<T extends { tags: Record<string, string> }>(
  items: T[],
  p: QueryParams,
  fields: FilterFields<T>,
): T[] {
  const filters = objList(p, 'Filter').map((f) => ({
    name: str(f, 'Name') ?? '',
    values: strList(f, 'Value'),
  }));
  for (const f of filters) {
    if (!f.name.startsWith('tag:') && f.name !== 'tag-key' && f.name !== 'tag-value' && !(f.name in fields)) {
      throw new Ec2Error('InvalidParameterValue', `The filter '${f.name}' is invalid`);
    }
  }
  return items.filter((item) =>
    filters.every(({ name, values }) => {
      let candidates: string[];
      if (name.startsWith('tag:')) {
        const value = item.tags[name.slice(4)];
        candidates = value === undefined ? [] : [value];
      } else if (name === 'tag-key') candidates = Object.keys(item.tags);
      else if (name === 'tag-value') candidates = Object.values(item.tags);
      else {
        const got = fields[name]?.(item);
        candidates = got === undefined ? [] : Array.isArray(got) ? got : [got];
      }
      return candidates.some((c) => values.some((v) => globMatch(v, c)));
    }),
  );
}

/** MaxResults/NextToken over any list; without MaxResults everything comes back, as in EC2. */
function paginate<T>(items: T[], p: QueryParams): { page: T[]; nextToken?: string } {
  const token = str(p, 'NextToken');
  let start = 0;
  if (token !== undefined) {
    start = Number(
      Buffer.from(token, 'base64url')
        .toString()
        .replace(/^fake:/, ''),
    );
    if (!Number.isInteger(start) || start < 0)
      throw new Ec2Error('InvalidParameterValue', 'Unable to parse pagination token');
  }
  const max = int(p, 'MaxResults');
  if (max === undefined) return { page: items.slice(start) };
  if (max < 5 || max > 1000) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value ( ${max} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`,
    );
  }
  const end = start + max;
  return {
    page: items.slice(start, end),
    nextToken: end < items.length ? Buffer.from(`fake:${end}`).toString('base64url') : undefined,
  };
}

function checkId(id: string, prefix: string, code: string): void {
  if (!new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`).test(id)) {
    throw new Ec2Error(code, `Invalid id: "${id}" (expecting "${prefix}-...")`);
  }
}

/** Graviton families carry a `g` after the generation digit (t4g, c7gn, r8gd, g5g, im4gn); a1 is the first one. */
function instanceTypeArch(type: string): 'x86_64' | 'arm64' {
  const family = type.split('.')[0] ?? '';
  return family === 'a1' || /^[a-z]+\d+[a-z]*g[a-z]*$/.test(family) ? 'arm64' : 'x86_64';
}

/** TagSpecifications → tags per resource type, with AWS's checks on types and keys. */
function parseTagSpecs(p: QueryParams, allowed: string[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const spec of objList(p, 'TagSpecification')) {
    const type = str(spec, 'ResourceType') ?? '';
    if (!allowed.includes(type)) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `'${type}' is not a valid taggable resource type for this operation.`,
      );
    }
    const tags = out.get(type) ?? {};
    for (const tag of objList(spec, 'Tag')) {
      const key = str(tag, 'Key') ?? '';
      const value = str(tag, 'Value') ?? '';
      if (key === '' || key.length > 128)
        throw new Ec2Error(
          'InvalidParameterValue',
          `Tag key '${key}' is invalid: it must be 1 to 128 characters`,
        );
      if (key.toLowerCase().startsWith('aws:'))
        throw new Ec2Error(
          'InvalidParameterValue',
          "Tag keys starting with 'aws:' are reserved for internal use",
        );
      if (value.length > 256)
        throw new Ec2Error(
          'InvalidParameterValue',
          `Tag value for key '${key}' is longer than 256 characters`,
        );
      tags[key] = value;
    }
    if (Object.keys(tags).length > 50)
      throw new Ec2Error('TagLimitExceeded', 'The maximum number of tags per resource is 50');
    out.set(type, tags);
  }
  return out;
}

function defaultStatus(code: string): number {
  if (code === 'RequestLimitExceeded' || code === 'Unavailable' || code === 'ServiceUnavailable') return 503;
  if (code === 'InternalError' || code === 'InternalFailure') return 500;
  return 400;
}

// ---------------------------------------------------------------------------------------------
// The fake

class FakeEc2Impl implements FakeEc2 {
  url = '';
  readonly region = REGION;
  readonly calls: FakeCall[] = [];
  readonly myIp: string;
  private readonly pendingMs: number;
  private readonly shuttingDownMs: number;
  private readonly capacity: number;
  private readonly dependencyLingerMs: number;
  private readonly vpcs: Vpc[] = [];
  private readonly subnets: Subnet[] = [];
  private readonly images: Image[] = [];
  private readonly groups: SecurityGroup[] = [];
  private readonly insts: Instance[] = [];
  private readonly clientTokens = new Map<string, { reservationId: string; fingerprint: string }>();
  private readonly faults = new FaultQueue<FakeFault>();
  private readonly publicPool: string[];
  private publicCursor = 0;
  server: http.Server | undefined;

  constructor(options: FakeEc2Options) {
    this.pendingMs = options.pendingMs ?? 200;
    this.shuttingDownMs = options.shuttingDownMs ?? 200;
    this.capacity = options.capacity ?? Infinity;
    this.dependencyLingerMs = options.dependencyLingerMs ?? 0;
    this.myIp = options.myIp ?? '203.0.113.7';
    // Public addresses come from the documentation ranges, never the tester's own "my IP".
    this.publicPool = ['198.51.100', '203.0.113']
      .flatMap((net) => Array.from({ length: 254 }, (_, i) => `${net}.${i + 1}`))
      .filter((ip) => ip !== this.myIp);
    this.seed(options.noDefaultVpc === true);
  }

  private seed(noDefaultVpc: boolean): void {
    if (!noDefaultVpc) {
      this.vpcs.push({ id: SEED.defaultVpcId, cidr: '172.31.0.0/16', isDefault: true, tags: {} });
      const azs = [
        ['us-east-1a', 'use1-az1', '172.31.0.0/20'],
        ['us-east-1b', 'use1-az2', '172.31.16.0/20'],
        ['us-east-1c', 'use1-az4', '172.31.32.0/20'],
      ] as const;
      for (const [az, azId, cidr] of azs) {
        this.subnets.push({
          id: SEED.defaultSubnetIds[az],
          vpcId: SEED.defaultVpcId,
          cidr,
          az,
          azId,
          defaultForAz: true,
          mapPublicIpOnLaunch: true,
          tags: {},
        });
      }
      this.groups.push(this.defaultGroup('sg-0def0000000000001', SEED.defaultVpcId));
    }
    this.vpcs.push({ id: SEED.customVpcId, cidr: '10.1.0.0/16', isDefault: false, tags: { Name: 'custom' } });
    this.subnets.push({
      id: SEED.customSubnetId,
      vpcId: SEED.customVpcId,
      cidr: '10.1.1.0/24',
      az: 'us-east-1a',
      azId: 'use1-az1',
      defaultForAz: false,
      mapPublicIpOnLaunch: false,
      tags: { Name: 'custom-private-a' },
    });
    this.groups.push(this.defaultGroup('sg-0cafe000000000001', SEED.customVpcId));
    this.vpcs.push({
      id: SEED.loopbackVpcId,
      cidr: '127.77.0.0/16',
      isDefault: false,
      tags: { Name: 'loopback' },
    });
    this.subnets.push({
      id: SEED.loopbackSubnetId,
      vpcId: SEED.loopbackVpcId,
      cidr: '127.77.0.0/24',
      az: 'us-east-1a',
      azId: 'use1-az1',
      defaultForAz: false,
      mapPublicIpOnLaunch: false,
      tags: { Name: 'loopback-private' },
    });
    this.groups.push(this.defaultGroup('sg-07f0000000000001', SEED.loopbackVpcId));

    const canonical = SEED.canonicalOwnerId;
    const ubuntu = (release: string, arch: 'amd64' | 'arm64', date: string) =>
      `ubuntu/images/hvm-ssd-gp3/ubuntu-${release}-${arch}-server-${date}`;
    const image = (
      id: string,
      name: string,
      day: string,
      architecture: Image['architecture'],
      ownerId: string = canonical,
    ): Image => ({
      id,
      name,
      creationDate: `${day}T06:00:00.000Z`,
      architecture,
      ownerId,
      state: 'available',
      rootDeviceName: '/dev/sda1',
    });
    // Oldest first: a provider that takes Images[0] instead of sorting by CreationDate gets an old AMI.
    this.images.push(
      image(SEED.images.nobleAmd64Old, ubuntu('noble-24.04', 'amd64', '20250101'), '2025-01-01', 'x86_64'),
      image(SEED.images.nobleArm64Old, ubuntu('noble-24.04', 'arm64', '20250101'), '2025-01-01', 'arm64'),
      image(SEED.images.jammyAmd64, ubuntu('jammy-22.04', 'amd64', '20251115'), '2025-11-15', 'x86_64'),
      image(SEED.images.nobleAmd64New, ubuntu('noble-24.04', 'amd64', '20251101'), '2025-11-01', 'x86_64'),
      image(SEED.images.nobleArm64New, ubuntu('noble-24.04', 'arm64', '20251101'), '2025-11-01', 'arm64'),
      image(
        SEED.images.impostorNobleAmd64,
        ubuntu('noble-24.04', 'amd64', '20251201'),
        '2025-12-01',
        'x86_64',
        '111122223333',
      ),
    );
  }

  private defaultGroup(id: string, vpcId: string): SecurityGroup {
    return {
      id,
      name: 'default',
      description: 'default VPC security group',
      vpcId,
      tags: {},
      ingress: [{ ruleId: hexId('sgr'), protocol: '-1', sourceGroupId: id }],
      isDefaultGroup: true,
    };
  }

  // --- Introspection API ---------------------------------------------------------------------

  mutatingCalls(): FakeCall[] {
    return this.calls.filter((c) => !c.action.startsWith('Describe') && !c.action.startsWith('Get'));
  }

  fail(action: string, fault: FakeFault, options: FailOptions = {}): void {
    this.faults.add(action, fault, options);
  }

  clearFaults(action?: string): void {
    this.faults.clear(action);
  }

  instances(): FakeInstance[] {
    this.advanceAll();
    return this.insts.map((i) => this.snapshot(i));
  }

  securityGroups(): FakeSecurityGroup[] {
    return this.groups.map((g) => ({
      id: g.id,
      name: g.name,
      description: g.description,
      vpcId: g.vpcId,
      tags: { ...g.tags },
      ingress: g.ingress.map((r) => ({ ...r })),
    }));
  }

  leftovers(cluster: string): { instances: FakeInstance[]; securityGroups: FakeSecurityGroup[] } {
    return {
      instances: this.instances().filter(
        (i) => i.state !== 'terminated' && i.tags['dcp:cluster'] === cluster,
      ),
      securityGroups: this.securityGroups().filter((g) => g.tags['dcp:cluster'] === cluster),
    };
  }

  setInstanceState(id: string, state: InstanceStateName, reason?: { code: string; message: string }): void {
    const inst = this.mustFind(id);
    this.advance(inst);
    this.moveTo(inst, state);
    if (reason) inst.stateReason = { ...reason };
  }

  shutdownFromInside(id: string): void {
    const inst = this.mustFind(id);
    this.advance(inst);
    this.moveTo(inst, inst.shutdownBehavior === 'terminate' ? 'shutting-down' : 'stopping');
    inst.stateReason = {
      code: 'Client.InstanceInitiatedShutdown',
      message: 'Client.InstanceInitiatedShutdown: Instance initiated shutdown',
    };
  }

  setConsoleOutput(id: string, text: string): void {
    this.mustFind(id).consoleOutput = text;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    // The SDK keeps connections alive; without this close() would wait for them to idle out.
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private mustFind(id: string): Instance {
    const inst = this.insts.find((i) => i.id === id);
    if (!inst) throw new Error(`fake EC2: no instance ${id}`);
    return inst;
  }

  private snapshot(i: Instance): FakeInstance {
    return {
      id: i.id,
      reservationId: i.reservationId,
      state: i.state,
      stateReason: i.stateReason ? { ...i.stateReason } : undefined,
      privateIp: i.privateIp,
      publicIp: i.publicIp,
      tags: { ...i.tags },
      volumeTags: { ...i.volumeTags },
      networkInterfaceTags: { ...i.networkInterfaceTags },
      userData: i.userData,
      userDataRaw: Buffer.from(i.userDataRaw),
      securityGroupIds: [...i.securityGroupIds],
      subnetId: i.subnetId,
      vpcId: i.vpcId,
      availabilityZone: i.availabilityZone,
      instanceType: i.instanceType,
      imageId: i.imageId,
      metadataOptions: { ...i.metadataOptions },
      shutdownBehavior: i.shutdownBehavior,
      clientToken: i.clientToken,
      launchedAt: i.launchedAt,
    };
  }

  // --- Life cycle ----------------------------------------------------------------------------

  /** Lazy transitions: each read catches the state up with the clock, so tests need no timers. */
  private advance(i: Instance): void {
    const now = Date.now();
    if (i.state === 'pending' && now >= i.stateSince + this.pendingMs) {
      i.stateSince += this.pendingMs;
      i.state = 'running';
      if (i.stateReason?.code === 'pending') i.stateReason = undefined;
    }
    if (i.state === 'shutting-down' && now >= i.stateSince + this.shuttingDownMs) {
      i.stateSince += this.shuttingDownMs;
      i.state = 'terminated';
    }
    if (i.state === 'stopping' && now >= i.stateSince + this.shuttingDownMs) {
      i.stateSince += this.shuttingDownMs;
      i.state = 'stopped';
    }
  }

  private advanceAll(): void {
    for (const i of this.insts) this.advance(i);
  }

  private moveTo(i: Instance, state: InstanceStateName): void {
    i.state = state;
    i.stateSince = Date.now();
    if (state === 'running' || state === 'pending') {
      // A stopped instance gets a new public address when it starts again.
      if (i.associatePublicIp && i.publicIp === undefined) i.publicIp = this.allocatePublicIp();
      i.stateReason = undefined;
    } else {
      i.publicIp = undefined;
    }
  }

  private isLive(i: Instance): boolean {
    return i.state !== 'terminated';
  }

  private allocatePublicIp(): string {
    const inUse = new Set(this.insts.map((i) => i.publicIp));
    // A moving cursor, so a released address is not handed straight back (AWS rarely does).
    for (let k = 0; k < this.publicPool.length; k++) {
      const idx = (this.publicCursor + k) % this.publicPool.length;
      const ip = this.publicPool[idx] as string;
      if (!inUse.has(ip)) {
        this.publicCursor = idx + 1;
        return ip;
      }
    }
    throw new Ec2Error(
      'InsufficientAddressCapacity',
      'There are no public IPv4 addresses left in the fake pool',
    );
  }

  private freePrivateIps(subnet: Subnet): number[] {
    const used = new Set(
      this.insts.filter((i) => this.isLive(i) && i.subnetId === subnet.id).map((i) => ipToInt(i.privateIp)),
    );
    const { first, last } = subnetRange(subnet.cidr);
    const free: number[] = [];
    for (let n = first; n <= last; n++) if (!used.has(n)) free.push(n);
    return free;
  }

  // --- HTTP ----------------------------------------------------------------------------------

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/checkip') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${this.myIp}\n`);
      return;
    }
    if (req.method !== 'POST') {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('fake EC2: POST the Query protocol, or GET /checkip\n');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const action = form.get('Action') ?? '';
    form.delete('Action');
    form.delete('Version');
    const call: FakeCall = { action, params: decodeQuery(form), at: Date.now() };
    this.calls.push(call);
    const requestId = randomUUID();
    // The SDK takes $metadata.requestId from this header, not from the body.
    const headers = { 'x-amzn-requestid': requestId };
    try {
      if (!req.headers.authorization) {
        throw new Ec2Error(
          'AuthFailure',
          'AWS was not able to validate the provided access credentials',
          401,
        );
      }
      const fault = this.takeFault(action);
      if (fault && !fault.afterEffect) throw fault.error;
      const handler = this.handlers[action];
      if (!handler)
        throw new Ec2Error('InvalidAction', `The action ${action} is not valid for this web service.`);
      this.advanceAll();
      const body = responseXml(action, requestId, handler(call.params));
      if (fault) throw fault.error;
      res.writeHead(200, { ...headers, 'content-type': 'text/xml;charset=UTF-8' }).end(body);
    } catch (err) {
      const e =
        err instanceof Ec2Error
          ? err
          : new Ec2Error('InternalError', `fake EC2 bug: ${(err as Error).stack ?? String(err)}`, 500);
      call.error = e.code;
      res
        .writeHead(e.status, { ...headers, 'content-type': 'text/xml;charset=UTF-8' })
        .end(errorXml(e.code, e.message, requestId));
    }
  }

  private takeFault(action: string): { error: Ec2Error; afterEffect: boolean } | undefined {
    const entry = this.faults.take(action);
    if (!entry) return undefined;
    const { code, message, status } = entry.fault;
    return {
      error: new Ec2Error(code, message ?? `${code} (injected by the fake)`, status ?? defaultStatus(code)),
      afterEffect: entry.afterEffect,
    };
  }

  private readonly handlers: Record<string, (p: QueryParams) => Record<string, XmlValue>> = {
    DescribeVpcs: (p) => this.describeVpcs(p),
    DescribeSubnets: (p) => this.describeSubnets(p),
    DescribeImages: (p) => this.describeImages(p),
    CreateSecurityGroup: (p) => this.createSecurityGroup(p),
    AuthorizeSecurityGroupIngress: (p) => this.authorizeIngress(p),
    DescribeSecurityGroups: (p) => this.describeSecurityGroups(p),
    DeleteSecurityGroup: (p) => this.deleteSecurityGroup(p),
    RunInstances: (p) => this.runInstances(p),
    DescribeInstances: (p) => this.describeInstances(p),
    TerminateInstances: (p) => this.terminateInstances(p),
    GetConsoleOutput: (p) => this.getConsoleOutput(p),
  };

  // --- VPCs, subnets, images -----------------------------------------------------------------

  private describeVpcs(p: QueryParams): Record<string, XmlValue> {
    const ids = strList(p, 'VpcId');
    const missing = ids.filter((id) => !this.vpcs.some((v) => v.id === id));
    if (missing.length > 0)
      throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${missing.join(', ')}' does not exist`);
    const chosen = ids.length > 0 ? this.vpcs.filter((v) => ids.includes(v.id)) : this.vpcs;
    const { page, nextToken } = paginate(
      applyFilters(chosen, p, {
        'vpc-id': (v) => v.id,
        isDefault: (v) => String(v.isDefault),
        'is-default': (v) => String(v.isDefault),
        cidr: (v) => v.cidr,
        'cidr-block-association.cidr-block': (v) => v.cidr,
        state: () => 'available',
        'owner-id': () => SEED.accountId,
      }),
      p,
    );
    return {
      vpcSet: page.map((v) => ({
        vpcId: v.id,
        ownerId: SEED.accountId,
        state: 'available',
        cidrBlock: v.cidr,
        cidrBlockAssociationSet: [
          {
            cidrBlock: v.cidr,
            associationId: `vpc-cidr-assoc-${v.id.slice(4)}`,
            cidrBlockState: { state: 'associated' },
          },
        ],
        dhcpOptionsId: 'dopt-0a1b2c3d4e5f60718',
        instanceTenancy: 'default',
        isDefault: v.isDefault,
        tagSet: tagSet(v.tags),
      })),
      nextToken,
    };
  }

  private describeSubnets(p: QueryParams): Record<string, XmlValue> {
    const ids = strList(p, 'SubnetId');
    const missing = ids.filter((id) => !this.subnets.some((s) => s.id === id));
    if (missing.length > 0)
      throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${missing.join(', ')}' does not exist`);
    const chosen = ids.length > 0 ? this.subnets.filter((s) => ids.includes(s.id)) : this.subnets;
    const { page, nextToken } = paginate(
      applyFilters(chosen, p, {
        'subnet-id': (s) => s.id,
        'vpc-id': (s) => s.vpcId,
        'default-for-az': (s) => String(s.defaultForAz),
        defaultForAz: (s) => String(s.defaultForAz),
        'availability-zone': (s) => s.az,
        availabilityZone: (s) => s.az,
        'availability-zone-id': (s) => s.azId,
        'cidr-block': (s) => s.cidr,
        cidrBlock: (s) => s.cidr,
        'map-public-ip-on-launch': (s) => String(s.mapPublicIpOnLaunch),
        state: () => 'available',
        'owner-id': () => SEED.accountId,
      }),
      p,
    );
    return {
      subnetSet: page.map((s) => ({
        subnetId: s.id,
        subnetArn: `arn:aws:ec2:${REGION}:${SEED.accountId}:subnet/${s.id}`,
        state: 'available',
        vpcId: s.vpcId,
        cidrBlock: s.cidr,
        availableIpAddressCount: this.freePrivateIps(s).length,
        availabilityZone: s.az,
        availabilityZoneId: s.azId,
        defaultForAz: s.defaultForAz,
        mapPublicIpOnLaunch: s.mapPublicIpOnLaunch,
        assignIpv6AddressOnCreation: false,
        ownerId: SEED.accountId,
        tagSet: tagSet(s.tags),
      })),
      nextToken,
    };
  }

  private describeImages(p: QueryParams): Record<string, XmlValue> {
    const ids = strList(p, 'ImageId');
    for (const id of ids) checkId(id, 'ami', 'InvalidAMIID.Malformed');
    const missing = ids.filter((id) => !this.images.some((i) => i.id === id));
    if (missing.length > 0)
      throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${missing.join(', ')}]' does not exist`);
    // The query name is Owner.N although the SDK's input member is Owners.
    const owners = strList(p, 'Owner').map((o) => (o === 'self' ? SEED.accountId : o));
    let chosen = ids.length > 0 ? this.images.filter((i) => ids.includes(i.id)) : this.images;
    if (owners.length > 0) chosen = chosen.filter((i) => owners.includes(i.ownerId));
    const { page, nextToken } = paginate(
      applyFilters(
        chosen.map((i) => ({ ...i, tags: {} })),
        p,
        {
          name: (i) => i.name,
          architecture: (i) => i.architecture,
          state: (i) => i.state,
          'image-id': (i) => i.id,
          'owner-id': (i) => i.ownerId,
          'image-type': () => 'machine',
          'is-public': () => 'true',
          'root-device-type': () => 'ebs',
          'virtualization-type': () => 'hvm',
        },
      ),
      p,
    );
    return {
      imagesSet: page.map((i) => ({
        imageId: i.id,
        imageLocation: `amazon/${i.name}`,
        imageState: i.state,
        imageOwnerId: i.ownerId,
        creationDate: i.creationDate,
        isPublic: true,
        architecture: i.architecture,
        imageType: 'machine',
        name: i.name,
        description: `Canonical, Ubuntu, ${i.name.replace(/^.*\//, '')}`,
        rootDeviceType: 'ebs',
        rootDeviceName: i.rootDeviceName,
        blockDeviceMapping: [
          {
            deviceName: i.rootDeviceName,
            ebs: {
              snapshotId: `snap-${i.id.slice(4)}`,
              volumeSize: 8,
              deleteOnTermination: true,
              volumeType: 'gp3',
              encrypted: false,
            },
          },
        ],
        virtualizationType: 'hvm',
        hypervisor: 'xen',
        enaSupport: true,
        sriovNetSupport: 'simple',
        platformDetails: 'Linux/UNIX',
        usageOperation: 'RunInstances',
        bootMode: i.architecture === 'arm64' ? 'uefi' : 'uefi-preferred',
      })),
      nextToken,
    };
  }

  // --- Security groups -----------------------------------------------------------------------

  private findGroup(id: string): SecurityGroup {
    checkId(id, 'sg', 'InvalidGroupId.Malformed');
    const g = this.groups.find((x) => x.id === id);
    if (!g) throw new Ec2Error('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    return g;
  }

  /** GroupId, else GroupName (which EC2 resolves in the default VPC only). */
  private groupFromParams(p: QueryParams): SecurityGroup {
    const id = str(p, 'GroupId');
    if (id !== undefined) return this.findGroup(id);
    const name = str(p, 'GroupName');
    if (name === undefined)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter GroupName or GroupId');
    const defaultVpcId = this.defaultVpc()?.id;
    const g = this.groups.find((x) => x.name === name && x.vpcId === defaultVpcId);
    if (!g)
      throw new Ec2Error(
        'InvalidGroup.NotFound',
        `The security group '${name}' does not exist in default VPC '${defaultVpcId ?? 'none'}'`,
      );
    return g;
  }

  private defaultVpc(): Vpc | undefined {
    return this.vpcs.find((v) => v.isDefault);
  }

  private createSecurityGroup(p: QueryParams): Record<string, XmlValue> {
    const name = required(p, 'GroupName');
    // The SDK's `Description` member goes on the wire as GroupDescription.
    const description = required(p, 'GroupDescription');
    for (const [what, value] of [
      ['GroupName', name],
      ['GroupDescription', description],
    ] as const) {
      if (value.length > 255)
        throw new Ec2Error(
          'InvalidParameterValue',
          `Value for parameter ${what} is longer than 255 characters`,
        );
      // A real trap: an em dash or any non-ASCII character in a description is refused.
      if (!/^[\x20-\x7e]*$/.test(value)) {
        throw new Ec2Error(
          'InvalidParameterValue',
          `Value (${value}) for parameter ${what} is invalid. Character sets beyond ASCII are not supported.`,
        );
      }
      if (!/^[a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]*$/.test(value)) {
        throw new Ec2Error(
          'InvalidParameterValue',
          `Value (${value}) for parameter ${what} is invalid. Allowed characters are a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*`,
        );
      }
    }
    if (name.toLowerCase().startsWith('sg-'))
      throw new Ec2Error('InvalidParameterValue', 'Group names may not be in the format sg-*.');
    if (name === 'default')
      throw new Ec2Error('InvalidParameterValue', 'Cannot use reserved security group name: default');
    const vpcId = str(p, 'VpcId') ?? this.defaultVpc()?.id;
    if (vpcId === undefined) throw new Ec2Error('VPCIdNotSpecified', 'No default VPC for this user');
    if (!this.vpcs.some((v) => v.id === vpcId))
      throw new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${vpcId}' does not exist`);
    if (this.groups.some((g) => g.name === name && g.vpcId === vpcId)) {
      throw new Ec2Error(
        'InvalidGroup.Duplicate',
        `The security group '${name}' already exists for VPC '${vpcId}'`,
      );
    }
    const tags = parseTagSpecs(p, ['security-group']).get('security-group') ?? {};
    const group: SecurityGroup = {
      id: hexId('sg'),
      name,
      description,
      vpcId,
      tags,
      ingress: [],
      isDefaultGroup: false,
    };
    this.groups.push(group);
    return {
      groupId: group.id,
      securityGroupArn: `arn:aws:ec2:${REGION}:${SEED.accountId}:security-group/${group.id}`,
      tagSet: Object.keys(tags).length > 0 ? tagSet(tags) : undefined,
    };
  }

  private authorizeIngress(p: QueryParams): Record<string, XmlValue> {
    const group = this.groupFromParams(p);
    // The old flat form (IpProtocol/FromPort/ToPort/CidrIp at the top level) is one permission.
    const permissions = objList(p, 'IpPermissions');
    if (str(p, 'IpProtocol') !== undefined) {
      const cidr = str(p, 'CidrIp');
      permissions.push({ ...p, IpRanges: cidr === undefined ? [] : [{ CidrIp: cidr }] });
    }
    if (permissions.length === 0)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter ipPermissions');
    const added: FakeIngressRule[] = [];
    const keyOf = (r: FakeIngressRule) =>
      [r.protocol, r.fromPort, r.toPort, r.cidrIp ?? r.cidrIpv6 ?? r.sourceGroupId].join('|');
    const existing = new Set(group.ingress.map(keyOf));
    for (const perm of permissions) {
      const { protocol, fromPort, toPort } = parsePortRange(perm);
      const base = { protocol, fromPort, toPort };
      const sources: Array<Omit<FakeIngressRule, 'ruleId' | 'protocol' | 'fromPort' | 'toPort'>> = [];
      for (const r of objList(perm, 'IpRanges')) {
        const cidr = str(r, 'CidrIp') ?? '';
        if (!ipaddr.IPv4.isValidCIDR(cidr))
          throw new Ec2Error('InvalidParameterValue', `CIDR block ${cidr} is malformed`);
        sources.push({ cidrIp: cidr, description: str(r, 'Description') });
      }
      for (const r of objList(perm, 'Ipv6Ranges')) {
        const cidr = str(r, 'CidrIpv6') ?? '';
        if (!ipaddr.IPv6.isValidCIDR(cidr))
          throw new Ec2Error('InvalidParameterValue', `CIDR block ${cidr} is malformed`);
        sources.push({ cidrIpv6: cidr, description: str(r, 'Description') });
      }
      // UserIdGroupPairs go on the wire as IpPermissions.N.Groups.M.
      for (const r of objList(perm, 'Groups')) {
        const source = this.findGroup(str(r, 'GroupId') ?? '');
        sources.push({ sourceGroupId: source.id, description: str(r, 'Description') });
      }
      if (objList(perm, 'PrefixListIds').length > 0)
        throw new Ec2Error('Unsupported', 'fake EC2: prefix lists are not supported');
      for (const source of sources) {
        const rule: FakeIngressRule = { ruleId: hexId('sgr'), ...base, ...source };
        const key = keyOf(rule);
        if (existing.has(key)) {
          const peer = rule.cidrIp ?? rule.cidrIpv6 ?? rule.sourceGroupId;
          const ports =
            protocol === '-1'
              ? 'ALL'
              : `${protocol.toUpperCase()}, from port: ${fromPort}, to port: ${toPort}`;
          throw new Ec2Error(
            'InvalidPermission.Duplicate',
            `the specified rule "peer: ${peer}, ${ports}, ALLOW" already exists`,
          );
        }
        existing.add(key);
        added.push(rule);
      }
    }
    group.ingress.push(...added); // all or nothing, as in EC2
    return {
      return: true,
      securityGroupRuleSet: added.map((r) => ({
        securityGroupRuleId: r.ruleId,
        groupId: group.id,
        groupOwnerId: SEED.accountId,
        isEgress: false,
        ipProtocol: r.protocol,
        fromPort: r.fromPort ?? -1,
        toPort: r.toPort ?? -1,
        cidrIpv4: r.cidrIp,
        cidrIpv6: r.cidrIpv6,
        referencedGroupInfo: r.sourceGroupId
          ? { groupId: r.sourceGroupId, userId: SEED.accountId }
          : undefined,
        description: r.description,
      })),
    };
  }

  private describeSecurityGroups(p: QueryParams): Record<string, XmlValue> {
    const ids = strList(p, 'GroupId');
    let chosen: SecurityGroup[] = this.groups;
    if (ids.length > 0) {
      for (const id of ids) this.findGroup(id);
      chosen = chosen.filter((g) => ids.includes(g.id));
    }
    const names = strList(p, 'GroupName');
    if (names.length > 0) chosen = names.map((name) => this.groupFromParams({ GroupName: name }));
    const { page, nextToken } = paginate(
      applyFilters(chosen, p, {
        'group-id': (g) => g.id,
        'group-name': (g) => g.name,
        'vpc-id': (g) => g.vpcId,
        description: (g) => g.description,
        'owner-id': () => SEED.accountId,
        'ip-permission.cidr': (g) => g.ingress.flatMap((r) => (r.cidrIp ? [r.cidrIp] : [])),
        'ip-permission.group-id': (g) => g.ingress.flatMap((r) => (r.sourceGroupId ? [r.sourceGroupId] : [])),
      }),
      p,
    );
    return {
      securityGroupInfo: page.map((g) => ({
        ownerId: SEED.accountId,
        groupId: g.id,
        groupName: g.name,
        groupDescription: g.description,
        vpcId: g.vpcId,
        securityGroupArn: `arn:aws:ec2:${REGION}:${SEED.accountId}:security-group/${g.id}`,
        ipPermissions: permissionsXml(g.ingress),
        ipPermissionsEgress: [
          {
            ipProtocol: '-1',
            groups: [],
            ipRanges: [{ cidrIp: '0.0.0.0/0' }],
            ipv6Ranges: [],
            prefixListIds: [],
          },
        ],
        tagSet: tagSet(g.tags),
      })),
      nextToken,
    };
  }

  private deleteSecurityGroup(p: QueryParams): Record<string, XmlValue> {
    const group = this.groupFromParams(p);
    if (group.isDefaultGroup) {
      throw new Ec2Error(
        'CannotDelete',
        `the specified group: "${group.id}" name: "default" cannot be deleted by a user`,
      );
    }
    const holds = (i: Instance) => this.isLive(i) || Date.now() < i.stateSince + this.dependencyLingerMs;
    const usedByInstance = this.insts.some((i) => holds(i) && i.securityGroupIds.includes(group.id));
    const usedByRule = this.groups.some(
      (g) => g.id !== group.id && g.ingress.some((r) => r.sourceGroupId === group.id),
    );
    if (usedByInstance || usedByRule)
      throw new Ec2Error('DependencyViolation', `resource ${group.id} has a dependent object`);
    this.groups.splice(this.groups.indexOf(group), 1);
    return { return: true, groupId: group.id };
  }

  // --- Instances -----------------------------------------------------------------------------

  private runInstances(p: QueryParams): Record<string, XmlValue> {
    const minCount = int(p, 'MinCount');
    const maxCount = int(p, 'MaxCount');
    if (minCount === undefined)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter MinCount');
    if (maxCount === undefined)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter MaxCount');
    if (minCount < 1)
      throw new Ec2Error(
        'InvalidParameterValue',
        `Invalid value '${minCount}' for minCount. Must be greater than 0.`,
      );
    if (minCount > maxCount) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `Invalid value '${minCount}' for minCount. Must be less than or equal to maxCount (${maxCount}).`,
      );
    }

    // The SDK fills ClientToken with a fresh UUID when the caller gives none; a repeat returns the
    // first reservation as it is now, and creates nothing.
    const clientToken = str(p, 'ClientToken') ?? '';
    const fingerprint = JSON.stringify({ ...p, ClientToken: undefined });
    const previous = clientToken === '' ? undefined : this.clientTokens.get(clientToken);
    if (previous) {
      if (previous.fingerprint !== fingerprint) {
        throw new Ec2Error(
          'IdempotentParameterMismatch',
          'Arguments on this idempotent request are inconsistent with arguments used in previous request(s).',
        );
      }
      return this.reservationXml(
        previous.reservationId,
        this.insts.filter((i) => i.reservationId === previous.reservationId),
        true,
      );
    }

    const imageId = required(p, 'ImageId');
    checkId(imageId, 'ami', 'InvalidAMIID.Malformed');
    const image = this.images.find((i) => i.id === imageId);
    if (!image) throw new Ec2Error('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
    const instanceType = str(p, 'InstanceType') ?? 'm1.small'; // EC2's own default, rarely what anyone wants
    if (!/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/.test(instanceType)) {
      throw new Ec2Error('InvalidParameterValue', `Invalid value '${instanceType}' for InstanceType.`);
    }
    const typeArch = instanceTypeArch(instanceType);
    if (typeArch !== image.architecture) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `The architecture '${typeArch}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. ` +
          'Specify an instance type and an AMI that have matching architectures, and try again.',
      );
    }
    const keyName = str(p, 'KeyName');
    if (keyName !== undefined)
      throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${keyName}' does not exist`);

    // Network: either one NetworkInterface (DeviceIndex 0) or instance-level SubnetId/SecurityGroupId.
    const nics = objList(p, 'NetworkInterface');
    if (nics.length > 1)
      throw new Ec2Error('Unsupported', 'fake EC2: only one network interface is supported');
    const nic = nics[0];
    if (nic) {
      if (str(p, 'SubnetId') !== undefined) {
        throw new Ec2Error(
          'InvalidParameterCombination',
          'Network interfaces and an instance-level subnet ID may not be specified on the same request',
        );
      }
      if (strList(p, 'SecurityGroupId').length > 0 || strList(p, 'SecurityGroup').length > 0) {
        throw new Ec2Error(
          'InvalidParameterCombination',
          'Network interfaces and an instance-level security groups may not be specified on the same request',
        );
      }
      if ((str(nic, 'DeviceIndex') ?? '0') !== '0') {
        throw new Ec2Error(
          'InvalidParameterValue',
          'Each network interface requires a device index; the primary one is DeviceIndex 0',
        );
      }
      if (str(nic, 'NetworkInterfaceId') !== undefined)
        throw new Ec2Error(
          'Unsupported',
          'fake EC2: attaching an existing network interface is not supported',
        );
    }
    const subnet = this.launchSubnet(str(nic ?? p, 'SubnetId'), str(obj(p, 'Placement'), 'AvailabilityZone'));
    // NetworkInterface.N.SecurityGroupId.M is the wire name of the SDK's NetworkInterfaces[].Groups.
    const groupIds = strList(nic ?? p, 'SecurityGroupId');
    const groups = groupIds.map((id) => this.findGroup(id));
    for (const name of strList(p, 'SecurityGroup')) {
      const g = this.groups.find((x) => x.name === name && x.vpcId === subnet.vpcId);
      if (!g)
        throw new Ec2Error(
          'InvalidGroup.NotFound',
          `The security group '${name}' does not exist in VPC '${subnet.vpcId}'`,
        );
      groups.push(g);
    }
    for (const g of groups) {
      if (g.vpcId !== subnet.vpcId) {
        throw new Ec2Error(
          'InvalidParameter',
          `Security group ${g.id} and subnet ${subnet.id} belong to different networks.`,
        );
      }
    }
    if (groups.length === 0) {
      const fallback = this.groups.find((g) => g.isDefaultGroup && g.vpcId === subnet.vpcId);
      if (fallback) groups.push(fallback);
    }
    // Unset means "whatever the subnet does", both with and without a NetworkInterface.
    const associatePublicIp =
      (nic ? bool(nic, 'AssociatePublicIpAddress') : undefined) ?? subnet.mapPublicIpOnLaunch;
    const deleteOnTermination = (nic ? bool(nic, 'DeleteOnTermination') : undefined) ?? true;

    const userDataRaw = decodeUserData(str(p, 'UserData'));
    const shutdownBehavior = str(p, 'InstanceInitiatedShutdownBehavior') ?? 'stop';
    if (shutdownBehavior !== 'stop' && shutdownBehavior !== 'terminate') {
      throw new Ec2Error(
        'InvalidParameterValue',
        `Invalid value '${shutdownBehavior}' for InstanceInitiatedShutdownBehavior.`,
      );
    }
    const metadataOptions = parseMetadataOptions(obj(p, 'MetadataOptions'));
    const tagSpecs = parseTagSpecs(p, [
      'instance',
      'volume',
      'network-interface',
      'spot-instances-request',
      'elastic-gpu',
    ]);

    const live = this.insts.filter((i) => this.isLive(i)).length;
    const room = this.capacity - live;
    if (room < minCount) {
      throw new Ec2Error(
        'InsufficientInstanceCapacity',
        `We currently do not have sufficient ${instanceType} capacity in the Availability Zone you requested (${subnet.az}). ` +
          'Our system will be working on provisioning additional capacity. You can currently get ' +
          `${instanceType} capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.`,
      );
    }
    const freeIps = this.freePrivateIps(subnet);
    if (freeIps.length < minCount) {
      throw new Ec2Error(
        'InsufficientFreeAddressesInSubnet',
        `There are not enough free addresses in subnet '${subnet.id}' to satisfy the requested number of instances.`,
      );
    }
    const count = Math.min(maxCount, room, freeIps.length);

    const reservationId = hexId('r');
    const now = Date.now();
    const created: Instance[] = [];
    for (let n = 0; n < count; n++) {
      const inst: Instance = {
        id: hexId('i'),
        reservationId,
        state: 'pending',
        stateSince: now,
        stateReason: { code: 'pending', message: 'pending' },
        transitionReason: '',
        privateIp: intToIp(freeIps[n] as number),
        publicIp: undefined,
        associatePublicIp,
        tags: { ...(tagSpecs.get('instance') ?? {}) },
        volumeTags: { ...(tagSpecs.get('volume') ?? {}) },
        networkInterfaceTags: { ...(tagSpecs.get('network-interface') ?? {}) },
        userDataRaw,
        userData: userDataText(userDataRaw),
        securityGroupIds: groups.map((g) => g.id),
        subnetId: subnet.id,
        vpcId: subnet.vpcId,
        availabilityZone: subnet.az,
        instanceType,
        imageId,
        architecture: image.architecture,
        rootDeviceName: image.rootDeviceName,
        metadataOptions,
        shutdownBehavior,
        clientToken,
        launchedAt: now,
        amiLaunchIndex: n,
        networkInterfaceId: hexId('eni'),
        attachmentId: hexId('eni-attach'),
        macAddress: `0e:${randomBytes(5).toString('hex').match(/../g)?.join(':') ?? '00:00:00:00:00'}`,
        deleteOnTermination,
        consoleOutput: '',
      };
      if (associatePublicIp) inst.publicIp = this.allocatePublicIp();
      created.push(inst);
    }
    this.insts.push(...created);
    if (clientToken !== '') this.clientTokens.set(clientToken, { reservationId, fingerprint });
    return this.reservationXml(reservationId, created, true);
  }

  private launchSubnet(subnetId: string | undefined, az: string | undefined): Subnet {
    if (subnetId !== undefined) {
      const subnet = this.subnets.find((s) => s.id === subnetId);
      if (!subnet)
        throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);
      return subnet;
    }
    const vpc = this.defaultVpc();
    if (!vpc) throw new Ec2Error('VPCIdNotSpecified', 'No default VPC for this user');
    const defaults = this.subnets.filter((s) => s.vpcId === vpc.id && s.defaultForAz);
    const subnet = az === undefined ? defaults[0] : defaults.find((s) => s.az === az);
    if (!subnet) throw new Ec2Error('InvalidParameterValue', `Invalid availability zone: [${az ?? ''}]`);
    return subnet;
  }

  private describeInstances(p: QueryParams): Record<string, XmlValue> {
    const ids = strList(p, 'InstanceId');
    if (ids.length > 0 && str(p, 'MaxResults') !== undefined) {
      throw new Ec2Error(
        'InvalidParameterCombination',
        'The parameter instancesSet cannot be used with the parameter maxResults',
      );
    }
    const chosen = ids.length > 0 ? this.instancesByIds(ids) : this.insts;
    const visible = (i: Instance) => i.state !== 'terminated';
    const { page, nextToken } = paginate(
      applyFilters(chosen, p, {
        'instance-id': (i) => i.id,
        'instance-state-name': (i) => i.state,
        'instance-state-code': (i) => String(STATE_CODES[i.state]),
        'instance-type': (i) => i.instanceType,
        'image-id': (i) => i.imageId,
        'reservation-id': (i) => i.reservationId,
        'client-token': (i) => i.clientToken,
        'availability-zone': (i) => i.availabilityZone,
        // What EC2 shows of a terminated instance's network is nothing, so its filters miss it too.
        'vpc-id': (i) => (visible(i) ? i.vpcId : undefined),
        'subnet-id': (i) => (visible(i) ? i.subnetId : undefined),
        'private-ip-address': (i) => (visible(i) ? i.privateIp : undefined),
        'ip-address': (i) => i.publicIp,
        'instance.group-id': (i) => (visible(i) ? i.securityGroupIds : undefined),
        'network-interface.addresses.association.public-ip': (i) => i.publicIp,
      }),
      p,
    );
    const byReservation = new Map<string, Instance[]>();
    for (const i of page)
      byReservation.set(i.reservationId, [...(byReservation.get(i.reservationId) ?? []), i]);
    return {
      reservationSet: [...byReservation].map(([id, insts]) => this.reservationXml(id, insts, false)),
      nextToken,
    };
  }

  private instancesByIds(ids: string[]): Instance[] {
    for (const id of ids) checkId(id, 'i', 'InvalidInstanceID.Malformed');
    const missing = ids.filter((id) => !this.insts.some((i) => i.id === id));
    if (missing.length === 1)
      throw new Ec2Error('InvalidInstanceID.NotFound', `The instance ID '${missing[0]}' does not exist`);
    if (missing.length > 1)
      throw new Ec2Error(
        'InvalidInstanceID.NotFound',
        `The instance IDs '${missing.join(', ')}' do not exist`,
      );
    return this.insts.filter((i) => ids.includes(i.id));
  }

  private terminateInstances(p: QueryParams): Record<string, XmlValue> {
    const ids = strList(p, 'InstanceId');
    if (ids.length === 0)
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceId');
    const changes = this.instancesByIds(ids).map((i) => {
      const previousState = { code: STATE_CODES[i.state], name: i.state };
      if (i.state !== 'terminated' && i.state !== 'shutting-down') {
        this.moveTo(i, 'shutting-down');
        i.stateReason = {
          code: 'Client.UserInitiatedShutdown',
          message: 'Client.UserInitiatedShutdown: User initiated shutdown',
        };
        i.transitionReason = `User initiated (${new Date()
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d+Z$/, ' GMT')})`;
      }
      return { instanceId: i.id, currentState: { code: STATE_CODES[i.state], name: i.state }, previousState };
    });
    return { instancesSet: changes };
  }

  private getConsoleOutput(p: QueryParams): Record<string, XmlValue> {
    const [inst] = this.instancesByIds([required(p, 'InstanceId')]);
    if (!inst) throw new Ec2Error('InvalidInstanceID.NotFound', 'The instance ID does not exist');
    return {
      instanceId: inst.id,
      timestamp: new Date(),
      // EC2 leaves `output` out until the instance has written something, so the SDK gives undefined.
      output: inst.consoleOutput === '' ? undefined : Buffer.from(inst.consoleOutput).toString('base64'),
    };
  }

  /**
   * One reservation. RunInstances answers before a public address is attached (as EC2 does), so a
   * provider must DescribeInstances to learn it.
   */
  private reservationXml(
    reservationId: string,
    insts: Instance[],
    fromRun: boolean,
  ): Record<string, XmlValue> {
    return {
      reservationId,
      ownerId: SEED.accountId,
      groupSet: [],
      instancesSet: insts.map((i) => this.instanceXml(i, fromRun)),
    };
  }

  private instanceXml(i: Instance, fromRun: boolean): Record<string, XmlValue> {
    const gone = i.state === 'terminated';
    const publicIp = fromRun ? undefined : i.publicIp;
    const privateDns = `ip-${i.privateIp.replaceAll('.', '-')}.ec2.internal`;
    const publicDns = publicIp ? `ec2-${publicIp.replaceAll('.', '-')}.compute-1.amazonaws.com` : '';
    const groupSet = this.groupSet(i.securityGroupIds);
    const association = publicIp ? { publicIp, publicDnsName: publicDns, ipOwnerId: 'amazon' } : undefined;
    return {
      instanceId: i.id,
      imageId: i.imageId,
      instanceState: { code: STATE_CODES[i.state], name: i.state },
      privateDnsName: gone ? '' : privateDns,
      dnsName: publicDns,
      reason: i.transitionReason,
      amiLaunchIndex: i.amiLaunchIndex,
      productCodes: [],
      instanceType: i.instanceType,
      launchTime: new Date(i.launchedAt),
      placement: { availabilityZone: i.availabilityZone, groupName: '', tenancy: 'default' },
      monitoring: { state: 'disabled' },
      subnetId: gone ? undefined : i.subnetId,
      vpcId: gone ? undefined : i.vpcId,
      privateIpAddress: gone ? undefined : i.privateIp,
      ipAddress: publicIp,
      sourceDestCheck: true,
      groupSet: gone ? [] : groupSet,
      stateReason: i.stateReason,
      architecture: i.architecture,
      rootDeviceType: 'ebs',
      rootDeviceName: i.rootDeviceName,
      blockDeviceMapping: [],
      virtualizationType: 'hvm',
      clientToken: i.clientToken,
      tagSet: tagSet(i.tags),
      hypervisor: 'xen',
      networkInterfaceSet: gone
        ? []
        : [
            {
              networkInterfaceId: i.networkInterfaceId,
              subnetId: i.subnetId,
              vpcId: i.vpcId,
              description: '',
              ownerId: SEED.accountId,
              status: 'in-use',
              macAddress: i.macAddress,
              privateIpAddress: i.privateIp,
              privateDnsName: privateDns,
              sourceDestCheck: true,
              groupSet,
              attachment: {
                attachmentId: i.attachmentId,
                deviceIndex: 0,
                status: 'attached',
                attachTime: new Date(i.launchedAt),
                deleteOnTermination: i.deleteOnTermination,
                networkCardIndex: 0,
              },
              association,
              privateIpAddressesSet: [
                { privateIpAddress: i.privateIp, privateDnsName: privateDns, primary: true, association },
              ],
              ipv6AddressesSet: [],
              interfaceType: 'interface',
            },
          ],
      ebsOptimized: false,
      enaSupport: true,
      metadataOptions: {
        state: i.state === 'pending' ? 'pending' : 'applied',
        httpTokens: i.metadataOptions.httpTokens,
        httpPutResponseHopLimit: i.metadataOptions.httpPutResponseHopLimit,
        httpEndpoint: i.metadataOptions.httpEndpoint,
        httpProtocolIpv6: 'disabled',
        instanceMetadataTags: 'disabled',
      },
      platformDetails: 'Linux/UNIX',
      usageOperation: 'RunInstances',
      privateDnsNameOptions: {
        hostnameType: 'ip-name',
        enableResourceNameDnsARecord: false,
        enableResourceNameDnsAAAARecord: false,
      },
    };
  }

  private groupSet(ids: string[]): XmlValue[] {
    return ids.map((id) => ({ groupId: id, groupName: this.groups.find((g) => g.id === id)?.name }));
  }
}

function parsePortRange(perm: QueryParams): { protocol: string; fromPort?: number; toPort?: number } {
  const raw = (str(perm, 'IpProtocol') ?? '').toLowerCase();
  const protocol =
    ({ '6': 'tcp', '17': 'udp', '1': 'icmp', '58': 'icmpv6' } as Record<string, string>)[raw] ?? raw;
  if (!['tcp', 'udp', 'icmp', 'icmpv6', '-1'].includes(protocol)) {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${raw}' for IP protocol. Unknown protocol.`);
  }
  if (protocol === '-1') return { protocol };
  const fromPort = int(perm, 'FromPort');
  const toPort = int(perm, 'ToPort');
  if (fromPort === undefined || toPort === undefined) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value 'null' for portRange. Must specify both from and to ports with TCP/UDP.`,
    );
  }
  if (protocol === 'tcp' || protocol === 'udp') {
    if (fromPort < 0 || toPort > 65535 || fromPort > toPort) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `Invalid value '${fromPort}-${toPort}' for portRange. Must be within 0-65535 and from <= to.`,
      );
    }
  }
  return { protocol, fromPort, toPort };
}

/** Atomic rules back into EC2's grouped IpPermission form: one entry per protocol and port range. */
function permissionsXml(rules: FakeIngressRule[]): XmlValue[] {
  const byRange = new Map<
    string,
    {
      ipProtocol: string;
      fromPort?: number;
      toPort?: number;
      groups: XmlValue[];
      ipRanges: XmlValue[];
      ipv6Ranges: XmlValue[];
      prefixListIds: XmlValue[];
    }
  >();
  for (const r of rules) {
    const key = `${r.protocol}|${r.fromPort}|${r.toPort}`;
    let perm = byRange.get(key);
    if (!perm) {
      perm = {
        ipProtocol: r.protocol,
        fromPort: r.fromPort,
        toPort: r.toPort,
        groups: [],
        ipRanges: [],
        ipv6Ranges: [],
        prefixListIds: [],
      };
      byRange.set(key, perm);
    }
    if (r.cidrIp) perm.ipRanges.push({ cidrIp: r.cidrIp, description: r.description });
    if (r.cidrIpv6) perm.ipv6Ranges.push({ cidrIpv6: r.cidrIpv6, description: r.description });
    if (r.sourceGroupId)
      perm.groups.push({ groupId: r.sourceGroupId, userId: SEED.accountId, description: r.description });
  }
  return [...byRange.values()];
}

function decodeUserData(base64: string | undefined): Buffer {
  if (base64 === undefined) return Buffer.alloc(0);
  const compact = base64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw new Ec2Error('InvalidParameterValue', 'Invalid BASE64 encoding of user data');
  }
  const raw = Buffer.from(compact, 'base64');
  if (raw.length > USER_DATA_LIMIT)
    throw new Ec2Error('InvalidParameterValue', `User data is limited to ${USER_DATA_LIMIT} bytes`);
  return raw;
}

function userDataText(raw: Buffer): string {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw).toString('utf8');
    } catch {
      return raw.toString('utf8');
    }
  }
  return raw.toString('utf8');
}

function parseMetadataOptions(m: QueryParams | undefined): FakeInstance['metadataOptions'] {
  const httpTokens = str(m, 'HttpTokens') ?? 'optional';
  const httpEndpoint = str(m, 'HttpEndpoint') ?? 'enabled';
  const hopLimit = int(m, 'HttpPutResponseHopLimit') ?? 1;
  if (httpTokens !== 'optional' && httpTokens !== 'required') {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${httpTokens}' for HttpTokens.`);
  }
  if (httpEndpoint !== 'enabled' && httpEndpoint !== 'disabled') {
    throw new Ec2Error('InvalidParameterValue', `Invalid value '${httpEndpoint}' for HttpEndpoint.`);
  }
  if (hopLimit < 1 || hopLimit > 64) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Invalid value '${hopLimit}' for HttpPutResponseHopLimit. Must be between 1 and 64.`,
    );
  }
  return { httpTokens, httpPutResponseHopLimit: hopLimit, httpEndpoint };
}

export async function startFakeEc2(options: FakeEc2Options = {}): Promise<FakeEc2> {
  const fake = new FakeEc2Impl(options);
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
