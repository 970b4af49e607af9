/** `dcp config get | set | unset | list | path | export`: parse → core → render. */
import { existsSync } from 'node:fs';
import { exportCloudprovider, exportProvider } from '../config/cloudprovider.js';
import { buildIngressRules, dedupe, type IngressRule } from '../config/ingress.js';
import { describeOrigin, explicitSettings, loadSettings } from '../config/load.js';
import { cloudproviderFile, daskConfigDir, stateDir } from '../config/paths.js';
import { GROUPS, parseSettingValue, requireKey, SETTING_KEYS } from '../config/schema.js';
import { changeUserSettings } from '../config/store.js';
import { ExitCode, usageError } from '../errors.js';
import { renderList, renderValue } from '../ui/config.js';
import type { Output } from '../ui/output.js';

export interface IngressFlags {
  cidr: string[];
  ports?: string;
  append: boolean;
  allowAnywhere: boolean;
}

function settingValue(settings: Record<string, unknown>, key: string): unknown {
  const [group, name] = key.split('.') as [string, string | undefined];
  const top = settings[group];
  return name === undefined ? top : (top as Record<string, unknown> | undefined)?.[name];
}

export async function get(key: string, out: Output): Promise<ExitCode> {
  requireKey(key, { allowGroups: true });
  const { settings, origins } = await loadSettings();
  const value = settingValue(settings, key) ?? null;
  const origin = origins.get(key);
  if (value === null && !out.json) out.warn(`${key} is not set`);
  out.result({ key, value, origin: origin ?? null }, () => (value === null ? '' : `${renderValue(value)}\n`));
  return ExitCode.ok;
}

/** Tells the user when what they just saved is hidden by a variable or a project file. */
async function warnIfOverridden(key: string, out: Output): Promise<void> {
  // The value is saved; a broken variable or project file elsewhere is the next command's news.
  const origin = (await loadSettings().catch(() => undefined))?.origins.get(key);
  if (origin && (origin.source === 'env' || origin.source === 'project')) {
    out.warn(`saved, but ${describeOrigin(origin)} overrides it here`);
  }
}

export async function set(
  key: string,
  raw: string | undefined,
  ingress: IngressFlags,
  out: Output,
): Promise<ExitCode> {
  requireKey(key);
  const ingressFlagsUsed =
    ingress.cidr.length > 0 || ingress.ports !== undefined || ingress.append || ingress.allowAnywhere;
  let warnings: string[] = [];
  let compute: (current: { ingress?: IngressRule[] }) => unknown;
  if (key === 'ingress') {
    const built = buildIngressRules({
      cidrs: ingress.cidr,
      ports: ingress.ports,
      json: raw,
      allowAnywhere: ingress.allowAnywhere,
    });
    warnings = built.warnings;
    compute = (current) =>
      ingress.append ? dedupe([...(current.ingress ?? []), ...built.rules]) : built.rules;
  } else {
    if (ingressFlagsUsed)
      throw usageError(
        '--cidr, --ports, --append and --allow-anywhere are for dcp config set ingress',
        `dcp config set ${key} VALUE`,
      );
    if (raw === undefined) throw usageError(`no value given for ${key}`, `dcp config set ${key} VALUE`);
    const value = parseSettingValue(key, raw);
    compute = () => value;
  }
  for (const warning of warnings) out.warn(warning);
  let value: unknown;
  const { file, changed } = await changeUserSettings((current) => {
    value = compute(current);
    return new Map([[key, value]]);
  });
  await warnIfOverridden(key, out);
  out.result(
    { file, key, value, changed, warnings },
    () =>
      `${out.style.green('✓')} ${key} = ${renderValue(value)} ${out.style.dim(`(${changed ? 'saved in' : 'already so in'} ${file})`)}\n`,
  );
  return ExitCode.ok;
}

export async function unset(key: string, out: Output): Promise<ExitCode> {
  // A key dcp does not know may still be in the file, stopping every command that reads it:
  // unset removes it. Only when it is not there either is it a mistake to correct.
  const known = SETTING_KEYS.has(key) || (GROUPS as readonly string[]).includes(key);
  if (!known && !/^[\w-]+(\.[\w-]+)?$/.test(key)) requireKey(key);
  const { file, changed } = await changeUserSettings(() => new Map([[key, undefined]]));
  if (!known && !changed) requireKey(key);
  out.result(
    { file, key, changed },
    () => `${out.style.green('✓')} ${key} ${changed ? 'removed from' : 'was not set in'} ${file}\n`,
  );
  return ExitCode.ok;
}

export async function list(showOrigin: boolean, out: Output): Promise<ExitCode> {
  const { settings, origins, files } = await loadSettings();
  const entries = [...origins.keys()]
    .sort()
    .map((key) => ({ key, value: settingValue(settings, key), origin: origins.get(key)! }));
  out.result(
    showOrigin ? { settings, origins: Object.fromEntries(origins), files } : { settings, files },
    () => renderList(entries, showOrigin, out.style),
  );
  return ExitCode.ok;
}

export async function path(out: Output): Promise<ExitCode> {
  const { files } = await loadSettings();
  const paths = {
    settings: files.user,
    project: files.project,
    cloudprovider: cloudproviderFile(),
    dask_config_dir: daskConfigDir(),
    state_dir: stateDir(),
  };
  out.result(paths, () =>
    [
      `settings       ${paths.settings}${existsSync(paths.settings) ? '' : out.style.dim(' (not written yet)')}`,
      `project        ${paths.project ?? out.style.dim('(none found here)')}`,
      `cloudprovider  ${paths.cloudprovider}`,
      `dask config    ${paths.dask_config_dir}`,
      `state          ${paths.state_dir}`,
      '',
    ].join('\n'),
  );
  return ExitCode.ok;
}

export async function exportSettings(
  target: string,
  provider: string | undefined,
  out: Output,
): Promise<ExitCode> {
  if (target !== 'cloudprovider')
    throw usageError(
      `cannot export to ${JSON.stringify(target)}`,
      'dcp config export cloudprovider [--provider aws|gcp|azure|digitalocean]',
    );
  const loaded = await loadSettings();
  const result = await exportCloudprovider(
    explicitSettings(loaded),
    exportProvider(loaded.settings, provider),
  );
  const values = Object.fromEntries([...result.values].map(([k, v]) => [`cloudprovider.${k}`, v]));
  for (const { key, why } of result.notExported)
    out.warn(`${key} is not exported: dask-cloudprovider has no key for it${why ? ` (${why})` : ''}`);
  const notExported = result.notExported.map(({ key }) => key);
  out.result(
    {
      file: result.file,
      provider: result.provider,
      values,
      changed: result.changed,
      not_exported: notExported,
    },
    () =>
      [
        result.values.size === 0
          ? `${out.style.yellow('!')} nothing to export for ${result.provider}: no setting of yours has a dask-cloudprovider key (dcp config list shows them)`
          : `${out.style.green('✓')} ${result.changed ? 'Merged' : 'Already had'} dask-cloudprovider settings for ${result.provider} in ${result.file}${result.changed && existsSync(`${result.file}.bak`) ? out.style.dim(` (previous version: ${result.file}.bak)`) : ''}`,
        ...Object.entries(values).map(([k, v]) => `  ${k}: ${renderValue(v)}`),
        '',
      ].join('\n'),
  );
  return ExitCode.ok;
}
