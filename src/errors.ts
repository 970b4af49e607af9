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
  /** Lines that explain the message (log excerpts, a list of problems), shown below it. */
  readonly details: string | undefined;
  /** Set once the error has been shown to the user (by the live view), so it is not shown twice. */
  shown = false;

  constructor(
    message: string,
    options: { hint?: string; exitCode?: ExitCode; cause?: unknown; details?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'DcpError';
    this.hint = options.hint;
    this.details = options.details;
    this.exitCode = options.exitCode ?? ExitCode.failed;
  }
}

/** Bad flags or bad input: exit 2. */
export function usageError(message: string, hint?: string, details?: string): DcpError {
  return new DcpError(message, { hint, details, exitCode: ExitCode.usage });
}

/** The message of anything thrown, for one-line reports. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
