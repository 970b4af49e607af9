/**
 * The DigitalOcean token, found where DigitalOcean's own tools find it: `DIGITALOCEAN_TOKEN`
 * (Terraform), `DIGITALOCEAN_ACCESS_TOKEN` (doctl), then doctl's configuration file, for its
 * current context. The token can make and delete anything in the account, so the file is read
 * only when no other user could have written it (another user's token would send the cluster's
 * keys to their account).
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { usageError } from '../../errors.js';
import { readTrustedFile } from '../../util/files.js';

export interface Token {
  token: string;
  /** Where it came from, for messages: a variable, or doctl's file and context. */
  origin: string;
}

/** doctl's configuration file, where Go's os.UserConfigDir puts it. */
export function doctlConfigFile(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.HOME ?? homedir();
  if (process.platform === 'darwin')
    return join(home, 'Library', 'Application Support', 'doctl', 'config.yaml');
  const config =
    env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home, '.config');
  return join(config, 'doctl', 'config.yaml');
}

const NO_TOKEN_HINT =
  'set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN) to an API token, or sign in with doctl auth init';

/**
 * A token is printable ASCII without spaces; anything else (a line break from a YAML block, say)
 * would corrupt the request's header, and is refused without being shown.
 */
function checked(found: Token): Token {
  if (!/^[\x21-\x7e]+$/.test(found.token))
    throw usageError(
      `the DigitalOcean token from ${found.origin} holds spaces, line breaks or other characters no token has`,
      'copy the token again from cloud.digitalocean.com/account/api/tokens',
    );
  return found;
}

export async function resolveToken(env: NodeJS.ProcessEnv = process.env): Promise<Token> {
  for (const variable of ['DIGITALOCEAN_TOKEN', 'DIGITALOCEAN_ACCESS_TOKEN']) {
    const token = env[variable]?.trim();
    if (token) return checked({ token, origin: variable });
  }
  const file = doctlConfigFile(env);
  const read = await readTrustedFile(file);
  if (read === undefined) throw usageError('no DigitalOcean token found', NO_TOKEN_HINT);
  if ('skipped' in read)
    throw usageError(
      `doctl's configuration ${file} is not used: ${read.skipped}`,
      `make it yours and private (chmod 600 ${file}), or ${NO_TOKEN_HINT.replace('set ', 'set ')}`,
    );
  let config: { context?: unknown; 'access-token'?: unknown; 'auth-contexts'?: unknown };
  try {
    config = (parse(read.text) ?? {}) as typeof config;
  } catch (error) {
    throw usageError(
      `doctl's configuration ${file} does not parse: ${(error as Error).message.split('\n')[0]}`,
      'fix it, or run doctl auth init again',
    );
  }
  const context =
    env.DIGITALOCEAN_CONTEXT?.trim() || (typeof config.context === 'string' ? config.context : 'default');
  const token =
    context === 'default'
      ? config['access-token']
      : (config['auth-contexts'] as Record<string, unknown> | undefined)?.[context];
  if (typeof token !== 'string' || token.trim() === '')
    throw usageError(
      `doctl's configuration ${file} has no token for its context ${context}`,
      `run doctl auth init${context === 'default' ? '' : ` --context ${context}`}, or ${NO_TOKEN_HINT}`,
    );
  return checked({ token: token.trim(), origin: `${file} (doctl context ${context})` });
}
