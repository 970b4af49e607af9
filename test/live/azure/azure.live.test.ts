/**
 * dcp against real Azure: it bills. Runs only with DCP_LIVE_AZURE=1 and credentials that
 * DefaultAzureCredential finds (az login, or AZURE_CLIENT_ID / AZURE_TENANT_ID /
 * AZURE_CLIENT_SECRET), a subscription and a location:
 *
 *   DCP_LIVE_AZURE=1 AZURE_SUBSCRIPTION_ID=... DCP_LIVE_AZURE_LOCATION=westeurope npm run test:live
 *
 * Optional: DCP_LIVE_AZURE_SIZE (default Standard_D2s_v5), DCP_LIVE_AZURE_IMAGE (the Docker
 * image; default: the one matching this machine's distributed). The identity needs Contributor,
 * and a role that may grant roles for the idle test. Each test tears down what it made and checks
 * through ARM that no resource group of it is left.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { connectArm } from '../../../src/providers/azure/arm.js';
import { resolveIdentity } from '../../../src/providers/azure/identity.js';
import { dcp, json } from '../../helpers/cli.js';
import { liveClusters, liveSuite } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_AZURE === '1';
const location = process.env.DCP_LIVE_AZURE_LOCATION ?? 'westeurope';

/** The caller's credentials and Azure CLI configuration, passed through to dcp's private HOME. */
function azureEnv(): Record<string, string> {
  const env: Record<string, string> = {
    AZURE_CONFIG_DIR: process.env.AZURE_CONFIG_DIR ?? join(homedir(), '.azure'),
    DCP_MY_IP_URL: process.env.DCP_MY_IP_URL ?? 'https://checkip.amazonaws.com',
  };
  for (const [key, value] of Object.entries(process.env))
    if (/^AZURE_/.test(key) && value !== undefined) env[key] = value;
  return env;
}

/** The cluster's resource groups (by tag), with what each still holds. */
async function leftovers(cluster: string) {
  const { subscription } = await resolveIdentity(
    {},
    { ...process.env, ...azureEnv() },
    { locationRequired: false },
  );
  const arm = await connectArm(subscription, { ...process.env, ...azureEnv() });
  const groups: string[] = [];
  for await (const group of arm.resources.resourceGroups.list({
    filter: `tagName eq 'dcp:cluster' and tagValue eq '${cluster}'`,
  }))
    groups.push(`${group.name} (${group.properties?.provisioningState ?? '?'})`);
  return { groups };
}

const flags = [
  '--provider',
  'azure',
  '--region',
  location,
  '--instance-type',
  process.env.DCP_LIVE_AZURE_SIZE ?? 'Standard_D2s_v5',
  ...(process.env.DCP_LIVE_AZURE_IMAGE ? ['--image', process.env.DCP_LIVE_AZURE_IMAGE] : []),
];

liveSuite({ title: 'Azure', provider: 'azure', enabled: live, env: azureEnv(), flags, leftovers });

describe.skipIf(!live)('Azure, live: idle shutdown', () => {
  const name = liveClusters('azure', azureEnv());

  it(
    'an idle cluster deletes its own resource group, and the bill with it',
    async () => {
      const cluster = name('idle');
      const up = await dcp(
        ['up', ...flags, '--name', cluster, '--workers', '1', '--idle-timeout', '2m', '--json'],
        {
          env: azureEnv(),
          timeoutMs: 20 * 60_000,
        },
      );
      expect(up.exitCode, up.stderr).toBe(0);
      expect(json<{ details: { idle_shutdown: string } }>(up.stdout).details.idle_shutdown).toBe(
        'deletes the resource group',
      );
      // Nobody uses it: after the idle timeout the scheduler deletes the group itself.
      let left = await leftovers(cluster);
      for (let i = 0; i < 40 && left.groups.length > 0; i++) {
        await sleep(30_000);
        left = await leftovers(cluster);
      }
      expect(left.groups).toEqual([]);
    },
    30 * 60_000,
  );
});
