/**
 * DigitalOcean's API v2 as the DigitalOcean provider uses it: a small typed client over `fetch`
 * for the calls dcp makes (droplets, tags, firewalls, VPCs, NAT gateways, SSH keys, account).
 *
 * Why not an SDK (measured, ../shared/reference/clouds/digitalocean.md): `@digitalocean/dots`
 * 1.19 fails to parse every droplet response on a fresh install (its Kiota preview dependencies
 * drifted), installs 93 MB with packages that need Node 22, throws objects that are not Errors
 * and retries POSTs (a 503 on a create could make the droplets twice); `dots-wrapper` silently
 * drops `public_networking`, which private droplets need.
 *
 * Only what is safe is retried: reads and deletes, on 429 and 5xx, after the `retry-after` the
 * API sends. A create is sent once: a lost answer is found later by the cluster's tags.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DcpError, messageOf } from '../../errors.js';
import { CloudApiError, endpointOverride } from '../cloud.js';

export const DEFAULT_API_URL = 'https://api.digitalocean.com';

/** What the user can do about an error, by status and what the API said. */
function hintFor(status: number, message: string): string | undefined {
  if (status === 401)
    return 'the token is wrong, expired or revoked: make one at cloud.digitalocean.com/account/api/tokens, then set DIGITALOCEAN_TOKEN (or doctl auth init)';
  if (status === 403)
    return 'the token lacks a scope dcp needs (droplet, tag, firewall, ssh_key: read, create and delete; vpc, vpc_nat_gateway, regions, sizes, image and account: read), or is read-only: make one with those scopes';
  if (status === 429)
    return 'DigitalOcean is throttling this token (250 requests a minute); wait a minute and run it again';
  if (/droplet limit/i.test(message))
    return 'ask DigitalOcean for a higher droplet limit (cloud.digitalocean.com/account/team/droplet_limit_increase), or use fewer --workers';
  if (status >= 500)
    return 'DigitalOcean is having trouble; run it again in a few minutes (status.digitalocean.com)';
  return undefined;
}

const ATTEMPTS = 4;
/** The longest `retry-after` honoured; a longer one is an error to show, not a wait. */
const MAX_RETRY_AFTER_MS = 60_000;
const CALL_TIMEOUT_MS = 60_000;

/** The API's base: doctl's own override (`DIGITALOCEAN_API_URL`), else DigitalOcean's. */
export function apiUrl(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.DIGITALOCEAN_API_URL;
  if (!override) return DEFAULT_API_URL;
  return endpointOverride('DIGITALOCEAN_API_URL', override, 'DigitalOcean').href.replace(/\/+$/, '');
}

type Query = Record<string, string>;

export interface DigitalOceanApi {
  get<T>(method: string, path: string, query?: Query, signal?: AbortSignal): Promise<T>;
  /** Every item under `key`, page after page by `links.pages.next`. */
  list<T>(method: string, path: string, key: string, query?: Query, signal?: AbortSignal): Promise<T[]>;
  /** A create: sent once, never retried. */
  post<T>(method: string, path: string, body: unknown): Promise<T>;
  /** A delete: retried like a read (deleting twice is deleting once); what is gone already is fine. */
  delete(method: string, path: string, query?: Query): Promise<void>;
}

/** True for DigitalOcean's "not there" answer (a delete of what is already gone, say). */
export function isNotFound(error: unknown): boolean {
  return error instanceof CloudApiError && error.status === 404;
}

/** The wait a 429 or 5xx asks for: its `retry-after` (seconds), else a growing pause; never none. */
function retryDelay(response: Response | undefined, attempt: number): number {
  const header = response?.headers.get('retry-after')?.trim();
  const seconds = header ? Number(header) : NaN;
  return Math.max(Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 500 * 3 ** attempt, 250);
}

/** More pages than any account holds (200 items each): past it, the API's links go round in circles. */
const MAX_PAGES = 1_000;

export function connectApi(token: string, env: NodeJS.ProcessEnv = process.env): DigitalOceanApi {
  const base = apiUrl(env);

  async function request<T>(
    method: string,
    verb: 'GET' | 'POST' | 'DELETE',
    target: string,
    query: Query,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    // Paging follows the API's own next link, which carries the whole address.
    const url = target.startsWith('http') ? new URL(target) : new URL(`${base}/v2/${target}`);
    if (url.origin !== new URL(base).origin)
      throw new DcpError(`DigitalOcean's answer to ${method} pointed at ${url.origin}, not ${base}`);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    const retrySafe = verb !== 'POST';
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: verb,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal: signal
            ? AbortSignal.any([signal, AbortSignal.timeout(CALL_TIMEOUT_MS)])
            : AbortSignal.timeout(CALL_TIMEOUT_MS),
        });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (retrySafe && attempt + 1 < ATTEMPTS) {
          await sleep(retryDelay(undefined, attempt), undefined, signal ? { signal } : {});
          continue;
        }
        throw new DcpError(`DigitalOcean did not answer ${method}: ${messageOf(error)}`, {
          hint: `check your connection to ${url.host}, then run it again${verb === 'POST' ? '; dcp down removes anything it made meanwhile' : ''}`,
          cause: error,
        });
      }
      const text = await response.text();
      if (response.ok) {
        if (!text) return {} as T;
        try {
          return JSON.parse(text) as T;
        } catch {
          throw new CloudApiError(
            response.status,
            'unexpected_answer',
            `DigitalOcean answered ${method} with something that is not JSON`,
            `check that ${url.origin} is DigitalOcean's API (DIGITALOCEAN_API_URL), then run it again`,
          );
        }
      }
      const wait = retryDelay(response, attempt);
      if (
        retrySafe &&
        (response.status === 429 || response.status >= 500) &&
        attempt + 1 < ATTEMPTS &&
        wait <= MAX_RETRY_AFTER_MS
      ) {
        await sleep(wait, undefined, signal ? { signal } : {});
        continue;
      }
      let parsed: { id?: string; message?: string } = {};
      try {
        parsed = JSON.parse(text) as typeof parsed;
      } catch {
        // not JSON: the status says enough
      }
      const id = parsed.id ?? `HTTP ${response.status}`;
      const message = (parsed.message ?? (text.slice(0, 200) || response.statusText)).trim();
      throw new CloudApiError(
        response.status,
        id,
        `DigitalOcean refused ${method}: ${id}: ${message}`,
        hintFor(response.status, message),
      );
    }
  }

  return {
    get: (method, path, query = {}, signal) => request(method, 'GET', path, query, undefined, signal),
    async list<T>(method: string, path: string, key: string, query: Query = {}, signal?: AbortSignal) {
      const items: T[] = [];
      const seen = new Set<string>();
      let next: string | undefined = path;
      let first = true;
      while (next) {
        if (seen.has(next) || seen.size >= MAX_PAGES)
          throw new DcpError(`DigitalOcean's pages of ${method} go round in circles (at ${next})`, {
            hint: 'run it again in a minute; if it persists, DigitalOcean support can look at the listing',
          });
        seen.add(next);
        const page: Record<string, unknown> & { links?: { pages?: { next?: string } } } = await request(
          method,
          'GET',
          next,
          first ? { per_page: '200', ...query } : {},
          undefined,
          signal,
        );
        first = false;
        items.push(...((page[key] as T[] | undefined) ?? []));
        next = page.links?.pages?.next;
      }
      return items;
    },
    post: (method, path, body) => request(method, 'POST', path, {}, body, undefined),
    async delete(method, path, query = {}) {
      try {
        await request(method, 'DELETE', path, query, undefined, undefined);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    },
  };
}
