#!/usr/bin/env node
// The critical path of `dcp up --no-wait` for each cloud: the time VMs take to provision (D) is
// set in the cloud's fake, once to D and once to 0, and the difference in `up`'s wall time is
// reported in units of D. A provider that waited for the scheduler before sending its workers
// would pay D twice (2.0); one that sends both before waiting pays it once (1.0).
// Goal: at most 1.2 for every cloud. Also reported: when the last workers were asked for after
// the scheduler, in units of D (0: at once; 1: after the scheduler's provisioning), which is
// what readiness waits for beyond one provisioning time, --no-wait or not.
// Usage: npm run build && node bench/critical-path.mjs [rounds] [D in ms]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { time } from './compare.mjs';

const run = promisify(execFile);
const rounds = Number(process.argv[2] ?? 5);
const delay = Number(process.argv[3] ?? 2000);
const goal = 1.2;
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// The fakes are TypeScript: bundle them for this script, where their own dependencies resolve.
async function load(module) {
  const outfile = join(root, 'node_modules', '.cache', 'dcp-bench', `${module.replaceAll('/', '-')}.mjs`);
  await build({
    entryPoints: [join(root, `test/${module}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    packages: 'external',
    logLevel: 'warning',
    absWorkingDir: root,
  });
  return import(outfile);
}

const { startFakeEc2 } = await load('fakes/ec2/index');
const { startFakeGce, SEED } = await load('fakes/gce/index');
const { startFakeDigitalOcean, SEED: DO } = await load('fakes/digitalocean/index');
const { startFakeAzure, fakeAzureCa, SEED: AZ } = await load('fakes/azure/index');
const { awsEnvironment, gcpEnvironment, digitaloceanEnvironment, azureEnvironment } =
  await load('providers/cloud-env');

/** From the scheduler's create to the last workers' create, in ms, by the fake's own log. */
const creates = (calls, method) => {
  const made = calls.filter((call) => (call.action ?? call.method) === method).map((call) => call.at);
  return made.length > 1 ? made.at(-1) - made[0] : 0;
};

/** Each cloud: its fake with provisioning delay `ms`, the variables that point dcp at it, and `up`'s flags. */
const clouds = {
  aws: {
    start: (ms) => startFakeEc2({ pendingMs: ms, shuttingDownMs: 0 }),
    env: (fake) => awsEnvironment(fake),
    flags: [],
    workersAfter: (fake) => creates(fake.calls, 'RunInstances'),
  },
  gcp: {
    start: (ms) => startFakeGce({ provisioningMs: ms }),
    env: (fake, dir) => gcpEnvironment(fake, dir),
    flags: ['--zone', SEED.zone],
    workersAfter: (fake) => {
      const at = (method) => fake.calls.find((call) => call.method === method)?.at ?? 0;
      return at('instances.bulkInsert') - at('instances.insert');
    },
  },
  // DigitalOcean gives a droplet its addresses only once it is made (the fake: at D, as the
  // issue has it), and the workers need the scheduler's.
  digitalocean: {
    start: (ms) => startFakeDigitalOcean({ provisioningMs: ms, addressingMs: ms }),
    env: (fake) => digitaloceanEnvironment(fake),
    flags: ['--region', DO.region],
    workersAfter: (fake) => creates(fake.calls, 'droplets.create'),
  },
  // The ARM fake serves https with its own CA, which the CLI trusts as the tests' workers do.
  azure: {
    start: (ms) => startFakeAzure({ provisioningMs: ms }),
    env: (fake, dir) => ({ ...azureEnvironment(fake, dir), NODE_EXTRA_CA_CERTS: fakeAzureCa().file }),
    flags: ['--region', AZ.location],
    workersAfter: (fake) => {
      const at = (method) => fake.calls.find((call) => call.method === method)?.at ?? 0;
      return at('virtualMachineScaleSets.createOrUpdate') - at('virtualMachines.createOrUpdate');
    },
  },
};

let failed = false;
for (const [name, cloud] of Object.entries(clouds)) {
  const measure = async (ms, round) => {
    const work = mkdtempSync(join(tmpdir(), `dcp-bench-${name}-`));
    const fake = await cloud.start(ms);
    const env = {
      HOME: work,
      CI: 'true',
      ...cloud.env(fake, work),
    };
    env.PATH ??= process.env.PATH;
    const cluster = `bench-${round}`;
    const args = ['up', '--provider', name, '--name', cluster, '--image', 'x/dask:1', '--no-wait', '--json'];
    const took = await time(() => run(process.execPath, [cli, ...args, ...cloud.flags], { env }));
    if (ms > 0) gaps.push(cloud.workersAfter(fake));
    await run(process.execPath, [cli, 'down', cluster, '--yes', '--json'], { env });
    await fake.close();
    rmSync(work, { recursive: true, force: true });
    return took;
  };
  const withDelay = [];
  const without = [];
  const gaps = [];
  for (let i = 0; i < rounds; i++) {
    // Alternating, so neither always runs on a warmer machine.
    if (i % 2 === 0) {
      withDelay.push(await measure(delay, i));
      without.push(await measure(0, i));
    } else {
      without.push(await measure(0, i));
      withDelay.push(await measure(delay, i));
    }
  }
  const units = Number(((median(withDelay) - median(without)) / delay).toFixed(2));
  console.log(
    JSON.stringify({
      bench: `critical-path-${name}`,
      rounds,
      delay_ms: delay,
      up_median_ms_with_delay: Math.round(median(withDelay)),
      up_median_ms_without: Math.round(median(without)),
      delays_paid: units,
      workers_sent_after_delays: Number((median(gaps) / delay).toFixed(2)),
      goal: `<= ${goal}`,
    }),
  );
  if (units > goal) failed = true;
}
process.exitCode = failed ? 1 : 0;
