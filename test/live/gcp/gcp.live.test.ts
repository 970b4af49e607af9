/**
 * dcp against real Google Cloud: it bills. Runs only with DCP_LIVE_GCP=1, Application Default
 * Credentials (gcloud auth application-default login, or GOOGLE_APPLICATION_CREDENTIALS), a
 * project and a zone (CLOUDSDK_CORE_PROJECT and CLOUDSDK_COMPUTE_ZONE, or gcloud's configuration):
 *
 *   DCP_LIVE_GCP=1 CLOUDSDK_CORE_PROJECT=my-sandbox CLOUDSDK_COMPUTE_ZONE=europe-west1-b npm run test:live
 *
 * Optional: DCP_LIVE_GCP_MACHINE_TYPE (default e2-standard-2), DCP_LIVE_GCP_IMAGE (default: the
 * image matching this machine's distributed). Each test tears down what it made, and checks
 * through the API that no VM labelled with its cluster and no firewall rule of it is left.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectCompute } from '../../../src/providers/gcp/compute.js';
import { resolveIdentity } from '../../../src/providers/gcp/identity.js';
import { dcp, json, tempDir } from '../../helpers/cli.js';
import { runPython } from '../../helpers/dask.js';
import { liveClusters } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_GCP === '1';
if (!live)
  console.warn(
    '\n*** SKIPPING the live GCP tests: set DCP_LIVE_GCP=1 (they create real, billed resources) ***\n',
  );

/** The caller's Google configuration, passed through to dcp's private HOME. */
function gcpEnv(): Record<string, string> {
  const env: Record<string, string> = {
    CLOUDSDK_CONFIG: process.env.CLOUDSDK_CONFIG ?? join(homedir(), '.config', 'gcloud'),
    DCP_MY_IP_URL: process.env.DCP_MY_IP_URL ?? 'https://checkip.amazonaws.com',
  };
  for (const [key, value] of Object.entries(process.env))
    if (/^(CLOUDSDK_|GOOGLE_|GCLOUD_|GCE_)/.test(key) && value !== undefined) env[key] = value;
  return env;
}

async function leftovers(cluster: string) {
  const { project } = await resolveIdentity({}, process.env, { zoneRequired: false });
  const compute = await connectCompute(project);
  const vms = await compute.list<{ name: string }>(
    'instances.aggregatedList',
    compute.path('aggregated/instances'),
    {
      filter: `labels.dcp-cluster="${cluster}"`,
    },
  );
  const rules = await compute.list<{ name: string }>('firewalls.list', compute.path('global/firewalls'), {
    filter: `name eq "dcp-${cluster}-.*"`,
  });
  return { vms: vms.map((vm) => vm.name), firewalls: rules.map((rule) => rule.name) };
}

describe.skipIf(!live)('Google Cloud, live', () => {
  const env = gcpEnv();
  const common = [
    '--provider',
    'gcp',
    '--instance-type',
    process.env.DCP_LIVE_GCP_MACHINE_TYPE ?? 'e2-standard-2',
    ...(process.env.DCP_LIVE_GCP_IMAGE ? ['--image', process.env.DCP_LIVE_GCP_IMAGE] : []),
  ];

  const name = liveClusters('gcp', env);

  it('up waits for a real TLS cluster, the snippet computes on it, only this address may connect, down leaves nothing', async () => {
    const home = tempDir('dcp-live-');
    const cluster = name('up');
    const up = await dcp(
      ['up', ...common, '--name', cluster, '--workers', '2', '--timeout', '15m', '--json'],
      {
        home,
        env,
        timeoutMs: 20 * 60_000,
      },
    );
    expect(up.exitCode, up.stderr).toBe(0);
    const record = json<{ scheduler_address: string; snippet: string }>(up.stdout);
    expect(record.scheduler_address).toMatch(/^tls:\/\//);
    const result = await runPython(
      `${record.snippet}\nclient.wait_for_workers(2, timeout=300)\nprint("answer", client.submit(lambda x: x + 1, 41).result())`,
      { timeoutMs: 6 * 60_000 },
    );
    expect(result.all).toContain('answer 42');

    // Nothing but dcp's rules reaches the VMs: doctor reads the network's live rules.
    const doctor = await dcp(['doctor', cluster, '--json'], { home, env, timeoutMs: 5 * 60_000 });
    expect(doctor.exitCode, doctor.stdout).toBe(0);

    const down = await dcp(['down', cluster, '--yes'], { home, env, timeoutMs: 20 * 60_000 });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(cluster)).toEqual({ vms: [], firewalls: [] });
  });

  it('down from another machine finds a cluster by its labels, in any zone', async () => {
    const cluster = name('elsewhere');
    const up = await dcp(['up', ...common, '--name', cluster, '--workers', '1', '--no-wait', '--json'], {
      env,
      timeoutMs: 10 * 60_000,
    });
    expect(up.exitCode, up.stderr).toBe(0);
    const down = await dcp(['down', cluster, '--provider', 'gcp', '--yes'], {
      home: tempDir('dcp-live-other-'),
      env,
      timeoutMs: 20 * 60_000,
    });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(cluster)).toEqual({ vms: [], firewalls: [] });
  });
});
