#!/usr/bin/env node
/**
 * Entry point: builds the commander program and runs one command. A command's module is
 * imported only when that command runs, so `dcp --version` and `--help` load next to nothing.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { defaultCertsDir } from './config/paths.js';
import { DcpError, ExitCode, messageOf, usageError } from './errors.js';
import { createOutput, type GlobalOptions, type Output } from './ui/output.js';
import type { UpFlags } from './cluster/spec.js';
import type { SearchOptions } from './commands/cluster.js';
import { examples, SETTINGS_HELP } from './ui/help.js';
import { exitWhenFlushed, installInterruptHandlers, Interrupted } from './util/interrupt.js';
import { createStyle, colorEnabled } from './ui/style.js';
import { closest } from './util/suggest.js';
import { CLOUD_PROVIDERS, PROVIDERS } from './providers/index.js';

const version = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function outputFor(command: Command): Output {
  return createOutput(command.optsWithGlobals<GlobalOptions>());
}

/** Runs a lazily loaded command and records its exit code. */
async function run(task: () => Promise<ExitCode>): Promise<void> {
  process.exitCode = await task();
}

export function buildProgram(): Command {
  const program = new Command('dcp')
    .description(
      'A secure Dask cluster in one guided command: TLS, firewall ingress and networking done right.',
    )
    .version(version, '-V, --version', 'print the version')
    .option('--json', 'print one JSON document on stdout (progress and warnings go to stderr)')
    .option('-y, --yes', 'never ask: take the defaults, or fail naming the missing flag')
    .option('--verbose', 'say more, and show stack traces on errors')
    .option('--no-color', 'no colour (NO_COLOR=1 works too)')
    .helpOption('-h, --help', 'show help')
    .helpCommand(false)
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride()
    .showSuggestionAfterError(true)
    // Commander's errors are said by `report`, in dcp's words, with a hint: never twice.
    .configureOutput({ outputError: () => undefined })
    .addHelpText(
      'after',
      examples([
        'dcp certs gen --san scheduler.example.com',
        'dcp certs verify --ca ca.pem --cert client.pem --key client-key.pem',
      ]),
    );

  program
    .command('up')
    .description('create a TLS-secured Dask cluster, wait until it is ready, and print how to connect')
    .option('--name <name>', 'cluster name (default: made up, like dask-swift-otter)')
    .addOption(new Option('--provider <provider>', 'where the cluster runs').choices(PROVIDERS))
    .option('--workers <n>', 'number of workers (default 2)')
    .option('--threads <n>', 'threads per worker (default: Dask decides from the CPUs)')
    .option('--memory-limit <size>', 'memory per worker, e.g. 4GiB')
    .option('--region <region>', 'cloud region (aws, azure, digitalocean)')
    .option('--zone <zone>', 'cloud zone (gcp)')
    .option('--project <id>', 'Google Cloud project (gcp; default: gcloud’s configuration)')
    .option('--subscription <id>', 'Azure subscription (azure; default: the Azure CLI’s)')
    .option(
      '--instance-type <type>',
      'VM size for the workers (aws instance type, gcp machine type, azure VM size, droplet size)',
    )
    .option('--public', 'scheduler reachable on a public IP (clouds; ingress decides from where)')
    .option('--private', 'scheduler on the private network only (clouds)')
    .option(
      '--vpc <id>',
      'the VPC (aws), network (gcp), VNet as RESOURCE_GROUP/VNET (azure) or VPC (digitalocean) to use',
    )
    .option('--subnet <id>', 'the subnet (aws, gcp, azure) to use')
    .option('--ami <id>', 'the machine image (aws; default: the newest Ubuntu 24.04 LTS)')
    .option(
      '--image-family <family>',
      'the machine image family, FAMILY or PROJECT/FAMILY (gcp; default: Ubuntu 24.04 LTS)',
    )
    .addOption(
      new Option(
        '--egress <way>',
        'how private droplets reach the internet (digitalocean): nat, the VPC’s NAT gateway (default); public, a public address that the firewall admits nothing to',
      ).choices(['nat', 'public']),
    )
    .addOption(
      new Option(
        '--runtime <runtime>',
        'how cloud VMs run Dask: in a Docker image, or preinstalled on the machine image (default docker)',
      ).choices(['docker', 'preinstalled']),
    )
    .option(
      '--image <image>',
      'the Docker image for cloud VMs (default: ghcr.io/dask/dask matching your local distributed and Python)',
    )
    .option(
      '--idle-timeout <duration>',
      'cloud VMs power off after the scheduler has been idle this long (default 1h)',
    )
    .option(
      '--ingress <cidr[:ports]>',
      'who may reach the scheduler: a CIDR, or me, with ports (default 8786,8787); repeatable',
      collect,
      [],
    )
    .option('--allow-anywhere', 'allow --ingress 0.0.0.0/0 or ::/0, the whole internet', false)
    .addOption(
      new Option(
        '--tls <mode>',
        'auto: a fresh CA and certificates; byo: your own files; off: plain TCP',
      ).choices(['auto', 'byo', 'off']),
    )
    .option('--tls-dir <dir>', 'your files in the dcp certs gen layout (ca.pem, scheduler.pem, ...)')
    .option('--tls-ca <file>', 'your CA certificate (with --tls-cert [--tls-key]: one pair for every role)')
    .option('--tls-cert <file>', 'your certificate, used by every role (may hold its key too)')
    .option('--tls-key <file>', 'its private key (leave out when the --tls-cert file holds it)')
    .option('--tls-min-version <version>', 'the lowest TLS version members and clients take: 1.2 or 1.3')
    .option('--tls-max-version <version>', 'the highest TLS version: 1.2 or 1.3 (default: no limit)')
    .option('--tls-ciphers <ciphers>', "an OpenSSL cipher string for TLS 1.2 (default: Python's)")
    .option(
      '--timeout <duration>',
      'how long to wait for readiness before rolling back (default 60s local, 10m clouds)',
    )
    .option('--no-wait', 'return once the resources exist, without waiting for readiness')
    .option('--wait-workers <n>', 'ready once this many workers are connected (default: all)')
    .option('--insecure', 'allow --tls off on a public network', false)
    .option(
      '--python <path>',
      'the Python with distributed: it runs a local cluster, and a cloud image matches its versions (or DCP_PYTHON)',
    )
    .option(
      '--save',
      'save these choices as your defaults (dcp.yaml, and cloudprovider.yaml for clouds)',
      false,
    )
    .addHelpText(
      'after',
      examples([
        'dcp up                                     # local, 2 workers, TLS with a fresh CA',
        'dcp up --name analytics --workers 4 --threads 2',
        'dcp up --tls byo --tls-dir ./tls',
        'dcp up --tls-ca ca.pem --tls-cert dask.pem --tls-key dask-key.pem',
        'dcp up --json --timeout 2m',
        'dcp up --tls-min-version 1.3',
        "dcp up --tls-ciphers 'ECDHE+AESGCM:!aNULL'",
        'dcp up --provider aws --region eu-west-1 --public --ingress me --ingress 10.1.0.0/16:8786',
        'dcp up --provider aws --private --subnet subnet-0abc --workers 8 --instance-type m7g.large --idle-timeout 30m',
        'dcp up --provider gcp --zone europe-west1-b --private --vpc dask-net --instance-type e2-standard-4',
        'dcp up --provider digitalocean --region ams3 --private --vpc dask-vpc --egress public',
        'dcp up --provider azure --region westeurope --private --vpc net-rg/dask-vnet --subnet workers',
      ]) +
        '\nOn a terminal, dcp up asks for whatever these flags and your settings leave open; with --yes, in CI or\nwithout a terminal it never asks, and a missing answer is an error naming the flag.\n',
    )
    .action((options: UpFlags, command: Command) =>
      run(async () => (await import('./commands/cluster.js')).up(options, outputFor(command))),
    );

  program
    .command('down')
    .description('tear a cluster down completely; safe to repeat, and after a failed up')
    .argument('[name]', 'the cluster')
    .option('--all', 'every cluster on this machine', false)
    .addOption(
      new Option(
        '--provider <provider>',
        'with no state here for NAME: find it in this cloud by its tags (e.g. from another machine)',
      ).choices(CLOUD_PROVIDERS),
    )
    .option(
      '--region <region>',
      'the region to search with --provider (default: the cloud’s own configuration, or every region)',
    )
    .option('--zone <zone>', 'gcp: the zone it was made in (down looks in every zone of the project anyway)')
    .option('--project <id>', 'gcp: the project to search (default: gcp.project, then gcloud’s)')
    .option(
      '--subscription <id>',
      'azure: the subscription to search (default: azure.subscription_id, AZURE_SUBSCRIPTION_ID, then az’s)',
    )
    .addHelpText(
      'after',
      examples([
        'dcp down dask-swift-otter',
        'dcp down --all --yes',
        'dcp down dask-swift-otter --provider aws --region eu-west-1   # from another machine',
        'dcp down dask-swift-otter --provider gcp --project my-project',
        'dcp down dask-swift-otter --provider digitalocean',
        'dcp down dask-swift-otter --provider azure --subscription 00000000-0000-0000-0000-000000000000',
      ]),
    )
    .action((name: string | undefined, options: SearchOptions & { all: boolean }, command: Command) =>
      run(async () => (await import('./commands/cluster.js')).down(name, options, outputFor(command))),
    );

  program
    .command('list')
    .description('the clusters this machine knows, or with --provider those a cloud has, found by tag')
    .addOption(
      new Option(
        '--provider <provider>',
        'list the clusters this cloud holds, whichever machine made them',
      ).choices(CLOUD_PROVIDERS),
    )
    .option(
      '--region <region>',
      'the region to search with --provider (default: the cloud’s own configuration, or every region)',
    )
    .option('--zone <zone>', 'gcp: the zone to search (default: every zone of the project)')
    .option('--project <id>', 'gcp: the project to search (default: gcp.project, then gcloud’s)')
    .option(
      '--subscription <id>',
      'azure: the subscription to search (default: azure.subscription_id, AZURE_SUBSCRIPTION_ID, then az’s)',
    )
    .addHelpText(
      'after',
      examples([
        'dcp list',
        'dcp list --json',
        'dcp list --provider aws --region eu-west-1',
        'dcp list --provider gcp',
        'dcp list --provider azure --region westeurope',
      ]),
    )
    .action((options: SearchOptions, command: Command) =>
      run(async () => (await import('./commands/cluster.js')).list(options, outputFor(command))),
    );

  program
    .command('doctor')
    .description('knock on every door of the cluster as an outsider would, and say which hold')
    .argument('[name]', 'the cluster (default: the only one)')
    .addHelpText(
      'after',
      examples(['dcp doctor', 'dcp doctor analytics --json']) +
        [
          '',
          "Tries the scheduler without a certificate, with another CA's, in plain TCP and below the",
          "cluster's TLS minimum; each member's dashboard without a certificate; certificate expiry",
          "and strict X.509; where the members listen (a cloud's live firewall against the ingress",
          'asked for, read-only API calls); and who can read the keys.',
          '',
          'Exit status: 0 every door holds, 1 one does not (each named with its fix).',
          '',
        ].join('\n'),
    )
    .action((name: string | undefined, _options: unknown, command: Command) =>
      run(async () => (await import('./commands/cluster.js')).doctor(name, outputFor(command))),
    );

  program
    .command('status')
    .description('is the scheduler reachable, and how many workers are connected (asked live)')
    .argument('[name]', 'the cluster (default: the only one)')
    .addHelpText(
      'after',
      examples(['dcp status', 'dcp status analytics --json']) +
        '\nExit status: 0 reachable, 1 not reachable.\n',
    )
    .action((name: string | undefined, _options: unknown, command: Command) =>
      run(async () => (await import('./commands/cluster.js')).status(name, outputFor(command))),
    );

  program
    .command('snippet')
    .description('how to connect: Python code, environment variables, or Dask YAML')
    .argument('[name]', 'the cluster (default: the only one)')
    .addOption(
      new Option('--format <format>', 'python, env or yaml')
        .choices(['python', 'env', 'yaml'])
        .default('python'),
    )
    .addHelpText(
      'after',
      examples([
        'dcp snippet > connect.py',
        'eval "$(dcp snippet analytics --format env)"   # exports only; then Client() connects',
      ]),
    )
    .action((name: string | undefined, options: { format: 'python' | 'env' | 'yaml' }, command: Command) =>
      run(async () =>
        (await import('./commands/cluster.js')).snippet(name, options.format, outputFor(command)),
      ),
    );

  program
    .command('dashboard')
    .description(
      "open the cluster's dashboard: a gateway on 127.0.0.1 reaches it over mutual TLS with the client certificate, until Ctrl-C",
    )
    .argument('[name]', 'the cluster (default: the only one)')
    .option('--no-open', 'only print the URL (it carries a key: only its holder gets in)')
    .addHelpText(
      'after',
      [
        examples(['dcp dashboard', 'dcp dashboard analytics --no-open', 'dcp dashboard analytics --json']),
        'The dashboard shows logs, tracebacks and call stacks, so dcp serves it only to the cluster',
        "certificate; a browser has none, and this gateway presents the client's for it.",
      ].join('\n'),
    )
    .action((name: string | undefined, options: { open: boolean }, command: Command) =>
      run(async () => (await import('./commands/cluster.js')).dashboard(name, options, outputFor(command))),
    );

  const certs = program
    .command('certs')
    .description('make, inspect and check the TLS certificates Dask uses')
    .addHelpText(
      'after',
      examples([
        'dcp certs gen',
        'dcp certs inspect ca.pem scheduler.pem',
        'dcp certs verify --ca ca.pem --cert worker.pem --key worker-key.pem',
      ]),
    );

  certs
    .command('gen')
    .description('create a CA and a certificate + key for the scheduler, workers and client')
    .option('--out <dir>', 'folder to write into (made 0700)', defaultCertsDir())
    .option(
      '--san <host|ip>',
      'a name or address the scheduler is reached by; repeat or comma-separate',
      collect,
      [],
    )
    .option('--days <n>', 'days the role certificates are valid', '365')
    .option('--ca-days <n>', 'days a new CA is valid', '3650')
    .option('--ca-cert <file>', 'issue from this existing CA certificate (with --ca-key) instead of a new CA')
    .option('--ca-key <file>', 'the private key of --ca-cert; it is used, never copied')
    .option('--force', 'replace files that already exist (atomically)', false)
    .addOption(
      new Option('--key-type <type>', 'rsa: RSA 2048; ec: ECDSA P-256, smaller and faster')
        .choices(['rsa', 'ec'])
        .default('rsa'),
    )
    .addHelpText(
      'after',
      examples([
        'dcp certs gen                                  # new CA + scheduler, worker, client in ~/.local/state/dcp/certs',
        'dcp certs gen --out ./tls --san 10.0.0.5 --san sched.internal',
        'dcp certs gen --out ./tls --ca-cert corp-ca.pem --ca-key corp-ca-key.pem --days 90',
        'dcp certs gen --out ./tls --force --json',
      ]),
    )
    .action(
      (
        options: {
          out: string;
          san: string[];
          days: string;
          caDays: string;
          caCert?: string;
          caKey?: string;
          force: boolean;
          keyType: string;
        },
        command: Command,
      ) => run(async () => (await import('./commands/certs.js')).gen(options, outputFor(command))),
    );

  certs
    .command('inspect')
    .description(
      'show what PEM files hold: subject, names, validity, key, usages, fingerprint (never key material)',
    )
    .argument('<file...>', 'PEM files: certificates, keys, or both in one file')
    .addHelpText(
      'after',
      examples(['dcp certs inspect scheduler.pem', 'dcp certs inspect bundle.pem --json']),
    )
    .action((files: string[], _options: unknown, command: Command) =>
      run(async () => (await import('./commands/certs.js')).inspect(files, outputFor(command))),
    );

  certs
    .command('verify')
    .description('tell whether Dask will accept a certificate and key, and why not')
    .requiredOption('--ca <file>', 'the CA certificate(s) Dask is given as tls-ca-file')
    .requiredOption('--cert <file>', 'the certificate to check (may also hold its key)')
    .option('--key <file>', 'its private key')
    .addOption(
      new Option(
        '--role <role>',
        'the role it is for (default: from the file name, else every role)',
      ).choices(['scheduler', 'worker', 'client']),
    )
    .addHelpText(
      'after',
      examples([
        'dcp certs verify --ca ca.pem --cert scheduler.pem --key scheduler-key.pem',
        'dcp certs verify --ca ca.pem --cert combined.pem --role client --json',
      ]) + '\nExit status: 0 Dask will accept it, 1 it will not, 2 bad arguments.\n',
    )
    .action(
      (
        options: { ca: string; cert: string; key?: string; role?: 'scheduler' | 'worker' | 'client' },
        command: Command,
      ) => run(async () => (await import('./commands/certs.js')).verify(options, outputFor(command))),
    );

  const config = program
    .command('config')
    .description("dcp's settings, kept in Dask's config folder (dcp.yaml, under the key dcp:)")
    .addHelpText(
      'after',
      `\nSettings:\n${SETTINGS_HELP}\n\nPrecedence: flags > DCP_* variables (DCP_AWS_REGION) > project file > dcp.yaml > defaults.\nThe project file is .dcprc, .dcprc.yaml, .dcprc.yml, .dcprc.json or package.json#dcp (YAML or JSON, never code),\nfound from this folder up to the project's root (.git or package.json), never above your home folder,\nand only if no other user could have written it.\n` +
        examples([
          'dcp config set workers 4',
          'dcp config set aws.region eu-west-1',
          'dcp config set ingress --cidr 10.1.0.0/16 --ports 8786,8787',
          'dcp config list --show-origin',
          'dcp config export cloudprovider --provider aws',
        ]),
    );

  config
    .command('get')
    .description('print the value of one setting (or a group like aws)')
    .argument('<key>', 'a setting, e.g. workers or aws.region')
    .addHelpText('after', examples(['dcp config get workers', 'dcp config get aws --json']))
    .action((key: string, _options: unknown, command: Command) =>
      run(async () => (await import('./commands/config.js')).get(key, outputFor(command))),
    );

  config
    .command('set')
    .description("save a setting in dcp.yaml; for ingress, firewall rules in Coiled's {ports, cidr} shape")
    .argument('<key>', 'a setting, e.g. workers, aws.region, ingress')
    .argument('[value]', "its value; for ingress, Coiled's JSON list instead of --cidr")
    .option(
      '--cidr <cidr>',
      'ingress: a source network like 10.1.0.0/16, or me for your own address (repeatable)',
      collect,
      [],
    )
    .option('--ports <list>', 'ingress: comma-separated ports (default 8786,8787)')
    .option('--append', 'ingress: add to the saved rules instead of replacing them', false)
    .option('--allow-anywhere', 'ingress: allow 0.0.0.0/0 or ::/0, the whole internet', false)
    .addHelpText(
      'after',
      examples([
        'dcp config set provider aws',
        'dcp config set idle_timeout 30m',
        'dcp config set ingress --cidr me',
        'dcp config set ingress --cidr 10.1.0.0/16 --cidr 10.32.0.0/16 --ports 8786 --append',
        `dcp config set ingress '[{"ports": [8786], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}]'`,
      ]),
    )
    .action(
      (
        key: string,
        value: string | undefined,
        options: { cidr: string[]; ports?: string; append: boolean; allowAnywhere: boolean },
        command: Command,
      ) =>
        run(async () => (await import('./commands/config.js')).set(key, value, options, outputFor(command))),
    );

  config
    .command('unset')
    .description('remove a setting (or a group) from dcp.yaml')
    .argument('<key>', 'a setting, e.g. aws.region')
    .addHelpText('after', examples(['dcp config unset aws.region', 'dcp config unset ingress']))
    .action((key: string, _options: unknown, command: Command) =>
      run(async () => (await import('./commands/config.js')).unset(key, outputFor(command))),
    );

  config
    .command('list')
    .description('every setting in effect')
    .option('--show-origin', 'say where each value comes from: flag, variable, which file, or default', false)
    .addHelpText('after', examples(['dcp config list', 'dcp config list --show-origin --json']))
    .action((options: { showOrigin: boolean }, command: Command) =>
      run(async () => (await import('./commands/config.js')).list(options.showOrigin, outputFor(command))),
    );

  config
    .command('path')
    .description('where dcp reads and writes settings, Dask config and state')
    .addHelpText('after', examples(['dcp config path', 'dcp config path --json']))
    .action((_options: unknown, command: Command) =>
      run(async () => (await import('./commands/config.js')).path(outputFor(command))),
    );

  config
    .command('export')
    .description(
      'merge the equivalent dask-cloudprovider keys into cloudprovider.yaml, keeping everything else in it',
    )
    .argument('<target>', 'cloudprovider')
    .addOption(
      new Option('--provider <provider>', 'which cloud (default: the configured provider)').choices([
        'aws',
        'gcp',
        'azure',
        'digitalocean',
      ]),
    )
    .addHelpText(
      'after',
      examples(['dcp config export cloudprovider', 'dcp config export cloudprovider --provider gcp --json']),
    )
    .action((target: string, options: { provider?: string }, command: Command) =>
      run(async () =>
        (await import('./commands/config.js')).exportSettings(target, options.provider, outputFor(command)),
      ),
    );

  return program;
}

