/** Providers by name, each loaded only when used (cloud SDKs are heavy). */
import type { ProviderName } from '../config/schema.js';
import { usageError } from '../errors.js';
import type { Provider } from './provider.js';

export async function loadProvider(name: ProviderName): Promise<Provider> {
  switch (name) {
    case 'local':
      return (await import('./local/index.js')).localProvider;
    default:
      throw usageError(`the ${name} provider is not part of this version of dcp yet`, 'use --provider local for now; cloud providers are being built');
  }
}
