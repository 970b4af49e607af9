/**
 * The cluster lifecycle, the same for every provider: claim the name, make or check the TLS
 * files, let the provider create resources (each journaled before the next), wait until the
 * scheduler answers a mutual-TLS handshake and the workers are in, and point Dask's client
 * config at it. Any failure, timeout or Ctrl-C rolls back everything the journal lists.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { clientConfigCaFile, removeDaskTlsConfig, writeDaskTlsConfig } from '../config/dask-tls.js';
import { stricterMinVersion, userDaskConfig, type TlsVersion } from '../config/dask-user.js';
import { resolveTlsParams } from '../config/tls-params.js';
import { daskConfigDir } from '../config/paths.js';
import { DcpError, ExitCode, messageOf, usageError } from '../errors.js';
import { loadProvider } from '../providers/index.js';
import type { ProviderName } from '../config/schema.js';
import type {
  ClusterSpec,
  ClusterTls,
  CreateContext,
  ProgressEvent,
  Provider,
} from '../providers/provider.js';
import { formatDuration } from '../util/duration.js';
import { Interrupted } from '../util/interrupt.js';
import { generateName } from './names.js';
import { waitForScheduler, waitForWorkers } from './readiness.js';
import type { UpPlan } from './spec.js';
import {
  claimClusterDir,
  clusterDir,
  clusterExists,
  listClusters,
  readJournal,
  readRecord,
  recordResource,
  removeClusterDir,
  writeRecord,
  type ClusterRecord,
} from './state.js';

export interface Hooks {
  progress(event: ProgressEvent): void;
  /** Something the user should know that does not stop `up` (a provider's choice, say). */
  warn?(message: string): void;
}

/** The dcp-owned Dask config file that lets a plain `Client("tls://...")` reach the newest cluster. */
export function clientConfigFile(env = process.env): string {
  return join(daskConfigDir(env), 'dcp-client.yaml');
}

class TimedOut extends Error {}

async function waitUntilReady(
  plan: UpPlan,
  provider: Provider,
  context: CreateContext,
  record: ClusterRecord,
  hooks: Hooks,
): Promise<void> {
  const address = record.scheduler_address!;
  const tls = record.tls;
  // Health checks run beside the waiting, so a member that dies fails `up` at once, not at the
  // timeout. This promise only ever rejects; it stops checking once the signal fires.
  const interval = provider.healthIntervalMs ?? 500;
  const health = new Promise<never>((_resolve, reject) => {
    const check = async () => {
      if (context.signal.aborted) return;
      try {
        await provider.checkHealth(context);
        setTimeout(check, interval).unref();
      } catch (error) {
        if (!context.signal.aborted) reject(error);
      }
    };
    setTimeout(check, interval).unref();
  });
  // Both waits start at once: the worker probe spends its first second importing distributed,
  // which overlaps the scheduler's own start-up.
  const ready = Promise.all([
    (async () => {
      hooks.progress({
        step: 'scheduler',
        status: 'start',
        detail: `waiting for ${address} to answer over ${tls ? 'mutual TLS' : 'TCP'}`,
      });
      await waitForScheduler(address, tls, context.signal);
      hooks.progress({
        step: 'scheduler',
        status: 'done',
        detail: `${address} answered${tls ? ' the client certificate' : ''}`,
      });
    })(),
    (async () => {
      if (plan.waitWorkers === 0) return;
      hooks.progress({ step: 'workers', status: 'start', detail: `0/${plan.waitWorkers}` });
      await waitForWorkers(record.dashboard_url!, tls, plan.waitWorkers, context.signal, (count) =>
        hooks.progress({
          step: 'workers',
          status: 'info',
          detail: `${count.workers}/${plan.waitWorkers} connected`,
        }),
      );
      hooks.progress({
        step: 'workers',
        status: 'done',
        detail: `${plan.waitWorkers}/${plan.waitWorkers} connected`,
      });
    })(),
  ]);
  await Promise.race([ready, health]);
}

