/**
 * What every provider (local, aws, gcp, azure, digitalocean) implements. The engine in
 * src/cluster drives it: plan, create step by step (each resource journaled before the next),
 * check health while waiting, destroy from the journal, and report status.
 */
import type { ClusterRecord, Resource } from '../cluster/state.js';
import type { IngressRule } from '../config/ingress.js';
import type { ProviderName } from '../config/schema.js';

/** Files per role for a TLS cluster; the CA key only when dcp made the CA. */
export interface ClusterTls {
  caFile: string;
  cert: { scheduler: string; worker: string; client: string };
  key: { scheduler: string; worker: string; client: string };
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
  progress(event: ProgressEvent): void;
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
}
