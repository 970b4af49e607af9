/**
 * The user's own Dask configuration, merged as Dask merges it (dask/config.py): every YAML/JSON
 * file in Dask's search path (`DASK_ROOT_CONFIG` or /etc/dask, `<prefix>/etc/dask` of the Python,
 * ~/.config/dask, `DASK_CONFIG`), folders in name order, later files winning, then `DASK_*`
 * variables over them. dcp reads it to never write a value weaker than one the user chose.
 * dcp's own client file is left out: it is dcp's value, not the user's.
 */
import { readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { readRegularFile } from '../util/files.js';
import { runPythonCode } from '../util/python.js';

type Config = Record<string, unknown>;

const isMapping = (value: unknown): value is Config =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Dask takes `min-version` and `min_version` as one key: whichever the mapping has already. */
function canonicalKey(key: string, config: Config): string {
  if (key in config) return key;
  const alternative = key.includes('_') ? key.replaceAll('_', '-') : key.replaceAll('-', '_');
  return alternative in config ? alternative : key;
}

/** dask.config.update: `extra` wins, mappings merge key by key. */
function merge(base: Config, extra: Config): Config {
  for (const [rawKey, value] of Object.entries(extra)) {
    const key = canonicalKey(rawKey, base);
    const current = base[key];
    base[key] = isMapping(current) && isMapping(value) ? merge(current, value) : value;
  }
  return base;
}

/** `a.b.c` in the merged configuration, with Dask's `-`/`_` equivalence. */
export function daskConfigGet(config: Config, dotted: string): unknown {
  let node: unknown = config;
  for (const part of dotted.split('.')) {
    if (!isMapping(node)) return undefined;
    node = node[canonicalKey(part, node)];
  }
  return node;
}

/** Python's ast.literal_eval for what a variable holds in practice: numbers, booleans, None, quoted text. */
function literal(value: string): unknown {
  const text = value.trim();
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return Number(text);
  if (text === 'True' || text === 'False') return text === 'True';
  if (text === 'None') return null;
  const quoted = /^(['"])(.*)\1$/s.exec(text);
  return quoted ? quoted[2] : value;
}

/** dask.config.collect_env: `DASK_DISTRIBUTED__COMM__TLS__MIN_VERSION=1.3` → distributed.comm.tls.min_version. */
function fromEnvironment(env: NodeJS.ProcessEnv): Config {
  const result: Config = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('DASK_') || value === undefined || name === 'DASK_INTERNAL_INHERIT_CONFIG') continue;
    const path = name.slice(5).toLowerCase().split('__');
    let node = result;
    for (const part of path.slice(0, -1)) {
      const key = canonicalKey(part, node);
      if (!isMapping(node[key])) node[key] = {};
      node = node[key] as Config;
    }
    node[canonicalKey(path.at(-1)!, node)] = literal(value);
  }
  return result;
}

/** `sys.prefix` and `site.PREFIXES` of a Python: where its own `etc/dask` is. */
async function pythonPrefixes(python: string): Promise<string[]> {
  try {
    const { stdout } = await runPythonCode(
      python,
      'import json, site, sys; print(json.dumps([sys.prefix, *site.PREFIXES]))',
    );
    return (JSON.parse(stdout) as unknown[]).filter((p): p is string => typeof p === 'string');
  } catch {
    return [];
  }
}

/** The YAML and JSON files Dask reads, in its order. */
async function configFiles(env: NodeJS.ProcessEnv, prefixes: string[]): Promise<string[]> {
  const home = env.HOME || homedir();
  const paths = [
    env.DASK_ROOT_CONFIG ?? '/etc/dask',
    ...prefixes.map((prefix) => join(prefix, 'etc', 'dask')),
    join(home, '.config', 'dask'),
    ...(env.DASK_CONFIG ? [env.DASK_CONFIG] : []),
  ].map((path) => resolve(path.replace(/^~(?=$|\/)/, home)));
  // Dask keeps the last of duplicate paths.
  const unique = [...new Set([...paths].reverse())].reverse();
  const files: string[] = [];
  for (const path of unique) {
    const info = await stat(path).catch(() => undefined);
    if (info?.isDirectory()) {
      const names = await readdir(path).catch(() => []);
      files.push(
        ...names
          .filter((name) => ['.json', '.yaml', '.yml'].includes(extname(name).toLowerCase()))
          .sort()
          .map((name) => join(path, name)),
      );
    } else if (info) {
      files.push(path);
    }
  }
  return files;
}

export interface UserDaskConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** The Python whose `<prefix>/etc/dask` counts too. */
  python?: string;
  /** Files that are dcp's, not the user's. */
  exclude?: string[];
}

export interface UserDaskConfig {
  config: Config;
  /** Files Dask would read that dcp could not: what they say is not known. */
  unreadable: string[];
}

export async function userDaskConfig(options: UserDaskConfigOptions = {}): Promise<UserDaskConfig> {
  const env = options.env ?? process.env;
  const prefixes = options.python ? await pythonPrefixes(options.python) : [];
  const excluded = new Set(options.exclude ?? []);
  const config: Config = {};
  const unreadable: string[] = [];
  for (const file of await configFiles(env, prefixes)) {
    if (excluded.has(file)) continue;
    try {
      const text = (await readRegularFile(file)).data.toString('utf8');
      // As PyYAML's safe_load reads it: YAML 1.1, a repeated key is the last one. A file beyond
      // yaml's alias limit (a billion laughs) counts as unreadable: nothing asserted from it.
      const doc = parseDocument(text, { version: '1.1', uniqueKeys: false });
      if (doc.errors.length > 0) throw doc.errors[0];
      const content = doc.toJS() as unknown;
      if (isMapping(content)) merge(config, content);
    } catch {
      unreadable.push(file);
    }
  }
  return { config: merge(config, fromEnvironment(env)), unreadable };
}

/** The TLS versions Dask knows, weakest first. */
const TLS_VERSIONS = [1.2, 1.3] as const;
export type TlsVersion = (typeof TLS_VERSIONS)[number];
/** Dask's own minimum when nobody says otherwise. */
export const DEFAULT_TLS_MIN_VERSION: TlsVersion = 1.2;

/**
 * The user's TLS minimum where it is stricter than Dask's default (so dcp keeps it), else
 * undefined. When a file could not be read, its value is not known: nothing is asserted, so
 * nothing is lowered.
 */
export function stricterMinVersion({ config, unreadable }: UserDaskConfig): TlsVersion | undefined {
  if (unreadable.length > 0) return undefined;
  const theirs = Number(daskConfigGet(config, 'distributed.comm.tls.min-version'));
  return TLS_VERSIONS.find((version) => version === theirs && version > DEFAULT_TLS_MIN_VERSION);
}