/** Claims the cluster's name; a made-up name that happens to be taken is made up again. */
async function claimName(spec: ClusterSpec, generated: boolean, env: NodeJS.ProcessEnv): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await claimClusterDir(spec.name, env);
    } catch (error) {
      if (!generated || attempt >= 5 || !(error instanceof DcpError) || error.exitCode !== ExitCode.usage)
        throw error;
      spec.name = generateName();
    }
  }
}

/** Creates the cluster, or rolls everything back and throws saying what failed and what was removed. */
export async function createCluster(
  plan: UpPlan,
  provider: Provider,
  hooks: Hooks,
  interrupt: AbortSignal,
  env = process.env,
): Promise<ClusterRecord> {
  // The certificate code (node-forge) loads while the provider looks for what it needs.
  const tlsModule = import('./tls.js');
  const { warnings = [], ...spec } = await provider.prepare(plan.spec);
  for (const warning of warnings) hooks.warn?.(warning);
  const ipv6Rules = spec.ingress.filter((rule) => rule.cidr.includes(':'));
  if (ipv6Rules.length > 0 && !provider.ipv6)
    hooks.warn?.(
      `${ipv6Rules.map((rule) => rule.cidr).join(', ')}: IPv6 rules reach nothing here, as ${spec.provider} VMs made by dcp get no IPv6 address`,
    );
  // The user's own Dask configuration is read meanwhile: dcp never sets a weaker TLS than it.
  const userConfig = userDaskConfig({
    env,
    ...(spec.python ? { python: spec.python } : {}),
    exclude: [clientConfigFile(env)],
  });
  const dir = await claimName(spec, plan.nameGenerated, env);
  const timeoutMs = plan.timeoutMs ?? provider.defaultTimeoutMs;
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new TimedOut()), timeoutMs);
  // Fired when `up` ends either way, so probes and health checks never outlive it.
  const finished = new AbortController();
  const signal = AbortSignal.any([interrupt, timeout.signal, finished.signal]);
  const record: ClusterRecord = {
    name: spec.name,
    provider: spec.provider,
    status: 'creating',
    created_at: new Date().toISOString(),
    workers: spec.workers,
    scheduler_address: null,
    dashboard_url: null,
    tls: null,
    dask_config_file: null,
    details: {},
  };
  let tls: ClusterTls | null = null;
  const context: CreateContext = {
    spec,
    dir,
    logsDir: join(dir, 'logs'),
    get tls() {
      return tls;
    },
    record: (resource) => recordResource(dir, { ...resource, provider: spec.provider }),
    progress: hooks.progress,
    warn: (message) => hooks.warn?.(message),
    signal,
  };
  try {
    await writeRecord(record, env);
    if (plan.tls.mode !== 'off')
      hooks.progress({
        step: 'certificates',
        status: 'start',
        detail:
          plan.tls.mode === 'auto'
            ? 'a fresh CA and scheduler, worker, client certificates'
            : 'checking your files',
      });
    const { clientTls, prepareTls } = await tlsModule;
    const files = await prepareTls(plan.tls, dir, (message) => hooks.warn?.(message));
    if (files) {
      const { params, warnings: tlsWarnings } = resolveTlsParams(plan.settings, await userConfig);
      for (const warning of tlsWarnings) hooks.warn?.(warning);
      if (params.maxVersion !== undefined && params.maxVersion < params.minVersion)
        throw usageError(
          `the highest TLS version (${params.maxVersion}) is below the lowest (${params.minVersion})`,
          'raise tls_max_version, or unset it: dcp config unset tls_max_version',
        );
      tls = { ...files, params };
    }
    if (tls)
      hooks.progress({
        step: 'certificates',
        status: 'done',
        detail: plan.tls.mode === 'auto' ? join(dir, 'tls') : tls.caFile,
      });
    signal.throwIfAborted();

    hooks.progress({
      step: 'create',
      status: 'start',
      detail: `a scheduler and ${spec.workers} worker${spec.workers === 1 ? '' : 's'} (${spec.provider})`,
    });
    const endpoints = await provider.create(context);
    Object.assign(record, {
      status: 'running',
      scheduler_address: endpoints.schedulerAddress,
      dashboard_url: endpoints.dashboardUrl,
      tls: tls && clientTls(tls),
      details: endpoints.details,
    });
    await writeRecord(record, env);
    hooks.progress({ step: 'create', status: 'done' });

    if (plan.wait) await waitUntilReady(plan, provider, context, record, hooks);
    record.dask_config_file = await pointClientConfigAt(record, hooks, env);
    // The last moment a Ctrl-C rolls back: once the record says so, the cluster is made and kept.
    signal.throwIfAborted();
    record.status = plan.wait ? 'ready' : 'running';
    await writeRecord(record, env);
    return record;
  } catch (error) {
    finished.abort();
    const interrupted = interrupt.aborted ? (interrupt.reason as Interrupted) : undefined;
    const timedOut = !interrupted && timeout.signal.aborted;
    const why = interrupted
      ? interrupted.message
      : timedOut
        ? `${spec.name} was not ready within ${formatDuration(timeoutMs)}`
        : messageOf(error);
    const logs =
      interrupted || (error instanceof DcpError && error.exitCode === ExitCode.usage)
        ? ''
        : await provider.diagnostics(dir);
    hooks.progress({ step: 'roll back', status: 'start', detail: why });
    let removed: string[];
    try {
      removed = await destroyFromState(spec.name, provider, hooks, env);
    } catch (rollbackError) {
      // What was made stays in the journal (and carries the cluster's tags): `down` can finish it.
      hooks.progress({ step: 'roll back', status: 'done', detail: `failed: ${messageOf(rollbackError)}` });
      const details = [error instanceof DcpError ? error.details : undefined, logs]
        .filter(Boolean)
        .join('\n');
      throw new DcpError(`${why}; rolling back failed too: ${messageOf(rollbackError)}`, {
        hint: `finish it with: dcp down ${spec.name}${error instanceof DcpError && error.hint ? `; and for the first failure: ${error.hint}` : ''}`,
        ...(details ? { details } : {}),
        exitCode: interrupted ? ExitCode.interrupted : ExitCode.failed,
        cause: error,
      });
    }
    hooks.progress({
      step: 'roll back',
      status: 'done',
      detail: removed.length ? `removed ${removed.join(', ')}` : 'nothing had been created',
    });
    const rolledBack = `rolled back: ${removed.length > 0 ? `removed ${removed.join(', ')}` : 'nothing had been created yet'}`;
    const hint =
      error instanceof DcpError && error.hint && !interrupted && !timedOut ? error.hint : undefined;
    const details =
      [error instanceof DcpError ? error.details : undefined, logs].filter(Boolean).join('\n') || undefined;
    throw new DcpError(`${why}; ${rolledBack}`, {
      details,
      hint:
        hint ??
        (timedOut
          ? 'a slow machine may need a longer --timeout; the log lines above say what the members were doing'
          : interrupted
            ? undefined
            : 'the log lines above say what went wrong'),
      exitCode: interrupted
        ? ExitCode.interrupted
        : error instanceof DcpError
          ? error.exitCode
          : ExitCode.failed,
      cause: error,
    });
  } finally {
    clearTimeout(timer);
    finished.abort();
  }
}

