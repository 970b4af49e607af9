/** dcp's DigitalOcean client against a server that misbehaves the ways a real one (or a proxy) can. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CloudApiError } from '../../src/providers/cloud.js';
import { connectApi } from '../../src/providers/digitalocean/api.js';
import { resolveToken } from '../../src/providers/digitalocean/identity.js';

let server: http.Server;
let url = '';
let answer: (request: http.IncomingMessage, response: http.ServerResponse) => void = () => undefined;
const seen: { url: string; at: number }[] = [];

beforeAll(async () => {
  server = http.createServer((request, response) => {
    seen.push({ url: request.url!, at: Date.now() });
    answer(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(
  () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
);

const client = () => connectApi('dop_v1_test', { DIGITALOCEAN_API_URL: url });

it('a next link that leads back to a page already read ends the listing with an error, not a loop', async () => {
  seen.length = 0;
  answer = (request, response) =>
    response.end(
      JSON.stringify({ droplets: [{ id: 1 }], links: { pages: { next: `${url}${request.url}` } } }),
    );
  await expect(client().list('droplets.list', 'droplets', 'droplets')).rejects.toThrow(/go round in circles/);
  expect(seen.length).toBe(2);
});

it('a 5xx without retry-after is retried after a pause that grows, a read only', async () => {
  seen.length = 0;
  answer = (_request, response) => {
    response.statusCode = 503;
    response.end('{"id":"service_unavailable","message":"x"}');
  };
  await expect(client().get('account.get', 'account')).rejects.toThrow(/service_unavailable/);
  const pauses = seen.slice(1).map((call, i) => call.at - seen[i]!.at);
  expect(pauses).toHaveLength(3);
  expect(Math.min(...pauses)).toBeGreaterThanOrEqual(240);
  seen.length = 0;
  await expect(client().post('tags.create', 'tags', { name: 'x' })).rejects.toThrow(/service_unavailable/);
  expect(seen).toHaveLength(1);
});

it('an answer that is not JSON is DigitalOcean’s error with a hint, not a parser’s', async () => {
  answer = (_request, response) => response.end('<html>captive portal</html>');
  const error = await client()
    .get('account.get', 'account')
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(CloudApiError);
  expect((error as CloudApiError).hint).toMatch(/DIGITALOCEAN_API_URL/);
});

it('a token with a line break or a space is refused, and not shown', async () => {
  for (const token of ['dop_v1_SECRET\nX-Evil: 1', 'dop_v1_SECRET tail'])
    await expect(resolveToken({ DIGITALOCEAN_TOKEN: token })).rejects.toThrow(
      /^the DigitalOcean token from DIGITALOCEAN_TOKEN holds spaces, line breaks/,
    );
  const error = await resolveToken({ DIGITALOCEAN_TOKEN: 'dop_v1_SECRET\nx' }).catch((e: Error) => e);
  expect(`${(error as Error).message} ${(error as { hint?: string }).hint}`).not.toContain('SECRET');
});
