/**
 * From flags and settings to what `up` will do: the cluster spec, the TLS choice and the
 * waiting rules. Every bad combination is a usage error naming the flag, before anything starts.
 */
import { dirname, resolve } from 'node:path';
import { describeOrigin, flatten, loadSettings, type LoadedSettings } from '../config/load.js';
import { workingFolder } from '../config/paths.js';
import { buildIngressRules, DASK_PORTS, ME, parseCidr } from '../config/ingress.js';
import { parseSettingValue, type ProviderName, type Settings } from '../config/schema.js';
import { type DcpError, usageError } from '../errors.js';
import type { ClusterSpec } from '../providers/provider.js';
import { parseDuration } from '../util/duration.js';
import { generateName, validateName } from './names.js';
import type { TlsChoice } from './tls.js';

export interface UpFlags {
  name?: string;
  provider?: string;
  workers?: string;
  threads?: string;
  memoryLimit?: string;
  public?: boolean;
  private?: boolean;
  tls?: string;
  tlsDir?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsMinVersion?: string;
  tlsMaxVersion?: string;
  tlsCiphers?: string;
  timeout?: string;
  wait: boolean;
  waitWorkers?: string;
  insecure: boolean;
  python?: string;
  region?: string;
  zone?: string;
  instanceType?: string;
  vpc?: string;
  subnet?: string;
  ami?: string;
  project?: string;
  imageFamily?: string;
  egress?: string;
  subscription?: string;
  image?: string;
  runtime?: string;
  idleTimeout?: string;
  /** `CIDR[:PORTS]`, repeatable; `me` is your public address. */
  ingress?: string[];
  allowAnywhere?: boolean;
  save?: boolean;
}

type CloudFlag =
  | 'region'
  | 'zone'
  | 'project'
  | 'instanceType'
  | 'vpc'
  | 'subnet'
  | 'ami'
  | 'imageFamily'
  | 'egress'
  | 'subscription';

/** Which setting each cloud flag sets, per provider; a flag missing here does not apply there. */
const CLOUD_FLAG_KEYS: Record<Exclude<ProviderName, 'local'>, Partial<Record<CloudFlag, string>>> = {
  aws: {
    region: 'aws.region',
    instanceType: 'aws.instance_type',
    vpc: 'aws.vpc',
    subnet: 'aws.subnet',
    ami: 'aws.ami',
  },
  gcp: {
    zone: 'gcp.zone',
    project: 'gcp.project',
    instanceType: 'gcp.machine_type',
    vpc: 'gcp.network',
    subnet: 'gcp.subnetwork',
    imageFamily: 'gcp.image_family',
  },
  azure: {
    region: 'azure.location',
    subscription: 'azure.subscription_id',
    instanceType: 'azure.vm_size',
    vpc: 'azure.vnet',
    subnet: 'azure.subnet',
  },
  digitalocean: {
    region: 'digitalocean.region',
    instanceType: 'digitalocean.size',
    vpc: 'digitalocean.vpc',
    egress: 'digitalocean.egress',
  },
};

const FLAG_NAMES: Record<CloudFlag, string> = {
  region: '--region',
  zone: '--zone',
  project: '--project',
  instanceType: '--instance-type',
  vpc: '--vpc',
  subnet: '--subnet',
  ami: '--ami',
  imageFamily: '--image-family',
  egress: '--egress',
  subscription: '--subscription',
};

/**
 * Where each cloud must be told to go: the flag that says it, the variables its SDK also reads,
 * and whether the SDK has a chain of its own (AWS: profiles in ~/.aws/config), which the
 * provider asks before it gives up.
 */
const REQUIRED: Record<
  Exclude<ProviderName, 'local'>,
  { flag: CloudFlag; env: string[]; sdkChain: boolean }
> = {
  aws: { flag: 'region', env: ['AWS_REGION', 'AWS_DEFAULT_REGION'], sdkChain: true },
  // gcloud's configuration is the chain: the provider reads it, and says what is missing.
  gcp: { flag: 'zone', env: ['CLOUDSDK_COMPUTE_ZONE'], sdkChain: true },
  // The Azure CLI's configuration is the chain: the provider reads it, and says what is missing.
  azure: { flag: 'region', env: ['AZURE_DEFAULTS_LOCATION'], sdkChain: true },
  digitalocean: { flag: 'region', env: [], sdkChain: false },
};