/** The user's own TLS minimum where stricter than Dask's, read as Dask merges their configuration. */
async function userTlsFloor(
  env: NodeJS.ProcessEnv,
  python: string | undefined,
): Promise<TlsVersion | undefined> {
  const read = await userDaskConfig({ env, ...(python ? { python } : {}), exclude: [clientConfigFile(env)] });
  return stricterMinVersion(read);
}

/**
 * Points dcp's client config (`dcp-client.yaml`) at a TLS cluster, so a plain `Client(address)`
 * uses its files. Optional: when it cannot be written (a read-only Dask folder), the snippet
 * still works, so this warns and returns null. An interrupt is not a failure to write: it goes on.
 */
async function pointClientConfigAt(
  record: ClusterRecord,
  hooks: Hooks,
  env: NodeJS.ProcessEnv,
): Promise<string | null> {
  if (!record.tls) return null;
  const file = clientConfigFile(env);
  try {
    await writeDaskTlsConfig(file, record.tls, {
      requireEncryption: false,
      comment: ` Written by dcp for cluster ${record.name}: a plain Client("${record.scheduler_address}") uses these files.\n dcp down ${record.name} removes this file. dcp's own settings are in dcp.yaml.`,
    });
    return file;
  } catch (error) {
    if (error instanceof Interrupted) throw error;
    hooks.warn?.(
      `${messageOf(error)}: a plain Client("${record.scheduler_address}") will not find the certificates, the printed snippet still connects`,
    );
    return null;
  }
}

