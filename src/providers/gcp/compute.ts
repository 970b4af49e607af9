/**
 * Compute Engine v1 as the GCP provider uses it: a small typed client over `fetch` for the
 * dozen calls dcp makes, with Application Default Credentials from google-auth-library
 * (GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, the metadata server).
 *
 * Why not @google-cloud/compute (measured, ../shared/reference/clouds/gcp.md): it needs Node 22,
 * installs 144 MB, takes 1-1.9 s and ~280 MB to load, cannot be bundled, drops empty lists
 * (`serviceAccounts: []`, which must reach the API) and loses GCE's error reasons
 * (`quotaExceeded`, `alreadyExists`) that dcp's hints need. 64-bit integers stay strings.
 *
 * Every mutating call carries a `requestId`: GCE then does it at most once, so a call whose
 * answer was lost is retried safely with the same id. Every operation is waited for and its
 * error read.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DcpError, ExitCode, messageOf } from '../../errors.js';
import { CloudApiError, endpointOverride } from '../cloud.js';

export const DEFAULT_ENDPOINT = 'https://compute.googleapis.com/compute/v1/';

export interface Operation {
  name: string;
  selfLink?: string;
  status: 'PENDING' | 'RUNNING' | 'DONE';
  operationType?: string;
  targetLink?: string;
  zone?: string;
  error?: { errors?: { code?: string; message?: string }[] };
  httpErrorStatusCode?: number;
  httpErrorMessage?: string;
}

interface ErrorBody {
  error?: {
    code?: number;
    message?: string;
    status?: string;
    errors?: { reason?: string; message?: string }[];
  };
}

/** What GCE said, and what the user can do about it; by reason or operation error code. */
const HINTS: [RegExp, string][] = [
  [
    /^(authError|UNAUTHENTICATED|invalid_grant|unauthorized)/i,
    'sign in again: gcloud auth application-default login (or point GOOGLE_APPLICATION_CREDENTIALS at a valid key file)',
  ],
  [
    /^(forbidden|insufficientPermissions|accessNotConfigured|SERVICE_DISABLED|PERMISSION_DENIED)/,
    'the identity in use lacks Compute Engine permissions for this (roles/compute.instanceAdmin.v1 and roles/compute.securityAdmin), or the Compute Engine API is off: gcloud services enable compute.googleapis.com',
  ],
  [
    /^(ZONE_RESOURCE_POOL_EXHAUSTED|insufficientCapacity|resourcePoolExhausted|ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS)/,
    'the zone has no capacity for this machine type right now: try another --zone or --instance-type',
  ],
  [
    /^(QUOTA_EXCEEDED|quotaExceeded)/,
    'a Compute Engine quota stops this (its name and limit are above): fewer --workers, a smaller --instance-type, another region, or ask for more in the console (IAM & Admin → Quotas)',
  ],
  [
    /^(rateLimitExceeded|userRateLimitExceeded)/,
    'Google Cloud is throttling this project; wait a minute and run it again',
  ],
  [
    /^(alreadyExists|RESOURCE_ALREADY_EXISTS)/,
    'something of that name exists already, perhaps from a cluster of the same name: dcp list --provider gcp',
  ],
];

function hintFor(reason: string): string | undefined {
  return HINTS.find(([pattern]) => pattern.test(reason))?.[1];
}

/** Statuses and reasons worth another try; capacity and quota are not (they would not change). */
function retryable(status: number, reason: string): boolean {
  if (/quota|capacity|exhausted/i.test(reason)) return false;
  return status === 429 || status >= 500 || (status === 403 && /rateLimitExceeded/.test(reason));
}

const ATTEMPTS = 4;
/** Longer than any insert or delete takes; past it, something is wrong on Google's side. */
const OPERATION_TIMEOUT_MS = 20 * 60_000;

/** A link or a `projects/...` path, as the `projects/...` path calls take. */
export function relative(link: string): string {
  const at = link.indexOf('projects/');
  return at >= 0 ? link.slice(at) : link;
}
const retryDelay = (attempt: number) => 200 * 3 ** attempt;

/** The base URL: gcloud's own override (`CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE`), else Google's. */
export function computeEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE;
  if (!override) return DEFAULT_ENDPOINT;
  const url = endpointOverride('CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE', override, 'Google');
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

