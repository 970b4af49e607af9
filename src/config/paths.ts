/** Where dcp keeps things on this machine (DESIGN.md section 4). */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { usageError } from '../errors.js';

/** `$XDG_STATE_HOME/dcp`, else `~/.local/state/dcp`: cluster state, certificates, logs. */
export function stateDir(env = process.env): string {
  const base =
    env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/')
      ? env.XDG_STATE_HOME
      : join(homedir(), '.local', 'state');
  return join(base, 'dcp');
}

/** Where `dcp certs gen` writes when not told otherwise. */
export function defaultCertsDir(env = process.env): string {
  return join(stateDir(env), 'certs');
}

/** Dask's user config folder: `DASK_CONFIG` when set (as Dask reads it), else `~/.config/dask`. */
export function daskConfigDir(env = process.env): string {
  return env.DASK_CONFIG ? resolve(env.DASK_CONFIG) : join(homedir(), '.config', 'dask');
}

/** dcp's own settings, under the top-level key `dcp:` so Dask reads them too. */
export function userSettingsFile(env = process.env): string {
  return join(daskConfigDir(env), 'dcp.yaml');
}

/** dask-cloudprovider's settings, which `dcp config export cloudprovider` merges into. */
export function cloudproviderFile(env = process.env): string {
  return join(daskConfigDir(env), 'cloudprovider.yaml');
}

/** The folder dcp runs in; one that no longer exists is said, not a crash. */
export function workingFolder(): string {
  try {
    return process.cwd();
  } catch {
    throw usageError('the current folder no longer exists', 'cd to a folder that does, and run dcp again');
  }
}
