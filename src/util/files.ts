/**
 * Reading files a user names without being held up by them (a FIFO, /dev/zero), and writing a
 * set of files so that a reader sees either the old ones or the new ones.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DcpError, usageError } from '../errors.js';
import { interruptible, Interrupted } from './interrupt.js';
import { shellQuote } from './shell.js';

export const PRIVATE_FILE = 0o600;
export const PUBLIC_FILE = 0o644;
export const PRIVATE_DIR = 0o700;

export interface FileToWrite {
  path: string;
  content: string;
  mode: number;
}

/** More than any PEM bundle or settings file needs; a bigger file is not one of those. */
export const READ_LIMIT = 1024 * 1024;

/** A file refused before its content is read, with an errno-like code for describeErrno. */
class RefusedFile extends Error {
  constructor(
    readonly code: 'ENOTREG' | 'EFBIG',
    message: string,
  ) {
    super(message);
  }
}

function fileKind(info: Stats): string {
  if (info.isDirectory()) return 'a folder';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'a special file';
}

/**
 * Reads a regular file of at most `limit` bytes, with the status of the very file read (so
 * ownership checks and content agree). Anything else is refused before a byte is read: opening
 * does not wait for a FIFO's writer, and a device or a huge file is never read through.
 */
export async function readRegularFile(
  path: string,
  limit = READ_LIMIT,
  options: { noFollow?: boolean } = {},
): Promise<{ data: Buffer; info: Stats }> {
  const handle = await open(
    path,
    constants.O_RDONLY | constants.O_NONBLOCK | (options.noFollow ? constants.O_NOFOLLOW : 0),
  );
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new RefusedFile('ENOTREG', `it is ${fileKind(info)}, not a regular file`);
    if (info.size > limit) throw new RefusedFile('EFBIG', `it is larger than ${limit / 1024 / 1024} MiB`);
    // The size may change while reading: count what is read, never trust the size alone.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const { bytesRead, buffer } = await handle.read({ buffer: Buffer.alloc(64 * 1024) });
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > limit) throw new RefusedFile('EFBIG', `it is larger than ${limit / 1024 / 1024} MiB`);
      chunks.push(buffer.subarray(0, bytesRead));
    }
    return { data: Buffer.concat(chunks), info };
  } finally {
    await handle.close();
  }
}

/**
 * Why another user could have written, or could replace, something with this status; undefined
 * when only this user (or root) can. Any group write counts: the group may hold others, and a
 * POSIX ACL granting another user write shows as the group bits.
 */
export function writableByOthers(info: Stats, what: string): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  if (info.uid !== uid && info.uid !== 0) return `${what} belongs to another user (uid ${info.uid})`;
  if (info.mode & 0o002) return `${what} is writable by every user`;
  if (info.mode & 0o020) return `${what} is writable by its group (gid ${info.gid}) or through an ACL`;
  return undefined;
}

/** A file's text, why another user could have written it, or undefined when it is not there. */
export type TrustedRead = { text: string } | { skipped: string } | undefined;

/**
 * Reads a file only after its owner, its mode, its type and the folders that could swap it have
 * been checked, and reads the very file checked (same device and inode, no link followed on the
 * way in). Whatever is wrong with it is returned as a reason, never thrown: another user must not
 * be able to stop dcp by planting a folder or a FIFO.
 */
