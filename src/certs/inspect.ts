/** `dcp certs inspect`: what is in a PEM file, in the terms the verify checks use. Never key material. */
import { notPemMessage, readPemFile } from './pem.js';
import { daysBetween } from './validity.js';
import { describeKey, keyMatches, type Certificate } from './x509.js';

export interface CertificateSummary {
  subject: string;
  issuer: string;
  serial: string;
  subject_alt_names: string[];
  not_before: string;
  not_after: string;
  days_left: number;
  key: string;
  key_usage: string[] | null;
  extended_key_usage: string[] | null;
  ca: boolean;
  self_signed: boolean;
  sha256_fingerprint: string;
}

export interface KeySummary {
  label: string;
  key: string | null;
  encrypted: boolean;
  /** Index into the same file's certificates of the one this key belongs to. */
  matches_certificate: number | null;
  error: string | null;
}

export interface FileSummary {
  path: string;
  certificates: CertificateSummary[];
  keys: KeySummary[];
  problems: string[];
}

export function summarizeCertificate(cert: Certificate, now = new Date()): CertificateSummary {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serial: cert.serial,
    subject_alt_names: cert.subjectAltNames,
    not_before: cert.notBefore.toISOString(),
    not_after: cert.notAfter.toISOString(),
    days_left: daysBetween(now, cert.notAfter),
    key: cert.keyDescription,
    key_usage: cert.keyUsage?.usages ?? null,
    extended_key_usage: cert.extKeyUsage ?? null,
    ca: cert.basicConstraints?.ca ?? false,
    self_signed: cert.selfSigned,
    sha256_fingerprint: cert.fingerprint256,
  };
}

export async function inspectFiles(paths: string[], now = new Date()): Promise<FileSummary[]> {
  const files = await Promise.all(paths.map((path) => readPemFile(path, 'file')));
  return files.map((file) => ({
    path: file.path,
    certificates: file.certificates.map((cert) => summarizeCertificate(cert, now)),
    keys: file.keys.map((entry) => {
      const index = entry.key ? file.certificates.findIndex((cert) => keyMatches(cert, entry.key!)) : -1;
      return {
        label: entry.label,
        key: entry.key ? describeKey(entry.key) : null,
        encrypted: entry.encrypted,
        matches_certificate: index >= 0 ? index : null,
        error: entry.error ?? null,
      };
    }),
    problems: [
      ...(file.notPem ? [notPemMessage(file.notPem)] : []),
      ...file.badCertificates.map((reason) => `a certificate does not parse: ${reason}`),
    ],
  }));
}
