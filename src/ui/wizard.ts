/**
 * The questions `dcp up` asks on a terminal: only what flags and settings leave open, each with
 * a default, each answered by a flag too. The answers come back as flags, so a guided run and a
 * scripted one go through the same checks. The questions are put by a `Prompter`, which tests
 * replace with recorded answers.
 */
import type { LoadedSettings } from '../config/load.js';
import { buildIngressRules } from '../config/ingress.js';
import type { ByoFiles, TlsCheck } from '../cluster/tls.js';
import {
  AZURE_LOCATION,
  GUID,
  GCP_PROJECT,
  PROVIDERS,
  type ProviderName,
  type Settings,
} from '../config/schema.js';
import { cloudFlagKey, cloudLocation, locationKnown, type UpFlags } from '../cluster/spec.js';
import { generateName, validateName } from '../cluster/names.js';
import { shellCommand } from '../util/shell.js';
import { DcpError, messageOf } from '../errors.js';

export interface Choice<T> {
  value: T;
  name: string;
  description?: string;
  /** Shown, but not selectable, with this reason. */
  disabled?: string;
}

export interface Prompter {
  select<T extends string>(question: { message: string; choices: Choice<T>[]; default?: T }): Promise<T>;
  input(question: {
    message: string;
    default?: string;
    validate?: (value: string) => true | string;
  }): Promise<string>;
  confirm(question: { message: string; default: boolean }): Promise<boolean>;
  /** Text between questions: problems to fix, the review. */
  say(text: string): void;
}

export interface WizardContext {
  flags: UpFlags;
  env: NodeJS.ProcessEnv;
  loaded: LoadedSettings;
  /** Problems Dask would have with these files (the `certs verify` logic); empty when fine. */
  checkTls(files: ByoFiles): Promise<TlsCheck>;
  /** The provider's plan in plain words, for the review. */
  plan(flags: UpFlags): Promise<string[]>;
  /** Whether a cluster of this name exists already. */
  nameTaken(name: string): boolean;
  /** Where the cloud's own configuration would put the cluster (AWS: the profile's region), offered as the answer. */
  configuredLocation?(provider: ProviderName): Promise<string | undefined>;
  /**
   * GCP's project, Azure's subscription, as the cloud's own configuration gives it (gcloud, the
   * credentials, `az account set`); the question is asked only without one.
   */
  configuredAccount?(provider: 'gcp' | 'azure'): Promise<string | undefined>;
}

export interface WizardResult {
  flags: UpFlags;
}

/** Clouds whose clusters live in an account of theirs: what it is called, and how to ask for it. */
const ACCOUNT_QUESTION = {
  gcp: {
    flag: 'project',
    saved: (settings: Settings) => Boolean(settings.gcp?.project),
    message: 'Google Cloud project id',
    pattern: GCP_PROJECT,
    invalid: 'a project id: 6 to 30 lowercase letters, digits and hyphens',
  },
  azure: {
    flag: 'subscription',
    saved: (settings: Settings) => Boolean(settings.azure?.subscription_id),
    message: 'Azure subscription id',
    pattern: GUID,
    invalid: 'a subscription id is a GUID (az account list --output table shows yours)',
  },
} as const;

const PROVIDER_NAMES: Record<ProviderName, string> = {
  local: 'local: processes on this machine',
  aws: 'AWS EC2',
  gcp: 'Google Cloud (GCE)',
  azure: 'Azure VMs',
  digitalocean: 'DigitalOcean droplets',
};

const LOCATION_QUESTION: Record<Exclude<ProviderName, 'local'>, string> = {
  aws: 'AWS region',
  gcp: 'GCP zone',
  azure: 'Azure location',
  digitalocean: 'DigitalOcean region',
};

