/**
 * "Will Dask accept these files?" Dask loads PEM files into Python's ssl module with
 * CERT_REQUIRED and no host name check, so this answers with OpenSSL's rules: chain to the CA,
 * validity, the purpose each role needs, and the key. Python 3.13 also turns on
 * VERIFY_X509_STRICT; what only strict mode rejects is a warning.
 */
import { basename } from 'node:path';
import { ROLES, type Role } from './roles.js';
import { conversionHint, notPemMessage, opensslHint, readPemFile, type PemFile } from './pem.js';
import { isoDay } from './validity.js';
import { isIssuedBy, keyMatches, type Certificate } from './x509.js';
import { shellQuote } from '../util/shell.js';

export interface Finding {
  code: string;
  message: string;
  hint: string;
}

export interface VerifyOptions {
  ca: string;
  cert: string;
  key?: string;
  role?: Role;
  /** How the user named each file (`--tls-ca`, `--tls-dir`), for messages; `certs verify`'s own by default. */
  flags?: VerifyFlags;
  /** A certificate without its key is a problem (Dask must load one), not just unchecked. */
  requireKey?: boolean;
}

export interface VerifyFlags {
  ca: string;
  cert: string;
  key: string;
}

const VERIFY_FLAGS: VerifyFlags = { ca: '--ca', cert: '--cert', key: '--key' };

export interface VerifyReport {
  ok: boolean;
  /** The role checked for; `any` when neither given nor told by the file name. */
  role: Role | 'any';
  files: { ca: string; cert: string; key: string | null };
  subject: string | null;
  problems: Finding[];
  warnings: Finding[];
}

const STRICT = 'Python 3.13+ rejects it (it verifies with VERIFY_X509_STRICT)';
const REISSUE = 'reissue it with `dcp certs gen`, whose certificates pass strict checks';

/** `scheduler-cert.pem` → scheduler: the `certs gen` layout and most guides name files by role. */
export function roleFromFileName(path: string): Role | undefined {
  const name = basename(path).toLowerCase();
  return ROLES.find((role) => name.startsWith(role));
}

export async function verifyFiles(options: VerifyOptions, now = new Date()): Promise<VerifyReport> {
  const flags = options.flags ?? VERIFY_FLAGS;
  // Read at once, but a failure is said in the order the files are named: CA, certificate, key.
  const reads = [
    readPemFile(options.ca, flags.ca),
    readPemFile(options.cert, flags.cert),
    options.key ? readPemFile(options.key, flags.key) : Promise.resolve(undefined),
  ] as const;
  await Promise.allSettled(reads);
  const caFile = await reads[0];
  const certFile = await reads[1];
  const keyFile = await reads[2];
  const role = options.role ?? roleFromFileName(options.cert) ?? 'any';
  const problems: Finding[] = [];
  const warnings: Finding[] = [];
  const leaf = certFile.certificates[0];

  if (caFile.keys.length > 0) {
    warnings.push({
      code: 'ca-file-holds-key',
      message: `${caFile.path} holds a private key beside the CA certificate${caFile.mode & 0o077 ? `, and other users can read it (mode ${caFile.mode.toString(8)})` : ''}: whoever is given this CA file can issue certificates the cluster trusts`,
      hint: `keep the CA key in a file of its own, readable by you alone, and give ${flags.ca} the certificate only`,
    });
  }
  problems.push(
    ...fileProblems(caFile, 'CA file', 'certificate'),
    ...fileProblems(certFile, 'certificate file', 'certificate'),
  );
  if (keyFile) problems.push(...fileProblems(keyFile, 'key file', 'key'));

  if (leaf) {
    problems.push(
      ...validityProblems(leaf, certFile.path, now),
      ...purposeProblems(leaf, role),
      ...criticalProblems(leaf, certFile.path),
    );
    warnings.push(...leafStrictWarnings(leaf, certFile.path));
    if (leaf.selfSigned && leaf.basicConstraints?.ca) {
      warnings.push({
        code: 'shared-ca-key',
        message: `${certFile.path} is its own CA: whoever holds its key can pose as any scheduler, worker or client`,
        hint: 'give each role its own certificate from a CA whose key stays on your machine: dcp certs gen',
      });
    }
    const chain =
      caFile.certificates.length > 0
        ? buildChain(leaf, certFile.certificates.slice(1), caFile.certificates)
        : undefined;
    if (caFile.certificates.length > 0 && !chain && caFile.certificates.some((c) => isSame(c, leaf))) {
      problems.push({
        code: 'ca-is-the-certificate',
        message: `${caFile.path} holds the certificate itself ("${leaf.subject}"), not a CA: OpenSSL trusts a certificate as its own CA only when it is self-signed, and this one was issued by "${leaf.issuer}"`,
        hint: `pass the CA that issued it with ${flags.ca}`,
      });
    } else if (caFile.certificates.length > 0 && !chain) {
      problems.push({
        code: 'not-signed-by-ca',
        message: `${certFile.path} was not signed by the CA in ${caFile.path} (its issuer is "${leaf.issuer}"; the CA is "${caFile.certificates.map((a) => a.subject).join('", "')}")`,
        hint: `pass the CA that issued it with ${flags.ca}, or issue a new one from this CA: dcp certs gen --ca-cert ${caFile.path} --ca-key CA-KEY`,
      });
    }
    // Every CA on the way is held to OpenSSL's rules for the purposes the role needs.
    for (const ca of chain?.cas ?? []) {
      const where = caFile.certificates.includes(ca) ? caFile.path : certFile.path;
      problems.push(...caProblems(ca, where, role, now));
      warnings.push(...caStrictWarnings(ca, where));
    }
    if (chain?.partial) {
      const top = chain.cas.at(-1)!;
      warnings.push({
        code: 'partial-chain',
        message: `the chain ends at "${top.subject}", which is not a self-signed root: Python before 3.13 rejects it (only 3.13+ verifies partial chains)`,
        hint: `add the root CA certificate to ${caFile.path}`,
      });
    }
    problems.push(...keyProblems(leaf, certFile, keyFile, warnings, { ...options, flags }));
  }

  return {
    ok: problems.length === 0,
    role,
    files: { ca: caFile.path, cert: certFile.path, key: keyFile?.path ?? null },
    subject: leaf?.subject ?? null,
    problems,
    warnings,
  };
}

