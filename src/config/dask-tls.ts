/** The client side of a TLS cluster in Dask's own keys, so a plain `Client("tls://...")` works. */
import { rm } from 'node:fs/promises';
import { Document } from 'yaml';
import type { TlsParams } from './tls-params.js';
import { deleteIn, readYaml, setIn, updateYaml } from './yaml-file.js';

/**
 * The files a Dask client presents and trusts, and the cluster's TLS parameters (absent in the
 * records of clusters made before dcp kept them: Dask's defaults hold there).
 */
export interface ClientTls extends Partial<TlsParams> {
  caFile: string;
  clientCert: string;
  /** Null when the key is in the certificate file, which Dask then reads it from. */
  clientKey: string | null;
}

/**
 * `distributed.comm.*` keys and values; versions are floats, as distributed expects; null means
 * the key must not be set. A minimum of 1.2 is Dask's default and never written, so the file
 * never lowers a stricter one of the user's. `requireEncryption` makes every Dask connection of
 * whoever reads the file refuse plain TCP, which breaks a user's ordinary `LocalCluster()`: right
 * for a per-cluster file, wrong for a file every Dask program reads.
 */
export function daskTlsValues(tls: ClientTls, requireEncryption = true): [string[], unknown][] {
  return [
    ...(requireEncryption
      ? [
          [['distributed', 'comm', 'require-encryption'], tls.requireEncryption ?? true] as [
            string[],
            unknown,
          ],
        ]
      : []),
    [['distributed', 'comm', 'tls', 'ca-file'], tls.caFile],
    [['distributed', 'comm', 'tls', 'client', 'cert'], tls.clientCert],
    [['distributed', 'comm', 'tls', 'client', 'key'], tls.clientKey],
    [['distributed', 'comm', 'tls', 'min-version'], tls.minVersion === 1.3 ? 1.3 : null],
    [['distributed', 'comm', 'tls', 'max-version'], tls.maxVersion ?? null],
    [['distributed', 'comm', 'tls', 'ciphers'], tls.ciphers ?? null],
  ];
}

function applyTo(doc: Document, values: [string[], unknown][]): void {
  for (const [path, value] of values) {
    if (value === null) deleteIn(doc, path);
    else setIn(doc, path, value);
  }
}

/** Writes them into `file` (a Dask YAML file), keeping whatever else it holds. */
export function writeDaskTlsConfig(
  file: string,
  tls: ClientTls,
  options: { requireEncryption?: boolean; comment?: string } = {},
): Promise<boolean> {
  return updateYaml(file, (doc) => {
    if (options.comment !== undefined) doc.commentBefore = options.comment;
    applyTo(doc, daskTlsValues(tls, options.requireEncryption ?? true));
  });
}

/** The keys as a YAML document, for `dcp snippet --format yaml`. */
export function daskTlsYaml(tls: ClientTls): string {
  const doc = new Document({}, { version: '1.1' });
  applyTo(doc, daskTlsValues(tls));
  return doc.toString();
}

/**
 * The CA file a dcp-owned client config names, if any: another cluster's `up` may have taken the
 * file over since. Read without a lock, so a folder dcp cannot write does not matter.
 */
export async function clientConfigCaFile(file: string): Promise<string | undefined> {
  const content = await readYaml(file).catch(() => undefined);
  const named = (content?.distributed as { comm?: { tls?: { 'ca-file'?: unknown } } } | undefined)?.comm
    ?.tls?.['ca-file'];
  return typeof named === 'string' ? named : undefined;
}

/** Removes a dcp-owned client config and its .bak. */
export async function removeDaskTlsConfig(file: string): Promise<void> {
  await Promise.all([rm(file, { force: true }), rm(`${file}.bak`, { force: true })]);
}
