/**
 * The one registry of providers, each loaded only when used (cloud SDKs are heavy). The
 * `--provider` choices of `up`, `down` and `list`, the wizard's entries and the settings'
 * `provider` follow from it.
 */
import type { Provider } from './provider.js';

/** Every provider of the command contract (DESIGN.md): `--provider`, the wizard, the settings. */
export const PROVIDERS = ['local', 'aws', 'gcp', 'azure', 'digitalocean'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** Adding a provider is a line here and in PROVIDERS, its folder, and its fake under test/fakes. */
const LOADERS: Record<ProviderName, () => Promise<Provider>> = {
  local: async () => (await import('./local/index.js')).localProvider,
  aws: async () => (await import('./aws/index.js')).awsProvider,
  gcp: async () => (await import('./gcp/index.js')).gcpProvider,
  azure: async () => (await import('./azure/index.js')).azureProvider,
  digitalocean: async () => (await import('./digitalocean/index.js')).digitaloceanProvider,
};

/** The clouds dcp can make clusters in, and find them in by their tags or labels. */
export const CLOUD_PROVIDERS = PROVIDERS.filter((name) => name !== 'local') as Exclude<
  ProviderName,
  'local'
>[];

export async function loadProvider(name: ProviderName): Promise<Provider> {
  return LOADERS[name]();
}
