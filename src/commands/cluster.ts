/** `dcp up | down | list | status | snippet | dashboard`: parse → core → render. */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { countWorkers, schedulerAnswers } from '../cluster/readiness.js';
import { clientConfigFile, createCluster, destroyCluster } from '../cluster/engine.js';
import { validateName } from '../cluster/names.js';
import { cloudLocation, planUp, type UpFlags } from '../cluster/spec.js';
import {
  clusterDir,
  clusterExists,
  listClusterNames,
  listClusters,
  readJournal,
  readRecord,
  type ClusterRecord,
} from '../cluster/state.js';
import { exportCloudprovider } from '../config/cloudprovider.js';
import { parseSettingValue, type ProviderName } from '../config/schema.js';
import { envVariable, explicitSettings, loadSettings } from '../config/load.js';
import { saveSettings } from '../config/store.js';
import { DcpError, ExitCode, messageOf, usageError } from '../errors.js';
import { CLOUD_PROVIDERS, loadProvider } from '../providers/index.js';
import {
  clusterJson,
  discoveredEntry,
  listEntry,
  NO_BOKEH,
  progressLine,
  renderDiscovered,
  renderDoctor,
  renderList,
  renderStatus,
  renderUp,
  reviewLines,
  snippetFor,
  type SnippetFormat,
  type StatusReport,
} from '../ui/cluster.js';
import type { Output } from '../ui/output.js';
import { confirm } from '../ui/prompts.js';
import { interruptible, keepFromHere } from '../util/interrupt.js';

function hooks(out: Output) {
  return {
    progress: (event: Parameters<typeof progressLine>[0]) => out.progress(progressLine(event, out.errStyle)),
    warn: (message: string) => out.warn(message),
  };
}

function noSuchCluster(name: string): DcpError {
  return usageError(`no cluster named ${name} on this machine`, 'dcp list shows the clusters');
}

/** The name a command is about: the one given, or the only cluster there is. */
async function resolveName(name: string | undefined): Promise<string> {
  if (name !== undefined) return validateName(name, 'argument');
  const names = await listClusterNames();
  if (names.length === 0)
    throw usageError('there are no clusters on this machine', 'create one with: dcp up');
  if (names.length > 1)
    throw usageError(`there are ${names.length} clusters: ${names.join(', ')}`, 'name the one you mean');
  return names[0]!;
}

/** The cluster a command is about: the one named, or the only one there is. */
async function resolveCluster(name: string | undefined): Promise<ClusterRecord> {
  const resolved = await resolveName(name);
  const record = await readRecord(resolved);
  if (!record) throw noSuchCluster(resolved);
  return record;
}

/** The plan in plain words, for the wizard's review. */
async function review(flags: UpFlags): Promise<string[]> {
  const plan = await planUp(flags);
  const providerPlan = (await loadProvider(plan.spec.provider)).plan(plan.spec);
  return reviewLines(plan, providerPlan, clusterDir(plan.spec.name), clientConfigFile());
}

/** The questions, on a terminal: only what flags and settings leave open. */
async function ask(flags: UpFlags): Promise<UpFlags> {
  const [{ runWizard }, { inquirerPrompter, isPromptExit }, { checkByoFiles }] = await Promise.all([
    import('../ui/wizard.js'),
    import('../ui/prompts.js'),
    import('../cluster/tls.js'),
  ]);
  try {
    const context = {
      flags,
      env: process.env,
      loaded: await loadSettings(),
      checkTls: checkByoFiles,
      plan: review,
      nameTaken: (candidate: string) => existsSync(clusterDir(candidate)),
      configuredLocation: async (provider: ProviderName) =>
        provider === 'aws'
          ? (await import('../providers/aws/ec2.js')).configuredRegion()
          : provider === 'gcp'
            ? (await (await import('../providers/gcp/identity.js')).configuredIdentity()).zone
            : provider === 'azure'
              ? (await import('../providers/azure/identity.js')).configuredLocation()
              : undefined,
      configuredAccount: async (provider: 'gcp' | 'azure') =>
        provider === 'gcp'
          ? (await (await import('../providers/gcp/identity.js')).configuredIdentity()).project
          : (await import('../providers/azure/identity.js')).configuredSubscription(),
    };
    return (await runWizard(context, await inquirerPrompter())).flags;
  } catch (error) {
    if (isPromptExit(error))
      throw new DcpError('interrupted: nothing was created', { exitCode: ExitCode.interrupted });
    throw error;
  }
}

