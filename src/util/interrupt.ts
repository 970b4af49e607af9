/**
 * Ctrl-C and SIGTERM. Work that can be undone (creating a cluster) registers a handler and is
 * told to stop, so it can roll back and exit 130; with no handler registered, or on a second
 * signal, the process exits 130 at once.
 */
import { ExitCode } from '../errors.js';

type Handler = (signal: NodeJS.Signals) => void;
const handlers = new Set<Handler>();
let received: NodeJS.Signals | undefined;
/** Set once the work is done and kept: what to say if a signal comes now. */
let kept: string | undefined;
let signalAfterKept = false;

function sayKept(): void {
  signalAfterKept = true;
  process.stderr.write(`\n${kept}\n`);
}

/**
 * From here on the work is done and kept (a cluster that is ready): Ctrl-C and SIGTERM undo
 * nothing. A first signal is answered with `message`, and the command goes on to print its
 * result and exit 0; a second ends the process at once, with exit 0. A signal already seen by
 * `during` (in the moment before this call) counts as the first.
 */
export function keepFromHere(message: string, during?: AbortSignal): void {
  kept = message;
  if (during?.aborted) sayKept();
}

/**
 * Ends the process with `code` once what it wrote is out. Node's own exit, when nothing is left
 * to do, first puts signals back to their default and then takes tens of milliseconds: a Ctrl-C
 * then would kill a process that had succeeded, and the shell would say 130. Exiting here keeps
 * the handlers above in place to the end.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map(
      (stream) =>
        new Promise<void>((resolve) => {
          if (stream.writableLength === 0) return resolve();
          stream.once('drain', resolve);
          // A reader that went away never drains: then Node's own exit will do.
          setTimeout(resolve, 2_000).unref();
        }),
    ),
  );
  process.exit(code);
}

export function installInterruptHandlers(): void {
  // A closed terminal (SIGHUP) or a reader gone (`dcp list | head`) must not crash a rollback
  // half way: what cannot be written any more is let go.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'EIO') throw error;
    });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (kept !== undefined) {
        if (signalAfterKept) process.exit(ExitCode.ok);
        sayKept();
        return;
      }
      if (received || handlers.size === 0) {
        process.stderr.write(`\n${signal === 'SIGINT' ? 'interrupted' : 'terminated'}\n`);
        // --json promises a document on stdout, even now.
        if (process.argv.includes('--json'))
          process.stdout.write(
            `${JSON.stringify({ error: { message: `interrupted (${signal})`, hint: null, exit_code: ExitCode.interrupted } })}\n`,
          );
        process.exit(ExitCode.interrupted);
      }
      received = signal;
      for (const handler of handlers) handler(signal);
    });
  }
}

/** An AbortSignal that fires on Ctrl-C/SIGTERM while `work` runs. */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const handler: Handler = (signal) => controller.abort(new Interrupted(signal));
  handlers.add(handler);
  try {
    return await work(controller.signal);
  } finally {
    handlers.delete(handler);
  }
}

export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(signal === 'SIGINT' ? 'interrupted (Ctrl-C)' : `interrupted (${signal})`);
    this.name = 'Interrupted';
  }
}