const isSame = (a: Certificate, b: Certificate) => a.fingerprint256 === b.fingerprint256;

/**
 * The CAs from `leaf` up to a trusted certificate, as OpenSSL builds the chain: through
 * `intermediates` (sent with the leaf) and the trusted `anchors` (the CA file, any of which may
 * serve on the way). A trusted self-signed certificate ends it; ending at a trusted certificate
 * that is not self-signed is a partial chain. Undefined when nothing trusted signed it. A
 * self-signed leaf that is itself trusted (a pinned certificate) has no CAs to check; a trusted
 * leaf that is not self-signed still needs its issuer, as OpenSSL (before Python 3.13's partial
 * chains) will not stop at it.
 */
function buildChain(
  leaf: Certificate,
  intermediates: Certificate[],
  anchors: Certificate[],
): { cas: Certificate[]; partial: boolean } | undefined {
  if (leaf.selfSigned && anchors.some((anchor) => isSame(anchor, leaf))) return { cas: [], partial: false };
  const cas: Certificate[] = [];
  let current = leaf;
  for (;;) {
    const candidates = [...anchors, ...intermediates].filter(
      (c) => !isSame(c, current) && !cas.some((seen) => isSame(seen, c)),
    );
    const issuer = candidates.find((c) => isIssuedBy(current, c));
    if (!issuer) {
      const trusted = cas.length > 0 && anchors.some((anchor) => isSame(anchor, current));
      return trusted ? { cas, partial: true } : undefined;
    }
    cas.push(issuer);
    if (issuer.selfSigned)
      return anchors.some((anchor) => isSame(anchor, issuer)) ? { cas, partial: false } : undefined;
    current = issuer;
  }
}

function fileProblems(file: PemFile, what: string, kind: 'certificate' | 'key'): Finding[] {
  const found: Finding[] = file.badCertificates.map((reason) => ({
    code: 'bad-certificate',
    message: `${what} ${file.path} holds a certificate that does not parse: ${reason}`,
    hint: 'check that the file was copied whole',
  }));
  if (file.notPem) {
    found.push({
      code: 'not-pem',
      message: `${what} ${file.path} is not usable: ${notPemMessage(file.notPem)}`,
      hint: conversionHint(file, kind),
    });
  } else if (kind === 'certificate' && file.certificates.length === 0 && file.badCertificates.length === 0) {
    found.push({
      code: 'no-certificate',
      message: `${what} ${file.path} holds no certificate`,
      hint: 'pass the file with the -----BEGIN CERTIFICATE----- block',
    });
  }
  return found;
}

function validityProblems(cert: Certificate, path: string, now: Date): Finding[] {
  if (cert.notAfter <= now) {
    return [
      {
        code: 'expired',
        message: `${path} expired on ${isoDay(cert.notAfter)}`,
        hint: 'issue a new certificate: dcp certs gen',
      },
    ];
  }
  if (cert.notBefore > now) {
    return [
      {
        code: 'not-yet-valid',
        message: `${path} is not valid until ${cert.notBefore.toISOString()}`,
        hint: "check this machine's clock, or issue a certificate valid from now",
      },
    ];
  }
  return [];
}

