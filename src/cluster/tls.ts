/**
 * A cluster's TLS files by mode: `auto` makes a fresh CA and role certificates in the cluster's
 * state folder (the CA key stays there, and goes with `down`); `byo` checks the user's files
 * with the `certs verify` rules before anything starts; `off` is plain TCP. A role's key may sit
 * in its certificate file, as Dask allows: its key file is then null everywhere.
 */
import { lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ROLES, type Role } from '../certs/roles.js';
import { generateCertificateSet, tlsFilesIn } from '../certs/gen.js';
import { verifyFiles, type VerifyFlags } from '../certs/verify.js';
import { DcpError, usageError } from '../errors.js';
import type { ClusterTls, TlsFiles } from '../providers/provider.js';
import type { ClientTls } from '../config/dask-tls.js';

/** The user's files: a folder in the `certs gen` layout, or one CA and one pair for every role. */
export type ByoFiles = { dir: string } | { ca: string; cert: string; key?: string };

export type TlsChoice = { mode: 'auto' } | ({ mode: 'byo' } & ByoFiles) | { mode: 'off' };

export function clientTls(tls: ClusterTls): ClientTls {
  return { caFile: tls.caFile, clientCert: tls.cert.client, clientKey: tls.key.client, ...tls.params };
}

/** How the user named the files, so messages speak of the flags they typed. */
function flagsOf(files: ByoFiles, role: Role): VerifyFlags {
  return 'dir' in files
    ? { ca: `--tls-dir (ca.pem)`, cert: `--tls-dir (${role}.pem)`, key: `--tls-dir (${role}-key.pem)` }
    : { ca: '--tls-ca', cert: '--tls-cert', key: '--tls-key' };
}

async function isThere(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/**
 * The files of a BYO choice, per role, as absolute paths. In a folder, a role without
 * `<role>-key.pem` has its key in `<role>.pem`; for one pair, no --tls-key means the same.
 */
export async function byoFiles(choice: ByoFiles): Promise<TlsFiles> {
  if ('dir' in choice) {
    const files = tlsFilesIn(resolve(choice.dir));
    const keys = await Promise.all(
      ROLES.map(async (role) => ((await isThere(files.key[role])) ? files.key[role] : null)),
    );
    return {
      caFile: files.ca,
      cert: files.cert,
      key: Object.fromEntries(ROLES.map((role, i) => [role, keys[i]!])) as Record<Role, string | null>,
    };
  }
  const every = <T>(value: T) => Object.fromEntries(ROLES.map((role) => [role, value])) as Record<Role, T>;
  return {
    caFile: resolve(choice.ca),
    cert: every(resolve(choice.cert)),
    key: every(choice.key ? resolve(choice.key) : null),
  };
}

export interface TlsCheck {
  /** What Dask would reject, one line per problem (with its fix), by the `certs verify` rules. */
  problems: string[];
  /** What works but should be known: a key others can read, what Python 3.13 will refuse. */
  warnings: string[];
}

/** Checks every role's files as Dask will load them; a file that cannot be read is one more problem. */
export async function checkByoFiles(choice: ByoFiles): Promise<TlsCheck> {
  try {
    return await verifyByoFiles(choice);
  } catch (error) {
    if (!(error instanceof DcpError)) throw error;
    return { problems: [`${error.message}${error.hint ? ` (${error.hint})` : ''}`], warnings: [] };
  }
}

async function verifyByoFiles(choice: ByoFiles): Promise<TlsCheck> {
  const files = await byoFiles(choice);
  const problems = new Set<string>();
  const warnings = new Set<string>();
  const checked = new Set<string>();
  for (const role of ROLES) {
    const pair = `${files.cert[role]}|${files.key[role]}`;
    if (checked.has(pair)) continue;
    checked.add(pair);
    const report = await verifyFiles({
      ca: files.caFile,
      cert: files.cert[role],
      ...(files.key[role] ? { key: files.key[role] } : {}),
      // One pair for every role must suit the most demanding role, the scheduler.
      role: files.cert.scheduler === files.cert.client ? 'scheduler' : role,
      flags: flagsOf(choice, role),
      requireKey: true,
    });
    for (const p of report.problems) problems.add(`${p.message} (${p.hint})`);
    for (const w of report.warnings) warnings.add(`${w.message} (${w.hint})`);
  }
  return { problems: [...problems], warnings: [...warnings] };
}

export async function prepareTls(
  choice: TlsChoice,
  clusterDir: string,
  warn: (message: string) => void = () => undefined,
): Promise<TlsFiles | null> {
  switch (choice.mode) {
    case 'off':
      return null;
    case 'auto': {
      // EC keys: made in a millisecond, where four RSA keys take half a second of every `up`.
      const result = await generateCertificateSet({
        out: join(clusterDir, 'tls'),
        san: [],
        days: 365,
        caDays: 3650,
        force: false,
        keyType: 'ec',
      });
      return { caFile: result.files.ca, cert: result.files.cert, key: result.files.key };
    }
    case 'byo': {
      const { problems, warnings } = await checkByoFiles(choice);
      if (problems.length > 0) {
        const source = 'dir' in choice ? `in ${choice.dir}` : 'given with --tls-ca/--tls-cert/--tls-key';
        throw usageError(
          `the TLS files ${source} would not work with Dask (${problems.length} problem${problems.length === 1 ? '' : 's'})`,
          'fix them, or use --tls auto to have dcp make a fresh set',
          problems.map((p) => `  - ${p}`).join('\n'),
        );
      }
      for (const warning of warnings) warn(warning);
      return byoFiles(choice);
    }
  }
}
