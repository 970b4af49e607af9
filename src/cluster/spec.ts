/**
 * From flags and settings to what `up` will do: the cluster spec, the TLS choice and the
 * waiting rules. Every bad combination is a usage error naming the flag, before anything starts.
 */
import { resolve } from 'node:path';
import { loadSettings } from '../config/load.js';
import { parseSettingValue, type Settings } from '../config/schema.js';
import { usageError } from '../errors.js';
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
  timeout?: string;
  wait: boolean;
  waitWorkers?: string;
  insecure: boolean;
  python?: string;
}

export interface UpPlan {
  spec: ClusterSpec;
  tls: TlsChoice;
  /** Undefined: the provider's default. */
  timeoutMs: number | undefined;
  wait: boolean;
  waitWorkers: number;
  warnings: string[];
}

/** Flags that are settings, checked exactly as `dcp config set` checks them. */
function settingsFromFlags(flags: UpFlags): Settings {
  const given: [string, string | undefined, string][] = [
    ['provider', flags.provider, '--provider'],
    ['workers', flags.workers, '--workers'],
    ['threads', flags.threads, '--threads'],
    ['tls', flags.tls, '--tls'],
    ['tls_dir', flags.tlsDir, '--tls-dir'],
    ['networking', flags.public ? 'public' : flags.private ? 'private' : undefined, '--public/--private'],
  ];
  const settings: Record<string, unknown> = {};
  for (const [key, value, flag] of given) {
    if (value !== undefined) settings[key] = parseSettingValue(key, value, flag);
  }
  return settings as Settings;
}

export async function planUp(flags: UpFlags, env = process.env): Promise<UpPlan> {
  if (flags.public && flags.private) throw usageError('--public and --private exclude each other', 'pick one');
  const trio = [flags.tlsCa, flags.tlsCert, flags.tlsKey];
  if (trio.some(Boolean) && !trio.every(Boolean)) throw usageError('--tls-ca, --tls-cert and --tls-key go together', 'pass all three (one pair used by every role), or --tls-dir DIR');
  if (trio.every(Boolean) && flags.tlsDir) throw usageError('--tls-dir and --tls-ca/--tls-cert/--tls-key exclude each other', 'pass one or the other');
  // Naming your own files means bring-your-own, unless --tls says otherwise.
  const tlsFlag = flags.tls ?? (flags.tlsDir || trio.every(Boolean) ? 'byo' : undefined);
  const { settings } = await loadSettings({ flags: settingsFromFlags({ ...flags, tls: tlsFlag }), env });

  const provider = settings.provider ?? 'local';
  const workers = settings.workers ?? 2;
  const name = flags.name === undefined ? generateName() : validateName(flags.name);
  const warnings: string[] = [];

  let tls: TlsChoice;
  switch (settings.tls ?? 'auto') {
    case 'auto':
      if (trio.some(Boolean) || flags.tlsDir) throw usageError('--tls auto makes its own certificates; --tls-dir and --tls-ca/--tls-cert/--tls-key are for --tls byo', 'drop them, or pass --tls byo');
      tls = { mode: 'auto' };
      break;
    case 'byo':
      if (trio.every(Boolean)) tls = { mode: 'byo', ca: resolve(flags.tlsCa!), cert: resolve(flags.tlsCert!), key: resolve(flags.tlsKey!) };
      else if (settings.tls_dir) tls = { mode: 'byo', dir: resolve(settings.tls_dir) };
      else throw usageError('--tls byo needs your files', 'pass --tls-dir DIR (the dcp certs gen layout), or --tls-ca F --tls-cert F --tls-key F');
      break;
    case 'off': {
      const exposed = provider !== 'local' && (settings.networking ?? 'public') === 'public';
      if (exposed && !flags.insecure) {
        throw usageError('--tls off on a public network would let anyone who can reach the scheduler run code on it', 'keep TLS (the default), use --private, or pass --insecure if you really mean it');
      }
      warnings.push(`TLS is off: traffic to and within ${name} is unencrypted and unauthenticated${provider === 'local' ? ' (it stays on 127.0.0.1)' : ''}`);
      tls = { mode: 'off' };
      break;
    }
  }

  const timeoutMs = flags.timeout === undefined ? undefined : parseDuration(flags.timeout);
  if (flags.timeout !== undefined && timeoutMs === undefined) throw usageError(`--timeout ${JSON.stringify(flags.timeout)} is not a duration`, 'for example --timeout 90s or --timeout 15m');
  const waitWorkers = flags.waitWorkers === undefined ? workers : Number(flags.waitWorkers);
  if (!Number.isInteger(waitWorkers) || waitWorkers < 0 || waitWorkers > workers) {
    throw usageError(`--wait-workers ${JSON.stringify(flags.waitWorkers)} must be a whole number from 0 to --workers (${workers})`, 'for example --wait-workers 1 to be ready as soon as one worker is');
  }
  if (flags.memoryLimit !== undefined && !/^(auto|0|\d+(\.\d+)?\s*([kmgt]i?b?)?|0?\.\d+|1(\.0+)?)$/i.test(flags.memoryLimit.trim())) {
    throw usageError(`--memory-limit ${JSON.stringify(flags.memoryLimit)} is not a size`, 'for example --memory-limit 4GiB, 0.5 (of the machine) or auto');
  }

  return {
    spec: {
      name,
      provider,
      workers,
      ...(settings.threads === undefined ? {} : { threads: settings.threads }),
      ...(flags.memoryLimit === undefined ? {} : { memoryLimit: flags.memoryLimit.trim() }),
      networking: settings.networking ?? 'public',
      ...(flags.python === undefined ? {} : { python: flags.python }),
    },
    tls,
    timeoutMs,
    wait: flags.wait,
    waitWorkers,
    warnings,
  };
}
