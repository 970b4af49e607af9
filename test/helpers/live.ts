/** What the live tests of every cloud share: cluster names, and their teardown whatever a test left. */
import { afterAll } from 'vitest';
import { dcp } from './cli.js';

/**
 * A maker of unique cluster names for a live test file (call it inside its describe): after the
 * file, each is torn down by `down --provider` from a fresh home, whatever a failed test left.
 */
export function liveClusters(provider: string, env: Record<string, string>): (label: string) => string {
  const made: string[] = [];
  afterAll(async () => {
    for (const cluster of made)
      await dcp(['down', cluster, '--provider', provider, '--yes'], { env, timeoutMs: 20 * 60_000 });
  });
  return (label) => {
    const value = `dcp-live-${label}-${Date.now().toString(36)}`;
    made.push(value);
    return value;
  };
}
