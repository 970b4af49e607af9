/** Exit codes, shared by every command (DESIGN.md section 2). */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The one error type dcp raises on purpose: a one-line message saying what is wrong, a hint
 * saying how to fix it, and the exit code. Anything else that reaches the top is a bug.
 */
export class DcpError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCode;
  /** Set once the error has been shown to the user (by the live view), so it is not shown twice. */
  shown = false;

  constructor(message: string, options: { hint?: string; exitCode?: ExitCode; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'DcpError';
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? ExitCode.failed;
  }
}

/** Bad flags or bad input: exit 2. */
export function usageError(message: string, hint?: string): DcpError {
  return new DcpError(message, { hint, exitCode: ExitCode.usage });
}

/** The message of anything thrown, for one-line reports. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
