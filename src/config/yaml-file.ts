/**
 * Reading and changing Dask's YAML files without losing anything of the user's: a file that
 * does not parse is refused (file and line named, nothing changed); comments, key order and
 * unrelated keys survive (yaml's Document API); the previous version is kept as `.bak`; the new
 * one replaces it atomically; and a lock makes concurrent dcp processes take turns, each
 * re-reading the file inside the lock so no update is lost.
 */
import { mkdir, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { lock } from 'proper-lockfile';
import { Document, isMap, isScalar, parseDocument, visit, YAMLMap } from 'yaml';
import { DcpError, messageOf, usageError } from '../errors.js';
import { describeErrno, readRegularFile, writeFilesAtomically } from '../util/files.js';

async function readText(path: string): Promise<string | null> {
  try {
    return (await readRegularFile(path)).data.toString('utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw usageError(`cannot read ${path}: ${describeErrno(error)}`, 'check the file and its permissions');
  }
}

/** The file system's own refusal (permissions, a read-only mount), wherever it is in the cause chain. */
function refusal(error: unknown): NodeJS.ErrnoException | undefined {
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code && ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOSPC', 'EDQUOT'].includes(code))
      return cause as NodeJS.ErrnoException;
  }
  return undefined;
}

/** A write the file system refuses is the user's to fix: said with the path, as bad input (exit 2). */
function orRefusal(path: string, error: unknown): unknown {
  const refused = refusal(error);
  return refused
    ? usageError(
        `cannot write ${path}: ${describeErrno(refused)}`,
        `check the permissions of ${dirname(path)} (or set DASK_CONFIG to a folder you can write); nothing was changed`,
      )
    : error;
}

/**
 * Dask reads its files with PyYAML, which speaks YAML 1.1: there `off`, `yes` and `no` are
 * booleans. Reading and writing as 1.1 makes dcp see what Dask sees, and quote such strings.
 */
const YAML_OPTIONS = { version: '1.1', prettyErrors: true } as const;

/** Parses YAML text, refusing anything dcp could not safely change. */
export function parseYaml(path: string, text: string | null): Document {
  if (text === null) return new Document(new YAMLMap(), YAML_OPTIONS);
  const doc = parseDocument(text, YAML_OPTIONS);
  const [error] = doc.errors;
  if (error) {
    const line = error.linePos?.[0].line;
    const reason = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw usageError(
      `${path}${line ? `:${line}` : ''}: the YAML does not parse: ${reason}`,
      'fix or move the file; dcp changed nothing',
    );
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw usageError(
      `${path}: the top level is not a mapping of keys`,
      'fix or move the file; dcp changed nothing',
    );
  }
  // An empty or comments-only file: give it the mapping Dask expects, keeping its comments.
  if (doc.contents === null) doc.contents = new YAMLMap() as unknown as typeof doc.contents;
  return doc;
}

/**
 * Sets `path` to `value`, making the mappings on the way; refuses to replace a scalar or a list
 * that stands where a mapping should be (it is the user's, and not ours to guess about).
 */
export function setIn(doc: Document, path: string[], value: unknown): void {
  for (let depth = 1; depth < path.length; depth++) {
    const prefix = path.slice(0, depth);
    const node = doc.getIn(prefix, true);
    if (node === undefined || (isScalar(node) && node.value === null)) doc.setIn(prefix, doc.createNode({}));
    else if (!isMap(node))
      throw usageError(
        `${prefix.join('.')} is not a mapping in this file, so ${path.join('.')} cannot be set`,
        'fix or move the file; dcp changed nothing',
      );
  }
  const existing = doc.getIn(path, true);
  if (isScalar(existing) && (value === null || typeof value !== 'object')) {
    existing.value = value; // in place, so a comment on that line stays
    return;
  }
  const node = doc.createNode(value);
  // Lists of plain values read best inline, as Coiled's docs write them: ports: [8786, 8787].
  visit(node, {
    Seq(_, seq) {
      if (seq.items.every((item) => isScalar(item))) seq.flow = true;
    },
  });
  doc.setIn(path, node);
}

/** Removes `path` if it is there. */
export function deleteIn(doc: Document, path: string[]): void {
  if (doc.hasIn(path)) doc.deleteIn(path);
}

/** The file's settings as plain data, or undefined when the file does not exist. */
export async function readYaml(path: string): Promise<Record<string, unknown> | undefined> {
  const text = await readText(path);
  if (text === null) return undefined;
  try {
    return (parseYaml(path, text).toJS() as Record<string, unknown> | null) ?? {};
  } catch (error) {
    // yaml refuses what would blow up in memory (a billion laughs of aliases).
    if (error instanceof DcpError) throw error;
    throw usageError(`${path}: the YAML cannot be read: ${messageOf(error)}`, 'fix or move the file');
  }
}

/**
 * Applies `change` to the file's document under a lock. Returns whether the file changed;
 * `change` may throw (a usage error, say), and then nothing is written.
 */
export async function updateYaml(link: string, change: (doc: Document) => void): Promise<boolean> {
  // A file kept elsewhere and linked here (dotfiles) is changed where it lives, and the link stays.
  const path = await realpath(link).catch(() => link);
  let release: () => Promise<void>;
  try {
    // Dask's folder holds nobody else's secrets, but ours may name key files: keep it private.
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    release = await lock(path, {
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: { retries: 200, factor: 1.1, minTimeout: 5, maxTimeout: 100 },
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw orRefusal(path, error);
    throw new DcpError(`another process is still writing ${path}: ${messageOf(error)}`, {
      hint: `try again; if no dcp is running, remove ${path}.lock`,
    });
  }
  try {
    const before = await readText(path);
    const doc = parseYaml(path, before);
    change(doc);
    const after = doc.toString();
    // Nothing to say and no file yet: leave it that way.
    if (after === before || (before === null && isMap(doc.contents) && doc.contents.items.length === 0))
      return false;
    const mode = before === null ? 0o644 : (await stat(path)).mode & 0o777;
    await writeFilesAtomically(
      [
        ...(before === null ? [] : [{ path: `${path}.bak`, content: before, mode }]),
        { path, content: after, mode },
      ],
      { overwrite: true },
    ).catch((error: unknown) => {
      throw orRefusal(path, error);
    });
    return true;
  } finally {
    await release().catch(() => undefined);
  }
}