export async function readTrustedFile(path: string): Promise<TrustedRead> {
  try {
    await lstat(path);
  } catch {
    return undefined;
  }
  try {
    const real = await realpath(path);
    const info = await stat(real);
    if (!info.isFile()) return { skipped: 'it is not a regular file' };
    // The folder it was found in, and the one it really lives in when it is a link.
    const folders = [...new Set([dirname(path), dirname(real)])];
    const reasons = [
      writableByOthers(info, 'the file'),
      ...(await Promise.all(
        folders.map(async (folder) => writableByOthers(await stat(folder), `its folder ${folder}`)),
      )),
    ].filter(Boolean);
    if (reasons.length > 0) return { skipped: reasons.join('; ') };
    const read = await readRegularFile(real, READ_LIMIT, { noFollow: true });
    if (read.info.dev !== info.dev || read.info.ino !== info.ino)
      return { skipped: 'it was replaced while dcp read it' };
    return { text: read.data.toString('utf8').replace(/^\uFEFF/, '') };
  } catch (error) {
    return { skipped: `it cannot be read: ${describeErrno(error)}` };
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates `dir` (0700) when missing. Returns a warning when an existing folder lets other
 * users in: its keys stay 0600, but their names and the certificates are visible.
 */
export async function ensurePrivateDir(dir: string): Promise<string | undefined> {
  try {
    await mkdir(dir, { recursive: true, mode: PRIVATE_DIR });
  } catch (error) {
    throw usageError(
      `cannot use ${dir} as a folder: ${describeErrno(error)}`,
      'pick another folder with --out',
    );
  }
  const info = await stat(dir);
  if (process.getuid && info.uid !== process.getuid()) {
    return `${dir} belongs to another user (uid ${info.uid}), who can replace what is written there`;
  }
  const mode = info.mode & 0o777;
  if (mode & 0o077) {
    return `${dir} is open to other users (mode ${mode.toString(8)}); consider: chmod 700 ${shellQuote(dir)}`;
  }
  return undefined;
}

/** A system error in words a user acts on. */
export function describeErrno(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    ENOENT: 'no such file',
    EISDIR: 'it is a folder',
    EACCES: 'permission denied',
    EPERM: 'not permitted',
    EEXIST: 'a file of that name is in the way',
    ENOTDIR: 'part of the path is a file, not a folder',
    ENOSPC: 'no space left on the device',
    EROFS: 'the file system is read-only',
    EDQUOT: 'over the disk quota',
    ELOOP: 'too many symbolic links',
  };
  if (error instanceof RefusedFile) return error.message;
  return (code && words[code]) ?? (error instanceof Error ? error.message : String(error));
}

/**
 * Writes every file through a temporary file in its own folder, created with its final mode,
 * so a private key is never readable by others, not even for a moment. Without `overwrite`,
 * an existing file is never replaced (checked up front, and again atomically by link(2)), and
 * on failure or Ctrl-C nothing new is left. With it, each file is replaced atomically by
 * rename(2), one after another; temporary files never outlive a failure or an interrupt.
 */
export async function writeFilesAtomically(
  files: FileToWrite[],
  options: { overwrite: boolean },
): Promise<void> {
  if (!options.overwrite) {
    const taken = (
      await Promise.all(files.map(async (f) => ((await exists(f.path)) ? f.path : null)))
    ).filter((path): path is string => path !== null);
    if (taken.length > 0) {
      const where = [...new Set(taken.map((path) => dirname(path)))].join(', ');
      const names = taken.map((path) => basename(path)).join(', ');
      throw usageError(
        `${names} already exist${taken.length === 1 ? 's' : ''} in ${where}; nothing was written`,
        'pass --force to replace them, or --out another folder',
      );
    }
  }
  // Ctrl-C is honoured between steps, never in the middle of one, so the clean-up below always
  // sees every file this call created.
  await interruptible(async (signal) => {
    const temps: string[] = [];
    const placed: string[] = [];
    try {
      for (const file of files) {
        signal.throwIfAborted();
        const temp = join(
          dirname(file.path),
          `.${basename(file.path)}.${randomBytes(6).toString('hex')}.tmp`,
        );
        temps.push(temp);
        const handle = await open(temp, 'wx', file.mode);
        try {
          await handle.writeFile(file.content);
          await handle.sync();
        } finally {
          await handle.close();
        }
        // The umask may have narrowed the mode at creation; certificates must stay readable.
        await chmod(temp, file.mode);
      }
      for (const [index, file] of files.entries()) {
        signal.throwIfAborted();
        if (options.overwrite) {
          await rename(temps[index]!, file.path);
        } else {
          await link(temps[index]!, file.path);
          placed.push(file.path);
        }
      }
    } catch (error) {
      await Promise.all(placed.map((path) => unlink(path).catch(() => undefined)));
      if (error instanceof Interrupted) throw error;
      if ((error as NodeJS.ErrnoException).code === 'EEXIST' && !options.overwrite) {
        throw usageError(
          'another process wrote the same files at the same time; nothing was written',
          'run the command again',
        );
      }
      throw new DcpError(
        `cannot write ${dirname(files[temps.length - 1]?.path ?? '.')}: ${describeErrno(error)}`,
        { hint: 'check the folder and the disk', cause: error },
      );
    } finally {
      await Promise.all(temps.map((temp) => unlink(temp).catch(() => undefined)));
    }
  });
}
