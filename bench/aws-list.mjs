#!/usr/bin/env node
// `dcp list --provider aws` against the AWS SDK used the usual way: a Node script that imports
// the whole @aws-sdk/client-ec2 and makes the same two calls (DescribeInstances and
// DescribeSecurityGroups by tag). Both talk to the EC2 fake on 127.0.0.1, started here; both
// include Node's start-up. dcp bundles only the EC2 commands it sends. Goal: ratio <= 0.8.
// Usage: npm run build && node bench/aws-list.mjs [rounds]
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { compare, time } from './compare.mjs';

const run = promisify(execFile);
const rounds = Number(process.argv[2] ?? 15);
const root = fileURLToPath(new URL('..', import.meta.url));
const cli = join(root, 'dist', 'cli.js');
const work = mkdtempSync(join(tmpdir(), 'dcp-bench-aws-'));

// The fake is TypeScript: bundle it for this script, where its own dependencies resolve.
const fakeModule = join(root, 'node_modules', '.cache', 'dcp-bench', 'fake-ec2.mjs');
await build({
  entryPoints: [join(root, 'test/fakes/ec2/index.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  outfile: fakeModule,
  packages: 'external',
  logLevel: 'warning',
  absWorkingDir: root,
});
const { startFakeEc2 } = await import(fakeModule);
const fake = await startFakeEc2();

const env = {
  PATH: process.env.PATH,
  HOME: work,
  AWS_ENDPOINT_URL_EC2: fake.url,
  AWS_REGION: 'us-east-1',
  AWS_ACCESS_KEY_ID: 'AKIDFAKE',
  AWS_SECRET_ACCESS_KEY: 'fake',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  DCP_MY_IP_URL: `${fake.url}/checkip`,
};
// Something to list: two clusters of three instances.
for (const name of ['bench-a', 'bench-b'])
  await run(
    process.execPath,
    [cli, 'up', '--provider', 'aws', '--name', name, '--image', 'x', '--no-wait', '--json'],
    { env },
  );

const reference = `
import { EC2 } from '@aws-sdk/client-ec2';
const ec2 = new EC2({});
const filter = [{ Name: 'tag-key', Values: ['dcp:cluster'] }];
const [instances, groups] = [await ec2.describeInstances({ Filters: filter }), await ec2.describeSecurityGroups({ Filters: filter })];
process.stdout.write(JSON.stringify({ instances: instances.Reservations.length, groups: groups.SecurityGroups.length }));
`;

await compare({
  bench: 'aws-list',
  rounds,
  reference: 'sdk_script',
  goal: 0.8,
  measureDcp: () => time(() => run(process.execPath, [cli, 'list', '--provider', 'aws', '--json'], { env })),
  measureReference: () =>
    time(() => run(process.execPath, ['--input-type=module', '-e', reference], { env, cwd: root })),
});
await fake.close();
rmSync(work, { recursive: true, force: true });
