/**
 * The local provider: a real Dask scheduler and workers as processes on this machine, bound to
 * 127.0.0.1, detached from dcp so they outlive it, logging into the cluster's state folder.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { lock } from 'proper-lockfile';
import { basename, join } from 'node:path';
import { DcpError } from '../../errors.js';
import { memberTls } from '../../cluster/snippet.js';
import { clustersDir, readJournal, type ClusterRecord, type Resource } from '../../cluster/state.js';
import type {
  ClusterTls,
  CreateContext,
  DestroyContext,
  Endpoints,
  MemberStatus,
  Provider,
} from '../provider.js';
import { isRunning, spawnDetached, stopProcess, type ProcessIdentity } from './process.js';
import { findPython } from '../python.js';
import { GATE_FILE, GATE_SOURCE } from '../dashboard-gate.js';
import { runPythonCode } from '../../util/python.js';

const HOST = '127.0.0.1';

interface ProcessResource extends Resource {
  kind: 'process';
  /** `attempt`: the start it belongs to; a start whose port was taken is stopped, and superseded. */
  data: { role: string; pid: number; startTime: string; log: string; attempt?: number };
}

function processes(resources: Resource[]): ProcessResource[] {
  return resources.filter((r): r is ProcessResource => r.kind === 'process');
}

/** The processes of the last start: what the cluster is made of now. */
function current(resources: Resource[]): ProcessResource[] {
  const all = processes(resources);
  const last = Math.max(0, ...all.map((r) => r.data.attempt ?? 0));
  return all.filter((r) => (r.data.attempt ?? 0) === last);
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** Dask's usual port when it is free (and asked for), else any free one. */
async function choosePort(preferred: number | undefined, taken: number[]): Promise<number> {
  if (preferred !== undefined && !taken.includes(preferred) && (await portIsFree(preferred)))
    return preferred;
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, HOST, () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (!taken.includes(port)) return port;
  }
}

/**
 * Waits until the scheduler says, in its own log in the cluster's private folder, that it
 * listens, and where its dashboard is. Only its own word counts: a port that is merely bound may
 * be another user's process (another dcp that took it a moment earlier, or someone waiting to be
 * mistaken for it), and Dask moves a dashboard whose port is taken. `taken`: the scheduler could
 * not bind its port.
 */
async function untilSchedulerListens(
  log: string,
  scheduler: ProcessIdentity,
  context: CreateContext,
): Promise<{ dashboard: string | undefined } | 'taken'> {
  for (let since = -1; ;) {
    context.signal.throwIfAborted();
    const text = await readFile(log, 'utf8').catch(() => '');
    const dashboard = /dashboard at:\s+(?:https?:\/\/)?([\d.]+:\d+)/.exec(text)?.[1];
    if (/Scheduler at:\s+\S+/.test(text)) {
      // The dashboard's line follows at once; a Dask that prints none keeps the port asked for.
      if (dashboard || since >= 20) return { dashboard };
      since++;
    } else if (!(await isRunning(scheduler))) {
      if (/Errno 98|Address already in use/.test(text)) return 'taken';
      throw new DcpError(`the scheduler process exited during start-up (pid ${scheduler.pid})`);
    }
    // Workers are judged once their scheduler listens: until then one may die of a port's squatter.
    await sleep(50, undefined, { signal: context.signal });
  }
}

/** The role's TLS flags and variables; none for a cluster without TLS. */
function roleTls(
  tls: ClusterTls | null,
  role: 'scheduler' | 'worker',
  gate: string,
): { args: string[]; env: Record<string, string> } {
  return tls
    ? memberTls({ caFile: tls.caFile, cert: tls.cert[role], key: tls.key[role], gate, params: tls.params })
    : { args: [], env: {} };
}

/** Writes the dashboard gate into the cluster's own folder, which only its user can write. */
async function writeGate(dir: string): Promise<string> {
  const folder = join(dir, 'preload');
  await mkdir(folder, { mode: 0o700, recursive: true });
  const file = join(folder, GATE_FILE);
  await writeFile(file, GATE_SOURCE, { mode: 0o600 });
  return file;
}

/** The last `count` lines of a log, for error messages. */
async function tail(path: string, count = 12): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

