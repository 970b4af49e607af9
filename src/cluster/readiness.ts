/**
 * Is the cluster ready? The scheduler must complete a mutual-TLS handshake with the client
 * certificate (checked from Node, as any client would), and the asked number of workers must
 * be connected, as the scheduler itself reports on its HTTP endpoint (/json/counts.json).
 */
import { readFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:tls';
import type { ClientTls } from '../config/dask-tls.js';

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
  const { host, port } = hostPort(address);
  const options = tls
    ? {
        ca: await readFile(tls.caFile),
        cert: await readFile(tls.clientCert),
        // A combined file gives its key too: OpenSSL takes the key block and skips the certificate.
        key: await readFile(tls.clientKey ?? tls.clientCert),
      }
    : undefined;
  return new Promise((resolve) => {
    const socket = options
      ? // Dask checks the peer against the CA, never the host name; so does this.
        connect({ host, port, ...options, rejectUnauthorized: true, checkServerIdentity: () => undefined })
      : createConnection({ host, port });
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A polite close: the scheduler then has no failed handshake to log.
      socket.end();
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    if (options) {
      const tlsSocket = socket as ReturnType<typeof connect>;
      tlsSocket.once('secureConnect', () => {
        if (!tlsSocket.authorized) done(false);
        else if (tlsSocket.getProtocol() !== 'TLSv1.3') done(true);
      });
      tlsSocket.once('session', () => done(tlsSocket.authorized));
    } else {
      socket.once('connect', () => done(true));
    }
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
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
  signal?: AbortSignal,
): Promise<WorkerCount | undefined> {
  try {
    const response = await fetch(new URL('/json/counts.json', dashboardUrl), {
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(5_000)]) : AbortSignal.timeout(5_000),
    });
    if (!response.ok) return undefined;
    const counts = (await response.json()) as { workers?: number; cores?: number };
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
  want: number,
  signal: AbortSignal,
  onCount: (count: WorkerCount) => void,
): Promise<void> {
  let last = -1;
  for (;;) {
    const count = await countWorkers(dashboardUrl, signal);
    if (count && count.workers !== last) {
      last = count.workers;
      onCount(count);
    }
    if (count && count.workers >= want) return;
    await sleep(100, undefined, { signal });
  }
}
