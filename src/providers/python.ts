/**
 * Which Python has Dask here (the local provider runs it; cloud providers match its versions):
 * --python, then DCP_PYTHON, then the interpreter behind `dask` on PATH, then python3. Each is asked (cheaply, without importing it) whether it has distributed.
 */
import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { DcpError, usageError } from '../errors.js';
import { runPythonCode } from '../util/python.js';

export interface PythonInfo {
  executable: string;
}

/** find_spec answers without importing distributed: a few milliseconds instead of a second. */
const PROBE = 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("distributed") else 3)';

async function probe(given: string): Promise<PythonInfo | { error: string }> {
  // A path is made absolute here: the probe, and later Dask, run from other folders.
  const python = given.includes('/') ? resolve(given) : given;
  try {
    // Not from the user's folder: a `distributed/` there would shadow the real one.
    await runPythonCode(python, PROBE);
    // The path as given, not sys.executable: a wrapper or venv shim is what the user chose.
    return { executable: python };
  } catch (error) {
    // execFile's error carries the errno name for a spawn failure, and the exit status otherwise.
    const failure = error as { code?: string | number; stderr?: string; message: string };
    if (failure.code === 'ENOENT') return { error: 'not found' };
    if (failure.code === 3) return { error: 'no distributed module' };
    return { error: failure.stderr?.trim().split('\n').at(-1) || failure.message };
  }
}

/** `dask` on PATH → the interpreter in its `#!` line. */
async function pythonBehindDask(path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'dask');
    try {
      await access(candidate, constants.X_OK);
    } catch {
      continue;
    }
    const firstLine = (await readFile(candidate, 'utf8').catch(() => '')).split('\n')[0] ?? '';
    // `#!/usr/bin/python3`, `#!/usr/bin/env python3`, `#!/usr/bin/env -S python3 -u`
    const words = firstLine.startsWith('#!') ? firstLine.slice(2).trim().split(/\s+/) : [];
    const interpreter = words[0]?.endsWith('/env')
      ? words.slice(1).find((word) => !word.startsWith('-'))
      : words[0];
    if (interpreter) return interpreter;
  }
  return undefined;
}

export async function findPython(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PythonInfo> {
  const tried: string[] = [];
  const ask = async (python: string, from: string) => {
    const result = await probe(python);
    if ('executable' in result) return result;
    tried.push(`${python} (${from}): ${result.error}`);
    return undefined;
  };
  // A Python named by the user is the one to use, or an error; never a silent substitute.
  for (const [python, from] of [
    [explicit, '--python'],
    [env.DCP_PYTHON, 'DCP_PYTHON'],
  ] as const) {
    if (python) {
      const found = await ask(python, from);
      if (found) return found;
      // The user named it: a wrong name is bad input (exit 2), like any other flag.
      throw usageError(
        `${from} ${python} cannot run Dask: ${tried.at(-1)!.split(': ').slice(1).join(': ')}`,
        `install distributed for it (${python} -m pip install distributed), or point ${from} at another Python`,
      );
    }
  }
  for (const [python, from] of [
    [await pythonBehindDask(env.PATH), 'behind dask on PATH'],
    ['python3', 'on PATH'],
  ] as const) {
    if (python && !tried.some((t) => t.startsWith(`${python} `))) {
      const found = await ask(python, from);
      if (found) return found;
    }
  }
  throw new DcpError(`no Python with Dask's distributed found (tried ${tried.join('; ') || 'nothing'})`, {
    hint: "install it: python3 -m pip install 'distributed[complete]', or on Debian/Ubuntu: sudo apt-get install python3-distributed; or pass --python PATH",
  });
}

export interface DaskVersions {
  /** distributed's release, without a distribution's suffix: `2022.12.1` from `2022.12.1+ds.1`. */
  distributed: string;
  /** `3.11` */
  python: string;
}

/** The versions a cluster must match for this Python's Client to talk to it. */
export async function daskVersions(python: string): Promise<DaskVersions> {
  const code =
    'import sys, importlib.metadata as m; print(m.version("distributed"), "%d.%d" % sys.version_info[:2])';
  const { stdout } = await runPythonCode(python, code);
  const [distributed = '', version = ''] = stdout.trim().split(/\s+/);
  const release = /^\d+\.\d+\.\d+/.exec(distributed)?.[0];
  if (!release)
    throw new DcpError(`${python} reports distributed ${JSON.stringify(distributed)}, not a release number`, {
      hint: 'pass --image to choose the Dask image yourself',
    });
  return { distributed: release, python: version };
}
