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
import type { ClientTls } from './snippet.js';

export type TlsChoice =
  | { mode: 'auto' }
  | { mode: 'byo'; dir: string }
  | { mode: 'byo'; ca: string; cert: string; key: string }
  | { mode: 'off' };

export function clientTls(tls: ClusterTls): ClientTls {
  return { caFile: tls.caFile, clientCert: tls.cert.client, clientKey: tls.key.client };
}

async function checkByo(files: ClusterTls, source: string): Promise<void> {
  const lines: string[] = [];
  const checked = new Set<string>();
  for (const role of ROLES) {
    const key = `${files.cert[role]}|${files.key[role]}`;
    if (checked.has(key)) continue;
    checked.add(key);
    // One pair for every role must suit the most demanding role, the scheduler.
    const report = await verifyFiles({ ca: files.caFile, cert: files.cert[role], key: files.key[role], role: files.cert.scheduler === files.cert.client ? 'scheduler' : role });
    lines.push(...report.problems.map((p) => `  - ${p.message} (${p.hint})`));
  }
  if (lines.length > 0) {
    throw usageError(`the TLS files given with ${source} would not work with Dask:\n${lines.join('\n')}`, 'fix them, or use --tls auto to have dcp make a fresh set');
  }
}

export async function prepareTls(choice: TlsChoice, clusterDir: string): Promise<ClusterTls | null> {
  switch (choice.mode) {
    case 'off':
      return null;
    case 'auto': {
      // EC keys: made in a millisecond, where four RSA keys take half a second of every `up`.
      const result = await generateCertificateSet({ out: join(clusterDir, 'tls'), san: [], days: 365, caDays: 3650, force: false, keyType: 'ec' });
      return { caFile: result.files.ca, cert: result.files.cert, key: result.files.key };
    }
    case 'byo': {
      if ('dir' in choice) {
        const files = tlsFilesIn(choice.dir);
        const tls = { caFile: files.ca, cert: files.cert, key: files.key };
        await checkByo(tls, `--tls-dir ${choice.dir}`);
        return tls;
      }
      const every = (path: string) => Object.fromEntries(ROLES.map((role) => [role, path])) as Record<Role, string>;
      const tls = { caFile: choice.ca, cert: every(choice.cert), key: every(choice.key) };
      await checkByo(tls, '--tls-ca/--tls-cert/--tls-key');
      return tls;
    }
  }
}