/** The non-interactive command line that does what the answers say. */
export function equivalentCommand(flags: UpFlags): string {
  const args = ['dcp', 'up'];
  const add = (flag: string, value: string | undefined) => {
    if (value !== undefined && value !== '') args.push(flag, value);
  };
  add('--provider', flags.provider);
  add('--region', flags.region);
  add('--zone', flags.zone);
  add('--project', flags.project);
  add('--subscription', flags.subscription);
  if (flags.public) args.push('--public');
  if (flags.private) args.push('--private');
  add('--vpc', flags.vpc);
  add('--subnet', flags.subnet);
  add('--egress', flags.egress);
  for (const rule of flags.ingress ?? []) add('--ingress', rule);
  if (flags.allowAnywhere) args.push('--allow-anywhere');
  add('--tls', flags.tls);
  add('--tls-dir', flags.tlsDir);
  add('--tls-ca', flags.tlsCa);
  add('--tls-cert', flags.tlsCert);
  add('--tls-key', flags.tlsKey);
  if (flags.insecure) args.push('--insecure');
  add('--workers', flags.workers);
  add('--threads', flags.threads);
  add('--instance-type', flags.instanceType);
  add('--image-family', flags.imageFamily);
  add('--memory-limit', flags.memoryLimit);
  add('--python', flags.python);
  add('--timeout', flags.timeout);
  if (!flags.wait) args.push('--no-wait');
  add('--wait-workers', flags.waitWorkers);
  add('--name', flags.name);
  if (flags.save) args.push('--save');
  return shellCommand(args);
}

/** A check that throws, as a question's validate function: true, or the reason in words. */
const validateWith =
  (check: (value: string) => unknown) =>
  (value: string): true | string => {
    try {
      check(value);
      return true;
    } catch (error) {
      // The way out too, as on the command line: "pass --allow-anywhere if you really mean it".
      return error instanceof DcpError && error.hint ? `${error.message}: ${error.hint}` : messageOf(error);
    }
  };

const required = (value: string): true | string => (value.trim() ? true : 'a path is needed here');

const wholeNumber = (min: number, max: number) => (value: string) =>
  /^\d+$/.test(value.trim()) && Number(value) >= min && Number(value) <= max
    ? true
    : `a whole number from ${min} to ${max}`;

export class WizardCancelled extends DcpError {
  constructor() {
    super('nothing was created: you said no at the review', {
      hint: 'run dcp up again, or pass the flags the review showed',
    });
  }
}

