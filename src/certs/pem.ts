/** Reading PEM files: certificates and private keys, in any order, several to a file. */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { basename, dirname, extname, join } from 'node:path';
import { messageOf, usageError } from '../errors.js';
import { describeErrno, readRegularFile } from '../util/files.js';
import { shellCommand, shellQuote } from '../util/shell.js';
import { parseCertificate, type Certificate } from './x509.js';

export interface PrivateKeyEntry {
  /** PEM label, e.g. `PRIVATE KEY`, `RSA PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`. */
  label: string;
  /** Protected by a passphrase: Dask has no way to supply one. */
  encrypted: boolean;
  /** The usable key; absent when encrypted or unreadable. */
  key?: KeyObject;
  error?: string;
}

export type NotPemReason = 'der' | 'no-blocks' | 'text';

export function notPemMessage(reason: NotPemReason): string {
  return {
    der: 'it looks like binary DER, not PEM',
    'no-blocks': 'it holds no certificate or private key',
    text: 'it is not a PEM file',
  }[reason];
}

export interface PemFile {
  path: string;
  certificates: Certificate[];
  keys: PrivateKeyEntry[];
  /** Certificate blocks that did not parse, with the reason. */
  badCertificates: string[];
  /** Why the file is not PEM at all, when it is not. */
  notPem?: NotPemReason;
  /** Permission bits of the file read (0 when parsed from text). */
  mode: number;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const CERTIFICATE_LABELS = ['CERTIFICATE', 'X509 CERTIFICATE', 'TRUSTED CERTIFICATE'];

/** The blocks of one kind in PEM text, as they are: its certificates, or its private keys. */
export function pemBlocks(text: string, kind: 'certificate' | 'key'): string {
  return [...text.matchAll(BLOCK)]
    .filter(([, label = '']) =>
      kind === 'key' ? label.endsWith('PRIVATE KEY') : CERTIFICATE_LABELS.includes(label),
    )
    .map(([block]) => `${block}\n`)
    .join('');
}

/** Parses PEM text. Never throws: what is wrong is reported in the result. */
export function parsePem(path: string, text: string, mode = 0): PemFile {
  const file: PemFile = { path, certificates: [], keys: [], badCertificates: [], mode };
  for (const match of text.matchAll(BLOCK)) {
    const [block, label = '', body = ''] = match;
    if (CERTIFICATE_LABELS.includes(label)) {
      try {
        file.certificates.push(parseCertificate(block));
      } catch (error) {
        file.badCertificates.push(messageOf(error));
      }
    } else if (label.endsWith('PRIVATE KEY')) {
      const encrypted = label === 'ENCRYPTED PRIVATE KEY' || /^Proc-Type:\s*4,ENCRYPTED/m.test(body);
      const entry: PrivateKeyEntry = { label, encrypted };
      if (!encrypted) {
        try {
          entry.key = createPrivateKey(block);
        } catch (error) {
          entry.error = messageOf(error);
        }
      }
      file.keys.push(entry);
    }
  }
  if (file.certificates.length === 0 && file.keys.length === 0 && file.badCertificates.length === 0) {
    file.notPem = text.includes('-----BEGIN') ? 'no-blocks' : looksLikeDer(text) ? 'der' : 'text';
  }
  return file;
}

/** DER starts with a SEQUENCE tag and is full of bytes no text file has. */
function looksLikeDer(text: string): boolean {
  const head = [...text.slice(0, 64)].map((char) => char.charCodeAt(0));
  return head[0] === 0x30 && head.some((code) => code < 0x09 || (code > 0x0d && code < 0x20));
}

/**
 * Reads and parses a PEM file (at most 1 MiB, a regular file). A file that cannot be read at all
 * is the user's mistake in naming it: a usage error (exit 2) naming the flag it came from.
 */
export async function readPemFile(path: string, flag: string): Promise<PemFile> {
  let read: Awaited<ReturnType<typeof readRegularFile>>;
  try {
    read = await readRegularFile(path);
  } catch (error) {
    throw usageError(
      `cannot read ${flag} ${path}: ${describeErrno(error)}`,
      `check the path given to ${flag}`,
    );
  }
  return parsePem(path, read.data.toString('latin1'), read.info.mode & 0o777);
}

/**
 * An openssl command that writes what Dask can load into a new file beside `input`, never over
 * it (`openssl ... -in K -out K` empties K before reading it). A key goes to a file that must
 * not exist yet (the shell's noclobber: one planted there by another user is refused, not
 * filled), made 0600 from the start, so its plain form is never readable by others.
 */
export function opensslHint(kind: 'certificate' | 'key', input: string, from: 'der' | 'encrypted'): string {
  const base = join(dirname(input), basename(input, extname(input)));
  // The suffix comes after the input's own name without its extension: never the input itself.
  const output = `${base}-${from === 'der' ? 'pem' : 'decrypted'}.pem`;
  const read = [
    'openssl',
    kind === 'certificate' ? 'x509' : 'pkey',
    ...(from === 'der' ? ['-inform', 'DER'] : []),
    '-in',
    input,
  ];
  return kind === 'key'
    ? `(umask 077 && set -C && ${shellCommand(read)} > ${shellQuote(output)})`
    : shellCommand([...read, '-out', output]);
}

/** How to turn a DER file into what Dask can load. */
export function conversionHint(file: PemFile, kind: 'certificate' | 'key'): string {
  if (file.notPem === 'der') return `convert it: ${opensslHint(kind, file.path, 'der')}`;
  return 'Dask reads PEM files: text with -----BEGIN CERTIFICATE----- or -----BEGIN PRIVATE KEY----- blocks';
}