/**
 * OpenSSL's purpose checks: a peer accepting connections needs serverAuth, one making them
 * clientAuth; schedulers and workers do both. An absent extension allows everything.
 */
function purposeProblems(cert: Certificate, role: Role | 'any'): Finding[] {
  const found: Finding[] = [];
  const who = role === 'any' ? 'a scheduler or worker' : `a ${role}`;
  const needed = role === 'client' ? ['clientAuth'] : ['serverAuth', 'clientAuth'];
  const missing = cert.extKeyUsage ? needed.filter((usage) => !cert.extKeyUsage!.includes(usage)) : [];
  if (missing.length > 0) {
    found.push({
      code: 'extended-key-usage',
      message: `extended key usage (${cert.extKeyUsage!.join(', ') || 'empty'}) lacks ${missing.join(' and ')}, which ${who} needs${role === 'client' ? '' : ': it both accepts and makes TLS connections'}`,
      hint: `reissue it with extendedKeyUsage = ${needed.join(', ')}, or without the extension (dcp certs gen does this)`,
    });
  }
  if (
    cert.keyUsage &&
    !cert.keyUsage.usages.includes('digitalSignature') &&
    !cert.keyUsage.usages.includes('keyAgreement')
  ) {
    found.push({
      code: 'key-usage',
      message: `key usage (${cert.keyUsage.usages.join(', ') || 'empty'}) lacks digitalSignature, which TLS needs to authenticate ${who}`,
      hint: 'reissue it with keyUsage = digitalSignature, keyEncipherment',
    });
  }
  return found;
}

function criticalProblems(cert: Certificate, path: string): Finding[] {
  return cert.unhandledCritical.length > 0
    ? [
        {
          code: 'unknown-critical-extension',
          message: `"${cert.subject}" in ${path} has a critical extension OpenSSL does not know (${cert.unhandledCritical.join(', ')}), so it rejects the certificate`,
          hint: 'reissue it without marking that extension critical',
        },
      ]
    : [];
}

/**
 * What makes OpenSSL refuse a CA on the chain (its check_ca and purpose checks): basicConstraints
 * CA:FALSE, no sign of being a CA at all, key usage without keyCertSign, an extended key usage
 * without the purposes the role needs, dates, and unknown critical extensions. Exported for
 * `certs gen --ca-cert`, which must not issue from a CA Dask would refuse.
 */
export function caProblems(ca: Certificate, path: string, role: Role | 'any', now: Date): Finding[] {
  const found: Finding[] = [];
  const name = `the CA certificate "${ca.subject}" in ${path}`;
  const tolerated =
    !ca.basicConstraints &&
    ((ca.version === 1 && ca.selfSigned) || ca.keyUsage?.usages.includes('keyCertSign'));
  if (ca.basicConstraints ? !ca.basicConstraints.ca : !tolerated) {
    found.push({
      code: 'ca-not-ca',
      message: `${name} ${ca.basicConstraints ? 'says basicConstraints CA:FALSE' : 'lacks basicConstraints CA:TRUE'}, so OpenSSL will not trust what it signed`,
      hint: 'use a real CA certificate (basicConstraints=critical,CA:TRUE): dcp certs gen makes one',
    });
  }
  if (ca.keyUsage && !ca.keyUsage.usages.includes('keyCertSign')) {
    found.push({
      code: 'ca-key-usage',
      message: `${name} has key usage without keyCertSign, so it may not sign certificates`,
      hint: 'reissue the CA with keyUsage = critical, keyCertSign, cRLSign',
    });
  }
  const needed = role === 'client' ? ['clientAuth'] : ['serverAuth', 'clientAuth'];
  const missing = ca.extKeyUsage ? needed.filter((usage) => !ca.extKeyUsage!.includes(usage)) : [];
  if (missing.length > 0) {
    found.push({
      code: 'ca-extended-key-usage',
      message: `${name} limits its extended key usage to ${ca.extKeyUsage!.join(', ') || 'nothing'}, and OpenSSL holds what it signs to that: no ${missing.join(' or ')}`,
      hint: 'use a CA without an extendedKeyUsage extension, or one that allows serverAuth and clientAuth',
    });
  }
  if (ca.notAfter <= now) {
    found.push({
      code: 'ca-expired',
      message: `${name} expired on ${isoDay(ca.notAfter)}`,
      hint: 'make a new CA and reissue: dcp certs gen',
    });
  } else if (ca.notBefore > now) {
    found.push({
      code: 'ca-not-yet-valid',
      message: `${name} is not valid until ${ca.notBefore.toISOString()}`,
      hint: "check this machine's clock",
    });
  }
  return [...found, ...criticalProblems(ca, path)];
}