export async function up(options: UpFlags, out: Output): Promise<ExitCode> {
  const flags = out.interactive ? await ask(options) : options;
  const plan = await planUp(flags);
  const provider = await loadProvider(plan.spec.provider);
  if (flags.save) {
    const saved = await saveSettings(plan.chosen);
    const exported =
      plan.spec.provider === 'local'
        ? undefined
        : // What a project file says is for that project: never made the user's defaults.
          await exportCloudprovider(explicitSettings(await loadSettings(), ['project']), plan.spec.provider);
    out.progress(
      progressLine(
        {
          step: 'saved your defaults',
          status: 'done',
          detail: [saved.file, exported?.file].filter(Boolean).join(', '),
        },
        out.errStyle,
      ),
    );
  }
  // Questions are over before live progress starts: never a prompt and Ink at once.
  const view = out.live ? (await import('../ui/progress.js')).startUpView() : undefined;
  // The wizard's review showed what a project file chose; without questions it is said here.
  for (const warning of [...(out.interactive ? [] : plan.fromProject), ...plan.warnings])
    (view ?? out).warn(warning);
  let record;
  try {
    record = await interruptible(async (signal) => {
      const made = await createCluster(plan, provider, view ?? hooks(out), signal);
      // Made and kept: a Ctrl-C from now on removes nothing, and `up` still ends in success.
      keepFromHere(keptMessage(made), signal);
      return made;
    });
  } catch (error) {
    if (view) {
      const shown = error instanceof DcpError ? error : new DcpError(messageOf(error));
      await view.fail({
        message: shown.message,
        ...(shown.hint ? { hint: shown.hint } : {}),
        ...(shown.details ? { details: shown.details } : {}),
      });
      shown.shown = true;
      throw shown;
    }
    throw error;
  }
  if (view) await view.finish(record);
  else out.result(clusterJson(record), () => renderUp(record, out.style));
  return ExitCode.ok;
}

function keptMessage(record: ClusterRecord): string {
  return `interrupted after ${record.name} was ${record.status === 'ready' ? 'ready' : 'made'}: it is kept, and running (dcp down ${record.name} removes it)`;
}

/**
 * Where `down` and `list` search a cloud: --region (aws, ...) or --zone (gcp), checked against
 * the provider.
 */
/** The clouds placed by `--region` or by `--zone`, as a hint's `--provider` value (`aws|digitalocean`). */
function providersPlacedBy(flag: '--region' | '--zone'): string {
  return CLOUD_PROVIDERS.filter((provider) => `--${cloudLocation(provider).flag}` === flag).join('|');
}

function placeFlag(options: SearchOptions): { flag: '--region' | '--zone'; value: string } | undefined {
  if (options.region && options.zone) throw usageError('--region and --zone exclude each other', 'pass one');
  for (const { flag, provider } of Object.values(SCOPES)) {
    const value = options[flag.slice(2) as keyof typeof SCOPES];
    if (value !== undefined && options.provider !== provider)
      throw usageError(
        `${flag} goes with --provider ${provider}`,
        `dcp list --provider ${provider} ${flag} ${value}`,
      );
  }
  const given = options.zone
    ? ({ flag: '--zone', value: options.zone } as const)
    : options.region
      ? ({ flag: '--region', value: options.region } as const)
      : undefined;
  if (given && options.provider && options.provider !== 'local') {
    const wanted = `--${cloudLocation(options.provider).flag}`;
    if (wanted !== given.flag)
      throw usageError(`${given.flag} does not apply to ${options.provider}`, `pass ${wanted}`);
  }
  return given;
}

/** Where a cloud's clusters are looked for, beyond its location: GCP's project, Azure's subscription. */
const SCOPES = {
  project: { flag: '--project', provider: 'gcp', setting: 'gcp.project' },
  subscription: { flag: '--subscription', provider: 'azure', setting: 'azure.subscription_id' },
} as const;

export interface SearchOptions {
  provider?: ProviderName;
  region?: string;
  zone?: string;
  project?: string;
  subscription?: string;
}

/** Runs `command` with --project or --subscription as its setting's DCP_* variable, for it alone. */
async function withScope<T>(options: SearchOptions, command: () => Promise<T>): Promise<T> {
  const given = Object.entries(SCOPES).find(
    ([option]) => options[option as keyof typeof SCOPES] !== undefined,
  );
  if (!given) return command();
  const [option, { flag, setting }] = given;
  const variable = envVariable(setting);
  const before = process.env[variable];
  process.env[variable] = String(parseSettingValue(setting, options[option as keyof typeof SCOPES]!, flag));
  try {
    return await command();
  } finally {
    if (before === undefined) delete process.env[variable];
    else process.env[variable] = before;
  }
}

