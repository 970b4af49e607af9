/**
 * Where a command's words go. The result goes to stdout: one JSON document with --json, text
 * otherwise. Warnings and progress go to stderr, so a --json stdout stays parseable.
 */
import { colorEnabled, createStyle, type Style } from './style.js';

export interface GlobalOptions {
  json: boolean;
  yes: boolean;
  verbose: boolean;
  color: boolean;
}

export interface Output {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly yes: boolean;
  /** A person at a terminal who may be asked questions: not CI, not --json, not --yes. */
  readonly interactive: boolean;
  /** A terminal that can show live progress (Ink): not CI, not --json, not a pipe. */
  readonly live: boolean;
  /** Styles for stdout. */
  readonly style: Style;
  /** Styles for stderr. */
  readonly errStyle: Style;
  result(data: unknown, human: () => string): void;
  warn(message: string, hint?: string): void;
  progress(message: string): void;
}

export function isInteractive(
  options: GlobalOptions,
  env = process.env,
  stdin: { isTTY?: boolean } = process.stdin,
  stdout: { isTTY?: boolean } = process.stdout,
): boolean {
  return !options.json && !options.yes && !env.CI && stdin.isTTY === true && stdout.isTTY === true;
}

export function createOutput(
  options: GlobalOptions,
  streams = { out: process.stdout, err: process.stderr },
): Output {
  const style = createStyle(colorEnabled(streams.out, options.color));
  const errStyle = createStyle(colorEnabled(streams.err, options.color));
  return {
    json: options.json ?? false,
    verbose: options.verbose ?? false,
    yes: options.yes ?? false,
    interactive: isInteractive(options),
    live:
      !options.json &&
      !process.env.CI &&
      process.env.TERM !== 'dumb' &&
      streams.out.isTTY === true &&
      streams.err.isTTY === true,
    style,
    errStyle,
    result(data, human) {
      streams.out.write(options.json ? `${JSON.stringify(data, null, 2)}\n` : human());
    },
    warn(message, hint) {
      streams.err.write(
        `${errStyle.yellow('warning:')} ${message}\n${hint ? `  ${errStyle.dim(`hint: ${hint}`)}\n` : ''}`,
      );
    },
    progress(message) {
      streams.err.write(`${message}\n`);
    },
  };
}
