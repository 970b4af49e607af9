/**
 * Which Google Cloud project and zone a cluster goes to, found the way gcloud finds them, so
 * that a user who set up gcloud need not say it again: the flag or setting, then gcloud's
 * variables, then gcloud's active configuration, then (project only) the credentials file.
 * google-auth-library's own project lookup is not used: it runs `gcloud` and asks the metadata
 * server, and knows no zone at all.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseIni } from 'ini';
import { GCP_PROJECT, GCP_ZONE } from '../../config/schema.js';
import { usageError } from '../../errors.js';
import { readRegularFile } from '../../util/files.js';

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(path, 64 * 1024)).data.toString('utf8');
  } catch {
    return undefined;
  }
}

function gcloudDir(env: NodeJS.ProcessEnv): string {
  return env.CLOUDSDK_CONFIG || join(env.HOME || homedir(), '.config', 'gcloud');
}

/** gcloud's active configuration, as INI sections (`core.project`, `compute.zone`). */
async function gcloudConfiguration(
  env: NodeJS.ProcessEnv,
): Promise<{ file: string; values: Record<string, unknown> }> {
  const dir = gcloudDir(env);
  const name =
    env.CLOUDSDK_ACTIVE_CONFIG_NAME || (await readText(join(dir, 'active_config')))?.trim() || 'default';
  const file = join(dir, 'configurations', `config_${name}`);
  const text = /^[\w.-]+$/.test(name) ? await readText(file) : undefined;
  return { file, values: text ? parseIni(text) : {} };
}

function section(values: Record<string, unknown>, name: string, key: string): string | undefined {
  const value = (values[name] as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

/** The credentials file's `project_id` (service account keys carry one), with the file. */
async function credentialsProject(env: NodeJS.ProcessEnv): Promise<Found> {
  const file =
    env.GOOGLE_APPLICATION_CREDENTIALS || join(gcloudDir(env), 'application_default_credentials.json');
  const text = await readText(file);
  if (!text) return undefined;
  try {
    const value = (JSON.parse(text) as { project_id?: unknown }).project_id;
    return typeof value === 'string' && value ? [value, file] : undefined;
  } catch {
    return undefined;
  }
}

type Found = [value: string, origin: string] | undefined;

/** The project and zone the flags, gcloud's variables and configuration or the credentials give. */
async function findIdentity(
  given: { project?: string | undefined; zone?: string | undefined },
  env: NodeJS.ProcessEnv,
): Promise<{ project: Found; zone: Found }> {
  const config = await gcloudConfiguration(env);
  const first = (candidates: [string | undefined, string][]): Found =>
    candidates.find((candidate): candidate is [string, string] => Boolean(candidate[0]));
  // The credentials file is read only when nothing before it names a project.
  const project =
    first([
      [given.project, '--project (gcp.project)'],
      [env.CLOUDSDK_CORE_PROJECT, 'CLOUDSDK_CORE_PROJECT'],
      [env.GOOGLE_CLOUD_PROJECT, 'GOOGLE_CLOUD_PROJECT'],
      [env.GCLOUD_PROJECT, 'GCLOUD_PROJECT'],
      [section(config.values, 'core', 'project'), config.file],
    ]) ?? (await credentialsProject(env));
  return {
    project,
    zone: first([
      [given.zone, '--zone (gcp.zone)'],
      [env.CLOUDSDK_COMPUTE_ZONE, 'CLOUDSDK_COMPUTE_ZONE'],
      [section(config.values, 'compute', 'zone'), config.file],
    ]),
  };
}

/** What gcloud's own configuration gives, for the wizard's defaults; never throws. */
export async function configuredIdentity(
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ project: string | undefined; zone: string | undefined }> {
  const { project, zone } = await findIdentity({}, env);
  return { project: project?.[0], zone: zone?.[0] };
}

/**
 * The project and zone for `up`, `down`, `list`: given ones first. Missing either is a usage
 * error naming the flag and the variables, before anything is asked of Google.
 */
export async function resolveIdentity(
  given: { project?: string | undefined; zone?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
  { zoneRequired = true } = {},
): Promise<{ project: string; zone: string | undefined; origins: { project: string; zone?: string } }> {
  const { project, zone } = await findIdentity(given, env);
  if (!project)
    throw usageError(
      'no Google Cloud project is known',
      'pass --project, or save one: dcp config set gcp.project ... (or set CLOUDSDK_CORE_PROJECT, or run gcloud config set project ...)',
    );
  if (!GCP_PROJECT.test(project[0]))
    throw usageError(
      `${project[1]}: ${JSON.stringify(project[0])} is not a Google Cloud project id`,
      'a project id is 6 to 30 lowercase letters, digits and hyphens (gcloud projects list shows yours)',
    );
  if (!zone && zoneRequired)
    throw usageError(
      'no zone is known for gcp',
      'pass --zone, or save one: dcp config set gcp.zone ... (or set CLOUDSDK_COMPUTE_ZONE, or run gcloud config set compute/zone ...)',
    );
  if (zone && !GCP_ZONE.test(zone[0]))
    throw usageError(
      `${zone[1]}: ${JSON.stringify(zone[0])} is not a zone`,
      'a zone looks like us-central1-a (gcloud compute zones list shows them)',
    );
  return {
    project: project[0],
    zone: zone?.[0],
    origins: { project: project[1], ...(zone ? { zone: zone[1] } : {}) },
  };
}

/** `us-central1-a` → `us-central1`. */
export function regionOf(zone: string): string {
  return zone.replace(/-[a-z]$/, '');
}
