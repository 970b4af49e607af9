/**
 * The one settings loader. Precedence, highest first: flags > `DCP_*` environment > project file
 * (found by cosmiconfig) > the user's `dcp.yaml` in Dask's config folder > defaults. Each value
 * remembers where it came from, for `dcp config list --show-origin`.
 */
import { usageError } from '../errors.js';
import { userSettingsFile } from './paths.js';
import { DEFAULTS, parseSettingValue, SETTING_KEYS, validateSettings, type Settings } from './schema.js';
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
}

export interface LoadOptions {
  flags?: Settings;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
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

async function projectSettings(cwd: string): Promise<{ file: string; settings: Settings } | null> {
  const { cosmiconfig } = await import('cosmiconfig');
  let found;
  try {
    found = await cosmiconfig('dcp', { searchStrategy: 'project' }).search(cwd);
  } catch (error) {
    const file = (error as { filepath?: string }).filepath ?? 'a project settings file';
    throw usageError(`${file}: ${(error as Error).message.split('\n')[0]}`, 'fix or move the file');
  }
  if (!found || found.isEmpty) return null;
  return { file: found.filepath, settings: validateSettings(found.config, found.filepath, '') };
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
  const [user, project] = await Promise.all([
    userSettings(userFile),
    projectSettings(options.cwd ?? process.cwd()),
  ]);

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
  return { settings: unflatten(values), origins, files: { user: userFile, project: project?.file ?? null } };
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
export function explicitSettings(loaded: LoadedSettings): Settings {
  return unflatten(
    new Map([...flatten(loaded.settings)].filter(([key]) => loaded.origins.get(key)?.source !== 'default')),
  );
}