export function down(
  name: string | undefined,
  options: SearchOptions & { all: boolean },
  out: Output,
): Promise<ExitCode> {
  return withScope(options, () => downHere(name, options, out));
}

async function downHere(
  name: string | undefined,
  options: SearchOptions & { all: boolean },
  out: Output,
): Promise<ExitCode> {
  const location = placeFlag(options);
  if (name !== undefined && options.all)
    throw usageError('name a cluster or pass --all, not both', 'dcp down NAME, or dcp down --all');
  if (options.all && options.provider)
    throw usageError(
      '--all is for the clusters this machine knows; --provider finds one cluster by name',
      `dcp list --provider ${options.provider} shows what is there`,
    );
  if (location && !options.provider)
    throw usageError(
      `${location.flag} goes with --provider`,
      `dcp down ${name ?? 'NAME'} --provider ${providersPlacedBy(location.flag)} ${location.flag} ${location.value}`,
    );
  if (name === undefined && !options.all && options.provider)
    throw usageError(
      `which cluster should be found in ${options.provider}?`,
      `dcp down NAME --provider ${options.provider}`,
    );
  const names = options.all ? await listClusterNames() : [await resolveName(name)];
  if (
    options.all &&
    names.length > 0 &&
    !(await confirm(
      out,
      `Tear down ${names.length} cluster${names.length === 1 ? '' : 's'} (${names.join(', ')})?`,
      '--yes',
    ))
  ) {
    return ExitCode.failed;
  }
  const single = options.all ? undefined : names[0]!;
  // With state here, `down` works from it; --provider is for a cluster this machine does not know.
  const known = single !== undefined && (await clusterExists(single));
  // Nothing to tear down is not success: a typo must not look like a cluster gone (exit 1).
  if (single !== undefined && !known && !options.provider)
    throw new DcpError(`there is no cluster named ${single} on this machine: nothing was torn down`, {
      hint: `dcp list shows the clusters here; for one made on another machine: dcp down ${single} --provider ${CLOUD_PROVIDERS.join('|')}`,
    });
  if (
    single !== undefined &&
    !(await confirm(
      out,
      `Tear down ${single}${known ? '' : ` (everything tagged with it in ${options.provider})`}?`,
      '--yes',
    ))
  )
    return ExitCode.failed;
  const elsewhere = {
    ...(options.provider ? { provider: options.provider } : {}),
    ...(location ? { location: location.value } : {}),
  };
  const results: { name: string; found: boolean; removed: string[] }[] = [];
  for (const each of names) {
    const removed = await destroyCluster(each, hooks(out), process.env, elsewhere);
    results.push({ name: each, found: removed !== undefined, removed: removed ?? [] });
  }
  out.result({ clusters: results }, () =>
    results.length === 0
      ? 'No clusters to tear down.\n'
      : results
          .map((r) =>
            r.found
              ? `${out.style.green('✓')} ${r.name} is gone${r.removed.length ? ` (removed ${r.removed.join(', ')})` : ''}`
              : `${r.name}: nothing carries its name in ${options.provider}${location ? ` ${location.value}` : ''}`,
          )
          .join('\n') + '\n',
  );
  // A named cluster that was nowhere is a mistake to hear about; --all over none is not.
  return single !== undefined && !results[0]!.found ? ExitCode.failed : ExitCode.ok;
}

export function list(options: SearchOptions, out: Output): Promise<ExitCode> {
  return withScope(options, () => listHere(options, out));
}

async function listHere(options: SearchOptions, out: Output): Promise<ExitCode> {
  const location = placeFlag(options);
  if (location && !options.provider)
    throw usageError(
      `${location.flag} goes with --provider`,
      `dcp list --provider ${providersPlacedBy(location.flag)} ${location.flag} ${location.value}`,
    );
  if (options.provider) {
    const provider = await loadProvider(options.provider);
    if (!provider.discover)
      throw usageError(
        `the ${options.provider} provider cannot list clusters by tag`,
        'dcp list shows the clusters this machine knows',
      );
    const here = new Set(await listClusterNames());
    const clusters = (await provider.discover(location?.value)).map((cluster) =>
      discoveredEntry(cluster, here.has(cluster.name)),
    );
    out.result({ provider: options.provider, clusters }, () =>
      renderDiscovered(clusters, options.provider!, location?.value, out.style),
    );
    return ExitCode.ok;
  }
  const clusters = (await listClusters()).map(listEntry);
  out.result({ clusters }, () => renderList(clusters, out.style));
  return ExitCode.ok;
}