type Headers = () => Promise<Record<string, string>>;

/** Request headers with a fresh token, from Application Default Credentials. */
async function adcHeaders(project: string): Promise<Headers> {
  // CommonJS: bundled, its names are on the default export only.
  const library = await import('google-auth-library');
  const { GoogleAuth } = (library as unknown as { default?: typeof library }).default ?? library;
  // The project is dcp's to give: without it the library looks for one itself, running gcloud
  // and asking the metadata server (seconds, and traffic nobody asked for).
  const auth = new GoogleAuth({
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
    projectId: project,
  });
  const noCredentials = (error: unknown) =>
    new DcpError(`no Google Cloud credentials found: ${messageOf(error).split('\n')[0]}`, {
      hint: 'run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file',
      exitCode: ExitCode.usage,
      cause: error,
    });
  let client: Awaited<ReturnType<typeof auth.getClient>>;
  try {
    client = await auth.getClient();
  } catch (error) {
    throw noCredentials(error);
  }
  const headers = async () => {
    try {
      return Object.fromEntries((await client.getRequestHeaders()).entries());
    } catch (error) {
      const message = messageOf(error).split('\n')[0]!;
      // Refused credentials (any 4xx of the token service) are the user's to fix; a service that
      // did not answer (5xx, 429, the network) is not.
      const status =
        (error as { response?: { status?: number } }).response?.status ??
        (error as { status?: number }).status;
      const refused =
        status !== undefined
          ? status >= 400 && status < 500 && status !== 429
          : /invalid_grant|invalid_client/.test(message);
      if (refused)
        throw new DcpError(`Google Cloud refused the credentials: ${message}`, {
          hint: hintFor('authError'),
          exitCode: ExitCode.usage,
          cause: error,
        });
      throw new DcpError(`could not get a Google Cloud token: ${message}`, {
        hint: 'run it again in a minute; if it persists, check your connection to Google',
        cause: error,
      });
    }
  };
  // Asked now, so missing or refused credentials stop dcp before anything is made.
  await headers();
  return headers;
}

export interface Compute {
  project: string;
  endpoint: string;
  /** `projects/<project>/<path>`, the way every call but the image look-ups is addressed. */
  path(rest: string): string;
  get<T>(method: string, path: string, query?: Record<string, string>, signal?: AbortSignal): Promise<T>;
  /**
   * Every item of a listing, page after page (`items`, or the aggregated map's values). An
   * aggregated list names the scopes (`zones/x`) that did not answer in `unreachable`, when
   * given; without it, such a scope fails the listing.
   */
  list<T>(
    method: string,
    path: string,
    query?: Record<string, string>,
    signal?: AbortSignal,
    unreachable?: string[],
  ): Promise<T[]>;
  /** A mutating call (no abort: cut off half way, it may still make something); its operation. */
  send(method: string, verb: 'POST' | 'DELETE', path: string, body?: unknown): Promise<Operation>;
  /** Waits until the operation is done; throws with its error, in words. */
  wait(method: string, operation: Operation, signal?: AbortSignal): Promise<Operation>;
}

