/** The command-line contract every command keeps (DESIGN.md section 3). */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dcp, json, tempDir } from './helpers/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const TRACE = fileURLToPath(new URL('./helpers/trace-imports.mjs', import.meta.url));

/** The module URLs a run of dcp loaded. */
async function importsOf(args: string[]) {
  const log = join(tempDir(), 'imports.log');
  const run = await dcp(args, { nodeArgs: ['--import', TRACE], env: { DCP_TRACE_IMPORTS: log } });
  return { run, urls: readFileSync(log, 'utf8').split('\n').filter(Boolean) };
}

const INTERACTIVE = /\/node_modules\/(ink|react|react-dom|@inquirer)\//;
/** The AWS SDK, loaded from node_modules or from the bundle. */
const CLOUD_SDK = /(^|\/)node_modules\/@aws-sdk\//;
const loadsCloudSdk = (urls: string[]) =>
  [...urls, ...bundledSources(urls)].some((entry) => CLOUD_SDK.test(entry));

/**
 * The source files inside the bundled files a run loaded: esbuild marks each one with a
 * `// path` comment (`// src/certs/x509.ts`, `// node_modules/node-forge/lib/asn1.js`).
 */
function bundledSources(urls: string[]): string[] {
  return urls
    .filter((url) => url.startsWith('file:') && url.includes('/dist/'))
    .flatMap((url) =>
      [...readFileSync(fileURLToPath(url), 'utf8').matchAll(/^\/\/ ((?:src|node_modules)\/\S+)$/gm)].map(
        (match) => match[1]!,
      ),
    );
}

