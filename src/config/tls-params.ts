/**
 * The TLS parameters of Dask's TLS page: the lowest and highest protocol version, the OpenSSL
 * cipher string, and whether plain TCP is refused. One set per cluster, chosen from dcp's
 * settings over the user's own Dask configuration (never weaker than it), and given alike to
 * every member, every client form dcp prints, and dcp's own handshakes.
 */
import { createSecureContext, DEFAULT_CIPHERS, type ConnectionOptions } from 'node:tls';
import { daskConfigGet, type TlsVersion, type UserDaskConfig } from './dask-user.js';
import type { Settings } from './schema.js';

export interface TlsParams {
  minVersion: TlsVersion;
  /** Unset: the highest both sides have. */
  maxVersion?: TlsVersion;
  /** An OpenSSL cipher string for TLS 1.2 (Python's set_ciphers: TLS 1.3 suites are not chosen). */
  ciphers?: string;
  requireEncryption: boolean;
}

export const TLS_VERSION_CHOICES = ['1.2', '1.3'] as const;

/**
 * Why Dask could not use `ciphers`, or undefined when it can: checked by building a real TLS
 * context, as Python's `SSLContext.set_ciphers` does. That call sets the TLS 1.2 list only, so a
 * string of TLS 1.3 suite names alone selects nothing there either.
 */
export function cipherProblem(ciphers: string): string | undefined {
  // OpenSSL's separators: colons, and also semicolons, commas and spaces.
  const words = ciphers.split(/[:;,\s]+/).filter(Boolean);
  if (words.length > 0 && words.every((word) => word.startsWith('TLS_')))
    return 'names TLS 1.3 suites only, which Dask cannot choose (its ciphers set TLS 1.2 and below)';
  // What OpenSSL would take but no cluster should: no encryption, no authentication, or its
  // security floor lowered (which lets the weak ones back in).
  const weakened = words.find(
    (word) =>
      /^@SECLEVEL=(?![2-5]$)/i.test(word) ||
      (!/^[!-]/.test(word) && /(^|[+-])(e?NULL|aNULL|ADH|AECDH|EXPORT|EXP|RC4|DES|MD5)($|[+-])/i.test(word)),
  );
  if (weakened)
    return `selects ${weakened}, which lets traffic go unencrypted or unauthenticated, or lowers OpenSSL's security level`;
  try {
    // Node gives TLS_* names to TLS 1.3 and the rest to OpenSSL's TLS 1.2 list, as Python does.
    createSecureContext({ ciphers });
    return undefined;
  } catch (error) {
    return `selects no cipher (OpenSSL: ${(error as Error).message.replace(/^.*::/, '')})`;
  }
}

/** Node's TLS 1.3 suites: Dask's cipher string leaves them alone, and so do dcp's handshakes. */
function tls13Suites(): string {
  return DEFAULT_CIPHERS.split(':')
    .filter((suite) => suite.startsWith('TLS_'))
    .join(':');
}

const asVersion = (value: unknown): TlsVersion | undefined => {
  const number = Number(value);
  return number === 1.2 || number === 1.3 ? number : undefined;
};

/**
 * The cluster's parameters: dcp's settings where given, else the user's Dask configuration, else
 * Dask's defaults. The minimum never goes below the user's own: their Dask files are what their
 * other clients and clusters run with. Returns the parameters and what the user should know.
 */
export function resolveTlsParams(
  settings: Settings,
  user: UserDaskConfig,
): { params: TlsParams; warnings: string[] } {
  const warnings: string[] = [];
  const known = user.unreadable.length === 0;
  const theirs = (key: string) =>
    known ? daskConfigGet(user.config, `distributed.comm.tls.${key}`) : undefined;
  const theirMin = asVersion(theirs('min-version'));
  let minVersion = asVersion(settings.tls_min_version) ?? theirMin ?? 1.2;
  if (theirMin !== undefined && theirMin > minVersion) {
    warnings.push(
      `tls_min_version ${minVersion} is below the ${theirMin} of your Dask configuration: ${theirMin} is kept`,
    );
    minVersion = theirMin;
  }
  const maxVersion = asVersion(settings.tls_max_version) ?? asVersion(theirs('max-version'));
  let theirCiphers = theirs('ciphers');
  const weak = typeof theirCiphers === 'string' ? cipherProblem(theirCiphers) : undefined;
  if (weak && settings.tls_ciphers === undefined) {
    warnings.push(
      `the ciphers of your Dask configuration (${String(theirCiphers)}) ${weak}: the cluster keeps Python's defaults`,
    );
    theirCiphers = undefined;
  }
  const ciphers = settings.tls_ciphers ?? (typeof theirCiphers === 'string' ? theirCiphers : undefined);
  return {
    params: {
      minVersion,
      ...(maxVersion === undefined ? {} : { maxVersion }),
      ...(ciphers ? { ciphers } : {}),
      requireEncryption: settings.require_encryption ?? true,
    },
    warnings,
  };
}

/** The parameters in Dask's configuration, as variables Dask reads (values as Python literals). */
export function tlsParamsEnv(params: TlsParams): Record<string, string> {
  const prefix = 'DASK_DISTRIBUTED__COMM__';
  // Every key, `None` for none: whatever else Dask would read (another cluster's dcp-client.yaml)
  // must not choose this cluster's versions or ciphers.
  return {
    [`${prefix}REQUIRE_ENCRYPTION`]: params.requireEncryption ? 'True' : 'False',
    [`${prefix}TLS__MIN_VERSION`]: String(params.minVersion),
    [`${prefix}TLS__MAX_VERSION`]: params.maxVersion === undefined ? 'None' : String(params.maxVersion),
    // Quoted: Dask reads a variable's value as a Python literal when it is one.
    [`${prefix}TLS__CIPHERS`]: params.ciphers ? JSON.stringify(params.ciphers) : 'None',
  };
}

/** The same limits for a Node TLS client (dcp's readiness and `doctor` handshakes, the gateway). */
export function nodeTlsLimits(params: Partial<TlsParams>): ConnectionOptions {
  const version = (v: TlsVersion) => (v === 1.3 ? 'TLSv1.3' : 'TLSv1.2');
  return {
    minVersion: version(params.minVersion ?? 1.2),
    ...(params.maxVersion ? { maxVersion: version(params.maxVersion) } : {}),
    ...(params.ciphers ? { ciphers: `${tls13Suites()}:${params.ciphers}` } : {}),
  };
}