/** A client for `project`; checks the endpoint and the credentials before anything is asked. */
export async function connectCompute(
  project: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Compute> {
  const endpoint = computeEndpoint(env);
  const headers = await adcHeaders(project);

  async function request<T>(
    method: string,
    verb: 'GET' | 'POST' | 'DELETE',
    path: string,
    query: Record<string, string>,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const url = new URL(path, endpoint);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: verb,
          headers: {
            ...(await headers()),
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          // A call that hangs is retried (a mutating one under its same requestId), not waited on forever.
          signal: signal
            ? AbortSignal.any([signal, AbortSignal.timeout(150_000)])
            : AbortSignal.timeout(150_000),
        });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (attempt + 1 < ATTEMPTS) {
          await sleep(retryDelay(attempt), undefined, signal ? { signal } : {});
          continue;
        }
        throw new DcpError(`Google Cloud did not answer ${method}: ${messageOf(error)}`, {
          hint: `check your connection to ${url.host}, then run it again`,
          cause: error,
        });
      }
      const text = await response.text();
      if (response.ok) return (text ? JSON.parse(text) : {}) as T;
      let parsed: ErrorBody = {};
      try {
        parsed = JSON.parse(text) as ErrorBody;
      } catch {
        // not JSON: the status says enough
      }
      const reason = parsed.error?.errors?.[0]?.reason ?? parsed.error?.status ?? `HTTP ${response.status}`;
      if (retryable(response.status, reason) && attempt + 1 < ATTEMPTS) {
        await sleep(retryDelay(attempt), undefined, signal ? { signal } : {});
        continue;
      }
      const message = (parsed.error?.message ?? (text.slice(0, 200) || response.statusText)).trim();
      throw new CloudApiError(
        response.status,
        reason,
        `Google Cloud refused ${method}: ${reason}: ${message}`,
        hintFor(reason),
      );
    }
  }

  const compute: Compute = {
    project,
    endpoint,
    path: (rest) => `projects/${project}/${rest}`,
    get: (method, path, query = {}, signal) => request(method, 'GET', path, query, undefined, signal),
    async list<T>(
      method: string,
      path: string,
      query: Record<string, string> = {},
      signal?: AbortSignal,
      unreachable?: string[],
    ) {
      const items: T[] = [];
      let pageToken: string | undefined;
      do {
        const page = await request<{
          items?: T[] | Record<string, Record<string, unknown>>;
          nextPageToken?: string;
        }>(method, 'GET', path, { ...query, ...(pageToken ? { pageToken } : {}) }, undefined, signal);
        if (Array.isArray(page.items)) items.push(...page.items);
        else
          // Aggregated lists: `{ 'zones/x': { instances: [...] } | { warning } }`.
          for (const [scope, scoped] of Object.entries(page.items ?? {})) {
            const warning = scoped.warning as { code?: string; message?: string } | undefined;
            if (warning?.code === 'UNREACHABLE' && unreachable) unreachable.push(scope);
            else if (warning?.code === 'UNREACHABLE')
              throw new CloudApiError(
                503,
                'UNREACHABLE',
                `Google Cloud could not list ${scope}: ${warning.message ?? ''}`.trim(),
                'run it again in a minute',
              );
            for (const value of Object.values(scoped))
              if (Array.isArray(value)) items.push(...(value as T[]));
          }
        pageToken = page.nextPageToken;
      } while (pageToken);
      return items;
    },
    send: (method, verb, path, body) =>
      request<Operation>(method, verb, path, { requestId: randomUUID() }, body, undefined),
    async wait(method, operation, signal) {
      // Where the operation lives (its zone, or global; a Shared VPC's firewall operations are
      // the host project's), as its own link says.
      const zone = operation.zone?.split('/').pop();
      const path = operation.selfLink
        ? relative(operation.selfLink)
        : compute.path(
            `${zone ? `zones/${zone}` : 'global'}/operations/${encodeURIComponent(operation.name)}`,
          );
      const deadline = Date.now() + OPERATION_TIMEOUT_MS;
      let current = operation;
      let polls = 0;
      while (current.status !== 'DONE') {
        if (Date.now() > deadline)
          throw new DcpError(
            `Google Cloud has not finished ${method} after ${OPERATION_TIMEOUT_MS / 60_000} minutes`,
            {
              hint: 'see it in the console (Compute Engine → Operations); run the command again later',
            },
          );
        // The wait call returns within about two minutes, done or not, and may return at once:
        // a pause between calls keeps a quick one from spending the project's API quota.
        if (polls > 0)
          await sleep(Math.min(500 * 2 ** (polls - 1), 10_000), undefined, signal ? { signal } : {});
        polls++;
        current = await request<Operation>(
          `${method} (waiting)`,
          'POST',
          `${path}/wait`,
          {},
          undefined,
          signal,
        );
      }
      const failure = current.error?.errors?.[0];
      if (failure) {
        const code = failure.code ?? 'ERROR';
        throw new CloudApiError(
          current.httpErrorStatusCode ?? 400,
          code,
          `Google Cloud could not do ${method}: ${code}: ${(failure.message ?? current.httpErrorMessage ?? '').trim()}`,
          hintFor(code),
        );
      }
      return current;
    },
  };
  return compute;
}

/** True for GCE's "not there" answers (a delete of what is already gone, say). */
export function isNotFound(error: unknown): boolean {
  return error instanceof CloudApiError && (error.status === 404 || error.code === 'notFound');
}
