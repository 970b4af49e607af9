/**
 * The one way dcp asks a question. With --yes it takes the default answer; where nobody can
 * answer (CI, no TTY, --json) it fails with a usage error naming the flag that answers it.
 * @inquirer/prompts is loaded only when a question is really asked.
 */
import { usageError } from '../errors.js';
import type { Output } from './output.js';

export async function confirm(out: Output, message: string, flag: string): Promise<boolean> {
  if (out.yes) return true;
  if (!out.interactive) throw usageError(`${message} (no one to ask here)`, `pass ${flag} to go ahead without asking`);
  const { confirm: ask } = await import('@inquirer/prompts');
  return ask({ message, default: false });
}
