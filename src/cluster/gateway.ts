/**
 * `dcp dashboard`'s gateway: an HTTP server on 127.0.0.1 that forwards requests and WebSocket
 * upgrades (Bokeh's live plots) to the cluster's dashboard over mutual TLS with the client
 * certificate, so a browser, which has no such certificate, can show it.
 *
 * Loopback is not private: every local user, and any web page whose name is made to resolve to
 * 127.0.0.1, can reach the port. So the gateway serves only a browser that proved it holds the
 * URL's secret token (exchanged at once for an HttpOnly cookie) and asked for this gateway's own
 * secret host name, `dcp-<random>.localhost` (browsers resolve every `.localhost` name to
 * loopback): without both, a request gets 403 and never reaches the cluster. Browsers send a
 * cookie to every port of its host, so a cookie for `127.0.0.1` would go to whatever another
 * local user serves on 127.0.0.1 too; one for a name nobody else knows goes nowhere else.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline, type Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { ClientTls } from '../config/dask-tls.js';
import { clientTlsOptions } from './readiness.js';

export interface Gateway {
  /** `http://dcp-<random>.localhost:PORT/status?dcp_token=...`: the page to open, with its secrets. */
  url: string;
  close(): Promise<void>;
}

const TOKEN_PARAMETER = 'dcp_token';

/** Headers of one hop only (RFC 9110 section 7.6.1); the gateway makes its own. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

function sameSecret(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const [a, b] = [Buffer.from(given), Buffer.from(token)];
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/**
 * Starts the gateway to `dashboard` (the cluster's dashboard URL, any path). `tls` null: a
 * cluster made with `--tls off`, whose dashboard is plain HTTP as the user asked.
 */
export async function startGateway(dashboard: string, tls: ClientTls | null): Promise<Gateway> {
  const target = new URL(dashboard);
  const secure = target.protocol === 'https:';
  const tlsOptions: ConnectionOptions | undefined = secure && tls ? await clientTlsOptions(tls) : undefined;
  const token = randomBytes(32).toString('base64url');
  // Connections that send no request are closed within seconds, so nobody holds the slots long.
  const server = createServer({
    headersTimeout: 5_000,
    requestTimeout: 120_000,
    connectionsCheckingInterval: 1_000,
  });
  // Enough for a browser's pages and plots; not every descriptor for whoever opens connections.
  server.maxConnections = 256;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  const host = `dcp-${randomBytes(16).toString('hex')}.localhost:${port}`;
  const cookieName = 'dcp_gateway';
  // Upgraded connections leave the HTTP server's books: closing the gateway ends them here.
  const tunnels = new Set<Duplex>();

  /** Who may pass: 'ok', 'exchange' (a right token in the URL, to trade for a cookie), or 'no'. */
  const admit = (req: IncomingMessage): 'ok' | 'exchange' | 'no' => {
    if (req.headers.host !== host) return 'no';
    const query = new URL(req.url ?? '/', 'http://gateway').searchParams.get(TOKEN_PARAMETER);
    // A token in the URL is traded even with a cookie: it must leave the address bar, never go on.
    if (query !== null) return sameSecret(query, token) ? 'exchange' : 'no';
    return sameSecret(cookie(req.headers.cookie, cookieName), token) ? 'ok' : 'no';
  };

  /** What goes upstream: the browser's headers, minus this hop's and every cookie (the dashboard needs none). */
  const upstreamHeaders = (req: IncomingMessage): OutgoingHttpHeaders => {
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (HOP_BY_HOP.has(name) || name === 'cookie' || value === undefined) continue;
      headers[name] = value;
    }
    headers.host = target.host;
    return headers;
  };

  const upstream = (req: IncomingMessage, headers: OutgoingHttpHeaders) => {
    const options = {
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers,
      agent: false as const,
    };
    return tlsOptions ? httpsRequest({ ...options, ...tlsOptions }) : httpRequest(options);
  };

  const refuse = (res: ServerResponse) => {
    res
      .writeHead(403, { 'content-type': 'text/plain; charset=utf-8' })
      .end('dcp dashboard: open the URL that dcp dashboard printed (it carries the key to this page)\n');
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    // Only a path goes upstream: an absolute URL or CONNECT's host:port names no page of this one.
    if (!req.url?.startsWith('/') || req.url.startsWith('//')) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('dcp dashboard: a path only\n');
      return;
    }
    const admitted = admit(req);
    if (admitted === 'no') return refuse(res);
    if (admitted === 'exchange') {
      const url = new URL(req.url ?? '/', 'http://gateway');
      url.searchParams.delete(TOKEN_PARAMETER);
      // A page of this origin moves on, not a redirect: the browser came from elsewhere (the
      // launcher file), and a strict cookie goes only with a navigation this site starts. One
      // leading slash: `//host` would lead to another site.
      const next = `/${url.pathname.replace(/^\/+/, '')}${url.search}`.replace(
        /[&<>"']/g,
        (c) => `&#${c.charCodeAt(0)};`,
      );
      res
        .writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'set-cookie': `${cookieName}=${token}; HttpOnly; SameSite=Strict; Path=/`,
          'cache-control': 'no-store',
          'referrer-policy': 'no-referrer',
        })
        .end(
          `<!doctype html><meta http-equiv="refresh" content="0;url=${next}"><title>dcp dashboard</title><a href="${next}">the dashboard</a>\n`,
        );
      return;
    }
    const forward = upstream(req, upstreamHeaders(req));
    // A browser gone takes its upstream request with it; an upstream gone ends the browser's answer.
    res.once('close', () => forward.destroy());
    forward.once('response', (answer) => {
      // The secret host name must not leave in a Referer from a link on a dashboard page.
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, {
        ...answer.headers,
        'referrer-policy': 'no-referrer',
      });
      pipeline(answer, res, () => undefined);
    });
    forward.once('error', (error) => {
      if (res.headersSent) return res.destroy();
      res
        .writeHead(502, { 'content-type': 'text/plain; charset=utf-8' })
        .end(`dcp dashboard: the cluster's dashboard did not answer: ${error.message}\n`);
    });
    pipeline(req, forward, () => undefined);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    if (!req.url?.startsWith('/') || req.url.startsWith('//') || admit(req) !== 'ok') {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const headers = upstreamHeaders(req);
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade ?? 'websocket';
    const forward = upstream(req, headers);
    forward.once('upgrade', (answer, upstreamSocket, upstreamHead) => {
      const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`];
      for (let i = 0; i < answer.rawHeaders.length; i += 2)
        lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      upstreamSocket.on('error', () => socket.destroy());
      socket.on('close', () => upstreamSocket.destroy());
      upstreamSocket.on('close', () => socket.destroy());
      upstreamSocket.pipe(socket).pipe(upstreamSocket);
    });
    // The dashboard said no to the upgrade: its answer goes back as it is.
    forward.once('response', (answer) => {
      const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage}`, 'connection: close'];
      for (let i = 0; i < answer.rawHeaders.length; i += 2)
        if (!/^connection$/i.test(answer.rawHeaders[i]!))
          lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      answer.pipe(socket);
    });
    forward.once('error', () => socket.end('HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\n\r\n'));
    socket.once('close', () => forward.destroy());
    forward.end();
  });

  const path = `${target.pathname}${target.search}`;
  return {
    url: `http://${host}${path}${target.search ? '&' : '?'}${TOKEN_PARAMETER}=${token}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const tunnel of tunnels) tunnel.destroy();
      }),
  };
}
