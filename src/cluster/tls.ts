/**
 * A cluster's TLS files by mode: `auto` makes a fresh CA and role certificates in the cluster's
 * state folder (the CA key stays there, and goes with `down`); `byo` checks the user's files
 * with the `certs verify` rules before anything starts; `off` is plain TCP.
 */
import { join } from 'node:path';
import { ROLES, type Role } from '../certs/roles.js';
import { generateCertificateSet, tlsFilesIn } from '../certs/gen.js';
import { verifyFiles } from '../certs/verify.js';
import { usageError } from '../errors.js';
import type { ClusterTls } from '../providers/provider.js';
import type { ClientTls } from '../config/dask-tls.js';

export type TlsChoice =
  | { mode: 'auto' }
  | { mode: 'byo'; dir: string }
  | { mode: 'byo'; ca: string; cert: string; key: string }
  | { mode: 'off' };

export function clientTls(tls: ClusterTls): ClientTls {
  return { caFile: tls.caFile, clientCert: tls.cert.client, clientKey: tls.key.client };
}

/** What Dask would reject in these files, one line per problem, by the `certs verify` rules. */
export async function tlsProblems(files: ClusterTls): Promise<string[]> {
  const lines: string[] = [];
  const checked = new Set<string>();
  for (const role of ROLES) {
    const key = `${files.cert[role]}|${files.key[role]}`;
    if (checked.has(key)) continue;
    checked.add(key);
    // One pair for every role must suit the most demanding role, the scheduler.
    const report = await verifyFiles({
      ca: files.caFile,
      cert: files.cert[role],
      key: files.key[role],
      role: files.cert.scheduler === files.cert.client ? 'scheduler' : role,
    });
    lines.push(...report.problems.map((p) => `${p.message} (${p.hint})`));
  }
  return lines;
}

/** The files of a BYO choice, in the per-role shape. */
export function byoFiles(choice: { dir: string } | { ca: string; cert: string; key: string }): ClusterTls {
  if ('dir' in choice) {
    const files = tlsFilesIn(choice.dir);
    return { caFile: files.ca, cert: files.cert, key: files.key };
  }
  const every = (path: string) =>
    Object.fromEntries(ROLES.map((role) => [role, path])) as Record<Role, string>;
  return { caFile: choice.ca, cert: every(choice.cert), key: every(choice.key) };
}

export async function prepareTls(choice: TlsChoice, clusterDir: string): Promise<ClusterTls | null> {
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
      const tls = byoFiles(choice);
      const problems = await tlsProblems(tls);
      if (problems.length > 0) {
        const source = 'dir' in choice ? `--tls-dir ${choice.dir}` : '--tls-ca/--tls-cert/--tls-key';
        throw usageError(
          `the TLS files given with ${source} would not work with Dask (${problems.length} problem${problems.length === 1 ? '' : 's'})`,
          'fix them, or use --tls auto to have dcp make a fresh set',
          problems.map((p) => `  - ${p}`).join('\n'),
        );
      }
      return tls;
    }
  }
}