describe('dcp', () => {
  it('--version prints the version', async () => {
    const run = await dcp(['--version']);
    expect(run).toMatchObject({ exitCode: 0, stdout: pkg.version });
  });

  it('--help lists the commands, global options and examples', async () => {
    const run = await dcp(['--help']);
    expect(run.exitCode).toBe(0);
    for (const text of ['certs', '--json', '--yes', '--verbose', '--no-color', 'Examples:'])
      expect(run.stdout).toContain(text);
  });

  it('each command has --help with examples and the global options', async () => {
    for (const command of [['certs'], ['certs', 'gen'], ['certs', 'inspect'], ['certs', 'verify']]) {
      const run = await dcp([...command, '--help']);
      expect(run.exitCode, command.join(' ')).toBe(0);
      expect(run.stdout, command.join(' ')).toContain('Examples:');
    }
    const gen = await dcp(['certs', 'gen', '--help']);
    for (const flag of [
      '--out',
      '--san',
      '--days',
      '--ca-days',
      '--ca-cert',
      '--ca-key',
      '--force',
      'Global Options:',
      '--json',
    ])
      expect(gen.stdout).toContain(flag);
  });

  it('up: every question of the wizard has a flag, listed with examples', async () => {
    const help = (await dcp(['up', '--help'])).stdout;
    for (const flag of [
      '--provider',
      '--region',
      '--zone',
      '--public',
      '--private',
      '--ingress',
      '--vpc',
      '--subnet',
      '--ami',
      '--runtime',
      '--image',
      '--idle-timeout',
      '--tls',
      '--tls-dir',
      '--tls-ca',
      '--tls-cert',
      '--tls-key',
      '--insecure',
      '--workers',
      '--threads',
      '--instance-type',
      '--name',
      '--save',
      '--yes',
    ]) {
      expect(help, flag).toContain(flag);
    }
    expect(help).toContain('Examples:');
    expect(help).toContain('dcp up --provider aws --region eu-west-1');
  });

  it('up --provider aws in CI with no region known: exit 2 naming --region', async () => {
    const run = await dcp(['up', '--provider', 'aws']);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/^error: no region is known for aws\n\s+hint: pass --region/);
    const fromEnv = await dcp(['up', '--provider', 'aws'], { env: { AWS_REGION: 'eu-west-1' } });
    expect(fromEnv.stderr).not.toContain('no region is known');
  });

  it('a mistyped command or option is a usage error (exit 2) with a suggestion', async () => {
    const command = await dcp(['certs', 'gne']);
    expect(command.exitCode).toBe(2);
    expect(command.stderr).toContain("error: unknown command 'gne'");
    expect(command.stderr).toContain('hint: did you mean gen? (dcp certs --help lists them)');
    const option = await dcp(['certs', 'gen', '--dayz', '3']);
    expect(option.exitCode).toBe(2);
    expect(option.stderr).toContain("error: unknown option '--dayz'");
    expect(option.stderr).toContain('hint: did you mean --days? (dcp certs gen --help lists them)');
    const choice = await dcp(['up', '--provider', 'awz']);
    expect(choice.exitCode).toBe(2);
    expect(choice.stderr).toContain('hint: did you mean aws?');
    // The same words in a JSON document, and nothing else on stdout.
    const inJson = await dcp(['up', '--worker', '3', '--json']);
    expect(inJson.exitCode).toBe(2);
    expect(JSON.parse(inJson.stdout)).toEqual({
      error: {
        message: "unknown option '--worker'",
        hint: 'did you mean --workers? (dcp up --help lists them)',
        exit_code: 2,
      },
    });
  });

  it('with --json, even a usage error is one JSON document on stdout', async () => {
    const run = await dcp(['certs', 'gne', '--json']);
    expect(run.exitCode).toBe(2);
    expect(json<{ error: { exit_code: number } }>(run.stdout).error.exit_code).toBe(2);
  });

  it('a group without its command: help on stderr, and with --json an error document', async () => {
    for (const args of [['--json'], ['certs', '--json']]) {
      const run = await dcp(args);
      expect(run.exitCode).toBe(2);
      expect(json(run.stdout)).toEqual({
        error: { message: 'a command is required', hint: 'see --help', exit_code: 2 },
      });
    }
  });

  it('--version and --help load neither the certificate code nor the terminal UI', async () => {
    for (const args of [['--version'], ['--help'], ['certs', 'gen', '--help']]) {
      const { run, urls } = await importsOf(args);
      expect(run.exitCode).toBe(0);
      expect(urls.some((url) => url.includes('/dist/cli.js'))).toBe(true);
      const sources = bundledSources(urls);
      expect(sources.some((source) => source.startsWith('src/cli.ts'))).toBe(true);
      expect(
        sources.filter((source) => source.includes('node-forge') || source.startsWith('src/certs/')),
        args.join(' '),
      ).toEqual([]);
      expect(urls.filter((url) => INTERACTIVE.test(url))).toEqual([]);
      expect(loadsCloudSdk(urls), args.join(' ')).toBe(false);
    }
  });

  it('the AWS SDK loads only for AWS: not for list, nor for a local cluster', async () => {
    const { run, urls } = await importsOf(['list', '--json']);
    expect(run.exitCode).toBe(0);
    expect(loadsCloudSdk(urls)).toBe(false);
    const aws = await importsOf(['list', '--provider', 'aws', '--region', 'us-east-1', '--json']);
    // No credentials here: the run fails, after loading the SDK to find that out.
    expect(aws.run.exitCode).toBe(2);
    expect(aws.run.stdout).toContain('no AWS credentials found');
    expect(loadsCloudSdk(aws.urls)).toBe(true);
  });

  it('a non-TTY --json run loads what its command needs and no terminal UI', async () => {
    const { run, urls } = await importsOf(['certs', 'gen', '--out', join(tempDir(), 't'), '--json']);
    expect(run.exitCode).toBe(0);
    const sources = bundledSources(urls);
    expect(sources).toContain('src/commands/certs.ts');
    expect(sources.some((source) => source.startsWith('node_modules/node-forge/'))).toBe(true);
    expect(urls.filter((url) => INTERACTIVE.test(url))).toEqual([]);
  });

  it('a question nobody can answer is a usage error naming --yes, and loads no prompt library', async () => {
    const home = tempDir('dcp-home-');
    const state = join(home, '.local', 'state', 'dcp', 'clusters', 'idle');
    mkdirSync(state, { recursive: true });
    writeFileSync(
      join(state, 'cluster.json'),
      JSON.stringify({
        name: 'idle',
        provider: 'local',
        status: 'ready',
        workers: 1,
        tls: null,
        details: {},
      }),
    );
    const log = join(tempDir(), 'imports.log');
    const run = await dcp(['down', 'idle'], {
      home,
      nodeArgs: ['--import', TRACE],
      env: { DCP_TRACE_IMPORTS: log },
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('hint: pass --yes to go ahead without asking');
    expect(
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((url) => INTERACTIVE.test(url)),
    ).toEqual([]);
  });

  it('colours only when allowed: FORCE_COLOR yes, NO_COLOR and --no-color no', async () => {
    const args = ['certs', 'gen', '--out', join(tempDir(), 'c')];
    const colored = await dcp([...args, '--force'], { env: { FORCE_COLOR: '1' } });
    expect(colored.stdout).toContain('\x1b[');
    for (const [extra, env] of [
      [['--no-color'], { FORCE_COLOR: '1' }],
      [[], { FORCE_COLOR: '1', NO_COLOR: '1' }],
      [[], {}],
    ] as const) {
      const run = await dcp([...args, '--force', ...extra], { env });
      expect(run.exitCode).toBe(0);
      expect(run.stdout + run.stderr).not.toContain('\x1b[');
    }
  });
});