export async function status(name: string | undefined, out: Output): Promise<ExitCode> {
  const record = await resolveCluster(name);
  const provider = await loadProvider(record.provider);
  const address = record.scheduler_address;
  const reachable = address !== null && (await schedulerAnswers(address, record.tls));
  const count = (reachable && record.dashboard_url
    ? await countWorkers(record.dashboard_url, record.tls)
    : undefined) ?? { workers: 0, threads: 0 };
  const report: StatusReport = {
    name: record.name,
    provider: record.provider,
    scheduler_address: address,
    dashboard_url: record.dashboard_url,
    reachable,
    workers: count.workers,
    expected_workers: record.workers,
    threads: count.threads,
    members: await provider.members(record, await readJournal(clusterDir(record.name))),
  };
  out.result(report, () => renderStatus(report, out.style));
  return reachable ? ExitCode.ok : ExitCode.failed;
}

export async function snippet(
  name: string | undefined,
  format: SnippetFormat,
  out: Output,
): Promise<ExitCode> {
  const record = await resolveCluster(name);
  if (!record.scheduler_address)
    throw new DcpError(`${record.name} has no scheduler address yet (it is ${record.status})`, {
      hint: `its up is still running, or died: dcp status ${record.name}, or dcp down ${record.name}`,
    });
  const text = snippetFor(record, format);
  out.result({ name: record.name, format, snippet: text }, () => text);
  // What to do with the variables goes beside them, never into what a shell would eval.
  if (format === 'env' && !out.json)
    out.progress(
      out.errStyle.dim(
        `# eval "$(dcp snippet ${record.name} --format env)", then Client() with no arguments connects to ${record.scheduler_address}`,
      ),
    );
  return ExitCode.ok;
}

export async function doctor(name: string | undefined, out: Output): Promise<ExitCode> {
  const record = await resolveCluster(name);
  const provider = await loadProvider(record.provider);
  const { examine } = await import('../cluster/doctor.js');
  out.progress(`knocking on every door of ${record.name}...`);
  const checks = await examine({
    record,
    dir: clusterDir(record.name),
    resources: await readJournal(clusterDir(record.name)),
    provider,
  });
  const holds = !checks.some((check) => check.verdict === 'open');
  out.result({ name: record.name, holds, checks }, () => renderDoctor(record.name, checks, out.style));
  return holds ? ExitCode.ok : ExitCode.failed;
}

export async function dashboard(
  name: string | undefined,
  options: { open: boolean },
  out: Output,
): Promise<ExitCode> {
  const record = await resolveCluster(name);
  const url = record.dashboard_url;
  if (!url)
    throw new DcpError(`${record.name} has no dashboard yet (it is ${record.status})`, {
      hint: `dcp status ${record.name}, or dcp down ${record.name} if its up failed`,
    });
  const { startGateway } = await import('../cluster/gateway.js');
  const gateway = await startGateway(url, record.tls);
  await interruptible(async (signal) => {
    // One of its own per run: another `dcp dashboard` of the cluster removes only its own.
    const launcher = join(clusterDir(record.name), `dashboard-${process.pid}.html`);
    try {
      out.result(
        { name: record.name, url: gateway.url, dashboard_url: url, mutual_tls: record.tls !== null },
        () => `${gateway.url}\n`,
      );
      out.progress(
        `${record.tls ? `A gateway to ${record.name}'s dashboard (${url}), over mutual TLS with the client certificate` : `A gateway to ${record.name}'s dashboard (${url}, plain HTTP: TLS is off)`}; the URL's key is what lets a browser in. Ctrl-C stops it.`,
      );
      if (record.details.bokeh === false) out.warn(NO_BOKEH);
      if (options.open && out.interactive) {
        // Through a page only this user can read: a URL given to the browser as an argument
        // would show its key in the process list.
        await writeFile(
          launcher,
          `<!doctype html><meta http-equiv="refresh" content="0;url=${gateway.url}"><title>dcp dashboard</title>\n`,
          { mode: 0o600 },
        );
        const { default: open } = await import('open');
        await open(launcher);
      }
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    } finally {
      await rm(launcher, { force: true });
      await gateway.close();
    }
  });
  out.progress('gateway stopped');
  return ExitCode.ok;
}
