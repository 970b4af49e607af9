/**
 * The EC2 API as the AWS provider uses it: a client from the SDK's default chains (credentials:
 * env, AWS_PROFILE, ~/.aws; region the same, unless --region/aws.region says; endpoint:
 * AWS_ENDPOINT_URL(_EC2)), AWS errors turned into dcp errors with a way forward, and the
 * tag-based finding and removal that make `down` work from any machine.
 */
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DeleteSecurityGroupCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  GetConsoleOutputCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type AuthorizeSecurityGroupIngressCommandInput,
  type CreateSecurityGroupCommandInput,
  type DeleteSecurityGroupCommandInput,
  type DescribeImagesCommandInput,
  type DescribeInstancesCommandInput,
  type DescribeSecurityGroupsCommandInput,
  type DescribeSubnetsCommandInput,
  type DescribeVpcsCommandInput,
  type Filter,
  type GetConsoleOutputCommandInput,
  type Instance,
  type RunInstancesCommandInput,
  type SecurityGroup,
  type TerminateInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { setTimeout as sleep } from 'node:timers/promises';
import { DcpError, ExitCode, messageOf, usageError } from '../../errors.js';

export const TAG_CLUSTER = 'dcp:cluster';
export const TAG_ROLE = 'dcp:role';
/** Unique per `up`: a rollback removes what this run made, never a namesake's. */
export const TAG_CLUSTER_ID = 'dcp:cluster-id';
/** `tls` or `tcp`: how the scheduler is spoken to. */
export const TAG_PROTOCOL = 'dcp:protocol';

interface CallOptions {
  abortSignal?: AbortSignal;
}

/**
 * The EC2 actions dcp uses, each a command of its own: the bundle then holds these, not the
 * SDK's hundreds (a third of the load time and memory of the whole client).
 */
function actions(client: EC2Client) {
  return {
    authorizeSecurityGroupIngress: (input: AuthorizeSecurityGroupIngressCommandInput) =>
      client.send(new AuthorizeSecurityGroupIngressCommand(input)),
    createSecurityGroup: (input: CreateSecurityGroupCommandInput) =>
      client.send(new CreateSecurityGroupCommand(input)),
    deleteSecurityGroup: (input: DeleteSecurityGroupCommandInput) =>
      client.send(new DeleteSecurityGroupCommand(input)),
    describeImages: (input: DescribeImagesCommandInput, options?: CallOptions) =>
      client.send(new DescribeImagesCommand(input), options),
    describeInstances: (input: DescribeInstancesCommandInput, options?: CallOptions) =>
      client.send(new DescribeInstancesCommand(input), options),
    describeSecurityGroups: (input: DescribeSecurityGroupsCommandInput) =>
      client.send(new DescribeSecurityGroupsCommand(input)),
    describeSubnets: (input: DescribeSubnetsCommandInput, options?: CallOptions) =>
      client.send(new DescribeSubnetsCommand(input), options),
    describeVpcs: (input: DescribeVpcsCommandInput, options?: CallOptions) =>
      client.send(new DescribeVpcsCommand(input), options),
    getConsoleOutput: (input: GetConsoleOutputCommandInput) =>
      client.send(new GetConsoleOutputCommand(input)),
    // Mutating calls take no abort signal: cut off half way, one may still have made something.
    runInstances: (input: RunInstancesCommandInput) => client.send(new RunInstancesCommand(input)),
    terminateInstances: (input: TerminateInstancesCommandInput) =>
      client.send(new TerminateInstancesCommand(input)),
  };
}

export interface Ec2 {
  api: ReturnType<typeof actions>;
  region: string;
}

/** What AWS said, and what the user can do about it. */
const HINTS: [RegExp, string][] = [
  [
    /^(UnauthorizedOperation|AccessDenied|AuthFailure|InvalidClientTokenId|SignatureDoesNotMatch|OptInRequired)/,
    'the AWS identity in use lacks EC2 permissions for this; check `aws sts get-caller-identity` and its IAM policy',
  ],
  [
    /^(InsufficientInstanceCapacity|InsufficientCapacity|Unsupported)/,
    'AWS has no capacity for this instance type here right now: try another --instance-type, --subnet (zone) or --region',
  ],
  [
    /^(VcpuLimitExceeded|InstanceLimitExceeded|MaxSpotInstanceCountExceeded|SecurityGroupLimitExceeded|RulesPerSecurityGroupLimitExceeded)/,
    'an AWS quota stops this: fewer --workers, a smaller --instance-type, or ask AWS for a higher limit (Service Quotas)',
  ],
  [/^(RequestLimitExceeded|Throttling)/, 'AWS is throttling this account; wait a minute and run it again'],
  [
    /^InvalidAMIID/,
    'pass an AMI that exists in this region with --ami, or drop --ami for the latest Ubuntu LTS',
  ],
  [/^InvalidSubnetID/, 'pass a subnet of this region with --subnet (aws ec2 describe-subnets lists them)'],
  [/^InvalidVpcID/, 'pass a VPC of this region with --vpc (aws ec2 describe-vpcs lists them)'],
  [
    /^InvalidGroup\.Duplicate/,
    'a security group of that name exists in this VPC, perhaps from a cluster of the same name: dcp list --provider aws',
  ],
];