function caStrictWarnings(ca: Certificate, path: string): Finding[] {
  const found: Finding[] = [];
  if (
    !ca.basicConstraints &&
    ((ca.version === 1 && ca.selfSigned) || ca.keyUsage?.usages.includes('keyCertSign'))
  ) {
    found.push({
      code: 'strict-ca-basic-constraints',
      message: `the CA certificate in ${path} has no basicConstraints CA:TRUE, which only lenient OpenSSL tolerates: ${STRICT}`,
      hint: REISSUE,
    });
  }
  if (ca.basicConstraints?.ca && !ca.basicConstraints.critical) {
    found.push({
      code: 'strict-basic-constraints',
      message: `the CA's basicConstraints in ${path} is not marked critical: ${STRICT}`,
      hint: REISSUE,
    });
  }
  if (!ca.keyUsage) {
    found.push({
      code: 'strict-ca-key-usage',
      message: `the CA certificate in ${path} has no keyUsage extension: ${STRICT}`,
      hint: REISSUE,
    });
  }
  if (!ca.subjectKeyId) {
    found.push({
      code: 'strict-subject-key-id',
      message: `the CA certificate in ${path} has no subjectKeyIdentifier: ${STRICT}`,
      hint: REISSUE,
    });
  }
  return found;
}

function leafStrictWarnings(leaf: Certificate, path: string): Finding[] {
  const found: Finding[] = [];
  if (!leaf.selfSigned && !leaf.authorityKeyId) {
    found.push({
      code: 'strict-authority-key-id',
      message: `${path} has no authorityKeyIdentifier: ${STRICT}`,
      hint: REISSUE,
    });
  }
  if (!leaf.basicConstraints?.ca && leaf.keyUsage?.usages.includes('keyCertSign')) {
    found.push({
      code: 'strict-key-cert-sign',
      message: `${path} is not a CA but its key usage has keyCertSign: ${STRICT}`,
      hint: REISSUE,
    });
  }
  if (leaf.subject === '' && !leaf.subjectAltNameCritical) {
    found.push({
      code: 'strict-empty-subject',
      message: `${path} has an empty subject and a non-critical subjectAltName: ${STRICT}`,
      hint: REISSUE,
    });
  }
  return found;
}

function keyProblems(
  leaf: Certificate,
  certFile: PemFile,
  keyFile: PemFile | undefined,
  warnings: Finding[],
  options: { flags: VerifyFlags; requireKey?: boolean },
): Finding[] {
  const source = keyFile ?? certFile;
  const entry = source.keys[0];
  if (!entry) {
    if (!keyFile && options.requireKey) {
      return [
        {
          code: 'no-key',
          message: `${certFile.path} holds no private key, and no key file was given`,
          hint: `pass its key with ${options.flags.key}, or put the key in the same file as the certificate`,
        },
      ];
    }
    if (!keyFile) {
      warnings.push({
        code: 'key-not-checked',
        message: `no private key was checked: ${certFile.path} holds none and ${options.flags.key} was not given`,
        hint: `pass ${options.flags.key} FILE to check that the key matches and that Dask can load it`,
      });
    }
    return keyFile && !keyFile.notPem
      ? [
          {
            code: 'no-key',
            message: `key file ${keyFile.path} holds no private key`,
            hint: 'pass the file with the -----BEGIN PRIVATE KEY----- block',
          },
        ]
      : [];
  }
  if (source.mode & 0o077) {
    warnings.push({
      code: 'key-readable-by-others',
      message: `${source.path} holds a private key and is open to other users (mode ${source.mode.toString(8)}): a private key should be readable by you alone`,
      hint: `chmod 600 ${shellQuote(source.path)}`,
    });
  }
  if (entry.encrypted) {
    return [
      {
        code: 'key-encrypted',
        message: `the private key in ${source.path} is encrypted with a passphrase, and Dask has no way to supply one`,
        hint: `store it unencrypted, readable by you alone: ${opensslHint('key', source.path, 'encrypted')}`,
      },
    ];
  }
  if (!entry.key) {
    return [
      {
        code: 'bad-key',
        message: `the private key in ${source.path} cannot be read: ${entry.error ?? 'unknown format'}`,
        hint: 'check that the file was copied whole',
      },
    ];
  }
  if (!keyMatches(leaf, entry.key)) {
    return [
      {
        code: 'key-mismatch',
        message: `the private key in ${source.path} does not belong to the certificate in ${certFile.path}`,
        hint: 'pass the key that was made with this certificate (compare: dcp certs inspect on both)',
      },
    ];
  }
  return [];
}