/** The one place errors become words and exit codes. */
/**
 * A usage error in dcp's words from commander's: its "(Did you mean --workers?)" becomes the
 * hint, and a value outside an option's choices gets the nearest choice.
 */
function fromCommander(error: CommanderError, program: Command, argv: string[]): DcpError {
  const [first = '', ...rest] = error.message.replace(/^error: /, '').split('\n');
  const suggestion = /\(Did you mean (.+)\?\)/.exec(rest.join(' '))?.[1];
  const choice = /argument '(.*)' is invalid\. Allowed choices are (.*)\.$/.exec(first);
  const nearest = choice ? closest(choice[1]!, choice[2]!.split(', ')) : undefined;
  // The command the words on the line name, for its own --help.
  const path = ['dcp'];
  let command = program;
  for (const word of argv.slice(2)) {
    const sub = command.commands.find((c) => c.name() === word);
    if (!sub) continue;
    path.push(word);
    command = sub;
  }
  const help = `${path.join(' ')} --help`;
  const meant = suggestion ?? nearest;
  return usageError(first, meant ? `did you mean ${meant}? (${help} lists them)` : `see ${help}`);
}

function report(error: unknown, json: boolean, verbose: boolean, program: Command, argv: string[]): ExitCode {
  if (error instanceof CommanderError) {
    // Commander has printed help or the version already.
    if (error.exitCode === 0) return ExitCode.ok;
    // A group run without a command shows its help; that help is the answer, not an error text.
    if (error.code === 'commander.help') {
      if (json)
        process.stdout.write(
          `${JSON.stringify({ error: { message: 'a command is required', hint: 'see --help', exit_code: ExitCode.usage } })}\n`,
        );
      return ExitCode.usage;
    }
    return report(fromCommander(error, program, argv), json, verbose, program, argv);
  }
  if (error instanceof Interrupted) {
    process.stderr.write(`\n${error.message}\n`);
    if (json)
      process.stdout.write(
        `${JSON.stringify({ error: { message: error.message, hint: null, exit_code: ExitCode.interrupted } })}\n`,
      );
    return ExitCode.interrupted;
  }
  const known =
    error instanceof DcpError
      ? error
      : new DcpError(`unexpected error: ${messageOf(error)}`, {
          hint: 'run again with --verbose, and report it with that output',
        });
  const style = createStyle(colorEnabled(process.stderr, !process.argv.includes('--no-color')));
  if (!known.shown) {
    process.stderr.write(
      `${style.red('error:')} ${known.message}\n${known.details ? `${known.details}\n` : ''}${known.hint ? `  ${style.dim(`hint: ${known.hint}`)}\n` : ''}`,
    );
  }
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${style.dim(error.stack)}\n`);
  if (json)
    process.stdout.write(
      `${JSON.stringify({ error: { message: known.message, hint: known.hint ?? null, ...(known.details ? { details: known.details } : {}), exit_code: known.exitCode } })}\n`,
    );
  return known.exitCode;
}

export async function main(argv = process.argv): Promise<void> {
  installInterruptHandlers();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const globals = program.opts<Partial<GlobalOptions>>();
    process.exitCode = report(
      error,
      globals.json ?? argv.includes('--json'),
      globals.verbose ?? argv.includes('--verbose'),
      program,
      argv,
    );
  }
}

await main();
await exitWhenFlushed(Number(process.exitCode ?? 0));
