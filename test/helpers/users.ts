/**
 * Another local user for tests of what one user may do to another: `nobody`, reached as root
 * (CI runs as root) by chown for files and by setpriv for processes. Without root the tests that
 * need it skip loudly, except in CI, where they must run.
 */
import { chownSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'vitest';

export const NOBODY = { uid: 65534, gid: 65534 };

export const isRoot = process.getuid?.() === 0;

export function describeAsRoot(name: string, body: () => void): void {
  if (!isRoot) {
    if (process.env.CI) throw new Error(`"${name}" needs root (to act as another user), and CI must run it`);
    console.warn(`\n*** SKIPPING "${name}": it needs root, to act as another user ***\n`);
  }
  describe.skipIf(!isRoot)(name, body);
}

/** Gives a path, and everything under it, to `nobody`. */
export function giveToNobody(path: string): void {
  chownSync(path, NOBODY.uid, NOBODY.gid);
  if (statSync(path).isDirectory()) for (const entry of readdirSync(path)) giveToNobody(join(path, entry));
}

/** The command line that runs `argv` as `nobody`, with no supplementary groups. */
export function asNobody(argv: string[]): string[] {
  return ['setpriv', `--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--', ...argv];
}

/** The built `dcp` run as `nobody`, as the CLI helper runs it otherwise: no TTY, CI set, `home` as HOME. */
export async function dcpAsNobody(args: string[], home: string, env: Record<string, string> = {}) {
  const { execa } = await import('execa');
  const { CLI, cliEnv } = await import('./cli.js');
  const [command, ...rest] = asNobody([process.execPath, CLI, ...args]);
  const result = await execa(command!, rest, {
    reject: false,
    stdin: 'ignore',
    extendEnv: false,
    cwd: home,
    timeout: 120_000,
    env: cliEnv(home, env),
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}
