/**
 * dcp's settings (DESIGN.md section 4): one zod schema, from which the list of keys, the
 * parsing of `dcp config set KEY VALUE` and the validation of every file and variable follow.
 */
import { closest } from '../util/suggest.js';
import { z } from 'zod';
import { usageError } from '../errors.js';
import { parseDuration } from '../util/duration.js';
import { ingressRuleSchema } from './ingress.js';
import { cipherProblem, TLS_VERSION_CHOICES } from './tls-params.js';
import { PROVIDERS, type ProviderName } from '../providers/index.js';

/** Google Cloud project ids (`my-proj-123`), domain-scoped ones too (`example.com:my-proj`). */
export const GCP_PROJECT = /^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/;
/** A GUID, as Azure subscription ids (and the run ids dcp makes) are. */
export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Azure's location names: `westeurope`, `eastus2`, `brazilsouth`. */
export const AZURE_LOCATION = /^[a-z][a-z0-9]{2,30}$/;
/** `us-central1-a`, `europe-west4-b`. */
export const GCP_ZONE = /^[a-z]+-[a-z]+\d+-[a-z]$/;
/** A DigitalOcean SSH key: its id, or its MD5 fingerprint (`aa:bb:...`, as doctl lists it). */
export const DIGITALOCEAN_SSH_KEY = /^(\d+|[0-9a-f]{2}(:[0-9a-f]{2}){15})$/;

// Which providers there are is the registry's to say; the settings follow it.
export { PROVIDERS, type ProviderName };

const text = z.string().trim().min(1, { error: 'must not be empty' });
const wholeNumber = (min: number, max: number) =>
  z
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int({ error: `must be a whole number from ${min} to ${max}` })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });
const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `must be one of ${values.join(', ')}` });

/** Dask's TLS versions; YAML reads an unquoted 1.3 as a number, which Dask's own files use. */
const tlsVersion = z.preprocess(
  (value) => (typeof value === 'number' ? String(value) : value),
  z.enum(TLS_VERSION_CHOICES, { error: 'must be 1.2 or 1.3 (Dask takes no other)' }),
);

/** Dask's own duration strings: `90s`, `30m`, `1h`, `2 days`, or plain seconds. */
const duration = z
  .string()
  .trim()
  .refine((value) => parseDuration(value) !== undefined, { error: 'must be a duration like 30m, 1h or 2d' });

export const settingsSchema = z
  .object({
    provider: oneOf(PROVIDERS),
    workers: wholeNumber(1, 1000),
    threads: wholeNumber(1, 1024),
    networking: oneOf(['public', 'private'] as const),
    ingress: z.array(ingressRuleSchema, { error: 'must be a list of {ports, cidr} rules' }),
    tls: oneOf(['auto', 'byo', 'off'] as const),
    tls_dir: text,
    image: text.regex(/^[^\s-]\S*$/, {
      error: 'must be an image reference like ghcr.io/dask/dask:2024.5.0-py3.12, without spaces',
    }),
    runtime: oneOf(['docker', 'preinstalled'] as const),
    // Shorter would stop a new scheduler before anyone used it; 0 (never) would bill forever.
    idle_timeout: duration.refine((value) => (parseDuration(value) ?? 0) >= 60_000, {
      error: 'must be at least 1m',
    }),
    tls_min_version: tlsVersion,
    tls_max_version: tlsVersion,
    tls_ciphers: text.superRefine((value, context) => {
      const problem = cipherProblem(value);
      if (problem) context.addIssue({ code: 'custom', message: problem });
    }),
    require_encryption: z.boolean({ error: 'must be true or false' }),
    aws: z
      .object({
        region: text,
        vpc: text,
        subnet: text,
        instance_type: text,
        scheduler_instance_type: text,
        ami: text,
      })
      .partial()
      .strict(),
    gcp: z
      .object({
        project: text.regex(GCP_PROJECT, {
          error: 'must be a project id: 6 to 30 lowercase letters, digits and hyphens',
        }),
        zone: text.regex(GCP_ZONE, { error: 'must be a zone, like us-central1-a' }),
        network: text,
        subnetwork: text,
        machine_type: text.regex(/^[a-z][-a-z0-9]*$/, {
          error: 'must be a machine type, like e2-standard-4',
        }),
        // A machine image with Dask on it, for --runtime preinstalled: [PROJECT/]IMAGE, or a family.
        image: text,
        image_family: text,
      })
      .partial()
      .strict(),
    azure: z
      .object({
        subscription_id: text.regex(GUID, {
          error: 'must be a subscription id, a GUID (az account list --output table)',
        }),
        resource_group: text,
        location: text.regex(AZURE_LOCATION, { error: 'must be a location, like westeurope' }),
        vnet: text,
        subnet: text,
        security_group: text,
        vm_size: text,
      })
      .partial()
      .strict(),
    digitalocean: z
      .object({
        region: text,
        size: text,
        image: text,
        vpc: text,
        ssh_key: z.string().trim().regex(DIGITALOCEAN_SSH_KEY, {
          error: 'must be a key id or its MD5 fingerprint (doctl compute ssh-key list)',
        }),
        egress: oneOf(['nat', 'public'] as const),
      })
      .partial()
      .strict(),
  })
  .partial()
  .strict();

