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
import { describe, expect, it } from 'vitest';
import { connectApi } from '../../../src/providers/digitalocean/api.js';
import { resolveToken } from '../../../src/providers/digitalocean/identity.js';
import { dcp, json, tempDir } from '../../helpers/cli.js';
import { runPython } from '../../helpers/dask.js';
import { liveClusters } from '../../helpers/live.js';

const live = process.env.DCP_LIVE_DIGITALOCEAN === '1';
if (!live)
  console.warn(
    '\n*** SKIPPING the live DigitalOcean tests: set DCP_LIVE_DIGITALOCEAN=1 and a token (they create real, billed droplets) ***\n',
  );

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
const nothing = { droplets: [], firewalls: [], tags: [], keys: [] };

describe.skipIf(!live)('DigitalOcean, live', () => {
  const env = digitaloceanEnv();
  const common = [
    '--provider',
    'digitalocean',
    '--region',
    process.env.DCP_LIVE_DIGITALOCEAN_REGION ?? 'ams3',
    '--instance-type',
    process.env.DCP_LIVE_DIGITALOCEAN_SIZE ?? 's-2vcpu-4gb',
    ...(process.env.DCP_LIVE_DIGITALOCEAN_IMAGE ? ['--image', process.env.DCP_LIVE_DIGITALOCEAN_IMAGE] : []),
  ];

  const name = liveClusters('digitalocean', env);

  it('up waits for a real TLS cluster, the snippet computes on it, doctor finds no open door, down leaves nothing', async () => {
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

    const doctor = await dcp(['doctor', cluster, '--json'], { home, env, timeoutMs: 5 * 60_000 });
    expect(doctor.exitCode, doctor.stdout).toBe(0);

    const down = await dcp(['down', cluster, '--yes'], { home, env, timeoutMs: 20 * 60_000 });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(cluster)).toEqual(nothing);
  });

  it('down from another machine finds a cluster by its tags', async () => {
    const cluster = name('elsewhere');
    const up = await dcp(['up', ...common, '--name', cluster, '--workers', '1', '--no-wait', '--json'], {
      env,
      timeoutMs: 10 * 60_000,
    });
    expect(up.exitCode, up.stderr).toBe(0);
    const down = await dcp(['down', cluster, '--provider', 'digitalocean', '--yes'], {
      home: tempDir('dcp-live-other-'),
      env,
      timeoutMs: 20 * 60_000,
    });
    expect(down.exitCode, down.stderr).toBe(0);
    expect(await leftovers(cluster)).toEqual(nothing);
  });
});