export async function runWizard(context: WizardContext, prompter: Prompter): Promise<WizardResult> {
  const flags: UpFlags = { ...context.flags, ingress: [...(context.flags.ingress ?? [])] };
  const { settings, origins } = context.loaded;
  /** A setting counts as answered when a flag or a file set it, not when it is only the default. */
  const open = (key: string) => (origins.get(key)?.source ?? 'default') === 'default';

  // 1. Provider.
  if (flags.provider === undefined && open('provider')) {
    flags.provider = await prompter.select<ProviderName>({
      message: 'Where should the cluster run?',
      choices: PROVIDERS.map((value) => ({ value, name: PROVIDER_NAMES[value] })),
      default: settings.provider ?? 'local',
    });
  }
  const provider = (flags.provider ?? settings.provider ?? 'local') as ProviderName;

  // 2. Networking, for clouds.
  let isPublic = false;
  if (provider !== 'local') {
    const { flag } = cloudLocation(provider);
    if (flags[flag] === undefined && !locationKnown(provider, settings, context.env)) {
      const configured = await context.configuredLocation?.(provider);
      // gcloud's and az's configured places are used as they would, unasked (and said); AWS's region is offered.
      if ((provider === 'gcp' || provider === 'azure') && configured)
        prompter.say(
          `${LOCATION_QUESTION[provider]}: ${configured} (${provider === 'gcp' ? 'gcloud' : 'az'}'s configuration)`,
        );
      else
        flags[flag] = await prompter.input({
          message: LOCATION_QUESTION[provider],
          ...(configured ? { default: configured } : {}),
          validate: (v) =>
            !v.trim()
              ? `the cluster needs a ${flag}`
              : provider === 'azure' && !AZURE_LOCATION.test(v.trim())
                ? 'a location name, like westeurope or eastus2 (az account list-locations --output table)'
                : true,
        });
    }
    if (provider === 'gcp' || provider === 'azure') {
      const account = ACCOUNT_QUESTION[provider];
      if (flags[account.flag] === undefined && !account.saved(settings)) {
        // The cloud's own configuration is used as its CLI would, unasked, and said: who is billed.
        const configured = await context.configuredAccount?.(provider);
        if (configured)
          prompter.say(
            `${account.message.replace(/ id$/, '')}: ${configured} (${provider === 'gcp' ? 'gcloud' : 'az'}'s configuration)`,
          );
        else
          flags[account.flag] = await prompter.input({
            message: account.message,
            validate: (v) => (account.pattern.test(v.trim()) ? true : account.invalid),
          });
      }
    }
    if (!flags.public && !flags.private && open('networking')) {
      const networking = await prompter.select<'public' | 'private'>({
        message: 'How will you reach the scheduler?',
        choices: [
          { value: 'public', name: 'public IP, open only to the addresses you allow' },
          { value: 'private', name: 'private network (VPC) only: you connect from inside it, or over a VPN' },
        ],
        default: settings.networking ?? 'public',
      });
      flags[networking] = true;
    }
    isPublic = flags.public ?? (!flags.private && (settings.networking ?? 'public') === 'public');
    if (isPublic && flags.ingress!.length === 0 && open('ingress')) {
      const who = await prompter.select<'me' | 'cidrs'>({
        message: 'Who may connect to ports 8786 (scheduler) and 8787 (dashboard)?',
        choices: [
          { value: 'me', name: 'only this machine’s public address (looked up when the cluster is made)' },
          { value: 'cidrs', name: 'networks I type (CIDR blocks)' },
        ],
        default: 'me',
      });
      if (who === 'me') {
        flags.ingress!.push('me');
      } else {
        const typed = await prompter.input({
          message: 'CIDR blocks, comma-separated (e.g. 203.0.113.0/24, 10.1.0.0/16)',
          validate: validateWith((value) => {
            const cidrs = value
              .split(',')
              .map((c) => c.trim())
              .filter(Boolean);
            if (cidrs.length === 0) throw new Error('at least one CIDR block');
            // The checks `--ingress` gets: a wide public range needs --allow-anywhere, by name.
            buildIngressRules({ cidrs, allowAnywhere: flags.allowAnywhere ?? false });
          }),
        });
        flags.ingress!.push(
          ...typed
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean),
        );
      }
    }
    if (!isPublic && flags.vpc === undefined && !(provider === 'azure' && settings.azure?.vnet)) {
      // On Azure a VNet of the cluster's own would be reached by nobody: it must be the user's.
      const vpc = await prompter.input(
        provider === 'azure'
          ? {
              message: 'Which VNet of yours, as RESOURCE_GROUP/VNET (or its resource id)?',
              validate: (v) =>
                /^[^/\s]+\/[^/\s]+$|^\/subscriptions\//i.test(v.trim())
                  ? true
                  : 'RESOURCE_GROUP/VNET, e.g. net-rg/dask-vnet (az network vnet list --output table)',
            }
          : { message: 'Which VPC/network? (empty: the default one)', default: '' },
      );
      if (vpc.trim()) flags.vpc = vpc.trim();
    }
    if (!isPublic && flags.subnet === undefined && provider !== 'digitalocean') {
      const subnet = await prompter.input({
        message:
          provider === 'azure'
            ? 'Which subnet? (empty: the VNet’s first)'
            : 'Which subnet? (empty: one of the network’s own)',
        default: '',
      });
      if (subnet.trim()) flags.subnet = subnet.trim();
    }
    const docker = (flags.runtime ?? settings.runtime ?? 'docker') === 'docker';
    if (
      !isPublic &&
      provider === 'digitalocean' &&
      docker &&
      flags.egress === undefined &&
      !settings.digitalocean?.egress
    ) {
      flags.egress = await prompter.select<'nat' | 'public'>({
        message: 'Private droplets install Docker from the internet: how do they get there?',
        choices: [
          { value: 'nat', name: 'the VPC’s NAT gateway (dcp checks that it has one)' },
          {
            value: 'public',
            name: 'a public address for the way out only: the firewall admits nothing from outside the VPC',
          },
        ],
        default: 'nat',
      });
    }
  }

  // 3. TLS. A saved `byo` without its folder answers nothing.
  const savedTls = !open('tls') && !(settings.tls === 'byo' && !settings.tls_dir);
  const tlsGiven =
    flags.tls !== undefined || flags.tlsDir !== undefined || flags.tlsCa !== undefined || savedTls;
  while (!tlsGiven && flags.tls === undefined) {
    const mode = await prompter.select<'auto' | 'byo' | 'off'>({
      message: 'TLS for scheduler, workers and client?',
      choices: [
        { value: 'auto', name: 'auto: a fresh CA and certificates for this cluster (recommended)' },
        { value: 'byo', name: 'bring your own PEM files' },
        { value: 'off', name: 'off: plain TCP, unencrypted and unauthenticated' },
      ],
      default: 'auto',
    });
    if (mode === 'off') {
      if (isPublic && !flags.insecure) {
        prompter.say(
          'TLS off is refused on a public network: anyone who can reach the scheduler could run code on it. Choose another mode (or pass --tls off --insecure).',
        );
        continue;
      }
      if (
        !(await prompter.confirm({
          message: 'Really turn TLS off? Anyone who can reach the scheduler can run code on it.',
          default: false,
        }))
      )
        continue;
    }
    flags.tls = mode === 'byo' && !(await askForFiles(context, prompter, flags)) ? 'auto' : mode;
  }

  // 4. Size and name.
  if (flags.workers === undefined && open('workers')) {
    flags.workers = await prompter.input({
      message: 'How many workers?',
      default: String(settings.workers ?? 2),
      validate: wholeNumber(1, 1000),
    });
  }
  if (flags.threads === undefined && open('threads')) {
    const threads = await prompter.input({
      message: 'Threads per worker? (empty: Dask decides from the CPUs)',
      default: '',
      validate: (v) => (v.trim() === '' ? true : wholeNumber(1, 1024)(v)),
    });
    if (threads.trim()) flags.threads = threads.trim();
  }
  if (
    provider !== 'local' &&
    flags.instanceType === undefined &&
    open(cloudFlagKey(provider, 'instanceType')!)
  ) {
    const type = await prompter.input({
      message: 'Instance type for the workers? (empty: the provider’s default)',
      default: '',
    });
    if (type.trim()) flags.instanceType = type.trim();
  }
  if (flags.name === undefined) {
    let suggestion = generateName();
    for (let i = 0; i < 5 && context.nameTaken(suggestion); i++) suggestion = generateName();
    flags.name = await prompter.input({
      message: 'Cluster name?',
      default: suggestion,
      validate: validateWith((value) => {
        validateName(value);
        if (context.nameTaken(value))
          throw new Error(`a cluster named ${value} already exists: pick another name`);
      }),
    });
  }

  // 5. Review.
  const plan = await context.plan(flags);
  prompter.say(
    [
      '',
      'This will:',
      ...plan.map((line) => `  • ${line}`),
      '',
      'The same without questions:',
      `  ${equivalentCommand(flags)}`,
      '',
    ].join('\n'),
  );
  if (!flags.save)
    flags.save = await prompter.confirm({ message: 'Save these choices as your defaults?', default: false });
  if (!(await prompter.confirm({ message: 'Create it?', default: true }))) throw new WizardCancelled();
  return { flags };
}