export const localProvider: Provider = {
  name: 'local',
  defaultTimeoutMs: 60_000,

  plan(spec) {
    return [
      `start a Dask scheduler and ${spec.workers} worker${spec.workers === 1 ? '' : 's'}${spec.threads ? ` of ${spec.threads} thread${spec.threads === 1 ? '' : 's'}` : ''} as processes on this machine`,
      `bind them to ${HOST} only: nothing is reachable from other machines`,
    ];
  },

  async prepare(spec) {
    return { ...spec, python: (await findPython(spec.python)).executable };
  },

  async create(context: CreateContext): Promise<Endpoints> {
    const { spec, tls, logsDir } = context;
    const python = spec.python!;

    // Whether the dashboard can draw its plots, asked while the cluster starts.
    const bokeh = runPythonCode(
      python,
      'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("bokeh") else 3)',
    ).then(
      () => true,
      () => false,
    );
    const gate = tls ? await writeGate(context.dir) : '';
    let attempt = 1;
    const start = async (role: 'scheduler' | 'worker', name: string, args: string[], listens?: string) => {
      context.signal.throwIfAborted();
      const log = join(logsDir, `${name}.log`);
      const member = roleTls(tls, role, gate);
      // Run from the state folder: Python puts the working folder first on its import path.
      const identity = await spawnDetached(
        python,
        ['-m', 'dask', ...args, ...member.args],
        log,
        { ...process.env, PYTHONUNBUFFERED: '1', ...member.env },
        context.dir,
      ).catch((error: unknown) => {
        throw new DcpError(`the ${name} process exited during start-up: ${(error as Error).message}`);
      });
      await context.record({
        kind: 'process',
        id: String(identity.pid),
        data: { role: name, ...identity, log, attempt },
      });
      context.progress({
        step: `start ${name}`,
        status: 'done',
        detail: `pid ${identity.pid}${listens ? `, on ${listens}` : ''}`,
      });
      return { identity, log };
    };

    // Two `up`s of this user at once must not both take 8786: choosing the ports and binding them
    // is one step, under a lock.
    const release = await lock(join(clustersDir(), 'local-ports'), {
      realpath: false,
      stale: 30_000,
      update: 5_000,
      retries: { retries: 600, minTimeout: 50, maxTimeout: 100 },
    });
    let address: string;
    let schedulerPort: number;
    let dashboard: string;
    try {
      for (; ; attempt++) {
        // Another user's dcp does not share this lock: a port may still be taken meanwhile.
        schedulerPort = await choosePort(attempt === 1 ? 8786 : undefined, []);
        const dashboardPort = await choosePort(attempt === 1 ? 8787 : undefined, [schedulerPort]);
        address = `${tls ? 'tls' : 'tcp'}://${HOST}:${schedulerPort}`;
        const scheduler = await start(
          'scheduler',
          'scheduler',
          [
            'scheduler',
            '--host',
            HOST,
            '--port',
            String(schedulerPort),
            '--dashboard-address',
            `${HOST}:${dashboardPort}`,
            '--protocol',
            tls ? 'tls' : 'tcp',
          ],
          address,
        );
        // Workers start meanwhile: they retry until the scheduler listens, saving a round of waiting.
        const workers = [];
        for (let i = 1; i <= spec.workers; i++) {
          workers.push(
            await start('worker', `worker-${i}`, [
              'worker',
              address,
              '--host',
              HOST,
              '--name',
              `${spec.name}-worker-${i}`,
              // --no-dashboard still leaves the worker's HTTP server (/health, /metrics) listening on
              // every interface; this keeps it on loopback with the rest.
              '--no-dashboard',
              '--dashboard-address',
              `${HOST}:0`,
              // Spilled data and worker files in the cluster's own 0700 folder: in the shared
              // dask-worker-space another user could read them, or swap in pickles the worker loads.
              '--local-directory',
              join(context.dir, 'work'),
              ...(spec.threads ? ['--nthreads', String(spec.threads)] : []),
              ...(spec.memoryLimit ? ['--memory-limit', spec.memoryLimit] : []),
            ]),
          );
        }
        const listens = await untilSchedulerListens(scheduler.log, scheduler.identity, context);
        if (listens !== 'taken') {
          dashboard = listens.dashboard ?? `${HOST}:${dashboardPort}`;
          break;
        }
        await Promise.all(workers.map((worker) => stopProcess(worker.identity)));
        if (attempt >= 3)
          throw new DcpError(
            `port ${schedulerPort} was taken by another process before the scheduler bound it, ${attempt} times`,
            { hint: 'try again' },
          );
        context.progress({
          step: 'ports',
          status: 'info',
          detail: `${schedulerPort} was taken meanwhile by another process: trying another`,
        });
      }
    } finally {
      await release();
    }
    return {
      schedulerAddress: address,
      dashboardUrl: `${tls ? 'https' : 'http'}://${dashboard}/status`,
      details: {
        python,
        scheduler_port: schedulerPort,
        dashboard_port: Number(dashboard.split(':')[1]),
        bokeh: await bokeh,
      },
    };
  },

  async checkHealth(context) {
    for (const resource of current(await readJournal(context.dir))) {
      if (!(await isRunning(resource.data))) {
        throw new DcpError(
          `the ${resource.data.role} process exited during start-up (pid ${resource.data.pid})`,
        );
      }
    }
  },

  async diagnostics(dir) {
    const logsDir = join(dir, 'logs');
    const logs = (await readdir(logsDir).catch(() => []))
      .filter((f) => f.endsWith('.log'))
      .sort((a, b) => (a === 'scheduler.log' ? -1 : b === 'scheduler.log' ? 1 : a.localeCompare(b)));
    const parts = await Promise.all(
      logs.map(
        async (file) =>
          `--- ${basename(file, '.log')}: the last lines of its log ---\n${(await tail(join(logsDir, file), 8)) || '(empty)'}`,
      ),
    );
    return parts.join('\n');
  },

  async destroy(resources: Resource[], context: DestroyContext): Promise<string[]> {
    const removed: string[] = [];
    const stop = async (r: ProcessResource) => {
      const stopped = await stopProcess(r.data as ProcessIdentity);
      removed.push(`${r.data.role} (pid ${r.data.pid}${stopped ? '' : ', had exited'})`);
    };
    // Workers first, then the scheduler, so workers do not spend the grace period reconnecting.
    await Promise.all(
      processes(resources)
        .reverse()
        .filter((r) => r.data.role !== 'scheduler')
        .map(stop),
    );
    for (const r of processes(resources).filter((p) => p.data.role === 'scheduler')) await stop(r);
    if (removed.length > 0)
      context.progress({ step: 'stop processes', status: 'done', detail: removed.join(', ') });
    return removed;
  },

  async members(_record: ClusterRecord, resources: Resource[]): Promise<MemberStatus[]> {
    return Promise.all(
      current(resources).map(async (r) => ({
        role: r.data.role,
        id: `pid ${r.data.pid}`,
        running: await isRunning(r.data),
      })),
    );
  },
};
