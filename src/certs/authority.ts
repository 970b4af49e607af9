/**
 * The certificate authority: a CA made fresh or loaded from the user's files, and the per-role
 * certificates it issues, with the profile of DESIGN.md section 5.
 */
import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { usageError } from '../errors.js';
import { uniqueAltNames } from './names.js';
import type { Role } from './roles.js';
import { notPemMessage, opensslHint, readPemFile } from './pem.js';
import { caProblems } from './verify.js';
import { addDays, isoDay } from './validity.js';
import {
  buildCertificate,
  canSignWith,
  describeKey,
  keyMatches,
  parseCertificate,
  type AltName,
  type Certificate,
} from './x509.js';

/** Names every server certificate carries, so the loopback dashboard can be checked too. */
const LOOPBACK_NAMES: AltName[] = [
  { type: 'dns', value: 'localhost' },
  { type: 'ip', value: '127.0.0.1' },
  { type: 'ip', value: '::1' },
];

/** Clock skew between this machine and a fresh VM must not make a new certificate "not yet valid". */
const BACKDATE_MS = 5 * 60_000;

const generateKeyPairAsync = promisify(generateKeyPair);

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export const KEY_TYPES = ['rsa', 'ec'] as const;
/** `rsa`: RSA 2048, what every TLS stack takes. `ec`: ECDSA P-256, as strong as RSA 3072 and made in a millisecond. */
export type KeyType = (typeof KEY_TYPES)[number];

/** A key from Node's native crypto, off the main thread. */
export function generateKey(type: KeyType = 'rsa'): Promise<KeyPair> {
  return type === 'ec'
    ? generateKeyPairAsync('ec', { namedCurve: 'P-256' })
    : generateKeyPairAsync('rsa', { modulusLength: 2048 });
}

export interface Authority {
  certificate: Certificate;
  key: KeyObject;
  /** What goes into ca.pem: the CA and any certificates above it that came with it. */
  bundlePem: string;
  /** Set when nothing in the bundle is a self-signed root. */
  partialChain?: boolean;
}

export interface IssuedPem {
  certificate: Certificate;
  certPem: string;
  keyPem: string;
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** A new self-signed CA, valid for `days` from `now`. */
export function createAuthority(keys: KeyPair, days: number, now = new Date()): IssuedPem & Authority {
  const certPem = buildCertificate({
    subject: { commonName: `dcp CA ${randomBytes(4).toString('hex')}`, organizationName: 'dcp' },
    publicKey: keys.publicKey,
    selfSigningKey: keys.privateKey,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: addDays(now, days),
    ca: true,
    altNames: [],
  });
  const certificate = parseCertificate(certPem);
  return {
    certificate,
    certPem,
    bundlePem: certPem,
    key: keys.privateKey,
    keyPem: privateKeyPem(keys.privateKey),
  };
}

/** The names a role's certificate carries: the user's first (they name the scheduler's address). */
export function altNamesFor(role: Role, extra: AltName[]): AltName[] {
  if (role === 'client') return [{ type: 'dns', value: 'dask-client' }];
  return uniqueAltNames([...extra, { type: 'dns', value: `dask-${role}` }, ...LOOPBACK_NAMES]);
}

/** A certificate for one role, signed by the authority. */
export function issue(
  authority: Authority,
  role: Role,
  keys: KeyPair,
  options: { days: number; altNames: AltName[]; now?: Date },
): IssuedPem {
  const now = options.now ?? new Date();
  const notAfter = addDays(now, options.days);
  if (notAfter > authority.certificate.notAfter) {
    throw usageError(
      `a ${options.days}-day certificate would outlive its CA, which expires ${isoDay(authority.certificate.notAfter)}`,
      'use a smaller --days, or a CA that lives longer (--ca-days)',
    );
  }
  const certPem = buildCertificate({
    subject: { commonName: `dask-${role}`, organizationName: 'dcp' },
    publicKey: keys.publicKey,
    issuer: authority,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    ca: false,
    altNames: altNamesFor(role, options.altNames),
  });
  return { certificate: parseCertificate(certPem), certPem, keyPem: privateKeyPem(keys.privateKey) };
}

/**
 * The user's own CA from `--ca-cert`/`--ca-key`. Every reason it cannot sign is a usage error
 * naming the flag: not PEM, no certificate, not a CA, expired, key encrypted or not matching.
 */
export async function loadAuthority(certPath: string, keyPath: string, now = new Date()): Promise<Authority> {
  const [certFile, keyFile] = await Promise.all([
    readPemFile(certPath, '--ca-cert'),
    readPemFile(keyPath, '--ca-key'),
  ]);
  const certificate = certFile.certificates[0];
  if (!certificate) {
    throw usageError(
      `--ca-cert ${certPath} holds no certificate: ${certFile.notPem ? notPemMessage(certFile.notPem) : (certFile.badCertificates[0] ?? 'only keys')}`,
      'pass the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)',
    );
  }
  const [problem] = caProblems(certificate, certPath, 'any', now);
  if (problem) throw usageError(`--ca-cert: ${problem.message}`, problem.hint);
  const entry = keyFile.keys[0];
  if (!entry) {
    throw usageError(
      `--ca-key ${keyPath} holds no private key: ${keyFile.notPem ? notPemMessage(keyFile.notPem) : 'only certificates'}`,
      'pass the CA private key in PEM form',
    );
  }
  if (entry.encrypted) {
    throw usageError(
      `--ca-key ${keyPath} is encrypted with a passphrase`,
      `decrypt a copy for dcp (it is used, never copied): ${opensslHint('key', keyPath, 'encrypted')}`,
    );
  }
  if (!entry.key)
    throw usageError(`--ca-key ${keyPath} cannot be read: ${entry.error ?? 'unknown key format'}`);
  if (!canSignWith(entry.key)) {
    throw usageError(
      `--ca-key ${keyPath}: dcp cannot sign with ${describeKey(entry.key)} keys`,
      'use a CA with an RSA, EC (P-256, P-384, P-521) or Ed25519 key',
    );
  }
  if (!keyMatches(certificate, entry.key)) {
    throw usageError(
      `--ca-key ${keyPath} is not the key of --ca-cert ${certPath}`,
      'pass the key that belongs to this CA certificate',
    );
  }
  const bundle = certFile.certificates;
  return {
    certificate,
    key: entry.key,
    bundlePem: bundle.map((c) => c.pem).join(''),
    partialChain: !bundle.some((c) => c.selfSigned),
  };
}
