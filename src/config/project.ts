/**
 * The project settings file, found from the working folder upwards. Whoever can write a file on
 * that path decides how the next cluster is secured, so the search trusts little:
 * - YAML or JSON only (`.dcprc`, `.dcprc.yaml`, `.dcprc.yml`, `.dcprc.json`, `package.json#dcp`):
 *   nothing dcp reads is executed;
 * - it stops at the project's root (the first folder holding `.git` or `package.json`) and never
 *   goes above the home folder;
 * - a file owned by another user (root excepted), writable by its group or by all, or in a
 *   folder another user can write (who could replace it), or that is no regular file, is
 *   skipped, and named in a warning.
 * cosmiconfig is not used: it executes JS configs, lets a `.config/config.*` file redirect its
 * search, and reads what it finds before anyone can ask who wrote it.
 */
import { lstat, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DcpError, messageOf, usageError } from '../errors.js';
import { readTrustedFile } from '../util/files.js';
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

/**
 * The settings in a trusted file; a file of the user's that is wrong is an error to fix. A
 * package.json is the project's, not dcp's: one that does not parse holds no settings for dcp.
 */
function parseProjectFile(path: string, name: string, text: string): Settings | undefined {
  if (name === 'package.json') {
    let pkg: unknown;
    try {
      pkg = JSON.parse(text);
    } catch {
      return undefined;
    }
    const section = (pkg as { dcp?: unknown } | null)?.dcp;
    return section === undefined ? undefined : validateSettings(section, path, 'dcp');
  }
  // JSON is YAML too; Dask's YAML 1.1 reading keeps `tls: off` a boolean, caught with a hint.
  let content: unknown;
  try {
    content = parseYaml(path, text).toJS();
  } catch (error) {
    if (error instanceof DcpError) throw error;
    throw usageError(`${path}: the YAML cannot be read: ${messageOf(error)}`, 'fix or move the file');
  }
  return validateSettings(content ?? {}, path, '');
}

const exists = (path: string) =>
  lstat(path).then(
    () => true,
    () => false,
  );

/** The folders searched, from `cwd` up to its project root, the home folder or `/`. */
async function searchFolders(cwd: string, home: string): Promise<string[]> {
  const folders: string[] = [];
  // Links resolved, so a linked home or working folder cannot take the search past home.
  for (let folder = await realpath(cwd); ; folder = dirname(folder)) {
    folders.push(folder);
    if (folder === home || folder === dirname(folder)) break;
    const markers = await Promise.all(ROOT_MARKERS.map((marker) => exists(join(folder, marker))));
    if (markers.some(Boolean)) break;
  }
  return folders;
}

export async function findProjectSettings(cwd: string, home = homedir()): Promise<ProjectSearch> {
  const skipped: SkippedFile[] = [];
  for (const folder of await searchFolders(cwd, await realpath(resolve(home)).catch(() => resolve(home)))) {
    for (const name of PROJECT_FILES) {
      const file = join(folder, name);
      const candidate = await readTrustedFile(file);
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