/** The usage error for a cloud that does not know where to go. */
function locationMissing(provider: Exclude<ProviderName, 'local'>): DcpError {
  const { flag, key, variables } = cloudLocation(provider);
  return usageError(
    `no ${flag} is known for ${provider}`,
    `pass ${FLAG_NAMES[flag]}, or save one: dcp config set ${key} ...${variables.length ? ` (or set ${variables.join(' or ')})` : ''}`,
  );
}

/** The flag and setting that place a cloud cluster (region or zone), and the variables that may too. */
export function cloudLocation(provider: Exclude<ProviderName, 'local'>): {
  flag: CloudFlag;
  key: string;
  variables: string[];
} {
  const { flag, env } = REQUIRED[provider];
  return { flag, key: CLOUD_FLAG_KEYS[provider][flag]!, variables: env };
}

/** The setting a cloud flag sets for this provider (`instanceType` on gcp → `gcp.machine_type`). */
export function cloudFlagKey(provider: Exclude<ProviderName, 'local'>, flag: CloudFlag): string | undefined {
  return CLOUD_FLAG_KEYS[provider][flag];
}

/** Whether the settings or the environment already say where the cluster goes. */
export function locationKnown(
  provider: Exclude<ProviderName, 'local'>,
  settings: Settings,
  env: NodeJS.ProcessEnv,
): boolean {
  const { key, variables } = cloudLocation(provider);
  return flatten(settings).get(key) !== undefined || variables.some((variable) => Boolean(env[variable]));
}

/** `10.1.0.0/16:8786,8787`, `fd00::/8:8786`, `me`, `203.0.113.7:8786` → Coiled's {cidr, ports}. */
export function parseIngressFlag(value: string): { cidr: string; ports?: string } {
  const slash = value.indexOf('/');
  const colon =
    slash >= 0
      ? value.indexOf(':', slash)
      : value.includes('::') || value.split(':').length > 2
        ? -1
        : value.lastIndexOf(':');
  return colon < 0 ? { cidr: value } : { cidr: value.slice(0, colon), ports: value.slice(colon + 1) };
}

export interface UpPlan {
  spec: ClusterSpec;
  tls: TlsChoice;
  /** Undefined: the provider's default. */
  timeoutMs: number | undefined;
  /** True when dcp made the name up, so another made-up name may replace it if it is taken. */
  nameGenerated: boolean;
  /** Every setting in effect, and the ones the flags chose (what --save keeps). */
  settings: Settings;
  chosen: Settings;
  wait: boolean;
  waitWorkers: number;
  warnings: string[];
  /** Settings from a project file that loosen security, each with the file: shown before acting. */
  fromProject: string[];
}

/** Flags that are settings, checked exactly as `dcp config set` checks them. */
function settingsFromFlags(flags: UpFlags): Settings {
  const given: [string, string | undefined, string][] = [
    ['provider', flags.provider, '--provider'],
    ['workers', flags.workers, '--workers'],
    ['threads', flags.threads, '--threads'],
    ['tls', flags.tls, '--tls'],
    // Saved settings outlive the folder they were typed in: keep the path absolute.
    ['tls_dir', flags.tlsDir === undefined ? undefined : resolve(flags.tlsDir), '--tls-dir'],
    ['networking', flags.public ? 'public' : flags.private ? 'private' : undefined, '--public/--private'],
    ['image', flags.image, '--image'],
    ['runtime', flags.runtime, '--runtime'],
    ['idle_timeout', flags.idleTimeout, '--idle-timeout'],
    ['tls_min_version', flags.tlsMinVersion, '--tls-min-version'],
    ['tls_max_version', flags.tlsMaxVersion, '--tls-max-version'],
    ['tls_ciphers', flags.tlsCiphers, '--tls-ciphers'],
  ];
  const settings: Record<string, unknown> = {};
  for (const [key, value, flag] of given) {
    if (value !== undefined) settings[key] = parseSettingValue(key, value, flag);
  }
  if (flags.ingress && flags.ingress.length > 0) {
    settings.ingress = flags.ingress.flatMap((value) => {
      const { cidr, ports } = parseIngressFlag(value);
      return buildIngressRules({
        cidrs: [cidr],
        ports,
        allowAnywhere: flags.allowAnywhere ?? false,
        flag: `--ingress ${JSON.stringify(value)}`,
      }).rules;
    });
  }
  return settings as Settings;
}