/**
 * BYO files: asked, checked on the spot with the verify rules, and asked again until they work
 * or the user lets dcp make a set instead (then false).
 */
async function askForFiles(context: WizardContext, prompter: Prompter, flags: UpFlags): Promise<boolean> {
  const layout = await prompter.select<'dir' | 'files'>({
    message: 'Your files are…',
    choices: [
      {
        value: 'dir',
        name: 'a folder in the dcp certs gen layout (ca.pem, scheduler.pem, scheduler-key.pem, …)',
      },
      { value: 'files', name: 'one CA, and one certificate and key used by every role' },
    ],
    default: 'dir',
  });
  const path = async (message: string) => (await prompter.input({ message, validate: required })).trim();
  for (;;) {
    let files: ByoFiles;
    if (layout === 'dir') {
      files = { dir: await path('Folder with the files') };
    } else {
      const ca = await path('CA certificate (PEM)');
      const cert = await path('Certificate (PEM)');
      const key = (
        await prompter.input({
          message: 'Private key (PEM; empty: it is in the certificate file)',
          default: '',
        })
      ).trim();
      files = { ca, cert, ...(key ? { key } : {}) };
    }
    const { problems, warnings } = await context.checkTls(files);
    if (problems.length === 0) {
      if (warnings.length > 0)
        prompter.say(`Dask will accept these files, but:\n${warnings.map((w) => `  ! ${w}`).join('\n')}`);
      if ('dir' in files) flags.tlsDir = files.dir;
      else
        Object.assign(flags, {
          tlsCa: files.ca,
          tlsCert: files.cert,
          ...(files.key ? { tlsKey: files.key } : {}),
        });
      return true;
    }
    prompter.say(`Dask would not accept these files:\n${problems.map((p) => `  ✗ ${p}`).join('\n')}`);
    if (
      !(await prompter.confirm({
        message: 'Try other files? (no: let dcp make a fresh CA and certificates)',
        default: true,
      }))
    )
      return false;
  }
}
