/**
 * Azure's idle shutdown, run for real: `up` against the ARM fake (listening on the bridge of a
 * network namespace made here), then the scheduler's boot script with the same self-delete the
 * provider gives it, in a namespace standing in for the scheduler's VM, with real Dask. When
 * Dask goes idle and exits, the script asks the instance metadata stand-in for its identity's
 * token and deletes the cluster's resource group; without the role, ARM refuses and the VM only
 * powers off, its group left for `dcp down`.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCluster, destroyCluster } from '../../src/cluster/engine.js';
import { planUp } from '../../src/cluster/spec.js';
import { azureProvider, groupSelfDelete } from '../../src/providers/azure/index.js';
import { bootScript } from '../../src/providers/boot/index.js';
import { fakeAzureCa, SEED, startFakeAzure, type FakeAzure } from '../fakes/azure/index.js';
import { tempDir } from '../helpers/cli.js';
import { describeWithDask } from '../helpers/dask.js';
import { describeWithNetns, makeNetwork, type Network } from '../helpers/netns.js';
import { azureEnvironment, azureGroup, privateHome } from './cloud-env.js';

const IDLE_SECONDS = 4;
const quiet = { progress: () => undefined };

describeWithDask('Azure: the idle scheduler deletes its own resource group', () => {
  describeWithNetns('a scheduler VM in a namespace, against the ARM fake', () => {
    const saved = { ...process.env };
    let network: Network;
    let dir: string;

    beforeAll(async () => {
      dir = tempDir('dcp-azure-netns-');
      network = await makeNetwork(['scheduler']);
    });
    afterAll(async () => {
      process.env = saved;
      await network?.remove();
    });

    /** `up` against a fake on the bridge, then the scheduler's boot script in the namespace, until it powers off. */
    async function idleScheduler(fake: FakeAzure, name: string) {
      Object.assign(process.env, {
        ...privateHome(join(dir, `${name}-home`)),
        ...azureEnvironment(fake, join(dir, name)),
      });
      const warnings: string[] = [];
      const plan = await planUp({
        name,
        provider: 'azure',
        region: SEED.location,
        wait: false,
        insecure: false,
        image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
        workers: '1',
      });
      await createCluster(
        plan,
        azureProvider,
        { ...quiet, warn: (w) => warnings.push(w) },
        new AbortController().signal,
      );
      const group = `/subscriptions/${fake.subscriptionId}/resourceGroups/${azureGroup(fake, name)}`;
      // The namespace is the scheduler VM: IMDS answers it with that VM's identity.
      fake.imdsFrom(network.hosts.scheduler!.ip, `${name}-scheduler`);
      const vm = join(dir, `${name}-vm`);
      mkdirSync(join(vm, 'cloud', 'scripts'), { recursive: true });
      // Pauses between attempts are not the point here: a `sleep` that returns at once.
      mkdirSync(join(vm, 'bin'));
      writeFileSync(join(vm, 'bin', 'sleep'), '#!/bin/sh\nexit 0\n');
      chmodSync(join(vm, 'bin', 'sleep'), 0o755);
      // What the provider gives the scheduler, with the fake standing in for IMDS as for ARM.
      const selfDelete = groupSelfDelete(fake.url, group, fake.url);
      const script = bootScript({
        role: 'scheduler',
        cluster: name,
        runtime: 'preinstalled',
        image: 'unused',
        tls: null,
        idleTimeoutSeconds: IDLE_SECONDS,
        stateDir: join(vm, 'var/lib/dcp'),
        powerOff: `touch ${join(vm, 'powered-off')}`,
        perBootDir: join(vm, 'cloud', 'scripts', 'per-boot'),
        console: join(vm, 'console'),
        selfDelete,
      });
      writeFileSync(join(vm, 'user-data'), script, { mode: 0o700 });
      fake.calls.length = 0;
      const result = await network.exec('scheduler', ['/bin/bash', join(vm, 'user-data')], {
        CURL_CA_BUNDLE: fakeAzureCa().file,
        PATH: `${join(vm, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      });
      expect(result.exitCode, result.all).toBe(0);
      // While Dask runs, nothing on the VM gets a token: code a Dask client sends runs there.
      const rules = async () => (await network.exec('scheduler', ['iptables', '-w', '-S', 'OUTPUT'])).all;
      for (let i = 0; i < 40 && !(await rules()).includes('dcp-metadata'); i++) await sleep(100);
      const borrowed = await network.exec('scheduler', [
        'curl',
        '-sS',
        '--max-time',
        '5',
        '--cacert',
        fakeAzureCa().file,
        '-H',
        'Metadata: true',
        selfDelete.tokenUrl,
      ]);
      expect(borrowed.exitCode, borrowed.all).toBe(7); // connection refused
      expect(fake.calls.some((call) => call.method === 'imds.token')).toBe(false);
      for (let i = 0; i < 240 && !existsSync(join(vm, 'powered-off')); i++) await sleep(250);
      expect(await rules()).not.toContain('dcp-metadata');
      const log = readFileSync(join(vm, 'var/lib/dcp/dask.log'), 'utf8');
      expect(existsSync(join(vm, 'powered-off')), log).toBe(true);
      return { log, warnings, calls: [...fake.calls] };
    }

    it('with the role: Dask goes idle, the script deletes the group with the VM identity’s token', async () => {
      const fake = await startFakeAzure({ host: network.gateway });
      try {
        const name = 'az-idle';
        const { log, warnings, calls } = await idleScheduler(fake, name);
        expect(warnings.join('\n')).not.toMatch(/still bills/);
        expect(log).toMatch(/Scheduler closing after being idle|Scheduler closing due to/);
        expect(log).toContain("asked Azure to delete this cluster's resource group");
        expect(log).not.toContain('fake-msi-');
        expect(calls.map((call) => [call.method, call.status])).toEqual([
          ['imds.token', 200],
          ['resourceGroups.delete', 202],
        ]);
        expect(calls[1]!.query.forceDeletionTypes).toBe(
          'Microsoft.Compute/virtualMachines,Microsoft.Compute/virtualMachineScaleSets',
        );
        // Nothing of the cluster is left to bill.
        expect(fake.leftovers(name)).toEqual([]);
      } finally {
        await fake.close();
      }
    }, 120_000);

    it('without it: ARM refuses the identity, the VM powers off and the group stays for dcp down', async () => {
      const fake = await startFakeAzure({ host: network.gateway, roleAssignments: 'forbidden' });
      try {
        const name = 'az-idle-denied';
        const { log, warnings, calls } = await idleScheduler(fake, name);
        expect(warnings.join('\n')).toMatch(
          /may not grant roles on dcp-az-idle-denied-[0-9a-f]{8}.*still bills a stopped VM/,
        );
        expect(log).toContain("could not delete this cluster's resource group");
        const deletes = calls.filter((call) => call.method === 'resourceGroups.delete');
        expect(deletes.length).toBe(4);
        expect(deletes.every((call) => call.status === 403 && call.errorCode === 'AuthorizationFailed')).toBe(
          true,
        );
        expect(fake.leftovers(name)).not.toEqual([]);
        await destroyCluster(name, quiet);
        expect(fake.leftovers(name)).toEqual([]);
      } finally {
        await fake.close();
      }
    }, 120_000);
  });
});