/** An SDK failure of `action`, as one line with a hint. */
export function awsError(action: string, error: unknown): DcpError {
  if (error instanceof DcpError) return error;
  const code = (error as { name?: string }).name ?? 'Error';
  const hint = HINTS.find(([pattern]) => pattern.test(code))?.[1];
  // AWS appends a long encoded blob to permission errors: it goes below the one-line message.
  const [message = '', blob] = messageOf(error).split(/\s*Encoded authorization failure message:\s*/);
  return new DcpError(`AWS refused ${action}: ${code}: ${message}`, {
    ...(hint ? { hint } : {}),
    ...(blob
      ? { details: `what AWS checked: aws sts decode-authorization-message --encoded-message ${blob}` }
      : {}),
    cause: error,
  });
}

function errorCode(error: unknown): string | undefined {
  return (error as { name?: string } | undefined)?.name;
}

/** Calls AWS, turning a failure into a DcpError that names the action. */
export async function call<T>(action: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw awsError(action, error);
  }
}

/** The region the SDK's own chain gives (AWS_REGION, the profile in ~/.aws/config), if any. */
export async function configuredRegion(): Promise<string | undefined> {
  try {
    return await client(undefined).config.region();
  } catch {
    return undefined;
  }
}

function client(region: string | undefined): EC2Client {
  // dcp supports Node 20.19 and up and says so itself; the SDK's many-line notice about its own
  // future Node support would bury dcp's output on every run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // The AWS CLI reads AWS_DEFAULT_REGION (after AWS_REGION, before the profile); SDK v3 does not.
  const chosen = region ?? (process.env.AWS_REGION ? undefined : process.env.AWS_DEFAULT_REGION);
  return new EC2Client(chosen ? { region: chosen } : {});
}

/**
 * A client for `region`, or the SDK's own region when none is given; checks that the region and
 * credentials are known before anything is asked of AWS.
 */
export async function connect(region: string | undefined): Promise<Ec2> {
  const sdk = client(region);
  let resolved: string;
  try {
    resolved = await sdk.config.region();
  } catch {
    throw usageError(
      'no region is known for aws',
      'pass --region, or save one: dcp config set aws.region ... (or set AWS_REGION, or a region in your AWS profile)',
    );
  }
  try {
    await sdk.config.credentials();
  } catch (error) {
    throw new DcpError(`no AWS credentials found: ${messageOf(error)}`, {
      hint: 'run `aws configure` (or `aws sso login`), set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
      exitCode: ExitCode.usage,
    });
  }
  return { api: actions(sdk), region: resolved };
}

/** Which cluster: one run of `up` by its id, a cluster by name, or every dcp cluster. */
export type Which = { id: string } | { name: string } | 'all';

function clusterFilter(which: Which): Filter {
  if (which === 'all') return { Name: 'tag-key', Values: [TAG_CLUSTER] };
  return 'id' in which
    ? { Name: `tag:${TAG_CLUSTER_ID}`, Values: [which.id] }
    : { Name: `tag:${TAG_CLUSTER}`, Values: [which.name] };
}

export function tagValue(
  tags: { Key?: string; Value?: string }[] | undefined,
  key: string,
): string | undefined {
  return tags?.find((tag) => tag.Key === key)?.Value;
}

/** Every item of a listing, page after page. */
async function allPages<T>(
  page: (token: { NextToken?: string }) => Promise<{ items: T[]; NextToken?: string | undefined }>,
): Promise<T[]> {
  const items: T[] = [];
  let NextToken: string | undefined;
  do {
    const next = await page(NextToken ? { NextToken } : {});
    items.push(...next.items);
    NextToken = next.NextToken;
  } while (NextToken);
  return items;
}

