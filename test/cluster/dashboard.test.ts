/**
 * The dashboard behind the cluster's own mutual TLS: real Dask made by `dcp up`, whose members'
 * HTTP servers refuse a client without the cluster's certificate; the gate failing closed; and
 * `dcp dashboard`'s gateway, for HTTP, for WebSockets (against a server of the test's own, as
 * Debian's Dask has no Bokeh and serves none) and for a real headless Chromium.
 */
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { createServer, get as httpsGet } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { memberGet } from '../../src/cluster/readiness.js';
import { startGateway } from '../../src/cluster/gateway.js';
import { GATE_EXIT_STATUS } from '../../src/providers/dashboard-gate.js';
import { CLI, cliEnv, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, python, schedulerArgs, sharedLocalCluster } from '../helpers/dask.js';

let shared: ReturnType<typeof sharedLocalCluster>;
const client = () => ({
  caFile: shared.cluster.tls.ca_file,
  clientCert: shared.cluster.tls.client_cert,
  clientKey: shared.cluster.tls.client_key,
});
const clusterDir = () => join(shared.home, '.local', 'state', 'dcp', 'clusters', shared.cluster.name);

/** A GET with no client certificate, trusting the cluster's CA: how an outsider knocks. */
function withoutCertificate(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, {
      ca: readFileSync(shared.cluster.tls.ca_file),
      checkServerIdentity: () => undefined,
    });
    req.once('response', (response: IncomingMessage) => resolve(response.statusCode ?? 0));
    req.once('error', reject);
  });
}

/**
 * A plain GET to the gateway with the headers given; never follows redirects. Its `.localhost`
 * name goes to 127.0.0.1, as browsers send every `.localhost` name.
 */
function gatewayGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const { host, port, pathname, search } = new URL(url);
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path: `${pathname}${search}`, headers: { host, ...headers } };
    const req = httpRequest({ ...options, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.once('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    req.once('error', reject);
    req.end();
  });
}

