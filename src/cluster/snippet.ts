/** How Dask is told to use a set of TLS files: command-line flags and a Python Client snippet. */
import type { ClientTls } from '../config/dask-tls.js';

/** The flags `dask scheduler` and `dask worker` take for TLS. */
export function daskTlsArgs(files: { caFile: string; cert: string; key: string }): string[] {
  return ['--tls-ca-file', files.caFile, '--tls-cert', files.cert, '--tls-key', files.key];
}

/** A Python string literal: JSON's escapes are valid Python escapes. */
function pyString(value: string): string {
  return JSON.stringify(value);
}

/** Python that connects as-is and defines `client`; `clientArgs` are extra keyword arguments. */
export function pythonClientSnippet(
  address: string,
  tls: ClientTls | null,
  clientArgs: string[] = [],
): string {
  const args = (first: string[]) => [...first, ...clientArgs].join(', ');
  if (!tls) {
    return ['from distributed import Client', '', `client = Client(${args([pyString(address)])})`, ''].join(
      '\n',
    );
  }
  return [
    'from distributed import Client, Security',
    '',
    'security = Security(',
    `    tls_ca_file=${pyString(tls.caFile)},`,
    `    tls_client_cert=${pyString(tls.clientCert)},`,
    `    tls_client_key=${pyString(tls.clientKey)},`,
    '    require_encryption=True,',
    ')',
    `client = Client(${args([pyString(address), 'security=security'])})`,
    '',
  ].join('\n');
}

/** One shell word, quoted only when it needs to be. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

export function shellCommand(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** The same connection as environment variables Dask reads (`DASK_` + key path, `__` between levels). */
export function envSnippet(address: string, tls: ClientTls | null): string {
  const exports = tls
    ? [
        `export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True`,
        `export DASK_DISTRIBUTED__COMM__TLS__CA_FILE=${shellQuote(tls.caFile)}`,
        `export DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=${shellQuote(tls.clientCert)}`,
        `export DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=${shellQuote(tls.clientKey)}`,
      ]
    : [];
  return [
    ...exports,
    `python3 -c ${shellQuote(`from distributed import Client; client = Client(${pyString(address)}); print(client)`)}`,
    '',
  ].join('\n');
}
