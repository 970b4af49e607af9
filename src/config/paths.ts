/** Where dcp keeps things on this machine (DESIGN.md section 4). */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$XDG_STATE_HOME/dcp`, else `~/.local/state/dcp`: cluster state, certificates, logs. */
export function stateDir(env = process.env): string {
  const base = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'dcp');
}

/** Where `dcp certs gen` writes when not told otherwise. */
export function defaultCertsDir(env = process.env): string {
  return join(stateDir(env), 'certs');
}
