/**
 * The one registry of providers, each loaded only when used (cloud SDKs are heavy): the
 * `--provider` choices of `down` and `list`, and what `up` and the wizard accept, follow from it.
 * Adding a provider: its folder under src/providers, its fake under test/fakes, and a line here.
 */
import type { ProviderName } from '../config/schema.js';
import { usageError } from '../errors.js';
import type { Provider } from './provider.js';

const AVAILABLE: Partial<Record<ProviderName, () => Promise<Provider>>> = {
  local: async () => (await import('./local/index.js')).localProvider,
  aws: async () => (await import('./aws/index.js')).awsProvider,
  gcp: async () => (await import('./gcp/index.js')).gcpProvider,
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
