/** How Dask is told to use a set of TLS files: command-line flags and a Python Client snippet. */
import type { ClientTls } from '../config/dask-tls.js';
import { tlsParamsEnv, type TlsParams } from '../config/tls-params.js';
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

/** One member's TLS files and parameters, and the gate module (src/providers/dashboard-gate.ts) it preloads. */
export interface MemberTlsFiles {
  caFile: string;
  cert: string;
  key: string | null;
  gate: string;
  params: TlsParams;
}

/**
 * What a scheduler or worker needs for TLS everywhere it listens: the flags for its Dask port,
 * the gate preloaded, and, as variables of Dask's configuration keys, the cluster's versions and
 * ciphers and the same files for its HTTP server (dashboard, /health, WebSockets).
 */
export function memberTls(files: MemberTlsFiles): { args: string[]; env: Record<string, string> } {
  const dashboard = 'DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__';
  return {
    args: [...daskTlsArgs(files), '--preload', files.gate],
    env: {
      ...tlsParamsEnv(files.params),
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
  const version = (v: number) => `ssl.TLSVersion.TLSv1_${v === 1.3 ? 3 : 2}`;
  // Dask's defaults (1.2, no maximum, Python's ciphers) go unsaid.
  const limits = [
    ...(tls.minVersion === 1.3 ? [`    tls_min_version=${version(tls.minVersion)},`] : []),
    ...(tls.maxVersion ? [`    tls_max_version=${version(tls.maxVersion)},`] : []),
    ...(tls.ciphers ? [`    tls_ciphers=${pyString(tls.ciphers)},`] : []),
  ];
  return [
    ...(limits.some((line) => line.includes('ssl.')) ? ['import ssl', ''] : []),
    'from distributed import Client, Security',
    '',
    'security = Security(',
    `    tls_ca_file=${pyString(tls.caFile)},`,
    `    tls_client_cert=${pyString(tls.clientCert)},`,
    ...(tls.clientKey ? [`    tls_client_key=${pyString(tls.clientKey)},`] : []),
    ...limits,
    `    require_encryption=${tls.requireEncryption === false ? 'False' : 'True'},`,
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
  const params = tls ? tlsParamsEnv({ minVersion: 1.2, requireEncryption: true, ...tls }) : {};
  const tlsKey = 'DASK_DISTRIBUTED__COMM__TLS__';
  const values: [string, string | null][] = [
    ['DASK_SCHEDULER_ADDRESS', address],
    ['DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION', params.DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION ?? null],
    [`${tlsKey}CA_FILE`, tls?.caFile ?? null],
    [`${tlsKey}CLIENT__CERT`, tls?.clientCert ?? null],
    [`${tlsKey}CLIENT__KEY`, tls?.clientKey ?? null],
    // Dask's default minimum goes unsaid, so a stricter one of the user's own still holds.
    [`${tlsKey}MIN_VERSION`, tls?.minVersion === 1.3 ? '1.3' : null],
    [`${tlsKey}MAX_VERSION`, params[`${tlsKey}MAX_VERSION`] ?? null],
    [`${tlsKey}CIPHERS`, params[`${tlsKey}CIPHERS`] ?? null],
  ];
  return values
    .map(([name, value]) => (value === null ? `unset ${name}\n` : `export ${name}=${shellQuote(value)}\n`))
    .join('');
}
