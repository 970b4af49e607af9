/** Health checks of cloud clusters while `up` waits, forgiving a passing blip of the cloud's API. */

/** Checks in a row that the cloud did not answer, per cluster folder. */
const unanswered = new Map<string, number>();

/**
 * Runs `check`; a failure to ask (not a failed member: `check` returns that as an error) is
 * forgiven twice in a row, as a blip of the API (or of the network to it) is no reason to tear
 * down a cluster that is coming up fine. The third one is thrown.
 */
export async function checkForgivingBlips(dir: string, ask: () => Promise<Error | undefined>): Promise<void> {
  let lost: Error | undefined;
  try {
    lost = await ask();
    unanswered.delete(dir);
  } catch (error) {
    const misses = (unanswered.get(dir) ?? 0) + 1;
    unanswered.set(dir, misses);
    if (misses < 3) return;
    unanswered.delete(dir);
    throw error;
  }
  if (lost) throw lost;
}
