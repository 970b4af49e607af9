/**
 * A cluster's state on this machine: `$XDG_STATE_HOME/dcp/clusters/<name>/` (0700) with
 * cluster.json (what it is), journal.jsonl (every resource, recorded before the next step),
 * tls/, logs/ and work/ (the local workers' files). `down` and rollback work from the journal alone.
 */
import { appendFile, mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { PROVIDERS, type ProviderName } from '../config/schema.js';
import { stateDir } from '../config/paths.js';
import { isClusterName } from './names.js';
import { DcpError, usageError } from '../errors.js';
import {
  describeErrno,
  PRIVATE_DIR,
  PRIVATE_FILE,
  writableByOthers,
  writeFilesAtomically,
} from '../util/files.js';
import { shellQuote } from '../util/shell.js';

/** What cluster.json holds; a file that does not fit is damaged, never half-believed. */
const recordSchema = z.object({
  name: z.string(),
  provider: z.enum(PROVIDERS),
  status: z.enum(['creating', 'running', 'ready']),
  created_at: z.string(),
  workers: z.number(),
  scheduler_address: z.string().nullable(),
  dashboard_url: z.string().nullable(),
  tls: z
    .object({
      caFile: z.string(),
      clientCert: z.string(),
      // Null: the key is in the certificate file.
      clientKey: z.string().nullable(),
      minVersion: z.union([z.literal(1.2), z.literal(1.3)]).optional(),
      maxVersion: z.union([z.literal(1.2), z.literal(1.3)]).optional(),
      ciphers: z.string().optional(),
      requireEncryption: z.boolean().optional(),
    })
    .nullable(),
  /** The dcp-owned Dask config file that points plain `Client("tls://...")` here, if any. */
  dask_config_file: z.string().nullable(),
  /** Provider-specific facts (region, python, ...). */
  details: z.record(z.string(), z.unknown()),
});

export type ClusterRecord = z.infer<typeof recordSchema>;
export type ClusterStatus = ClusterRecord['status'];

/** One thing created in the outside world: a process, a VM, a security group. */
export interface Resource {
  kind: string;
  id: string;
  data: Record<string, unknown>;
  /** Which provider made it, so `down` can work from the journal alone. */
  provider?: ProviderName;
}

export function clustersDir(env = process.env): string {
  return join(stateDir(env), 'clusters');
}

export function clusterDir(name: string, env = process.env): string {
  return join(clustersDir(env), name);
}

/**
 * Claims the name: creating the folder fails if a cluster of that name exists. The folders above
 * it hold the cluster's keys: one another user could write would let them swap what dcp writes.
 */
export async function claimClusterDir(name: string, env = process.env): Promise<string> {
  const parent = clustersDir(env);
  try {
    await mkdir(parent, { recursive: true, mode: PRIVATE_DIR });
  } catch (error) {
    throw usageError(
      `cannot make the state folder ${parent}: ${describeErrno(error)}`,
      'check it, or set XDG_STATE_HOME to a folder of yours',
    );
  }
  for (const folder of [stateDir(env), parent]) {
    const reason = writableByOthers(await stat(folder), folder);
    if (reason)
      throw usageError(
        `${reason}: dcp keeps cluster keys there`,
        `chmod 700 ${shellQuote(folder)}, or set XDG_STATE_HOME to a folder of yours`,
      );
  }
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
    throw usageError(
      `cannot make the state folder ${dir}: ${describeErrno(error)}`,
      'check its parent folder',
    );
  }
  await Promise.all(['tls', 'logs', 'work'].map((sub) => mkdir(join(dir, sub), { mode: PRIVATE_DIR })));
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

/** A cluster this machine has state for: its record, or why the record is damaged. */
export interface ClusterEntry {
  name: string;
  record?: ClusterRecord;
  damaged?: string;
}

async function readEntry(name: string, env: NodeJS.ProcessEnv): Promise<ClusterEntry | undefined> {
  let text: string;
  try {
    text = await readFile(join(clusterDir(name, env), 'cluster.json'), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    return { name, damaged: `cluster.json cannot be read (${code ?? (error as Error).message})` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { name, damaged: 'cluster.json is not valid JSON' };
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { name, damaged: `cluster.json has no valid ${issue.path.join('.') || 'record'}` };
  }
  return { name, record: parsed.data };
}

/** The cluster's record; undefined when it has none; a damaged one is an error saying how to remove it. */
export async function readRecord(name: string, env = process.env): Promise<ClusterRecord | undefined> {
  const entry = await readEntry(name, env);
  if (entry?.damaged) {
    throw new DcpError(`the state of cluster ${name} is damaged: ${entry.damaged}`, {
      hint: `dcp down ${name} removes what its journal lists, and the state with it`,
    });
  }
  return entry?.record;
}

/** Whether this machine has a state folder for the cluster. */
export async function clusterExists(name: string, env = process.env): Promise<boolean> {
  return (await listClusterNames(env)).includes(name);
}

/** Every cluster with a state folder: its record, damaged or not there yet (a crashed `up`). */
export async function listClusters(env = process.env): Promise<ClusterEntry[]> {
  return Promise.all(
    (await listClusterNames(env)).map(async (name) => (await readEntry(name, env)) ?? { name }),
  );
}

/** Names of every cluster with a state folder, record or not (a crashed `up` may leave only a journal). */
export async function listClusterNames(env = process.env): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(clustersDir(env), { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DcpError(`cannot read the clusters in ${clustersDir(env)}: ${describeErrno(error)}`, {
      hint: 'check that folder (or XDG_STATE_HOME)',
    });
  }
  // The local ports' lock lives beside the clusters: only a cluster's name is a cluster.
  return entries
    .filter((e) => e.isDirectory() && isClusterName(e.name))
    .map((e) => e.name)
    .sort();
}

export async function removeClusterDir(name: string, env = process.env): Promise<void> {
  await rm(clusterDir(name, env), { recursive: true, force: true }).catch((error: unknown) => {
    throw new DcpError(
      `cannot remove the state of ${name} in ${clusterDir(name, env)}: ${describeErrno(error)}`,
      {
        hint: 'check its permissions; what it made is gone already, so removing the folder by hand is safe',
      },
    );
  });
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
