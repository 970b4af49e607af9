/** The client side of a TLS cluster in Dask's own keys, so a plain `Client("tls://...")` works. */
import { setIn, updateYaml } from './yaml-file.js';

export interface DaskClientTls {
  caFile: string;
  clientCert: string;
  clientKey: string;
}

/** `distributed.comm.*` keys and values; `min-version` is a float, as distributed expects. */
export function daskTlsValues(tls: DaskClientTls): [string[], unknown][] {
  return [
    [['distributed', 'comm', 'require-encryption'], true],
    [['distributed', 'comm', 'tls', 'ca-file'], tls.caFile],
    [['distributed', 'comm', 'tls', 'client', 'cert'], tls.clientCert],
    [['distributed', 'comm', 'tls', 'client', 'key'], tls.clientKey],
    [['distributed', 'comm', 'tls', 'min-version'], 1.2],
  ];
}

/** Writes them into `file` (a Dask YAML file), keeping whatever else it holds. */
export function writeDaskTlsConfig(file: string, tls: DaskClientTls): Promise<boolean> {
  return updateYaml(file, (doc) => {
    for (const [path, value] of daskTlsValues(tls)) setIn(doc, path, value);
  });
}
