/**
 * What the live tests of every cloud share: cluster names and their teardown whatever a test
 * left, and the two tests every cloud passes against the real thing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { dcp, json, tempDir } from './cli.js';
import { runPython } from './dask.js';

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

export interface LiveCloud {
  /** `AWS`, `Google Cloud`, ...: for the test names. */
  title: string;
  provider: string;
  /** Whether DCP_LIVE_<PROVIDER>=1 (and credentials) ask for these tests. */
  enabled: boolean;
  /** The caller's credentials and configuration, passed through to dcp's private HOME. */
  env: Record<string, string>;
  /** `up`'s flags for this cloud (placement, size, image). */
  flags: string[];
  /** Everything of the cluster the cloud still has, by kind, asked through its API. */
  leftovers(cluster: string): Promise<Record<string, unknown[]>>;
  /** What else to check while the cluster runs (its ingress, say). */
  whileUp?(cluster: string, home: string): Promise<void>;
}

/** up, compute, doctor, down; and down from another machine: nothing of either is left. */
export function liveSuite(cloud: LiveCloud): void {
  if (!cloud.enabled)
    console.warn(
      `\n*** SKIPPING the live ${cloud.title} tests: set DCP_LIVE_${cloud.provider.toUpperCase()}=1 (they create real, billed resources) ***\n`,
    );
  const nothingLeft = async (cluster: string) =>
    expect(Object.values(await cloud.leftovers(cluster)).flat()).toEqual([]);

  describe.skipIf(!cloud.enabled)(`${cloud.title}, live`, () => {
    const { env } = cloud;
    const name = liveClusters(cloud.provider, env);

    it('up waits for a real TLS cluster, the snippet computes on it, doctor finds no open door, down leaves nothing', async () => {
      const home = tempDir('dcp-live-');
      const cluster = name('up');
      const up = await dcp(
        ['up', ...cloud.flags, '--name', cluster, '--workers', '2', '--timeout', '15m', '--json'],
        { home, env, timeoutMs: 20 * 60_000 },
      );
      expect(up.exitCode, up.stderr).toBe(0);
      const record = json<{ scheduler_address: string; snippet: string }>(up.stdout);
      expect(record.scheduler_address).toMatch(/^tls:\/\//);
      const result = await runPython(
        `${record.snippet}\nclient.wait_for_workers(2, timeout=300)\nprint("answer", client.submit(lambda x: x + 1, 41).result())`,
        { timeoutMs: 6 * 60_000 },
      );
      expect(result.all).toContain('answer 42');
      await cloud.whileUp?.(cluster, home);
      // Nothing but dcp's rules reaches the VMs: doctor reads the live firewall and knocks.
      const doctor = await dcp(['doctor', cluster, '--json'], { home, env, timeoutMs: 5 * 60_000 });
      expect(doctor.exitCode, doctor.stdout).toBe(0);
      const down = await dcp(['down', cluster, '--yes'], { home, env, timeoutMs: 20 * 60_000 });
      expect(down.exitCode, down.stderr).toBe(0);
      await nothingLeft(cluster);
    });

    it('down from another machine finds the cluster by its tags or labels', async () => {
      const cluster = name('elsewhere');
      const up = await dcp(
        ['up', ...cloud.flags, '--name', cluster, '--workers', '1', '--no-wait', '--json'],
        {
          env,
          timeoutMs: 10 * 60_000,
        },
      );
      expect(up.exitCode, up.stderr).toBe(0);
      const down = await dcp(['down', cluster, '--provider', cloud.provider, '--yes'], {
        home: tempDir('dcp-live-other-'),
        env,
        timeoutMs: 20 * 60_000,
      });
      expect(down.exitCode, down.stderr).toBe(0);
      await nothingLeft(cluster);
    });
  });
}
