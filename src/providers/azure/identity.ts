/**
 * Which Azure subscription and location a cluster goes to, found the way the Azure CLI finds
 * them, so that a user who set up `az` need not say it again: the flag or setting, then the
 * variables (`AZURE_SUBSCRIPTION_ID`, `AZURE_DEFAULTS_LOCATION`), then the CLI's own files in
 * `$AZURE_CONFIG_DIR` (default `~/.azure`): the default subscription of `azureProfile.json` (which
 * starts with a byte-order mark) and `[defaults] location` of `config`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseIni } from 'ini';
import { AZURE_LOCATION, GUID } from '../../config/schema.js';
import { usageError } from '../../errors.js';
import { readRegularFile } from '../../util/files.js';

type Found = [value: string, origin: string] | undefined;

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(path, 1024 * 1024)).data.toString('utf8').replace(/^\uFEFF/, '');
  } catch {
    return undefined;
  }
}

function azureDir(env: NodeJS.ProcessEnv): string {
  return env.AZURE_CONFIG_DIR || join(env.HOME || homedir(), '.azure');
}

/** The Azure CLI's default subscription (`az account set`), with its file. */
async function profileSubscription(env: NodeJS.ProcessEnv): Promise<Found> {
  const file = join(azureDir(env), 'azureProfile.json');
  const text = await readText(file);
  if (!text) return undefined;
  try {
    const profile = JSON.parse(text) as { subscriptions?: { id?: unknown; isDefault?: unknown }[] };
    const chosen = profile.subscriptions?.find((subscription) => subscription.isDefault === true);
    return typeof chosen?.id === 'string' && chosen.id ? [chosen.id, file] : undefined;
  } catch {
    return undefined;
  }
}

/** The Azure CLI's default location (`az config set defaults.location=...`), with its file. */
async function configLocation(env: NodeJS.ProcessEnv): Promise<Found> {
  const file = join(azureDir(env), 'config');
  const text = await readText(file);
  if (!text) return undefined;
  const value = (parseIni(text).defaults as Record<string, unknown> | undefined)?.location;
  return typeof value === 'string' && value.trim() ? [value.trim(), file] : undefined;
}

function first(candidates: [string | undefined, string][]): Found {
  return candidates.find((candidate): candidate is [string, string] => Boolean(candidate[0]?.trim()));
}

/** The location the Azure CLI's configuration gives, for the wizard; never throws. */
export async function configuredLocation(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  return (first([[env.AZURE_DEFAULTS_LOCATION, '']]) ?? (await configLocation(env)))?.[0];
}

/** The subscription the variable or the Azure CLI's profile gives, for the wizard; never throws. */
export async function configuredSubscription(
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  return (first([[env.AZURE_SUBSCRIPTION_ID, '']]) ?? (await profileSubscription(env)))?.[0];
}

/**
 * The subscription and location for `up`, `down`, `list`: given ones first. Missing either is a
 * usage error naming the flag, the variable and the `az` command, before anything is asked of Azure.
 */
export async function resolveIdentity(
  given: { subscription?: string | undefined; location?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  { locationRequired = true } = {},
): Promise<{
  subscription: string;
  location: string | undefined;
  origins: { subscription: string; location?: string };
}> {
  const subscription =
    first([
      [given.subscription, '--subscription (azure.subscription_id)'],
      [env.AZURE_SUBSCRIPTION_ID, 'AZURE_SUBSCRIPTION_ID'],
    ]) ?? (await profileSubscription(env));
  const location =
    first([
      [given.location, '--region (azure.location)'],
      [env.AZURE_DEFAULTS_LOCATION, 'AZURE_DEFAULTS_LOCATION'],
    ]) ?? (await configLocation(env));
  if (!subscription && !location && locationRequired)
    throw usageError(
      'no Azure subscription and no location are known',
      'pass --subscription ID --region LOCATION, or run az login, az account set --subscription ... and az config set defaults.location=...',
    );
  if (!subscription)
    throw usageError(
      'no Azure subscription is known',
      'pass --subscription, or save one: dcp config set azure.subscription_id ... (or set AZURE_SUBSCRIPTION_ID, or run az login and az account set --subscription ...)',
    );
  if (!GUID.test(subscription[0].trim()))
    throw usageError(
      `${subscription[1]}: ${JSON.stringify(subscription[0])} is not an Azure subscription id`,
      'a subscription id is a GUID (az account list --output table shows yours)',
    );
  if (!location && locationRequired)
    throw usageError(
      'no location is known for azure',
      'pass --region, or save one: dcp config set azure.location ... (or set AZURE_DEFAULTS_LOCATION, or run az config set defaults.location=...)',
    );
  if (location && !AZURE_LOCATION.test(location[0].trim()))
    throw usageError(
      `${location[1]}: ${JSON.stringify(location[0])} is not an Azure location`,
      'a location looks like westeurope or eastus2 (az account list-locations --output table shows them)',
    );
  return {
    subscription: subscription[0].trim().toLowerCase(),
    location: location?.[0].trim(),
    origins: { subscription: subscription[1], ...(location ? { location: location[1] } : {}) },
  };
}