/** Every instance these filters match. */
function findInstances(ec2: Ec2, Filters: Filter[], signal?: AbortSignal): Promise<Instance[]> {
  return allPages(async (token) => {
    const page = await call('DescribeInstances', () =>
      ec2.api.describeInstances({ Filters, ...token }, signal ? { abortSignal: signal } : {}),
    );
    return {
      items: (page.Reservations ?? []).flatMap((reservation) => reservation.Instances ?? []),
      NextToken: page.NextToken,
    };
  });
}

/** Every instance of a cluster (or of every dcp cluster) that is not terminated yet. */
export function clusterInstances(ec2: Ec2, which: Which, signal?: AbortSignal): Promise<Instance[]> {
  return findInstances(
    ec2,
    [
      clusterFilter(which),
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'] },
    ],
    signal,
  );
}

/** The error for an instance that will never serve the cluster (stopped, terminated, ...), if it is one. */
export function lostInstance(instance: Instance): DcpError | undefined {
  const state = instance.State?.Name ?? 'unknown';
  if (state === 'pending' || state === 'running') return undefined;
  const reason = instance.StateReason?.Message;
  return new DcpError(
    `the ${tagValue(instance.Tags, TAG_ROLE) ?? 'cluster'} instance ${instance.InstanceId} is ${state}${reason ? `: ${reason}` : ''}`,
  );
}

export function clusterGroups(ec2: Ec2, which: Which): Promise<SecurityGroup[]> {
  return allPages(async (token) => {
    const page = await call('DescribeSecurityGroups', () =>
      ec2.api.describeSecurityGroups({ Filters: [clusterFilter(which)], ...token }),
    );
    return { items: page.SecurityGroups ?? [], NextToken: page.NextToken };
  });
}

/** 0.5 s, 1 s, 2 s, then every 5 s: quick for small clusters, polite for long waits. */
export function pollDelay(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 5_000);
}

/** Terminates these instances in one call per thousand, and waits until AWS says they are gone. */
export async function terminate(ec2: Ec2, ids: string[], timeoutMs = 15 * 60_000): Promise<void> {
  if (ids.length === 0) return;
  for (let i = 0; i < ids.length; i += 1000) {
    const batch = ids.slice(i, i + 1000);
    await call('TerminateInstances', () => ec2.api.terminateInstances({ InstanceIds: batch })).catch(
      async (error: unknown) => {
        // One id already gone fails the whole call: terminate the ones that still exist.
        if (!/InvalidInstanceID\.NotFound/.test(errorCode((error as DcpError).cause) ?? '')) throw error;
        const live = await existing(ec2, batch);
        if (live.length > 0)
          await call('TerminateInstances', () => ec2.api.terminateInstances({ InstanceIds: live }));
      },
    );
  }
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const remaining = await existing(ec2, ids, ['terminated']);
    if (remaining.length === 0) return;
    if (Date.now() > deadline)
      throw new DcpError(
        `${remaining.length} instance${remaining.length === 1 ? ' is' : 's are'} still shutting down: ${remaining.join(', ')}`,
        { hint: 'run dcp down again in a few minutes' },
      );
    await sleep(pollDelay(attempt));
  }
}

/**
 * These instances as AWS sees them now, whatever their state. By filter, not by id: an id AWS
 * has already forgotten would fail the whole call.
 */
export async function describeInstances(ec2: Ec2, ids: string[], signal?: AbortSignal): Promise<Instance[]> {
  const found: Instance[] = [];
  for (let i = 0; i < ids.length; i += 200)
    found.push(
      ...(await findInstances(ec2, [{ Name: 'instance-id', Values: ids.slice(i, i + 200) }], signal)),
    );
  return found;
}

/** The ids among `ids` that AWS still knows, in a state other than `except`. */
async function existing(
  ec2: Ec2,
  ids: string[],
  except: string[] = ['terminated', 'shutting-down'],
): Promise<string[]> {
  return (await describeInstances(ec2, ids))
    .filter((instance) => !except.includes(instance.State?.Name ?? ''))
    .map((instance) => instance.InstanceId!);
}

/**
 * Deletes a security group, retrying while AWS still sees instances in it (DependencyViolation
 * lasts a while after they terminate). False when it was already gone.
 */
export async function deleteGroup(ec2: Ec2, groupId: string, timeoutMs = 5 * 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await ec2.api.deleteSecurityGroup({ GroupId: groupId });
      return true;
    } catch (error) {
      const code = errorCode(error);
      if (code === 'InvalidGroup.NotFound') return false;
      if (code !== 'DependencyViolation' || Date.now() > deadline)
        throw awsError('DeleteSecurityGroup', error);
      await sleep(pollDelay(attempt));
    }
  }
}
