/**
 * The one registry of providers, each loaded only when used (cloud SDKs are heavy). The
 * `--provider` choices of `up`, `down` and `list`, the wizard's entries (the ones not built yet
 * shown as such) and the settings' `provider` follow from it.
 */
import { usageError } from '../errors.js';
import type { Provider } from './provider.js';

/** Every provider of the command contract (DESIGN.md): `--provider`, the wizard, the settings. */
export const PROVIDERS = ['local', 'aws', 'gcp', 'azure', 'digitalocean'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** The ones built: adding a provider is a line here, its folder, and its fake under test/fakes. */
const AVAILABLE: Partial<Record<ProviderName, () => Promise<Provider>>> = {
  local: async () => (await import('./local/index.js')).localProvider,
  aws: async () => (await import('./aws/index.js')).awsProvider,
  gcp: async () => (await import('./gcp/index.js')).gcpProvider,
  azure: async () => (await import('./azure/index.js')).azureProvider,
  digitalocean: async () => (await import('./digitalocean/index.js')).digitaloceanProvider,
};

/** The clouds dcp can make clusters in, and find them in by their tags or labels. */
export const CLOUD_PROVIDERS = Object.keys(AVAILABLE).filter((name) => name !== 'local') as Exclude<
  ProviderName,
  'local'
>[];

/** Why a provider cannot be used from here, or undefined when it can. */
export function unavailableReason(name: ProviderName): string | undefined {
  return AVAILABLE[name] ? undefined : 'not part of this version of dcp yet';
}

/** Throws the usage error for a provider that cannot be used from here. */
export function assertAvailable(name: ProviderName): void {
  if (!AVAILABLE[name])
    throw usageError(
      `the ${name} provider is ${unavailableReason(name)}`,
      `use ${Object.keys(AVAILABLE)
        .map((p) => `--provider ${p}`)
        .join(' or ')} for now; the other clouds are being built`,
    );
}

export async function loadProvider(name: ProviderName): Promise<Provider> {
  assertAvailable(name);
  return AVAILABLE[name]!();
}
