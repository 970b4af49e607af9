/** What every cloud provider does alike: the shared half of `prepare`, and counting things in words. */
import { resolveMe } from '../config/ingress.js';
import { matchingImage, type ChosenImage } from './image.js';
import type { ClusterSpec } from './provider.js';

/**
 * The spec with `me` resolved to the caller's address and, for the docker runtime, the Dask
 * image chosen (the one matching this machine's Dask and Python), with a warning when it differs.
 */
export async function prepareCommon(spec: ClusterSpec): Promise<ClusterSpec> {
  const [ingress, chosen] = await Promise.all([
    resolveMe(spec.ingress),
    spec.runtime === 'docker' && !spec.image
      ? matchingImage(spec.python)
      : Promise.resolve<ChosenImage | undefined>(
          spec.image === undefined ? undefined : { image: spec.image },
        ),
  ]);
  return {
    ...spec,
    ingress,
    ...(chosen ? { image: chosen.image } : {}),
    ...(chosen?.warning ? { warnings: [...(spec.warnings ?? []), chosen.warning] } : {}),
  };
}

export function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `instances i-1, i-2` for a few, `51 instances` for many. */
export function idsOrCount(ids: string[], word: string): string {
  return ids.length <= 3
    ? `${word}${ids.length === 1 ? '' : 's'} ${ids.join(', ')}`
    : count(ids.length, word);
}
