/**
 * Is the cluster ready? The scheduler must complete a mutual-TLS handshake with the client
 * certificate (checked from Node, as any client would), and the asked number of workers must
 * be connected, as the scheduler itself reports on its HTTP endpoint (/json/counts.json), which
 * answers only the client certificate too.
 */
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { get as plainGet } from 'node:http';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ConnectionOptions, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { ClientTls } from '../config/dask-tls.js';
import { nodeTlsLimits } from '../config/tls-params.js';

/**
 * What a client of the cluster presents and trusts, within the cluster's versions and ciphers.
 * Dask checks the peer against the CA, never the host name; so does this.
 */
export async function clientTlsOptions(tls: ClientTls): Promise<ConnectionOptions> {
  const [ca, cert, key] = await Promise.all([
    readFile(tls.caFile),
    readFile(tls.clientCert),
    // A combined file gives its key too: OpenSSL takes the key block and skips the certificate.
    readFile(tls.clientKey ?? tls.clientCert),
  ]);
  return {
    ca,
    cert,
    key,
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
    ...nodeTlsLimits(tls),
  };
}

/** The largest answer read from a member's HTTP server: its JSON is small. */
const HTTP_LIMIT = 1 << 20;

/**
 * GET from a member's HTTP server (the dashboard's): over mutual TLS with the client certificate
 * for a TLS cluster, plain HTTP for one without. Rejects when it cannot be reached.
 */
export async function memberGet(
  url: string,
  tls: ClientTls | null,
  signal?: AbortSignal,
): Promise<{ status: number; body: string }> {
  const options = { signal: signal ?? AbortSignal.timeout(5_000) };
  const tlsOptions = tls && url.startsWith('https:') ? await clientTlsOptions(tls) : undefined;
  return new Promise((resolve, reject) => {
    const req = tlsOptions
      ? request(url, { ...options, ...tlsOptions, agent: false })
      : plainGet(url, { ...options, agent: false });
    req.once('error', reject);
    req.once('response', (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > HTTP_LIMIT) req.destroy(new Error(`${url} answered more than ${HTTP_LIMIT} bytes`));
        else chunks.push(chunk);
      });
      response.once('error', reject);
      response.once('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    if (tlsOptions) req.end();
  });
}

function hostPort(address: string): { host: string; port: number } {
  const url = new URL(address.replace(/^(tls|tcp):/, 'http:'));
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
}

/**
 * One handshake: true when the scheduler accepted our client certificate and proved its own
 * against the CA; false when it cannot be reached or the handshake fails. Under TLS 1.3 the
 * client finishes before the server has judged the client certificate, so success waits for the
 * server's session ticket, which it sends only once it accepted us (a refusal arrives as an alert).
 */
export async function schedulerAnswers(
  address: string,
  tls: ClientTls | null,
  timeoutMs = 5_000,
): Promise<boolean> {
  return (await probe(address, tls ? await clientTlsOptions(tls) : null, timeoutMs)).ok;
}

export interface Probe {
  ok: boolean;
  /** Why it failed: the TLS alert or socket error. */
  error?: string;
  /** The server's certificate, when the handshake got that far. */
  peer?: PeerCertificate;
}

/**
 * One connection to `address` (`tls://host:port`, `https://...`): a TLS handshake with `options`
 * (which the server must accept in full), or a plain TCP connect when null.
 */
export async function probe(
  address: string,
  options: ConnectionOptions | null,
  timeoutMs = 5_000,
): Promise<Probe> {
  const { host, port } = hostPort(address);
  return new Promise((resolve) => {
    const socket = options ? connect({ host, port, ...options }) : createConnection({ host, port });
    let settled = false;
    let peer: PeerCertificate | undefined;
    const done = (ok: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A polite close: the scheduler then has no failed handshake to log.
      socket.end();
      socket.destroy();
      resolve({ ok, ...(error ? { error } : {}), ...(peer ? { peer } : {}) });
    };
    const timer = setTimeout(() => done(false, 'no answer'), timeoutMs);
    if (options) {
      const tlsSocket = socket as TLSSocket;
      tlsSocket.once('secureConnect', () => {
        peer = tlsSocket.getPeerCertificate();
        if (!tlsSocket.authorized) done(false, String(tlsSocket.authorizationError));
        else if (tlsSocket.getProtocol() !== 'TLSv1.3') done(true);
      });
      tlsSocket.once('session', () => done(tlsSocket.authorized));
    } else {
      socket.once('connect', () => done(true));
    }
    socket.once('error', (error: NodeJS.ErrnoException) => done(false, error.code ?? error.message));
    socket.once('close', () => done(false, 'closed'));
  });
}

/** Waits for the handshake to succeed, retrying until `signal` fires. */
export async function waitForScheduler(
  address: string,
  tls: ClientTls | null,
  signal: AbortSignal,
): Promise<void> {
  while (!(await schedulerAnswers(address, tls))) {
    signal.throwIfAborted();
    await sleep(100, undefined, { signal });
  }
}

export interface WorkerCount {
  workers: number;
  threads: number;
}

/** What the scheduler counts now; undefined when its HTTP endpoint does not answer. */
export async function countWorkers(
  dashboardUrl: string,
  tls: ClientTls | null,
  signal?: AbortSignal,
): Promise<WorkerCount | undefined> {
  try {
    const response = await memberGet(
      new URL('/json/counts.json', dashboardUrl).href,
      tls,
      signal ? AbortSignal.any([signal, AbortSignal.timeout(5_000)]) : AbortSignal.timeout(5_000),
    );
    if (response.status !== 200) return undefined;
    const counts = JSON.parse(response.body) as { workers?: number; cores?: number };
    return typeof counts.workers === 'number'
      ? { workers: counts.workers, threads: counts.cores ?? 0 }
      : undefined;
  } catch {
    signal?.throwIfAborted();
    return undefined;
  }
}

/** Resolves once `want` workers are connected, reporting each new count; stops when `signal` fires. */
export async function waitForWorkers(
  dashboardUrl: string,
  tls: ClientTls | null,
  want: number,
  signal: AbortSignal,
  onCount: (count: WorkerCount) => void,
): Promise<void> {
  let last = -1;
  for (;;) {
    const count = await countWorkers(dashboardUrl, tls, signal);
    if (count && count.workers !== last) {
      last = count.workers;
      onCount(count);
    }
    if (count && count.workers >= want) return;
    await sleep(100, undefined, { signal });
  }
}