export type Settings = z.infer<typeof settingsSchema>;

/** What holds when nobody said otherwise: a local cluster of 2 workers with TLS. */
export const DEFAULTS: Settings = {
  provider: 'local',
  workers: 2,
  networking: 'public',
  tls: 'auto',
  idle_timeout: '1h',
  runtime: 'docker',
};

type Leaf = z.ZodType;

function unwrap(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodOptional ? (schema.unwrap() as z.ZodType) : schema;
}

/** Every settable key (`workers`, `aws.region`, ...) with the schema of its value. */
export const SETTING_KEYS: ReadonlyMap<string, Leaf> = new Map(
  Object.entries(settingsSchema.shape).flatMap(([name, schema]): [string, Leaf][] => {
    const inner = unwrap(schema as z.ZodType);
    return inner instanceof z.ZodObject
      ? Object.entries(inner.shape as Record<string, z.ZodType>).map(([child, leaf]): [string, Leaf] => [
          `${name}.${child}`,
          unwrap(leaf),
        ])
      : [[name, inner]];
  }),
);

export const GROUPS = ['aws', 'gcp', 'azure', 'digitalocean'] as const;

/** `aws.regoin` → a usage error that names the closest key. */
export function requireKey(key: string, { allowGroups = false } = {}): string {
  if (SETTING_KEYS.has(key) || (allowGroups && (GROUPS as readonly string[]).includes(key))) return key;
  if ((GROUPS as readonly string[]).includes(key)) {
    throw usageError(
      `${key} is a group of settings, not one`,
      `set one of: ${[...SETTING_KEYS.keys()].filter((k) => k.startsWith(`${key}.`)).join(', ')}`,
    );
  }
  const suggestion = closest(key, [...SETTING_KEYS.keys()]);
  throw usageError(
    `unknown setting ${JSON.stringify(key)}`,
    suggestion
      ? `did you mean ${suggestion}? (dcp config --help lists them all)`
      : 'dcp config --help lists the settings',
  );
}

/**
 * A value typed on the command line or in a `DCP_*` variable, as its key's type: numbers for
 * numbers, JSON for lists, text for the rest. `source` names it in the error (`workers`,
 * `DCP_WORKERS`).
 */
export function parseSettingValue(key: string, raw: string, source = key): unknown {
  const schema = SETTING_KEYS.get(requireKey(key))!;
  let value: unknown = raw;
  if (schema instanceof z.ZodNumber) {
    value = /^\s*-?\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : raw;
  } else if (schema instanceof z.ZodBoolean) {
    value = { true: true, false: false }[raw.trim().toLowerCase()] ?? raw;
  } else if (schema instanceof z.ZodArray) {
    try {
      value = JSON.parse(raw);
    } catch {
      throw usageError(
        `${source}: ${JSON.stringify(raw)} is not a JSON list`,
        `for example '[{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}]'`,
      );
    }
  }
  return validateSetting(key, value, source);
}

/** Checks one key's value; a bad one is a usage error naming where it came from. */
export function validateSetting(key: string, value: unknown, source = key): unknown {
  const result = SETTING_KEYS.get(requireKey(key))!.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path.length > 0 ? `${source}[${issue.path.join('.')}]` : source;
    throw usageError(
      `${where}: ${JSON.stringify(value)} ${issue.message}`,
      `dcp config --help lists what each setting takes`,
    );
  }
  return result.data;
}

/** Checks a whole settings object from a file; errors name the file and the key. */
export function validateSettings(value: unknown, file: string, prefix: string): Settings {
  const result = settingsSchema.safeParse(value ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = [prefix, ...issue.path].filter(Boolean).join('.');
    if (issue.code === 'unrecognized_keys') {
      throw usageError(
        `${file}: unknown setting ${[path, issue.keys[0]].filter(Boolean).join('.')}`,
        'remove it from the file: dcp config --help lists the settings',
      );
    }
    const given = issue.path.reduce<unknown>(
      (node, key) => (node as Record<PropertyKey, unknown> | undefined)?.[key],
      value,
    );
    // YAML 1.1, which Dask reads with, takes a bare off, no or yes for a boolean.
    const hint =
      typeof given === 'boolean'
        ? `quote it in the file ("off", "on", "yes", "no"): unquoted, YAML reads it as ${given}`
        : 'fix it with dcp config set, or edit the file';
    throw usageError(`${file}: ${path}: ${issue.message}`, hint);
  }
  return result.data;
}
