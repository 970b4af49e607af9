/**
 * The one way dcp asks a question. With --yes it takes the default answer; where nobody can
 * answer (CI, no TTY, --json) it fails with a usage error naming the flag that answers it.
 * @inquirer/prompts is loaded only when a question is really asked.
 */
import { usageError } from '../errors.js';
import type { Output } from './output.js';
import type { Choice, Prompter } from './wizard.js';

export async function confirm(out: Output, message: string, flag: string): Promise<boolean> {
  if (out.yes) return true;
  if (!out.interactive)
    throw usageError(`${message} (no one to ask here)`, `pass ${flag} to go ahead without asking`);
  const { confirm: ask } = await import('@inquirer/prompts');
  return ask({ message, default: false });
}

/** The wizard's questions, put by @inquirer/prompts (loaded here, only when asking). */
export async function inquirerPrompter(): Promise<Prompter> {
  const { confirm: askConfirm, input, select } = await import('@inquirer/prompts');
  return {
    select: <T extends string>(q: { message: string; choices: Choice<T>[]; default?: T }) =>
      select<T>({
        message: q.message,
        choices: q.choices.map(
          (c): { value: T; name: string; description?: string; disabled: boolean | string } => ({
            value: c.value,
            name: c.name,
            ...(c.description ? { description: c.description } : {}),
            disabled: c.disabled ?? false,
          }),
        ),
        ...(q.default === undefined ? {} : { default: q.default }),
      }),
    input: (q) =>
      input({
        message: q.message,
        ...(q.default === undefined ? {} : { default: q.default }),
        ...(q.validate ? { validate: q.validate } : {}),
      }),
    confirm: (q) => askConfirm(q),
    // Where the questions are: the review must be on screen when "Create it?" is asked.
    say: (text) => process.stdout.write(`${text}\n`),
  };
}

/** Ctrl-C at a question: inquirer's own error, as dcp's. */
export function isPromptExit(error: unknown): boolean {
  return error instanceof Error && error.name === 'ExitPromptError';
}
