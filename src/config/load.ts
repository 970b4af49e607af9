/**
 * The one settings loader. Precedence, highest first: flags > `DCP_*` environment > project file
 * (project.ts says which one is trusted) > the user's `dcp.yaml` in Dask's config folder >
 * defaults. Each value remembers where it came from, for `dcp config list --show-origin`.
 */

import { userSettingsFile, workingFolder } from './paths.js';
import { DEFAULTS, parseSettingValue, SETTING_KEYS, validateSettings, type Settings } from './schema.js';
import { findProjectSettings, type SkippedFile } from './project.js';
import { readYaml } from './yaml-file.js';

export type Origin =
  | { source: 'flag' }
  | { source: 'env'; variable: string }
  | { source: 'project'; file: string }
  | { source: 'user'; file: string }
  | { source: 'default' };

export interface LoadedSettings {
  settings: Settings;
  /** Per key (`aws.region`), where its value came from. */
  origins: Map<string, Origin>;
  files: { user: string; project: string | null };
  /** Project files found but not trusted, with why. */
  skipped: SkippedFile[];
}

export interface LoadOptions {
  flags?: Settings;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where a skipped project file is named (once per process); stderr by default. */
  warn?: (message: string) => void;
}

/** `aws.region` → `DCP_AWS_REGION` */
export function envVariable(key: string): string {
  return `DCP_${key.replace('.', '_').toUpperCase()}`;
}

/** The nested settings as `key → value` for every key that has one. */
export function flatten(settings: Settings): Map<string, unknown> {
  const flat = new Map<string, unknown>();
  for (const key of SETTING_KEYS.keys()) {
    const [group, name] = key.split('.') as [keyof Settings, string | undefined];
    const value =
      name === undefined ? settings[group] : (settings[group] as Record<string, unknown> | undefined)?.[name];
    if (value !== undefined) flat.set(key, value);
  }
  return flat;
}

export function unflatten(flat: Map<string, unknown>): Settings {
  const nested: Record<string, unknown> = {};
  for (const [key, value] of flat) {
    const [group, name] = key.split('.') as [string, string | undefined];
    if (name === undefined) nested[group] = value;
    else nested[group] = { ...(nested[group] as Record<string, unknown> | undefined), [name]: value };
  }
  return nested as Settings;
}

/** Project files already named in a warning by this process: each is named once. */
const warnedSkipped = new Set<string>();

function warnToStderr(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

async function userSettings(file: string): Promise<Settings> {
  const content = await readYaml(file);
  return validateSettings(content?.dcp, file, 'dcp');
}

function envSettings(env: NodeJS.ProcessEnv): Map<string, [unknown, string]> {
  const values = new Map<string, [unknown, string]>();
  for (const key of SETTING_KEYS.keys()) {
    const variable = envVariable(key);
    const raw = env[variable];
    if (raw !== undefined && raw !== '') values.set(key, [parseSettingValue(key, raw, variable), variable]);
  }
  return values;
}

export async function loadSettings(options: LoadOptions = {}): Promise<LoadedSettings> {
  const env = options.env ?? process.env;
  const userFile = userSettingsFile(env);
  const [user, search] = await Promise.all([
    userSettings(userFile),
    findProjectSettings(options.cwd ?? workingFolder(), env.HOME || undefined),
  ]);
  const project = search.found;
  for (const { file, reason } of search.skipped) {
    if (warnedSkipped.has(file)) continue;
    warnedSkipped.add(file);
    (options.warn ?? warnToStderr)(`ignored the project settings file ${file}: ${reason}`);
  }

  const values = new Map<string, unknown>();
  const origins = new Map<string, Origin>();
  const layer = (settings: Settings, origin: Origin) => {
    for (const [key, value] of flatten(settings)) {
      values.set(key, value);
      origins.set(key, origin);
    }
  };
  layer(DEFAULTS, { source: 'default' });
  layer(user, { source: 'user', file: userFile });
  if (project) layer(project.settings, { source: 'project', file: project.file });
  for (const [key, [value, variable]] of envSettings(env)) {
    values.set(key, value);
    origins.set(key, { source: 'env', variable });
  }
  layer(options.flags ?? {}, { source: 'flag' });
  return {
    settings: unflatten(values),
    origins,
    files: { user: userFile, project: project?.file ?? null },
    skipped: search.skipped,
  };
}

export function describeOrigin(origin: Origin): string {
  switch (origin.source) {
    case 'flag':
      return 'command-line flag';
    case 'env':
      return `environment ${origin.variable}`;
    case 'project':
      return `project file ${origin.file}`;
    case 'user':
      return `user file ${origin.file}`;
    case 'default':
      return 'default';
  }
}

/** Only what flags, variables and files set: the settings without dcp's defaults. */
export function explicitSettings(loaded: LoadedSettings, leaveOut: Origin['source'][] = []): Settings {
  const left = new Set<Origin['source']>(['default', ...leaveOut]);
  return unflatten(
    new Map(
      [...flatten(loaded.settings)].filter(
        ([key]) => !left.has(loaded.origins.get(key)?.source ?? 'default'),
      ),
    ),
  );
}
