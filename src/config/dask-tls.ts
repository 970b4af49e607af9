/** The client side of a TLS cluster in Dask's own keys, so a plain `Client("tls://...")` works. */
import { rm } from 'node:fs/promises';
import { Document } from 'yaml';
import { setIn, updateYaml } from './yaml-file.js';

/** The files a Dask client presents and trusts. */
export interface ClientTls {
  caFile: string;
  clientCert: string;
  clientKey: string;
}

/**
 * `distributed.comm.*` keys and values; `min-version` is a float, as distributed expects.
 * `requireEncryption` makes every Dask connection of whoever reads the file refuse plain TCP,
 * which breaks a user's ordinary `LocalCluster()`: right for a per-cluster file, wrong for a
 * file every Dask program reads.
 */
export function daskTlsValues(tls: ClientTls, requireEncryption = true): [string[], unknown][] {
  return [
    ...(requireEncryption
      ? [[['distributed', 'comm', 'require-encryption'], true] as [string[], unknown]]
      : []),
    [['distributed', 'comm', 'tls', 'ca-file'], tls.caFile],
    [['distributed', 'comm', 'tls', 'client', 'cert'], tls.clientCert],
    [['distributed', 'comm', 'tls', 'client', 'key'], tls.clientKey],
    [['distributed', 'comm', 'tls', 'min-version'], 1.2],
  ];
}

/** Writes them into `file` (a Dask YAML file), keeping whatever else it holds. */
export function writeDaskTlsConfig(
  file: string,
  tls: ClientTls,
  options: { requireEncryption?: boolean; comment?: string } = {},
): Promise<boolean> {
  return updateYaml(file, (doc) => {
    if (options.comment !== undefined) doc.commentBefore = options.comment;
    for (const [path, value] of daskTlsValues(tls, options.requireEncryption ?? true))
      setIn(doc, path, value);
  });
}

/** The keys as a YAML document, for `dcp snippet --format yaml`. */
export function daskTlsYaml(tls: ClientTls): string {
  const doc = new Document({}, { version: '1.1' });
  for (const [path, value] of daskTlsValues(tls)) setIn(doc, path, value);
  return doc.toString();
}

/**
 * Removes a dcp-owned client config (and its .bak) if it still points at `caFile`: another
 * cluster's `up` may have taken the file over since, and then it stays.
 */
export async function removeDaskTlsConfigFor(file: string, caFile: string): Promise<boolean> {
  let removed = false;
  await updateYaml(file, (doc) => {
    removed = doc.getIn(['distributed', 'comm', 'tls', 'ca-file']) === caFile;
  });
  if (removed) await Promise.all([rm(file, { force: true }), rm(`${file}.bak`, { force: true })]);
  return removed;
}
