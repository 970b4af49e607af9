/**
 * What every provider (local, aws, gcp, azure, digitalocean) implements. The engine in
 * src/cluster drives it: plan, create step by step (each resource journaled before the next),
 * check health while waiting, destroy from the journal, and report status.
 */
import type { ClusterRecord, Resource } from '../cluster/state.js';
import type { IngressRule } from '../config/ingress.js';
import type { ProviderName } from '../config/schema.js';
import type { Runtime } from './boot/index.js';
import type { FirewallView } from '../cluster/doctor.js';
import type { TlsParams } from '../config/tls-params.js';

/** Files per role for a TLS cluster; a null key file means the key is in the certificate file. */
export interface TlsFiles {
  caFile: string;
  cert: { scheduler: string; worker: string; client: string };
  key: { scheduler: string | null; worker: string | null; client: string | null };
}

/** A TLS cluster's files, and the versions and ciphers every member and client keeps to. */
export interface ClusterTls extends TlsFiles {
  params: TlsParams;
}

export interface ClusterSpec {
  name: string;
  provider: ProviderName;
  workers: number;
  threads?: number;
  memoryLimit?: string;
  networking: 'public' | 'private';
  /** Who may reach the scheduler (clouds); `me` is resolved at creation. */
  ingress: IngressRule[];
  /** Local: the interpreter given by --python; after `prepare`, the one found. */
  python?: string;
  /** The cloud's own settings from flags and settings (`region`, `vpc`, `instance_type`, ...). */
  cloud: Record<string, string>;
  /** Cloud VMs: Dask in a container image, or already on the VM image. */
  runtime: Runtime;
  /** The container image; after `prepare`, the one chosen. */
  image?: string;
  /** Cloud VMs: the scheduler exits (and its VM powers off) after this long without work. */
  idleTimeoutSeconds: number;
  /** From `prepare`: what the user should know of the choices it made. */
  warnings?: string[];
}

export interface ProgressEvent {
  step: string;
  status: 'start' | 'done' | 'info';
  detail?: string;
}

export interface CreateContext {
  spec: ClusterSpec;
  dir: string;
  logsDir: string;
  tls: ClusterTls | null;
  record(resource: Resource): Promise<void>;
  progress(event: ProgressEvent): void;
  /** What the user should know of what the provider found while making the cluster. */
  warn(message: string): void;
  signal: AbortSignal;
}

export interface Endpoints {
  /** The address a client on this machine uses, e.g. tls://127.0.0.1:8786. */
  schedulerAddress: string;
  dashboardUrl: string;
  details: Record<string, unknown>;
}

export interface DestroyContext {
  name: string;
  dir: string;
  /** Where to look when the journal does not say (a cloud region), e.g. `down --region`. */
  location?: string;
  /** No state here (`down --provider`): find the cluster in the cloud by its name. */
  searchByName?: boolean;
  progress(event: ProgressEvent): void;
}

/** A cluster a cloud provider found by its tags, with or without state on this machine. */
export interface DiscoveredCluster {
  name: string;
  provider: ProviderName;
  location: string;
  /** The scheduler's address (`tls://203.0.113.7:8786`), when it has an IP and says its protocol. */
  schedulerAddress: string | null;
  members: MemberStatus[];
  /** What else carries its tag (security groups, ...). */
  resources: string[];
  /** How to say a cluster whose scheduler is not running, when "stopped" would mislead (still billed). */
  stoppedStatus?: string;
}

export interface MemberStatus {
  role: string;
  id: string;
  running: boolean;
}

export interface Provider {
  readonly name: ProviderName;
  /** How long `up` waits for readiness when --timeout is not given. */
  readonly defaultTimeoutMs: number;
  /** How often `up` calls checkHealth while it waits (default 500 ms); clouds ask an API. */
  readonly healthIntervalMs?: number;
  /** Whether its VMs get an IPv6 address, so IPv6 ingress rules reach them. */
  readonly ipv6?: boolean;
  /** Plain words for what `up` will create. */
  plan(spec: ClusterSpec): string[];
  /**
   * Finds what the provider needs (credentials, an SDK, a Python) before anything is created,
   * and returns the spec completed with it; throws with an install hint when something is missing.
   */
  prepare(spec: ClusterSpec): Promise<ClusterSpec>;
  create(context: CreateContext): Promise<Endpoints>;
  /** Throws with the reason (and log lines) when a member has already failed. */
  checkHealth(context: CreateContext): Promise<void>;
  /** Log lines that explain a failure or a timeout. */
  diagnostics(dir: string): Promise<string>;
  /** Removes everything in the journal; quiet about what is already gone. Returns what it removed. */
  destroy(resources: Resource[], context: DestroyContext): Promise<string[]>;
  /** The members this provider can see for a cluster (processes, VMs). */
  members(record: ClusterRecord, resources: Resource[]): Promise<MemberStatus[]>;
  /** Clouds: every dcp cluster found by tag in a region (the SDK's default when undefined). */
  discover?(location: string | undefined): Promise<DiscoveredCluster[]>;
  /** Clouds: the cluster's firewall as the cloud has it now (read calls only), for `dcp doctor`. */
  firewall?(record: ClusterRecord): Promise<FirewallView>;
}
