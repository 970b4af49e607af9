/** How Dask is told to use a set of TLS files: command-line flags and a Python Client snippet. */
import type { ClientTls } from '../config/dask-tls.js';
import { shellQuote } from '../util/shell.js';

/** The flags `dask scheduler` and `dask worker` take for TLS; no key file: it is in the certificate file. */
export function daskTlsArgs(files: { caFile: string; cert: string; key: string | null }): string[] {
  return [
    '--tls-ca-file',
    files.caFile,
    '--tls-cert',
    files.cert,
    ...(files.key ? ['--tls-key', files.key] : []),
  ];
}

/** One member's TLS files, and the gate module (src/providers/dashboard-gate.ts) it preloads. */
export interface MemberTlsFiles {
  caFile: string;
  cert: string;
  key: string | null;
  gate: string;
}

/**
 * What a scheduler or worker needs for TLS everywhere it listens: the flags for its Dask port,
 * the gate preloaded, and the same files for its HTTP server (dashboard, /health, WebSockets) in
 * Dask's configuration keys as variables, which Dask reads for both roles.
 */
export function memberTls(files: MemberTlsFiles): { args: string[]; env: Record<string, string> } {
  const dashboard = 'DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__';
  return {
    args: [...daskTlsArgs(files), '--preload', files.gate],
    env: {
      [`${dashboard}CA_FILE`]: files.caFile,
      [`${dashboard}CERT`]: files.cert,
      ...(files.key ? { [`${dashboard}KEY`]: files.key } : {}),
    },
  };
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
    ...(tls.clientKey ? [`    tls_client_key=${pyString(tls.clientKey)},`] : []),
    '    require_encryption=True,',
    ')',
    `client = Client(${args([pyString(address), 'security=security'])})`,
    '',
  ].join('\n');
}

/**
 * The same connection as environment variables Dask reads (`DASK_` + key path, `__` between
 * levels), the scheduler's address among them, so `Client()` with no arguments connects. Only
 * `export` and `unset` lines: the text is meant for `eval`, and runs nothing else. A variable
 * this cluster does not use is unset, so one left by an earlier eval cannot pair a wrong key.
 */
export function envSnippet(address: string, tls: ClientTls | null): string {
  const values: [string, string | null][] = [
    ['DASK_SCHEDULER_ADDRESS', address],
    ['DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION', tls ? 'True' : null],
    ['DASK_DISTRIBUTED__COMM__TLS__CA_FILE', tls?.caFile ?? null],
    ['DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT', tls?.clientCert ?? null],
    ['DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY', tls?.clientKey ?? null],
  ];
  return values
    .map(([name, value]) => (value === null ? `unset ${name}\n` : `export ${name}=${shellQuote(value)}\n`))
    .join('');
}
