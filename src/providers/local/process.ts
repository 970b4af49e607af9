/**
 * Processes that outlive dcp: started in their own session and process group, output to a log
 * file, and remembered by pid *and* start time, so a later `down` never signals a process that
 * merely reused the pid.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

export interface ProcessIdentity {
  pid: number;
  startTime: string;
}

/** The kernel's start time of `pid` (Linux /proc; `ps` elsewhere); undefined when it is gone. */
export async function processStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // A zombie has exited; only its parent's bookkeeping remains.
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && process.platform === 'linux') return undefined;
  }
  const line = (
    await promisify(execFile)('ps', ['-o', 'stat=,lstart=', '-p', String(pid)]).catch(() => ({ stdout: '' }))
  ).stdout.trim();
  return line && !line.startsWith('Z') ? line.replace(/^\S+\s+/, '') : undefined;
}

export async function isRunning(identity: ProcessIdentity): Promise<boolean> {
  return (await processStartTime(identity.pid)) === identity.startTime;
}

/** Starts `command` detached from dcp, its output appended to `logFile`. */
export async function spawnDetached(
  command: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<ProcessIdentity> {
  const log = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', log, log], env, cwd });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid!;
    const startTime = await processStartTime(pid);
    if (startTime === undefined) throw new Error(`it exited at once`);
    return { pid, startTime };
  } finally {
    closeSync(log);
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the group is gone already. Anything else (EPERM) means it is not ours to stop.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/**
 * SIGTERM to the process group (a nanny and its worker go together), SIGKILL after `graceMs`.
 * Returns false when the process was not running (or the pid belongs to someone else now).
 */
export async function stopProcess(identity: ProcessIdentity, graceMs = 5_000): Promise<boolean> {
  if (!(await isRunning(identity))) return false;
  signalGroup(identity.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await isRunning(identity))) return true;
    await sleep(50);
  }
  signalGroup(identity.pid, 'SIGKILL');
  const killDeadline = Date.now() + 5_000;
  while (await isRunning(identity)) {
    if (Date.now() > killDeadline) throw new Error(`pid ${identity.pid} is still running after SIGKILL`);
    await sleep(20);
  }
  return true;
}