/**
 * After a cluster goes: if dcp's client config pointed at it, it points at the newest cluster
 * still up instead, or goes. Never in the way of `down`: what it cannot do, it says.
 */
async function releaseClientConfig(
  name: string,
  caFile: string,
  hooks: Hooks,
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const file = clientConfigFile(env);
  const named = await clientConfigCaFile(file);
  // dcp's to mend when it names this cluster's CA, or a CA gone with a cluster it could not be changed for.
  if (named === undefined || (named !== caFile && existsSync(named))) return;
  const [next] = (await listClusters(env))
    .flatMap((entry) =>
      entry.name !== name && entry.record?.tls && entry.record.status !== 'creating' ? [entry.record] : [],
    )
    .sort((a, b) => b.created_at.localeCompare(a.created_at));
  try {
    if (!next) return await removeDaskTlsConfig(file);
    const python = typeof next.details.python === 'string' ? next.details.python : undefined;
    // The user's floor as it is now, which may have risen since that cluster was made.
    const floor = (await userTlsFloor(env, python)) ?? 1.2;
    const minVersion = Math.max(next.tls!.minVersion ?? 1.2, floor) as TlsVersion;
    const written = await pointClientConfigAt({ ...next, tls: { ...next.tls!, minVersion } }, hooks, env);
    if (!written) return;
    await writeRecord({ ...next, dask_config_file: written }, env);
    hooks.progress({ step: 'client config', status: 'done', detail: `${file} now points at ${next.name}` });
  } catch (error) {
    if (error instanceof Interrupted) throw error;
    hooks.warn?.(`could not update ${file}: ${messageOf(error)}; it still names certificates that are gone`);
  }
}

/** Everything the journal lists, the client config that points here, and the state folder. */
async function destroyFromState(
  name: string,
  provider: Provider,
  hooks: Hooks,
  env: NodeJS.ProcessEnv,
): Promise<string[]> {
  const dir = clusterDir(name, env);
  const record = await readRecord(name, env).catch(() => undefined);
  const removed = await provider.destroy(await readJournal(dir), { name, dir, progress: hooks.progress });
  // A damaged record no longer says which CA it used: a made one lives in the cluster's folder.
  await releaseClientConfig(name, record?.tls?.caFile ?? join(dir, 'tls', 'ca.pem'), hooks, env);
  await removeClusterDir(name, env);
  return removed;
}

export interface FindElsewhere {
  /** A cloud to search by tags when this machine has no state for the cluster. */
  provider?: ProviderName;
  location?: string;
}

/**
 * Tears a cluster down from its state on this machine, or, with no state here, from what a cloud
 * provider finds by the cluster's tags. Idempotent: a cluster that is already gone, or was half
 * made, is a quiet success. Returns undefined when there was nothing to do.
 */
export async function destroyCluster(
  name: string,
  hooks: Hooks,
  env = process.env,
  elsewhere: FindElsewhere = {},
): Promise<string[] | undefined> {
  const record = await readRecord(name, env).catch(() => undefined);
  const resources = await readJournal(clusterDir(name, env));
  if (!record && resources.length === 0 && !(await clusterExists(name, env))) {
    if (!elsewhere.provider || elsewhere.provider === 'local') return undefined;
    const provider = await loadProvider(elsewhere.provider);
    const removed = await provider.destroy([], {
      name,
      dir: clusterDir(name, env),
      progress: hooks.progress,
      searchByName: true,
      ...(elsewhere.location ? { location: elsewhere.location } : {}),
    });
    return removed.length > 0 ? removed : undefined;
  }
  // A damaged record says nothing: the journal names the provider that made each thing.
  const made = record?.provider ?? resources.find((resource) => resource.provider)?.provider;
  const provider = await loadProvider(made ?? elsewhere.provider ?? 'local');
  return destroyFromState(name, provider, hooks, env);
}
