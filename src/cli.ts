#!/usr/bin/env node
/**
 * Entry point: builds the commander program and runs one command. A command's module is
 * imported only when that command runs, so `dcp --version` and `--help` load next to nothing.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { defaultCertsDir } from './config/paths.js';
import { DcpError, ExitCode, messageOf } from './errors.js';
import { createOutput, type GlobalOptions, type Output } from './ui/output.js';
import { createStyle, colorEnabled } from './ui/style.js';

const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

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

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}\n`;
}

export function buildProgram(): Command {
  const program = new Command('dcp')
    .description('A secure Dask cluster in one guided command: TLS, firewall ingress and networking done right.')
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
    .addHelpText('after', examples(['dcp certs gen --san scheduler.example.com', 'dcp certs verify --ca ca.pem --cert client.pem --key client-key.pem']));

  const certs = program
    .command('certs')
    .description('make, inspect and check the TLS certificates Dask uses')
    .addHelpText('after', examples(['dcp certs gen', 'dcp certs inspect ca.pem scheduler.pem', 'dcp certs verify --ca ca.pem --cert worker.pem --key worker-key.pem']));

  certs
    .command('gen')
    .description('create a CA and a certificate + key for the scheduler, workers and client')
    .option('--out <dir>', 'folder to write into (made 0700)', defaultCertsDir())
    .option('--san <host|ip>', 'a name or address the scheduler is reached by; repeat or comma-separate', collect, [])
    .option('--days <n>', 'days the role certificates are valid', '365')
    .option('--ca-days <n>', 'days a new CA is valid', '3650')
    .option('--ca-cert <file>', 'issue from this existing CA certificate (with --ca-key) instead of a new CA')
    .option('--ca-key <file>', 'the private key of --ca-cert; it is used, never copied')
    .option('--force', 'replace files that already exist (atomically)', false)
    .addHelpText(
      'after',
      examples([
        'dcp certs gen                                  # new CA + scheduler, worker, client in ~/.local/state/dcp/certs',
        'dcp certs gen --out ./tls --san 10.0.0.5 --san sched.internal',
        'dcp certs gen --out ./tls --ca-cert corp-ca.pem --ca-key corp-ca-key.pem --days 90',
        'dcp certs gen --out ./tls --force --json',
      ]),
    )
    .action((options: { out: string; san: string[]; days: string; caDays: string; caCert?: string; caKey?: string; force: boolean }, command: Command) =>
      run(async () => (await import('./commands/certs.js')).gen(options, outputFor(command))),
    );

  certs
    .command('inspect')
    .description('show what PEM files hold: subject, names, validity, key, usages, fingerprint (never key material)')
    .argument('<file...>', 'PEM files: certificates, keys, or both in one file')
    .addHelpText('after', examples(['dcp certs inspect scheduler.pem', 'dcp certs inspect bundle.pem --json']))
    .action((files: string[], _options: unknown, command: Command) =>
      run(async () => (await import('./commands/certs.js')).inspect(files, outputFor(command))),
    );

  certs
    .command('verify')
    .description('tell whether Dask will accept a certificate and key, and why not')
    .requiredOption('--ca <file>', 'the CA certificate(s) Dask is given as tls-ca-file')
    .requiredOption('--cert <file>', 'the certificate to check (may also hold its key)')
    .option('--key <file>', 'its private key')
    .addOption(new Option('--role <role>', 'the role it is for (default: from the file name, else every role)').choices(['scheduler', 'worker', 'client']))
    .addHelpText(
      'after',
      examples([
        'dcp certs verify --ca ca.pem --cert scheduler.pem --key scheduler-key.pem',
        'dcp certs verify --ca ca.pem --cert combined.pem --role client --json',
      ]) + '\nExit status: 0 Dask will accept it, 1 it will not, 2 bad arguments.\n',
    )
    .action((options: { ca: string; cert: string; key?: string; role?: 'scheduler' | 'worker' | 'client' }, command: Command) =>
      run(async () => (await import('./commands/certs.js')).verify(options, outputFor(command))),
    );

  return program;
}

/** The one place errors become words and exit codes. */
function report(error: unknown, json: boolean, verbose: boolean): ExitCode {
  if (error instanceof CommanderError) {
    // Commander has printed help, the version, or its one-line usage error already.
    if (error.exitCode === 0) return ExitCode.ok;
    if (json) process.stdout.write(`${JSON.stringify({ error: { message: error.message.replace(/^error: /, ''), hint: 'see --help', exit_code: ExitCode.usage } })}\n`);
    return ExitCode.usage;
  }
  const known = error instanceof DcpError ? error : new DcpError(`unexpected error: ${messageOf(error)}`, { hint: 'run again with --verbose, and report it with that output' });
  const style = createStyle(colorEnabled(process.stderr, !process.argv.includes('--no-color')));
  process.stderr.write(`${style.red('error:')} ${known.message}\n${known.hint ? `  ${style.dim(`hint: ${known.hint}`)}\n` : ''}`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${style.dim(error.stack)}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: { message: known.message, hint: known.hint ?? null, exit_code: known.exitCode } })}\n`);
  return known.exitCode;
}

export async function main(argv = process.argv): Promise<void> {
  process.once('SIGINT', () => {
    process.stderr.write('\ninterrupted\n');
    process.exit(ExitCode.interrupted);
  });
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const globals = program.opts<Partial<GlobalOptions>>();
    process.exitCode = report(error, globals.json ?? argv.includes('--json'), globals.verbose ?? argv.includes('--verbose'));
  }
}

await main();
