/**
 * Azure Resource Manager through the official SDKs (`@azure/arm-resources`, `-network`,
 * `-compute`, `-authorization`, `@azure/identity`), loaded only for Azure. Pinned to the majors
 * that declare Node 20 (compute 24, network 36, resources 7, identity 4.13): the newer ones
 * need Node 22. Their models are flat: a nested `properties: {...}` is dropped without a word.
 *
 * Credentials are `DefaultAzureCredential`'s chain (environment, workload identity, managed
 * identity, the Azure CLI, ...); `DCP_AZURE_ENDPOINT` points every client elsewhere (https only:
 * the SDKs send no bearer token over http).
 */
import type { AuthorizationManagementClient } from '@azure/arm-authorization';
import type { ComputeManagementClient } from '@azure/arm-compute';
import type { NetworkManagementClient } from '@azure/arm-network';
import type { ResourceManagementClient } from '@azure/arm-resources';
import { DcpError, ExitCode, messageOf } from '../../errors.js';
import { CloudApiError, endpointOverride } from '../cloud.js';

export const DEFAULT_ENDPOINT = 'https://management.azure.com';
const SCOPE = 'https://management.azure.com/.default';

export interface Arm {
  subscription: string;
  endpoint: string;
  resources: ResourceManagementClient;
  network: NetworkManagementClient;
  compute: ComputeManagementClient;
  authorization: AuthorizationManagementClient;
}

/** The ARM base URL: `DCP_AZURE_ENDPOINT`, else Azure's public cloud. */
export function armEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.DCP_AZURE_ENDPOINT;
  if (!override) return DEFAULT_ENDPOINT;
  const url = endpointOverride('DCP_AZURE_ENDPOINT', override, 'Azure');
  if (url.protocol !== 'https:')
    throw new DcpError(`DCP_AZURE_ENDPOINT=${override} is not https`, {
      hint: 'the Azure SDKs send credentials over https only: use an https:// endpoint',
      exitCode: ExitCode.usage,
    });
  // An origin only: the scheduler's self-delete appends a group's path to it.
  if (url.pathname.replace(/\/+$/, '') !== '' || url.search || url.hash)
    throw new DcpError(`DCP_AZURE_ENDPOINT=${override} has a path, query or fragment`, {
      hint: 'give the Resource Manager endpoint alone, like https://management.azure.com',
      exitCode: ExitCode.usage,
    });
  return url.origin;
}

/** What the user can do about an ARM error code. */
const HINTS: [RegExp, string][] = [
  [
    /^(AuthenticationFailed|InvalidAuthenticationToken|ExpiredAuthenticationToken)/,
    'sign in again: az login (or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET)',
  ],
  [
    /^(AuthorizationFailed|LinkedAuthorizationFailed)/,
    'the identity in use lacks permission for this in the subscription: Contributor on it is enough to make a cluster',
  ],
  [
    /^OperationNotAllowed/,
    'a quota stops this (its name and limit are above): fewer --workers, a smaller --instance-type, another --region, or ask for more (az vm list-usage --location ...)',
  ],
  [
    /^(SkuNotAvailable|ZonalAllocationFailed|AllocationFailed|OverconstrainedAllocationRequest)/,
    'Azure has no capacity for this size there right now: try another --instance-type or --region (az vm list-skus --location ... --output table)',
  ],
  [
    /^(SubscriptionNotFound|InvalidSubscriptionId)/,
    'pass --subscription with one of yours (az account list)',
  ],
  [/^(TooManyRequests|429)/, 'Azure is throttling this subscription; wait a minute and run it again'],
];

function hintFor(code: string): string | undefined {
  return HINTS.find(([pattern]) => pattern.test(code))?.[1];
}

/**
 * An SDK error in dcp's words: a `RestError` has its code and status; a long-running operation
 * that failed arrives as a plain Error ("The long-running operation has failed. AllocationFailed.
 * ..."), whose code is in its message.
 */
export function armError(what: string, error: unknown): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const rest = error as { code?: string; statusCode?: number; message?: string };
  const message = messageOf(error);
  const fromOperation = /^The long-running operation has failed\. (\w+)\.\s*([\s\S]*)$/.exec(message);
  const code = rest.code ?? fromOperation?.[1] ?? 'Error';
  const detail = (fromOperation?.[2] ?? message).split('\n')[0]!.trim();
  return new CloudApiError(
    rest.statusCode ?? 400,
    code,
    `Azure refused ${what}: ${code}: ${detail}`,
    hintFor(code),
  );
}

/** Runs an ARM call, turning its failure into dcp's error. */
export async function call<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw armError(what, error);
  }
}

/** True for ARM's "not there" answers. */
export function isNotFound(error: unknown): boolean {
  const err = error as { statusCode?: number; status?: number; code?: string };
  return (
    err.statusCode === 404 ||
    (error instanceof CloudApiError && error.status === 404) ||
    /NotFound$/.test(err.code ?? '')
  );
}

/** What `promise` gives, or undefined when ARM answers that the thing is not there. */
export function unlessNotFound<T>(promise: Promise<T>): Promise<T | undefined> {
  return promise.catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw error;
  });
}

/** Clients for `subscription`; the credentials are asked for a token first, so their absence stops dcp before anything is made. */
export async function connectArm(subscription: string, env: NodeJS.ProcessEnv = process.env): Promise<Arm> {
  const endpoint = armEndpoint(env);
  const [resources, network, compute, authorization, identity] = await Promise.all([
    import('@azure/arm-resources'),
    import('@azure/arm-network'),
    import('@azure/arm-compute'),
    import('@azure/arm-authorization'),
    import('@azure/identity'),
  ]);
  const credential = new identity.DefaultAzureCredential();
  try {
    await credential.getToken(SCOPE);
  } catch (error) {
    throw new DcpError(`no Azure credentials found: ${messageOf(error).split('\n')[0]}`, {
      hint: 'run az login, or set AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET',
      exitCode: ExitCode.usage,
      cause: error,
    });
  }
  const common = { endpoint, retryOptions: { maxRetries: 3 } };
  // The classic clients build URLs from `$host` and ask for a token for the endpoint's scope.
  const classic = { ...common, $host: endpoint, credentialScopes: [SCOPE] };
  return {
    subscription,
    endpoint,
    resources: new resources.ResourceManagementClient(credential, subscription, classic),
    network: new network.NetworkManagementClient(credential, subscription, classic),
    compute: new compute.ComputeManagementClient(credential, subscription, common),
    authorization: new authorization.AuthorizationManagementClient(credential, subscription, classic),
  };
}
