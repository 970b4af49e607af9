/**
 * dcp against real DigitalOcean: it bills. Runs only with DCP_LIVE_DIGITALOCEAN=1, a token
 * (DIGITALOCEAN_TOKEN or DIGITALOCEAN_ACCESS_TOKEN, or doctl's configuration) and a region:
 *
 *   DCP_LIVE_DIGITALOCEAN=1 DIGITALOCEAN_TOKEN=dop_v1_... DCP_LIVE_DIGITALOCEAN_REGION=ams3 npm run test:live
 *
 * Optional: DCP_LIVE_DIGITALOCEAN_SIZE (default s-2vcpu-4gb), DCP_LIVE_DIGITALOCEAN_IMAGE (the
 * Docker image; default: the one matching this machine's distributed). Each test tears down what
 * it made and checks through the API that no droplet, firewall, tag or SSH key of it is left.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { connectApi } from '../../../src/providers/digitalocean/api.js';
import { resolveToken } from '../../../src/providers/digitalocean/identity.js';
import { liveSuite } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_DIGITALOCEAN === '1';

/** The caller's token and doctl configuration, passed through to dcp's private HOME. */
function digitaloceanEnv(): Record<string, string> {
  const env: Record<string, string> = {
    XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'),
    DCP_MY_IP_URL: process.env.DCP_MY_IP_URL ?? 'https://checkip.amazonaws.com',
  };
  for (const [key, value] of Object.entries(process.env))
    if (/^DIGITALOCEAN_/.test(key) && value !== undefined) env[key] = value;
  return env;
}

async function leftovers(cluster: string) {
  const doApi = connectApi((await resolveToken()).token);
  const [droplets, firewalls, tags, keys] = await Promise.all([
    doApi.list<{ name: string; tags: string[] }>('droplets.list', 'droplets', 'droplets'),
    doApi.list<{ name: string }>('firewalls.list', 'firewalls', 'firewalls'),
    doApi.list<{ name: string }>('tags.list', 'tags', 'tags'),
    doApi.list<{ name: string }>('sshKeys.list', 'account/keys', 'ssh_keys'),
  ]);
  return {
    droplets: droplets.filter((d) => d.tags.includes(`dcp:cluster:${cluster}`)).map((d) => d.name),
    firewalls: firewalls.filter((f) => f.name === `dcp-${cluster}`).map((f) => f.name),
    tags: tags.filter((t) => t.name === `dcp:cluster:${cluster}`).map((t) => t.name),
    keys: keys.filter((k) => k.name.startsWith(`dcp-${cluster} `)).map((k) => k.name),
  };
}
liveSuite({
  title: 'DigitalOcean',
  provider: 'digitalocean',
  enabled: live,
  env: digitaloceanEnv(),
  flags: [
    '--provider',
    'digitalocean',
    '--region',
    process.env.DCP_LIVE_DIGITALOCEAN_REGION ?? 'ams3',
    '--instance-type',
    process.env.DCP_LIVE_DIGITALOCEAN_SIZE ?? 's-2vcpu-4gb',
    ...(process.env.DCP_LIVE_DIGITALOCEAN_IMAGE ? ['--image', process.env.DCP_LIVE_DIGITALOCEAN_IMAGE] : []),
  ],
  leftovers,
});