/** --region, --zone, --instance-type, --vpc, --subnet: into the chosen cloud's own settings. */
function cloudSettings(provider: ProviderName, flags: UpFlags, settings: Settings): Settings {
  const merged = structuredClone(settings) as Record<string, Record<string, unknown> | unknown>;
  for (const flag of Object.keys(FLAG_NAMES) as CloudFlag[]) {
    const value = flags[flag];
    if (value === undefined) continue;
    const key = provider === 'local' ? undefined : CLOUD_FLAG_KEYS[provider][flag];
    if (!key)
      throw usageError(
        `${FLAG_NAMES[flag]} does not apply to the ${provider} provider`,
        provider === 'local' ? 'the local provider runs on this machine; drop it' : `see dcp up --help`,
      );
    const [group, name] = key.split('.') as [string, string];
    merged[group] = {
      ...(merged[group] as Record<string, unknown> | undefined),
      [name]: parseSettingValue(key, value, FLAG_NAMES[flag]),
    };
  }
  return merged as Settings;
}

/**
 * Dask's memory limits (distributed's parse_memory_limit, dask's parse_bytes): `auto`, a share
 * of the machine (`0.5`), or a size with any unit Dask knows (`4GiB`, `1e9`, `500M`, `1PiB`).
 */
export function isDaskMemoryLimit(value: string): boolean {
  return /^(auto|(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*(b|[kmgtp]i?b?)?)$/i.test(value.trim());
}

/** Where a relative path in a setting starts: the folder of the file that set it, else `cwd`. */
function relativeTo(loaded: LoadedSettings, key: string, cwd: string): string {
  const origin = loaded.origins.get(key);
  return origin && 'file' in origin ? dirname(origin.file) : cwd;
}

/** The flag a choice of TLS files came from, for messages. */
function tlsFileFlags(flags: UpFlags): string[] {
  return (
    [
      ['--tls-dir', flags.tlsDir],
      ['--tls-ca', flags.tlsCa],
      ['--tls-cert', flags.tlsCert],
      ['--tls-key', flags.tlsKey],
    ] as const
  ).flatMap(([flag, value]) => (value === undefined ? [] : [flag]));
}

/**
 * Settings from a project file that loosen security: said, with the file, before `up` acts on
 * them, so a file somebody else put in the project is never followed unseen.
 */
function projectChoices(loaded: LoadedSettings, provider: ProviderName): string[] {
  const { settings, origins } = loaded;
  const fileOf = (key: string) => {
    const origin = origins.get(key);
    return origin?.source === 'project' ? origin.file : undefined;
  };
  const lines: [string | undefined, string][] = [
    [fileOf('provider'), `provider: ${settings.provider} (where the cluster runs, and who is billed)`],
    [settings.tls === 'off' ? fileOf('tls') : undefined, 'tls: off (no encryption, no authentication)'],
    [settings.tls === 'byo' ? fileOf('tls') : undefined, `tls: byo (its own certificates)`],
    [
      fileOf('tls_dir'),
      `tls_dir: ${settings.tls_dir} (whoever holds that CA's key can join or pose as the cluster)`,
    ],
  ];
  if (provider !== 'local') {
    lines.push(
      [
        settings.networking === 'public' ? fileOf('networking') : undefined,
        'networking: public (a public IP)',
      ],
      [
        fileOf('ingress'),
        `ingress: ${(settings.ingress ?? []).map((rule) => `${rule.cidr} on ${rule.ports.join(',')}`).join('; ')}`,
      ],
      // What every VM runs, with the cluster's keys in reach.
      [fileOf('image'), `image: ${settings.image}`],
      [fileOf('runtime'), `runtime: ${settings.runtime}`],
      [fileOf('aws.ami'), `aws.ami: ${settings.aws?.ami}`],
      [fileOf('gcp.image'), `gcp.image: ${settings.gcp?.image}`],
      [fileOf('gcp.image_family'), `gcp.image_family: ${settings.gcp?.image_family}`],
      [fileOf('digitalocean.image'), `digitalocean.image: ${settings.digitalocean?.image}`],
      // Root on every droplet, next to the role keys; and public addresses on private droplets.
      [
        fileOf('digitalocean.ssh_key'),
        `digitalocean.ssh_key: ${settings.digitalocean?.ssh_key} (whoever holds that key is root on every droplet)`,
      ],
      [
        settings.digitalocean?.egress === 'public' ? fileOf('digitalocean.egress') : undefined,
        'digitalocean.egress: public (public addresses on private droplets)',
      ],
      // Whose account is billed, and whose network's machines may reach a private cluster.
      [fileOf('gcp.project'), `gcp.project: ${settings.gcp?.project} (whose project is billed)`],
      [
        fileOf('azure.subscription_id'),
        `azure.subscription_id: ${settings.azure?.subscription_id} (whose subscription is billed)`,
      ],
      ...(
        [
          ['aws.vpc', settings.aws?.vpc],
          ['aws.subnet', settings.aws?.subnet],
          ['gcp.network', settings.gcp?.network],
          ['gcp.subnetwork', settings.gcp?.subnetwork],
          ['azure.vnet', settings.azure?.vnet],
          ['azure.subnet', settings.azure?.subnet],
          ['digitalocean.vpc', settings.digitalocean?.vpc],
        ] as const
      ).map(
        ([key, value]) =>
          [fileOf(key), `${key}: ${value} (the network whose machines may reach a private cluster)`] as [
            string | undefined,
            string,
          ],
      ),
    );
  }
  return lines.flatMap(([file, what]) => (file ? [`the project file ${file} sets ${what}`] : []));
}

/** What an Azure cluster cannot be: refused before anything is asked of Azure. */
function azureChecks(settings: Settings, networking: string, runtime: string): void {
  if (runtime === 'preinstalled')
    throw usageError(
      '--runtime preinstalled needs a machine image with Dask, and dcp has no Azure image setting yet',
      'use --runtime docker (the default): the VMs run Ubuntu 24.04 and the Dask image',
    );
  if (settings.azure?.subnet !== undefined && settings.azure?.vnet === undefined)
    throw usageError(
      '--subnet (azure.subnet) names a subnet of your VNet: it goes with --vpc',
      'pass --vpc RESOURCE_GROUP/VNET --subnet NAME, or neither for a VNet of the cluster’s own',
    );
  // A VNet of the cluster's own is reached by nobody but the cluster.
  if (networking === 'private' && settings.azure?.vnet === undefined)
    throw usageError(
      'a private Azure cluster goes in a VNet you can reach (a VPN, a peering, a VM of yours in it): a VNet of its own would be reached by nobody',
      'pass --vpc RESOURCE_GROUP/VNET [--subnet NAME], or --public',
    );
}

export async function planUp(flags: UpFlags, env = process.env, folder?: string): Promise<UpPlan> {
  const cwd = folder ?? workingFolder();
  if (flags.public && flags.private)
    throw usageError('--public and --private exclude each other', 'pick one');
  const pair = Boolean(flags.tlsCa || flags.tlsCert || flags.tlsKey);
  if (pair && !(flags.tlsCa && flags.tlsCert))
    throw usageError(
      '--tls-ca and --tls-cert go together (--tls-key is optional: without it, the key is in the --tls-cert file)',
      'pass --tls-ca CA --tls-cert CERT [--tls-key KEY], one pair for every role, or --tls-dir DIR',
    );
  if (pair && flags.tlsDir)
    throw usageError(
      '--tls-dir and --tls-ca/--tls-cert/--tls-key exclude each other',
      'pass one or the other',
    );
  // Naming your own files means bring-your-own, unless --tls says otherwise.
  const tlsFlag = flags.tls ?? (flags.tlsDir || pair ? 'byo' : undefined);
  const flagSettings = settingsFromFlags({ ...flags, tls: tlsFlag });
  const loaded = await loadSettings({ flags: flagSettings, env, cwd });
  const provider = loaded.settings.provider ?? 'local';
  // A provider not built yet is said before anything it would need (a zone, say).
  const settings = cloudSettings(provider, flags, loaded.settings);
  // What --save keeps. `tls: byo` alone would fail every later `up` (one pair of files has no
  // setting), so it is kept only with a folder.
  const chosen = cloudSettings(provider, flags, flagSettings);
  if (chosen.tls === 'byo' && !chosen.tls_dir) delete chosen.tls;
  if (provider !== 'local' && !REQUIRED[provider].sdkChain && !locationKnown(provider, settings, env))
    throw locationMissing(provider);
  const workers = settings.workers ?? 2;
  const name = flags.name === undefined ? generateName() : validateName(flags.name);
  const fromProject = projectChoices(loaded, provider);
  // `config set` and `--ingress` refuse the whole internet unless asked by name; a project file
  // or a variable never asked, so their wide rules need --allow-anywhere here.
  const ingressOrigin = loaded.origins.get('ingress');
  const open = (settings.ingress ?? []).filter((rule) => {
    const parsed = parseCidr(rule.cidr);
    return parsed.anywhere || parsed.wide;
  });
  if (
    provider !== 'local' &&
    open.length > 0 &&
    (ingressOrigin?.source === 'project' || ingressOrigin?.source === 'env') &&
    !flags.allowAnywhere
  )
    throw usageError(
      `the ${describeOrigin(ingressOrigin)} sets ingress ${open[0]!.cidr}, which opens ports ${open[0]!.ports.join(', ')} to much of the internet`,
      'pass --allow-anywhere if you mean it, or set narrower ingress (dcp config set ingress --cidr me)',
    );
  const warnings: string[] = [];
  // However it was asked for (a flag with --allow-anywhere, dcp.yaml), it is said every time.
  if (provider !== 'local')
    for (const rule of open)
      warnings.push(
        `ingress ${rule.cidr} opens ports ${rule.ports.join(', ')} to much of the internet (TLS still guards the scheduler)`,
      );
  if (provider === 'local' && (flags.ingress?.length ?? 0) > 0)
    warnings.push('--ingress does not apply to the local provider: it listens on 127.0.0.1 only');
  const networking = settings.networking ?? 'public';
  if (flags.egress !== undefined && networking !== 'private')
    throw usageError(
      '--egress is how private droplets reach the internet: it goes with --private',
      'add --private, or drop --egress (public droplets have their own way out)',
    );
  const runtime = settings.runtime ?? 'docker';
  if (provider === 'azure') azureChecks(settings, networking, runtime);
  // DigitalOcean's and Azure's providers check the way out themselves.
  if (
    provider !== 'local' &&
    provider !== 'digitalocean' &&
    provider !== 'azure' &&
    networking === 'private' &&
    runtime === 'docker'
  ) {
    warnings.push(
      'private VMs install Docker and pull the Dask image over the network: the subnet needs a NAT gateway (or a machine image with Dask and --runtime preinstalled)',
    );
  }
  const vmOnly = (['image', 'runtime', 'idleTimeout'] as const).filter((flag) => flags[flag] !== undefined);
  if (provider === 'local' && vmOnly.length > 0)
    warnings.push(
      `${vmOnly.map((f) => `--${f.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')} apply to cloud VMs, not to the local provider`,
    );

  const mode = settings.tls ?? 'auto';
  const named = tlsFileFlags(flags);
  const limits = (
    [
      ['--tls-min-version', flags.tlsMinVersion],
      ['--tls-max-version', flags.tlsMaxVersion],
      ['--tls-ciphers', flags.tlsCiphers],
    ] as const
  ).flatMap(([flag, value]) => (value === undefined ? [] : [flag]));
  if (mode === 'off' && limits.length > 0)
    throw usageError(`--tls off has no TLS for ${limits.join(', ')} to set`, 'drop them, or keep TLS on');
  if (Number(settings.tls_max_version) < Number(settings.tls_min_version ?? 1.2))
    throw usageError(
      `tls_max_version ${settings.tls_max_version} is below tls_min_version ${settings.tls_min_version ?? '1.2'}`,
      'raise --tls-max-version, or leave it out',
    );
  if (mode !== 'byo' && named.length > 0)
    throw usageError(
      `--tls ${mode} ${mode === 'off' ? 'uses no certificates' : 'makes its own certificates'}; ${named.join(', ')} ${named.length === 1 ? 'is' : 'are'} for --tls byo`,
      'drop them, or pass --tls byo',
    );
  let tls: TlsChoice;
  switch (mode) {
    case 'auto':
      tls = { mode: 'auto' };
      break;
    case 'byo':
      if (pair)
        tls = {
          mode: 'byo',
          ca: resolve(flags.tlsCa!),
          cert: resolve(flags.tlsCert!),
          ...(flags.tlsKey ? { key: resolve(flags.tlsKey) } : {}),
        };
      else if (settings.tls_dir)
        tls = { mode: 'byo', dir: resolve(relativeTo(loaded, 'tls_dir', cwd), settings.tls_dir) };
      else
        throw usageError(
          '--tls byo needs your files',
          'pass --tls-dir DIR (the dcp certs gen layout), or --tls-ca CA --tls-cert CERT [--tls-key KEY]',
        );
      break;
    case 'off': {
      const exposed = provider !== 'local' && (settings.networking ?? 'public') === 'public';
      // Any local user may run code through a scheduler without TLS: a project file, which
      // someone else may have written into the repository, does not get to choose that alone.
      const tlsOrigin = loaded.origins.get('tls');
      if (tlsOrigin?.source === 'project' && !flags.insecure) {
        throw usageError(
          `the ${describeOrigin(tlsOrigin)} sets tls: off, which lets anyone who can reach the scheduler run code on it`,
          'pass --insecure if you mean it, or --tls auto',
        );
      }
      if (exposed && !flags.insecure) {
        throw usageError(
          '--tls off on a public network would let anyone who can reach the scheduler run code on it',
          'keep TLS (the default), use --private, or pass --insecure if you really mean it',
        );
      }
      warnings.push(
        `TLS is off: traffic to and within ${name} is unencrypted and unauthenticated${provider === 'local' ? ' (it stays on 127.0.0.1)' : ''}`,
      );
      tls = { mode: 'off' };
      break;
    }
  }

  const timeoutMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout);
  if (flags.timeout !== undefined && timeoutMs === undefined)
    throw usageError(
      `--timeout ${JSON.stringify(flags.timeout)} is not a duration`,
      'for example --timeout 90s or --timeout 15m',
    );
  const waitWorkers = flags.waitWorkers === undefined ? workers : Number(flags.waitWorkers);
  if (!Number.isInteger(waitWorkers) || waitWorkers < 0 || waitWorkers > workers) {
    throw usageError(
      `--wait-workers ${JSON.stringify(flags.waitWorkers)} must be a whole number from 0 to --workers (${workers})`,
      'for example --wait-workers 1 to be ready as soon as one worker is',
    );
  }
  if (flags.memoryLimit !== undefined && !isDaskMemoryLimit(flags.memoryLimit)) {
    throw usageError(
      `--memory-limit ${JSON.stringify(flags.memoryLimit)} is not a size`,
      'for example --memory-limit 4GiB, 0.5 (of the machine) or auto',
    );
  }

  return {
    spec: {
      name,
      provider,
      workers,
      ...(settings.threads === undefined ? {} : { threads: settings.threads }),
      ...(flags.memoryLimit === undefined ? {} : { memoryLimit: flags.memoryLimit.trim() }),
      networking,
      // A public cloud scheduler is open to the caller's own address unless told otherwise.
      ingress:
        provider === 'local'
          ? []
          : (settings.ingress ?? (networking === 'public' ? [{ ports: DASK_PORTS, cidr: ME }] : [])),
      ...(flags.python === undefined ? {} : { python: flags.python }),
      cloud: provider === 'local' ? {} : { ...(settings[provider] as Record<string, string> | undefined) },
      runtime,
      ...(settings.image === undefined ? {} : { image: settings.image }),
      idleTimeoutSeconds: Math.round(parseDuration(settings.idle_timeout ?? '1h')! / 1000),
    },
    tls,
    timeoutMs,
    nameGenerated: flags.name === undefined,
    settings,
    chosen,
    wait: flags.wait,
    waitWorkers,
    warnings,
    fromProject,
  };
}
