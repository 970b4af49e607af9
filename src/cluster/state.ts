/**
 * A cluster's state on this machine: `$XDG_STATE_HOME/dcp/clusters/<name>/` (0700) with
 * cluster.json (what it is), journal.jsonl (every resource, recorded before the next step),
 * tls/ and logs/. `down` and rollback work from the journal alone.
 */
import { appendFile, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProviderName } from '../config/schema.js';
import { stateDir } from '../config/paths.js';
import { DcpError, usageError } from '../errors.js';
import { PRIVATE_DIR, PRIVATE_FILE, writeFilesAtomically } from '../util/files.js';
import type { ClientTls } from '../config/dask-tls.js';

export type ClusterStatus = 'creating' | 'running' | 'ready';

export interface ClusterRecord {
  name: string;
  provider: ProviderName;
  status: ClusterStatus;
  created_at: string;
  workers: number;
  scheduler_address: string | null;
  dashboard_url: string | null;
  tls: ClientTls | null;
  /** The dcp-owned Dask config file that points plain `Client("tls://...")` here, if any. */
  dask_config_file: string | null;
  /** Provider-specific facts (region, python, ...). */
  details: Record<string, unknown>;
}

/** One thing created in the outside world: a process, a VM, a security group. */
export interface Resource {
  kind: string;
  id: string;
  data: Record<string, unknown>;
}

export function clustersDir(env = process.env): string {
  return join(stateDir(env), 'clusters');
}

export function clusterDir(name: string, env = process.env): string {
  return join(clustersDir(env), name);
}

/** Claims the name: creating the folder fails if a cluster of that name exists. */
export async function claimClusterDir(name: string, env = process.env): Promise<string> {
  await mkdir(clustersDir(env), { recursive: true, mode: PRIVATE_DIR });
  const dir = clusterDir(name, env);
  try {
    await mkdir(dir, { mode: PRIVATE_DIR });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw usageError(
        `a cluster named ${name} already exists`,
        `pick another --name, or remove it first: dcp down ${name}`,
      );
    }
    throw error;
  }
  await Promise.all(['tls', 'logs'].map((sub) => mkdir(join(dir, sub), { mode: PRIVATE_DIR })));
  return dir;
}

export async function writeRecord(record: ClusterRecord, env = process.env): Promise<void> {
  await writeFilesAtomically(
    [
      {
        path: join(clusterDir(record.name, env), 'cluster.json'),
        content: `${JSON.stringify(record, null, 2)}\n`,
        mode: PRIVATE_FILE,
      },
    ],
    {
      overwrite: true,
    },
  );
}

export async function readRecord(name: string, env = process.env): Promise<ClusterRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(clusterDir(name, env), 'cluster.json'), 'utf8')) as ClusterRecord;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DcpError(`the state of cluster ${name} cannot be read: ${(error as Error).message}`, {
      hint: `remove it with: dcp down ${name}`,
    });
  }
}

/** Names of every cluster with a state folder, record or not (a crashed `up` may leave only a journal). */
export async function listClusterNames(env = process.env): Promise<string[]> {
  try {
    return (await readdir(clustersDir(env), { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

export async function removeClusterDir(name: string, env = process.env): Promise<void> {
  await rm(clusterDir(name, env), { recursive: true, force: true });
}

/** Appends a resource to the journal and syncs it to disk before the caller goes on. */
export async function recordResource(dir: string, resource: Resource): Promise<void> {
  const path = join(dir, 'journal.jsonl');
  await appendFile(path, `${JSON.stringify({ ...resource, at: new Date().toISOString() })}\n`, {
    mode: PRIVATE_FILE,
  });
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The recorded resources, oldest first; a line torn by a crash is skipped. */
export async function readJournal(dir: string): Promise<Resource[]> {
  let text: string;
  try {
    text = await readFile(join(dir, 'journal.jsonl'), 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    try {
      return line.trim() ? [JSON.parse(line) as Resource] : [];
    } catch {
      return [];
    }
  });
}
