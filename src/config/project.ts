/**
 * The project settings file, found from the working folder upwards. Whoever can write a file on
 * that path decides how the next cluster is secured, so the search trusts little:
 * - YAML or JSON only (`.dcprc`, `.dcprc.yaml`, `.dcprc.yml`, `.dcprc.json`, `package.json#dcp`):
 *   nothing dcp reads is executed;
 * - it stops at the project's root (the first folder holding `.git` or `package.json`) and never
 *   goes above the home folder;
 * - a file owned by another user (root excepted), writable by another user, or in a folder
 *   another user can write (who could replace it) is skipped, and named in a warning.
 * cosmiconfig is not used: it executes JS configs, lets a `.config/config.*` file redirect its
 * search, and reads what it finds before anyone can ask who wrote it.
 */
import { readFile, stat } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { usageError } from '../errors.js';
import { describeErrno, readRegularFile } from '../util/files.js';
import { validateSettings, type Settings } from './schema.js';
import { parseYaml } from './yaml-file.js';

/** In the order they are looked for in each folder; the first one found there is used. */
export const PROJECT_FILES = ['package.json', '.dcprc', '.dcprc.json', '.dcprc.yaml', '.dcprc.yml'] as const;
/** A folder holding one of these is a project's root: the search goes no higher. */
const ROOT_MARKERS = ['.git', 'package.json'];

export interface SkippedFile {
  file: string;
  reason: string;
}

export interface ProjectSettings {
  file: string;
  settings: Settings;
}

export interface ProjectSearch {
  found: ProjectSettings | null;
  /** Files that were there but not trusted, with why. */
  skipped: SkippedFile[];
}

/** The groups whose only member is this user (Debian's user private groups), by gid. */
let privateGroups: Promise<Set<number>> | undefined;
function userPrivateGroups(): Promise<Set<number>> {
  privateGroups ??= (async () => {
    const name = userInfo().username;
    const text = await readFile('/etc/group', 'utf8').catch(() => '');
    const gids = text.split('\n').flatMap((line) => {
      const [group, , gid, members = ''] = line.split(':');
      const others = members.split(',').filter((member) => member && member !== name);
      return group === name && others.length === 0 && gid ? [Number(gid)] : [];
    });
    return new Set(gids);
  })();
  return privateGroups;
}

/**
 * Why another user could have written, or could replace, something with this status; undefined
 * when only this user (or root) can. Group write is harmless in the user's own private group.
 */
async function untrusted(info: Stats, what: string): Promise<string | undefined> {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  if (info.uid !== uid && info.uid !== 0) return `${what} belongs to another user (uid ${info.uid})`;
  if (info.mode & 0o002) return `${what} is writable by every user`;
  if (info.mode & 0o020 && !(await userPrivateGroups()).has(info.gid)) {
    return `${what} is writable by its group (gid ${info.gid})`;
  }
  return undefined;
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Reads one candidate, or says why it is not trusted; undefined when it is not there. */
async function readCandidate(path: string): Promise<{ text: string } | { skipped: string } | undefined> {
  let data: Buffer;
  let info: Stats;
  try {
    ({ data, info } = await readRegularFile(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw usageError(
      `cannot read the project settings file ${path}: ${describeErrno(error)}`,
      'fix or move the file',
    );
  }
  // The file as opened (its status is the opened file's), and the folders that could swap it:
  // the one it was found in, and the one it really lives in when it is a link.
  const real = await realpath(path);
  const folders = [...new Set([dirname(path), dirname(real)])];
  const reasons = [
    await untrusted(info, 'the file'),
    ...(await Promise.all(
      folders.map(async (folder) => untrusted(await stat(folder), `its folder ${folder}`)),
    )),
  ].filter(Boolean);
  return reasons.length > 0 ? { skipped: reasons.join('; ') } : { text: data.toString('utf8') };
}

function parseProjectFile(path: string, name: string, text: string): Settings | undefined {
  if (name === 'package.json') {
    let pkg: unknown;
    try {
      pkg = JSON.parse(text);
    } catch (error) {
      throw usageError(`${path}: the JSON does not parse: ${(error as Error).message}`, 'fix the file');
    }
    const section = (pkg as { dcp?: unknown } | null)?.dcp;
    return section === undefined ? undefined : validateSettings(section, path, 'dcp');
  }
  // JSON is YAML too; Dask's YAML 1.1 reading keeps `tls: off` a boolean, caught with a hint.
  const content = parseYaml(path, text).toJS() as unknown;
  return validateSettings(content ?? {}, path, '');
}

/** The folders searched, from `cwd` up to its project root, the home folder or `/`. */
async function searchFolders(cwd: string, home: string): Promise<string[]> {
  const folders: string[] = [];
  for (let folder = resolve(cwd); ; folder = dirname(folder)) {
    folders.push(folder);
    if (folder === home || folder === dirname(folder)) break;
    const markers = await Promise.all(ROOT_MARKERS.map((marker) => exists(join(folder, marker))));
    if (markers.some(Boolean)) break;
  }
  return folders;
}

export async function findProjectSettings(cwd: string, home = homedir()): Promise<ProjectSearch> {
  const skipped: SkippedFile[] = [];
  for (const folder of await searchFolders(cwd, resolve(home))) {
    for (const name of PROJECT_FILES) {
      const file = join(folder, name);
      const candidate = await readCandidate(file);
      if (!candidate) continue;
      if ('skipped' in candidate) {
        skipped.push({ file, reason: candidate.skipped });
        continue;
      }
      const settings = parseProjectFile(file, name, candidate.text);
      // A package.json without a dcp section holds no settings: the search goes on.
      if (settings !== undefined) return { found: { file, settings }, skipped };
    }
  }
  return { found: null, skipped };
}
