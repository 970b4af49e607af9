/** Runs the openssl command a hint prints, exactly as a user pasting it would (with a passphrase added). */
import { execa } from 'execa';

/** The command after the hint's last colon: `...: (umask 077 && openssl pkey -in A -out B)`. */
export function commandIn(hint: string): string {
  const at = hint.search(/\(umask|openssl /);
  if (at < 0) throw new Error(`no command in the hint: ${hint}`);
  return hint.slice(at);
}

export async function followHint(hint: string, options: { cwd: string; passphrase?: string }) {
  const command = commandIn(hint).replace(
    /openssl pkey/,
    `openssl pkey${options.passphrase ? ` -passin pass:${options.passphrase}` : ''}`,
  );
  return execa('bash', ['-c', command], { cwd: options.cwd, reject: false });
}
