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
import { connectCompute } from '../../../src/providers/gcp/compute.js';
import { resolveIdentity } from '../../../src/providers/gcp/identity.js';
import { liveSuite } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_GCP === '1';

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

liveSuite({
  title: 'Google Cloud',
  provider: 'gcp',
  enabled: live,
  env: gcpEnv(),
  flags: [
    '--provider',
    'gcp',
    '--instance-type',
    process.env.DCP_LIVE_GCP_MACHINE_TYPE ?? 'e2-standard-2',
    ...(process.env.DCP_LIVE_GCP_IMAGE ? ['--image', process.env.DCP_LIVE_GCP_IMAGE] : []),
  ],
  leftovers,
});
