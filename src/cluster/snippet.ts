/** How Dask is told to use a set of TLS files: command-line flags and a Python Client snippet. */

export interface ClientTls {
  caFile: string;
  clientCert: string;
  clientKey: string;
}

/** The flags `dask scheduler` and `dask worker` take for TLS. */
export function daskTlsArgs(files: { caFile: string; cert: string; key: string }): string[] {
  return ['--tls-ca-file', files.caFile, '--tls-cert', files.cert, '--tls-key', files.key];
}

/** A Python string literal: JSON's escapes are valid Python escapes. */
function pyString(value: string): string {
  return JSON.stringify(value);
}

/** Python that connects as-is and defines `client`. */
export function pythonClientSnippet(address: string, tls: ClientTls | null): string {
  if (!tls) {
    return ['from distributed import Client', '', `client = Client(${pyString(address)})`, ''].join('\n');
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
    `client = Client(${pyString(address)}, security=security)`,
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
