/**
 * Is the cluster ready? The scheduler must complete a mutual-TLS handshake with the client
 * certificate (checked from Node, as any client would), and the asked number of workers must
 * be connected (asked of the scheduler itself, through distributed's own Client).
 */
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { pythonClientSnippet, type ClientTls } from './snippet.js';

function hostPort(address: string): { host: string; port: number } {
  const url = new URL(address.replace(/^(tls|tcp):/, 'http:'));
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) };
}

/**
 * One handshake: resolves true when the scheduler accepted our client certificate and proved
 * its own against the CA; false when it cannot be reached or the handshake fails.
 */
export async function schedulerAnswers(address: string, tls: ClientTls | null, timeoutMs = 5_000): Promise<boolean> {
  const { host, port } = hostPort(address);
  const options = tls
    ? { ca: await readFile(tls.caFile), cert: await readFile(tls.clientCert), key: await readFile(tls.clientKey) }
    : undefined;
  return new Promise((resolve) => {
    const socket = options
      ? // Dask checks the peer against the CA, never the host name; so does this.
        connect({ host, port, ...options, rejectUnauthorized: true, checkServerIdentity: () => undefined })
      : createConnection({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once(options ? 'secureConnect' : 'connect', () => done(options ? (socket as ReturnType<typeof connect>).authorized : true));
    socket.once('error', () => done(false));
  });
}

/** Waits for the handshake to succeed, retrying until `signal` fires. */
export async function waitForScheduler(address: string, tls: ClientTls | null, signal: AbortSignal): Promise<void> {
  while (!(await schedulerAnswers(address, tls))) {
    signal.throwIfAborted();
    await sleep(200, undefined, { signal });
  }
}

/**
 * Python that connects with distributed's Client and prints `{"workers": n}` lines: once, or
 * until `want` workers are connected. The identity call asks the scheduler afresh each time.
 */
function probeScript(address: string, tls: ClientTls | null, want: number | null): string {
  return [
    'import json, sys, time',
    pythonClientSnippet(address, tls, ['timeout=10', 'set_as_default=False']),
    'while True:',
    '    identity = client.sync(client.scheduler.identity)',
    '    workers = identity["workers"]',
    '    print(json.dumps({"workers": len(workers), "threads": sum(w.get("nthreads", 0) for w in workers.values())}), flush=True)',
    `    if ${want === null ? 'True' : `len(workers) >= ${want}`}:`,
    '        break',
    '    time.sleep(0.2)',
    'client.close()',
  ].join('\n');
}

export interface WorkerCount {
  workers: number;
  threads: number;
}

/** Asks the scheduler how many workers it has now. */
export async function countWorkers(python: string, address: string, tls: ClientTls | null): Promise<WorkerCount> {
  const result = await execa(python, ['-c', probeScript(address, tls, null)], { reject: false, timeout: 60_000 });
  const line = result.stdout.trim().split('\n').at(-1);
  if (result.exitCode !== 0 || !line) throw new Error(result.stderr.trim().split('\n').at(-1) ?? `probe exited ${result.exitCode}`);
  return JSON.parse(line) as WorkerCount;
}

/** Resolves once `want` workers are connected; reports each new count. Stops when `signal` fires. */
export async function waitForWorkers(
  python: string,
  address: string,
  tls: ClientTls | null,
  want: number,
  signal: AbortSignal,
  onCount: (count: WorkerCount) => void,
): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    const probe = execa(python, ['-c', probeScript(address, tls, want)], { reject: false, cancelSignal: signal, buffer: { stdout: false } });
    let last = -1;
    probe.stdout?.setEncoding('utf8');
    let pending = '';
    probe.stdout?.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const count = JSON.parse(line) as WorkerCount;
        if (count.workers !== last) onCount(count);
        last = count.workers;
      }
    });
    const result = await probe;
    signal.throwIfAborted();
    if (result.exitCode === 0 && last >= want) return;
    // The scheduler was not listening yet, or dropped us: try again shortly.
    await sleep(300, undefined, { signal });
  }
}
