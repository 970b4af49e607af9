/**
 * Running `python -c CODE` without letting anyone else's files in: `-c` puts the working folder
 * first on the import path, so a `json.py` planted in a shared temp folder would run as the
 * user. The root folder is no one's to plant in, and PYTHONSAFEPATH (Python 3.11+) keeps the
 * working folder off the path altogether.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export function runPythonCode(python: string, code: string): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(python, ['-c', code], {
    timeout: 30_000,
    cwd: '/',
    env: { ...process.env, PYTHONSAFEPATH: '1' },
  });
}
