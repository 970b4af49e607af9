/** Providers by name, each loaded only when used (cloud SDKs are heavy). */
import type { ProviderName } from '../config/schema.js';
import { usageError } from '../errors.js';
import type { Provider } from './provider.js';

/** Why a provider cannot be used from here, or undefined when it can. */
export function unavailableReason(name: ProviderName): string | undefined {
  return name === 'local' ? undefined : 'not part of this version of dcp yet';
}

export async function loadProvider(name: ProviderName): Promise<Provider> {
  const reason = unavailableReason(name);
  if (reason) throw usageError(`the ${name} provider is ${reason}`, 'use --provider local for now; cloud providers are being built');
  return (await import('./local/index.js')).localProvider;
}
