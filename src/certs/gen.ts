/** `dcp certs gen`: a CA and a certificate + key per role, in the layout `--tls-dir` takes. */
import { resolve, join } from 'node:path';
import { realpath, rm } from 'node:fs/promises';
import { usageError } from '../errors.js';
import {
  ensurePrivateDir,
  PRIVATE_FILE,
  PUBLIC_FILE,
  writeFilesAtomically,
  type FileToWrite,
} from '../util/files.js';
import {
  createAuthority,
  generateKey,
  issue,
  KEY_TYPES,
  loadAuthority,
  type Authority,
  type KeyType,
} from './authority.js';
import { ROLES, type Role } from './roles.js';
import { parseAltNames } from './names.js';
import { parseDays } from './validity.js';
import type { AltName } from './x509.js';

export interface GenOptions {
  out: string;
  san: string[];
  days: string | number;
  caDays: string | number;
  caCert?: string;
  caKey?: string;
  force: boolean;
  keyType?: string;
}

/** Where each file of a set lives; `dcp up --tls-dir` reads the same names. */
export interface TlsFiles {
  ca: string;
  caKey: string;
  cert: Record<Role, string>;
  key: Record<Role, string>;
}

export function tlsFilesIn(dir: string): TlsFiles {
  const per = (suffix: string) =>
    Object.fromEntries(ROLES.map((role) => [role, join(dir, `${role}${suffix}.pem`)])) as Record<
      Role,
      string
    >;
  return { ca: join(dir, 'ca.pem'), caKey: join(dir, 'ca-key.pem'), cert: per(''), key: per('-key') };
}

export interface GenResult {
  dir: string;
  files: TlsFiles;
  ca: { cert: string; key: string | null; created: boolean; subject: string; notAfter: Date };
  certificates: { role: Role; cert: string; key: string; notAfter: Date; altNames: string[] }[];
  altNames: AltName[];
  warnings: string[];
}

/**
 * Validates everything before touching the disk, makes the keys in parallel on Node's thread
 * pool, and writes the set atomically. Any bad input is a usage error and writes nothing.
 */
export async function generateCertificateSet(options: GenOptions): Promise<GenResult> {
  const days = parseDays(options.days, '--days');
  const caDays = parseDays(options.caDays, '--ca-days');
  const altNames = parseAltNames(options.san);
  const keyType = (options.keyType ?? 'rsa') as KeyType;
  if (!(KEY_TYPES as readonly string[]).includes(keyType))
    throw usageError(
      `--key-type ${JSON.stringify(options.keyType)} is not one of ${KEY_TYPES.join(', ')}`,
      '--key-type rsa (the default) or --key-type ec',
    );
  if (Boolean(options.caCert) !== Boolean(options.caKey)) {
    throw usageError(
      '--ca-cert and --ca-key go together',
      'pass both to issue from your own CA, or neither for a new CA',
    );
  }
  const dir = resolve(options.out);
  const files = tlsFilesIn(dir);
  const now = new Date();

  const existing =
    options.caCert && options.caKey ? await loadAuthority(options.caCert, options.caKey, now) : undefined;
  const [caKeys, ...roleKeys] = await Promise.all([
    existing ? undefined : generateKey(keyType),
    ...ROLES.map(() => generateKey(keyType)),
  ]);
  const created = existing ? undefined : createAuthority(caKeys!, caDays, now);
  const authority: Authority = existing ?? created!;
  const issued = ROLES.map((role, i) => ({
    role,
    ...issue(authority, role, roleKeys[i]!, { days, altNames, now }),
  }));

  const warnings: string[] = [];
  const dirWarning = await ensurePrivateDir(dir);
  if (dirWarning) warnings.push(dirWarning);

  const toWrite: FileToWrite[] = [];
  // A CA given from the same folder stays as it is; one from elsewhere is copied, its key never.
  const caIsInPlace = options.caCert !== undefined && (await samePath(options.caCert, files.ca));
  if (!caIsInPlace) toWrite.push({ path: files.ca, content: authority.bundlePem, mode: PUBLIC_FILE });
  if (authority.partialChain) {
    warnings.push(
      `${options.caCert} is not a self-signed root and holds none: Python before 3.13 will reject these certificates; put the CA's chain up to its root in the --ca-cert file`,
    );
  }
  if (created) toWrite.push({ path: files.caKey, content: created.keyPem, mode: PRIVATE_FILE });
  for (const { role, certPem, keyPem } of issued) {
    toWrite.push({ path: files.cert[role], content: certPem, mode: PUBLIC_FILE });
    toWrite.push({ path: files.key[role], content: keyPem, mode: PRIVATE_FILE });
  }
  await writeFilesAtomically(toWrite, { overwrite: options.force });
  // A CA key left from an earlier set no longer matches ca.pem: a key nobody needs, and a trap.
  if (
    existing &&
    options.force &&
    !(await samePath(options.caKey!, files.caKey)) &&
    (await rm(files.caKey).then(
      () => true,
      () => false,
    ))
  ) {
    warnings.push(`removed ${files.caKey}: it belonged to the CA these files no longer use`);
  }

  return {
    dir,
    files,
    ca: {
      cert: files.ca,
      key: created ? files.caKey : null,
      created: created !== undefined,
      subject: authority.certificate.subject,
      notAfter: authority.certificate.notAfter,
    },
    certificates: issued.map(({ role, certificate }) => ({
      role,
      cert: files.cert[role],
      key: files.key[role],
      notAfter: certificate.notAfter,
      altNames: certificate.subjectAltNames,
    })),
    altNames,
    warnings,
  };
}

async function samePath(a: string, b: string): Promise<boolean> {
  const real = (path: string) => realpath(path).catch(() => resolve(path));
  return (await real(a)) === (await real(b));
}