describeWithDask('the dashboard behind mutual TLS', () => {
  shared = sharedLocalCluster();

  it("refuses a client without the cluster's certificate, at the handshake, and serves it with one", async () => {
    expect(shared.cluster.dashboard_url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/status$/);
    const identityUrl = new URL('/json/identity.json', shared.cluster.dashboard_url).href;
    await expect(withoutCertificate(identityUrl)).rejects.toThrow(
      /certificate required|socket hang up|ECONNRESET/i,
    );
    await expect(fetch(identityUrl.replace('https:', 'http:'))).rejects.toThrow();
    const identity = await memberGet(identityUrl, client());
    expect(identity.status).toBe(200);
    const scheduler = JSON.parse(identity.body) as {
      type: string;
      workers: Record<string, { services: { dashboard: number } }>;
    };
    expect(scheduler.type).toBe('Scheduler');

    // Each worker's HTTP server (/health, /metrics) the same.
    const [worker] = Object.values(scheduler.workers);
    const health = `https://127.0.0.1:${worker!.services.dashboard}/health`;
    await expect(withoutCertificate(health)).rejects.toThrow(
      /certificate required|socket hang up|ECONNRESET/i,
    );
    const answer = await memberGet(health, client());
    expect(answer).toEqual({ status: 200, body: 'ok' });
  });

  it('fails closed: a member whose HTTP server would have no certificate does not start', async () => {
    const gate = join(clusterDir(), 'preload', 'dcp_dashboard_gate.py');
    const tls = join(clusterDir(), 'tls');
    const started = await execa(
      python(),
      [...schedulerArgs({ port: '0', dashboard: '0', tlsDir: tls }), '--preload', gate],
      { reject: false, timeout: 60_000, cwd: '/' },
    );
    expect(started.exitCode, started.all).not.toBe(0);
    expect(started.stderr).toContain('it will not serve the dashboard in the clear');
    expect(started.stderr).not.toMatch(/dashboard at:/);

    // A server that slipped past the gate (a Dask that made it first) ends its process.
    const slipped = await execa(
      python(),
      [
        '-c',
        [
          'import importlib.util, types',
          `spec = importlib.util.spec_from_file_location("gate", ${JSON.stringify(gate)})`,
          'gate = importlib.util.module_from_spec(spec); spec.loader.exec_module(gate)',
          'server = types.SimpleNamespace(http_server=types.SimpleNamespace(ssl_options=None))',
          'gate.dask_setup(server)',
          'print("still serving")',
        ].join('\n'),
      ],
      { reject: false, timeout: 60_000, cwd: '/' },
    );
    expect(slipped.exitCode).toBe(GATE_EXIT_STATUS);
    expect(slipped.stdout).not.toContain('still serving');
  }, 90_000);

  describe('dcp dashboard', () => {
    let gateway: ResultPromise;
    let url: URL;

    beforeAll(async () => {
      gateway = execa(process.execPath, [CLI, 'dashboard', shared.cluster.name, '--no-open', '--json'], {
        reject: false,
        stdin: 'ignore',
        extendEnv: false,
        env: cliEnv(shared.home),
      });
      let output = '';
      await new Promise<void>((resolve, reject) => {
        gateway.stdout!.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.trimEnd().endsWith('}')) resolve();
        });
        void gateway.then((result) => reject(new Error(`dcp dashboard exited: ${result.stderr}`)));
      });
      url = new URL(json<{ url: string }>(output).url);
    });

    afterAll(() => gateway?.kill('SIGINT'));

    it('lets in only the holder of its URL, and forwards to the dashboard over mutual TLS', async () => {
      // A name of its own, which no other local server has: its cookie goes nowhere else.
      expect(url.origin).toMatch(/^http:\/\/dcp-[0-9a-f]{32}\.localhost:\d+$/);
      expect(url.pathname).toBe('/status');
      const token = url.searchParams.get('dcp_token')!;
      expect(token.length).toBeGreaterThanOrEqual(40);

      // Without the key: 403, and nothing reaches the cluster.
      expect((await gatewayGet(`${url.origin}/json/identity.json`)).status).toBe(403);
      const wrong = new URL(url);
      wrong.searchParams.set('dcp_token', `${token.slice(0, -1)}x`);
      expect((await gatewayGet(wrong.href)).status).toBe(403);

      // The key, once, for a cookie of this port; then the key leaves the address bar.
      const exchange = await gatewayGet(url.href);
      expect(exchange.status).toBe(200);
      expect(exchange.body).toContain('<meta http-equiv="refresh" content="0;url=/status">');
      expect(exchange.body).not.toContain(token);
      const setCookie = exchange.headers['set-cookie']![0]!;
      expect(setCookie).toMatch(/HttpOnly/);
      expect(setCookie).toMatch(/SameSite=Strict/);
      const cookie = setCookie.split(';')[0]!;

      const identity = await gatewayGet(`${url.origin}/json/identity.json`, { cookie });
      expect(identity.status).toBe(200);
      expect(JSON.parse(identity.body)).toMatchObject({ type: 'Scheduler' });
      const status = await gatewayGet(`${url.origin}/status`, { cookie });
      expect(status.status).toBe(200);

      // Only paths: an absolute URL as the request target names no page of the dashboard.
      expect((await gatewayGet(`${url.origin}/json/identity.json`, { cookie, host: url.host })).status).toBe(
        200,
      );
      const absolute = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: url.port,
            path: 'http://127.0.0.1:9/x',
            headers: { cookie, host: url.host },
          },
          (response) => resolve(response.statusCode ?? 0),
        );
        req.once('error', reject);
        req.end();
      });
      expect(absolute).toBe(400);

      // Nor by the address: a cookie for 127.0.0.1 would go to every local user's server there.
      expect(
        (await gatewayGet(`${url.origin}/json/identity.json`, { cookie, host: `127.0.0.1:${url.port}` }))
          .status,
      ).toBe(403);
      // The token in the URL is traded even with a cookie, never sent on to the dashboard.
      const again = await gatewayGet(url.href, { cookie });
      expect(again.status).toBe(200);
      expect(again.body).toContain('http-equiv="refresh"');

      // A page of another name that resolves here (DNS rebinding) gets nothing, cookie or not.
      expect(
        (await gatewayGet(`${url.origin}/json/identity.json`, { cookie, host: 'evil.example' })).status,
      ).toBe(403);
    });

    it('stops on Ctrl-C with exit 0, and its port closes', async () => {
      gateway.kill('SIGINT');
      const result = await gateway;
      expect(result.exitCode, String(result.stderr)).toBe(0);
      expect(String(result.stderr)).toContain('gateway stopped');
      await expect(gatewayGet(`${url.origin}/status`)).rejects.toThrow(/ECONNREFUSED/);
    });
  });

  it('carries a WebSocket both ways to a server behind mutual TLS made with the cluster certificates', async () => {
    const tls = join(clusterDir(), 'tls');
    const server = createServer({
      ca: readFileSync(join(tls, 'ca.pem')),
      cert: readFileSync(join(tls, 'scheduler.pem')),
      key: readFileSync(join(tls, 'scheduler-key.pem')),
      requestCert: true,
      rejectUnauthorized: true,
    });
    const sockets = new WebSocketServer({ server });
    const presented: string[] = [];
    sockets.on('connection', (socket, request) => {
      const peer = (request.socket as TLSSocket).getPeerCertificate();
      presented.push(String(peer.subject?.CN ?? ''));
      socket.on('message', (data) => socket.send(`echo ${data.toString()}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const gateway = await startGateway(`https://127.0.0.1:${port}/status`, client());
    try {
      const origin = new URL(gateway.url).origin;
      // Without the cookie the upgrade is refused before anything reaches the server.
      const { host, port: gatewayPort } = new URL(origin);
      const local = `ws://127.0.0.1:${gatewayPort}/ws`;
      const refused = new WebSocket(local, { headers: { host } });
      const refusal = await new Promise<number>((resolve) =>
        refused.once('unexpected-response', (_req, response) => resolve(response.statusCode ?? 0)),
      );
      expect(refusal).toBe(403);

      const cookie = (await gatewayGet(gateway.url)).headers['set-cookie']![0]!.split(';')[0]!;
      const socket = new WebSocket(local, { headers: { host, cookie } });
      const upgraded = new Promise<number>((resolve, reject) => {
        socket.once('upgrade', (response) => resolve(response.statusCode ?? 0));
        socket.once('error', reject);
      });
      const opened = new Promise((resolve) => socket.once('open', resolve));
      expect(await upgraded).toBe(101);
      await opened;
      const replies: string[] = [];
      const twoReplies = new Promise<void>((resolve) =>
        socket.on('message', (data) => {
          replies.push(data.toString());
          if (replies.length === 2) resolve();
        }),
      );
      socket.send('ping');
      socket.send('x'.repeat(100_000));
      await twoReplies;
      expect(replies[0]).toBe('echo ping');
      expect(replies[1]).toBe(`echo ${'x'.repeat(100_000)}`);
      // The server saw the client certificate, not the browser's nothing.
      expect(presented).toEqual([expect.stringMatching(/client/i)]);
      socket.close();
    } finally {
      await gateway.close();
      sockets.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  const chromium = '/usr/bin/chromium';
  it.skipIf(!existsSync(chromium) && !process.env.CI)(
    "a real headless Chromium shows Dask's page through the gateway",
    async () => {
      const gatewayRun = execa(
        process.execPath,
        [CLI, 'dashboard', shared.cluster.name, '--no-open', '--json'],
        {
          reject: false,
          stdin: 'ignore',
          extendEnv: false,
          env: cliEnv(shared.home),
        },
      );
      try {
        let output = '';
        for await (const chunk of gatewayRun.stdout!) {
          output += String(chunk);
          if (output.trimEnd().endsWith('}')) break;
        }
        const { url } = json<{ url: string }>(output);
        const profile = tempDir('dcp-chromium-');
        const screenshot = join(profile, 'dashboard.png');
        const flags = [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          `--user-data-dir=${profile}`,
        ];
        // As dcp dashboard opens it: a page of the user's own that moves on to the URL, so the
        // browser arrives from elsewhere, and the page the gateway answers moves it on again.
        const launcher = join(profile, 'launch.html');
        writeFileSync(launcher, `<!doctype html><meta http-equiv="refresh" content="0;url=${url}">`);
        const dom = await execa(
          chromium,
          [...flags, '--virtual-time-budget=10000', '--dump-dom', `file://${launcher}`],
          {
            reject: false,
            timeout: 90_000,
          },
        );
        // Dask's own page: with Bokeh the status dashboard, without it Dask's note that it needs Bokeh.
        expect(dom.stdout, dom.stderr).toMatch(/Dask needs bokeh|<title>Dask/);
        expect(dom.stdout).not.toContain('did not answer');
        expect(dom.stdout).not.toContain('dcp dashboard: open the URL');
        const shot = await execa(
          chromium,
          [
            ...flags,
            '--virtual-time-budget=10000',
            `--screenshot=${screenshot}`,
            '--window-size=1000,700',
            `file://${launcher}`,
          ],
          {
            reject: false,
            timeout: 90_000,
          },
        );
        expect(existsSync(screenshot), shot.stderr).toBe(true);
        expect(statSync(screenshot).size).toBeGreaterThan(2_000);
        // A PNG, as Chromium writes it.
        expect(readFileSync(screenshot).subarray(1, 4).toString()).toBe('PNG');
        if (process.env.DCP_KEEP_SCREENSHOT) copyFileSync(screenshot, process.env.DCP_KEEP_SCREENSHOT);
      } finally {
        gatewayRun.kill('SIGINT');
        await gatewayRun;
      }
    },
    200_000,
  );
});
