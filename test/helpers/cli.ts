/** Runs the built `dcp` as a user would: a separate process, no TTY, CI set, a private HOME. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll } from 'vitest';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder removed after the file's tests. */
export function tempDir(prefix = 'dcp-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Home folder for the run; a fresh one when omitted. */
  home?: string;
  nodeArgs?: string[];
  timeoutMs?: number;
  /** Working folder; a fresh empty one when omitted, so no project settings file is found. */
  cwd?: string;
}

/** The environment `dcp` runs with in tests: nothing of this machine's but PATH, a private HOME. */
export function cliEnv(home: string, extra: Record<string, string | undefined> = {}) {
  return {
    PATH: process.env.PATH,
    HOME: home,
    XDG_STATE_HOME: join(home, '.local', 'state'),
    CI: 'true',
    // Nothing may leave this machine: no instance-metadata credentials probe (169.254.169.254),
    // and "my address" from a closed loopback port unless a test serves one.
    AWS_EC2_METADATA_DISABLED: 'true',
    METADATA_SERVER_DETECTION: 'none',
    DCP_MY_IP_URL: 'http://127.0.0.1:9/',
    // The default cloud image is looked up in a registry: a closed loopback port answers "unknown".
    DCP_IMAGE_REPOSITORY: '127.0.0.1:9/dask/dask',
    ...extra,
  };
}

export async function dcp(args: string[], options: RunOptions = {}) {
  const home = options.home ?? tempDir('dcp-home-');
  const result = await execa(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    reject: false,
    stdin: 'ignore',
    cwd: options.cwd ?? tempDir('dcp-cwd-'),
    timeout: options.timeoutMs ?? 60_000,
    extendEnv: false,
    env: cliEnv(home, options.env),
  });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr, home };
}

/** Parses stdout as exactly one JSON document (fails the test otherwise). */
export function json<T = Record<string, unknown>>(stdout: string): T {
  return JSON.parse(stdout) as T;
}

/**
 * The journal entries of a cluster's last start. A start whose port another process took (a
 * test's cluster in parallel) was stopped and superseded; its entries stay in the journal.
 */
export function lastStart<T extends { data: { attempt?: number } }>(entries: T[]): T[] {
  const last = Math.max(0, ...entries.map((entry) => entry.data.attempt ?? 0));
  return entries.filter((entry) => (entry.data.attempt ?? 0) === last);
}
