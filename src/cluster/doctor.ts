/**
 * `dcp doctor`: knocks on every door of the user's own cluster the way an outsider would, and
 * says of each whether it holds. The scheduler port: no certificate, another CA's certificate,
 * plain TCP, a TLS version below the minimum (all refused) and the client certificate (taken).
 * Each member's HTTP server: no certificate and plain HTTP refused, `/status` served to the
 * client certificate. Then certificates (expiry, strict X.509), where members listen (loopback;
 * for clouds the live firewall against the ingress asked for), and who can read the keys.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { get as plainGet } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ConnectionOptions } from 'node:tls';
import ipaddr from 'ipaddr.js';
import type { ClientTls } from '../config/dask-tls.js';
import type { IngressRule } from '../config/ingress.js';
import { nodeTlsLimits } from '../config/tls-params.js';
import type { Provider } from '../providers/provider.js';
import { messageOf } from '../errors.js';
import { clientTlsOptions, memberGet, probe } from './readiness.js';
import type { ClusterRecord, Resource } from './state.js';

export type Verdict = 'holds' | 'open' | 'warn' | 'skip';

export interface DoorReport {
  /** What was tried: `scheduler: no certificate`. */
  door: string;
  verdict: Verdict;
  detail: string;
  /** For a door that does not hold: what to do. */
  fix?: string;
}

/** A firewall rule as the cloud has it now: who (a CIDR) reaches which TCP ports (`all`: every one). */
export interface LiveRule {
  cidr: string;
  ports: number[] | 'all';
}

export interface FirewallView {
  /** Where the rules live, for messages (`sg-0abc in eu-west-1`). */
  where: string;
  rules: LiveRule[];
  /** What the user asked for when the cluster was made; undefined for a cluster made before dcp kept it. */
  asked: IngressRule[] | undefined;
}

export interface DoctorInput {
  record: ClusterRecord;
  dir: string;
  resources: Resource[];
  provider: Provider;
  now?: Date;
}

const EXPIRY_WARNING_DAYS = 14;
const DAY_MS = 86_400_000;

const remake = (name: string) => `make it again with TLS: dcp down ${name} && dcp up --name ${name}`;

/** Whether a TCP port answers plain Dask: a Dask server speaks first (its handshake), a TLS one waits. */
function speaksPlain(address: string, timeoutMs = 1_500): Promise<boolean> {
  const url = new URL(address.replace(/^\w+:/, 'http:'));
  return new Promise((resolve) => {
    const socket = createConnection({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) });
    const done = (plain: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(plain);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    // TLS records start 0x14-0x17 (an alert, a handshake): anything else is something in the clear.
    socket.once('data', (data: Buffer) => done(data[0]! < 0x14 || data[0]! > 0x17));
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/** Whether plain HTTP is answered at all, whatever the status: a gated server speaks TLS only. */
function servesPlainHttp(url: string): Promise<boolean> {
  const plain = url.replace(/^https:/, 'http:');
  return new Promise((resolve) => {
    const req = plainGet(plain, { signal: AbortSignal.timeout(5_000), agent: false }, () => {
      resolve(true);
      req.destroy();
    });
    req.once('error', () => resolve(false));
  });
}

/** A connection that never got to TLS: nothing to judge there (another network, a stopped member). */
const notReached = (result: { ok: boolean; error?: string }) =>
  !result.ok && /^(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|no answer)$/.test(result.error ?? '');

interface Stranger {
  cert: Buffer;
  key: Buffer;
}

const refused = (result: { ok: boolean; error?: string }) => `refused (${result.error ?? 'no handshake'})`;

/** A certificate from a CA of nobody's: what a stranger holding "a" Dask certificate would present. */
async function strangerCertificate(): Promise<Stranger> {
  const { generateCertificateSet } = await import('../certs/gen.js');
  const dir = await mkdtemp(join(tmpdir(), 'dcp-doctor-'));
  try {
    const set = await generateCertificateSet({
      out: join(dir, 'stranger'),
      san: [],
      days: 1,
      caDays: 2,
      force: false,
      keyType: 'ec',
    });
    const [cert, key] = await Promise.all([readFile(set.files.cert.client), readFile(set.files.key.client)]);
    return { cert, key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function expiry(label: string, validTo: Date, now: Date): DoorReport {
  const days = Math.floor((validTo.getTime() - now.getTime()) / DAY_MS);
  const door = `certificate: ${label}`;
  if (days < 0)
    return {
      door,
      verdict: 'open',
      detail: `expired ${-days} days ago (${validTo.toISOString().slice(0, 10)})`,
      fix: 'make new certificates: dcp certs gen, or a new cluster',
    };
  return {
    door,
    verdict: days < EXPIRY_WARNING_DAYS ? 'warn' : 'holds',
    detail: `${days} days left (until ${validTo.toISOString().slice(0, 10)})`,
    ...(days < EXPIRY_WARNING_DAYS
      ? { fix: 'renew it before it runs out: the cluster stops taking clients then' }
      : {}),
  };
}

/** Who knocks: the cluster's own client, and one who trusts the CA but has no certificate. */
async function callers(tls: ClientTls): Promise<{ client: ConnectionOptions; anonymous: ConnectionOptions }> {
  const client = await clientTlsOptions(tls);
  const anonymous = {
    ca: client.ca,
    rejectUnauthorized: true,
    checkServerIdentity: () => undefined,
    ...nodeTlsLimits(tls),
  };
  return { client, anonymous };
}

async function schedulerDoors(
  record: ClusterRecord,
  tls: ClientTls,
  stranger: Stranger,
  now: Date,
): Promise<DoorReport[]> {
  const address = record.scheduler_address!;
  const { client, anonymous } = await callers(tls);
  const oldVersion =
    tls.minVersion === 1.3
      ? { ...client, minVersion: 'TLSv1.2' as const, maxVersion: 'TLSv1.2' as const }
      : // Node offers TLS 1.0 and 1.1 only at OpenSSL's security level 0.
        {
          ...client,
          minVersion: 'TLSv1' as const,
          maxVersion: 'TLSv1.1' as const,
          ciphers: 'DEFAULT@SECLEVEL=0',
        };
  const unencrypted = {
    ...client,
    minVersion: 'TLSv1.2' as const,
    maxVersion: 'TLSv1.2' as const,
    // Authenticated suites only: an anonymous one cannot carry the client certificate at all.
    ciphers: 'eNULL:!aNULL:@SECLEVEL=0',
  };
  const [accepted, none, foreign, plain, old, clear] = await Promise.all([
    probe(address, client),
    probe(address, anonymous),
    probe(address, { ...anonymous, ...stranger }),
    speaksPlain(address),
    probe(address, oldVersion),
    probe(address, unencrypted),
  ]);
  const below = tls.minVersion === 1.3 ? 'TLS 1.2' : 'TLS 1.0/1.1';
  const refusals: DoorReport[] = [
    none.ok
      ? {
          door: 'scheduler: no certificate',
          verdict: 'open',
          detail: `${address} lets a client in without a certificate`,
          fix: remake(record.name),
        }
      : { door: 'scheduler: no certificate', verdict: 'holds', detail: refused(none) },
    foreign.ok
      ? {
          door: "scheduler: another CA's certificate",
          verdict: 'open',
          detail: `${address} takes a certificate this cluster's CA never issued`,
          fix: `the scheduler trusts more than its own CA: ${remake(record.name)}`,
        }
      : { door: "scheduler: another CA's certificate", verdict: 'holds', detail: refused(foreign) },
    clear.ok
      ? {
          door: 'scheduler: no encryption (NULL ciphers)',
          verdict: 'open',
          detail: `${address} takes a TLS 1.2 handshake that encrypts nothing`,
          fix: 'leave NULL ciphers out of tls_ciphers, and make the cluster again',
        }
      : { door: 'scheduler: no encryption (NULL ciphers)', verdict: 'holds', detail: refused(clear) },
    !old.ok && /NO_PROTOCOLS_AVAILABLE|UNSUPPORTED_PROTOCOL|no protocols/i.test(old.error ?? '')
      ? {
          door: `scheduler: ${below}`,
          verdict: 'skip',
          detail: `this machine's OpenSSL cannot offer ${below}, so it was not tried`,
        }
      : old.ok
        ? {
            door: `scheduler: ${below}`,
            verdict: 'open',
            detail: `${address} takes ${below}, below the cluster's minimum ${tls.minVersion ?? 1.2}`,
            fix: `set the minimum and make the cluster again: dcp up --tls-min-version ${tls.minVersion ?? 1.2}`,
          }
        : { door: `scheduler: ${below}`, verdict: 'holds', detail: refused(old) },
  ];
  return [
    accepted.ok
      ? { door: 'scheduler: the client certificate', verdict: 'holds', detail: `${address} takes it` }
      : {
          door: 'scheduler: the client certificate',
          verdict: 'open',
          detail: `${address} does not complete a mutual-TLS handshake with it (${accepted.error ?? 'no answer'}): ${notReached(accepted) ? 'nothing answered from this machine (still booting, gone, or this address is not in its ingress)' : 'something else may be on its port'}`,
          fix: `dcp status ${record.name}; if the scheduler is gone: dcp down ${record.name}`,
        },
    // A scheduler that was not there to ask makes every refusal meaningless.
    ...(notReached(accepted)
      ? refusals.map((report): DoorReport => ({ door: report.door, verdict: 'skip', detail: 'not reached' }))
      : refusals),
    plain
      ? {
          door: 'scheduler: plain TCP',
          verdict: 'open',
          detail: `${address.replace(/^tls:/, 'tcp:')} speaks Dask in the clear: anyone who reaches it can run code`,
          fix: `stop whatever listens there, then: ${remake(record.name)}`,
        }
      : notReached(accepted)
        ? { door: 'scheduler: plain TCP', verdict: 'skip', detail: 'not reached' }
        : { door: 'scheduler: plain TCP', verdict: 'holds', detail: 'no plain Dask on its port' },
    ...(accepted.peer?.valid_to ? [expiry("the scheduler's", new Date(accepted.peer.valid_to), now)] : []),
  ];
}

/** One member's HTTP server (`https://host:port`): refuses strangers, serves the client certificate. */
async function httpDoors(
  label: string,
  base: string,
  tls: ClientTls,
  stranger: Stranger,
  path: string,
  fix: string,
): Promise<DoorReport[]> {
  const { anonymous } = await callers(tls);
  const url = new URL(path, base).href;
  const [none, foreign, plain, served] = await Promise.all([
    probe(base, anonymous),
    probe(base, { ...anonymous, ...stranger }),
    servesPlainHttp(new URL('/json/identity.json', base).href),
    memberGet(url, tls).then(
      (answer) => answer.status,
      (error: unknown) => messageOf(error),
    ),
  ]);
  if (notReached(none) && !plain)
    return [{ door: `${label}: no certificate`, verdict: 'skip', detail: 'not reached from here' }];
  return [
    none.ok || plain
      ? {
          door: `${label}: no certificate`,
          verdict: 'open',
          detail: `${plain ? url.replace('https:', 'http:') : url} answers without a certificate: its logs and tracebacks are anyone's`,
          fix: `the member runs without dcp's dashboard gate: ${fix}`,
        }
      : { door: `${label}: no certificate`, verdict: 'holds', detail: refused(none) },
    foreign.ok
      ? {
          door: `${label}: another CA's certificate`,
          verdict: 'open',
          detail: `${url} takes a certificate this cluster's CA never issued`,
          fix,
        }
      : { door: `${label}: another CA's certificate`, verdict: 'holds', detail: refused(foreign) },
    served === 200
      ? { door: `${label}: the client certificate`, verdict: 'holds', detail: `${url} served` }
      : {
          door: `${label}: the client certificate`,
          verdict: 'open',
          detail: `${url} does not serve the client certificate (${served}): something else may be on its port`,
          fix,
        },
  ];
}

async function dashboardDoors(
  record: ClusterRecord,
  tls: ClientTls,
  stranger: Stranger,
): Promise<DoorReport[]> {
  const base = record.dashboard_url!;
  const reports = await httpDoors('dashboard', base, tls, stranger, '/status', remake(record.name));
  // Each worker's HTTP server, where the scheduler says it is.
  const identity = await memberGet(new URL('/json/identity.json', base).href, tls).catch(() => undefined);
  const workers =
    identity?.status === 200 ? (JSON.parse(identity.body) as { workers?: object }).workers : undefined;
  for (const [address, info] of Object.entries(workers ?? {})) {
    const port = (info as { services?: { dashboard?: number } }).services?.dashboard;
    if (!port) continue;
    const host = new URL(address.replace(/^\w+:/, 'http:')).hostname;
    reports.push(
      ...(await httpDoors(
        `worker ${host}:${port}`,
        `https://${host}:${port}/`,
        tls,
        stranger,
        '/health',
        remake(record.name),
      )),
    );
  }
  return reports;
}
async function certificateDoors(
  record: ClusterRecord,
  tls: ClientTls,
  dir: string,
  now: Date,
): Promise<DoorReport[]> {
  const [{ verifyFiles }, { parseCertificate }] = await Promise.all([
    import('../certs/verify.js'),
    import('../certs/x509.js'),
  ]);
  const reports: DoorReport[] = [];
  for (const [label, file] of [
    ['the CA', tls.caFile],
    ['the client', tls.clientCert],
  ] as const) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (!text) {
      reports.push({
        door: `certificate: ${label}`,
        verdict: 'open',
        detail: `${file} cannot be read`,
        fix: `dcp down ${record.name}`,
      });
      continue;
    }
    reports.push(expiry(label, parseCertificate(text).notAfter, now));
  }
  // Strict X.509 (Python 3.13's default): the client's files, and the role files kept here.
  const roles: [string, string | undefined][] = [['client', tls.clientKey ?? undefined]];
  for (const role of ['scheduler', 'worker']) {
    const cert = join(dir, 'tls', `${role}.pem`);
    if (await stat(cert).catch(() => undefined)) roles.push([role, join(dir, 'tls', `${role}-key.pem`)]);
  }
  for (const [role, key] of roles) {
    const cert = role === 'client' ? tls.clientCert : join(dir, 'tls', `${role}.pem`);
    const report = await verifyFiles({
      ca: tls.caFile,
      cert,
      ...(key ? { key } : {}),
      role: role as 'client',
    }).catch((error: unknown) => ({ problems: [{ message: messageOf(error), hint: '' }], warnings: [] }));
    reports.push(
      report.problems.length > 0
        ? {
            door: `certificate: strict X.509 (${role})`,
            verdict: 'open',
            detail: report.problems.map((p) => p.message).join('; '),
            fix:
              report.problems
                .map((p) => p.hint)
                .filter(Boolean)
                .join('; ') || 'dcp certs verify says more',
          }
        : { door: `certificate: strict X.509 (${role})`, verdict: 'holds', detail: `${cert} passes` },
    );
  }
  return reports;
}

/** Local members listen on loopback only: every socket of their process groups. */
async function listeningDoors(record: ClusterRecord, resources: Resource[]): Promise<DoorReport[]> {
  const groups = new Set(
    resources.filter((r) => r.kind === 'process').map((r) => Number((r.data as { pid: number }).pid)),
  );
  const run = promisify(execFile);
  let sockets: string;
  let members: Set<number>;
  try {
    const [ss, ps] = await Promise.all([run('ss', ['-H', '-ltnup']), run('ps', ['-e', '-o', 'pid=,pgid='])]);
    sockets = ss.stdout;
    members = new Set(
      ps.stdout
        .split('\n')
        .map((line) => line.trim().split(/\s+/).map(Number))
        .filter(([, pgid]) => groups.has(pgid!))
        .map(([pid]) => pid!),
    );
  } catch (error) {
    return [
      {
        door: 'listening: loopback only',
        verdict: 'skip',
        detail: `ss or ps could not be run (${messageOf(error)})`,
      },
    ];
  }
  if (members.size === 0)
    return [
      {
        door: 'listening: loopback only',
        verdict: 'skip',
        detail: `no process of ${record.name} is running`,
      },
    ];
  const outside = sockets
    .split('\n')
    .filter((line) => [...members].some((pid) => line.includes(`pid=${pid},`)))
    .map((line) => line.trim().split(/\s+/)[4] ?? '')
    .filter((local) => !/^(127\.\d+\.\d+\.\d+|\[::1\]|::1):\d+$/.test(local));
  return [
    outside.length > 0
      ? {
          door: 'listening: loopback only',
          verdict: 'open',
          detail: `${record.name}'s processes listen on ${outside.join(', ')}: other machines can reach them`,
          fix: `dcp down ${record.name}, and make it again with dcp up (it binds 127.0.0.1)`,
        }
      : {
          door: 'listening: loopback only',
          verdict: 'holds',
          detail: `every socket of ${members.size} processes is on 127.0.0.1`,
        },
  ];
}

/** `8786,8787`, `1024-65535`: ports as runs. */
function portRuns(ports: number[]): string {
  const runs: string[] = [];
  for (let i = 0; i < ports.length;) {
    let j = i;
    while (j + 1 < ports.length && ports[j + 1] === ports[j]! + 1) j++;
    runs.push(j > i + 1 ? `${ports[i]}-${ports[j]}` : ports.slice(i, j + 1).join(','));
    i = j + 1;
  }
  return runs.join(',');
}

const isWorld = (cidr: string) => {
  const [address, bits] = ipaddr.parseCIDR(cidr);
  return bits === 0 || (address.kind() === 'ipv4' && bits < 8) || (address.kind() === 'ipv6' && bits < 16);
};

/** The live firewall against what was asked: nothing wider, nothing to the world unless asked. */
export function firewallDoors(view: FirewallView): DoorReport[] {
  const reports: DoorReport[] = [];
  for (const rule of view.rules) {
    const asked = view.asked?.find((wanted) => wanted.cidr === rule.cidr);
    const extra =
      rule.ports === 'all'
        ? 'all'
        : asked
          ? rule.ports.filter((port) => !asked.ports.includes(port))
          : rule.ports;
    const ports = rule.ports === 'all' ? 'every port' : portRuns(rule.ports);
    const door = `firewall: ${rule.cidr} → ${ports}`;
    if (extra === 'all' || extra.length > 0 || (view.asked === undefined && isWorld(rule.cidr))) {
      reports.push({
        door,
        verdict: 'open',
        detail: `${view.where} lets ${rule.cidr}${isWorld(rule.cidr) ? ' (the whole internet)' : ''} reach ${extra === 'all' ? 'every port' : portRuns(extra)}, which the cluster was not made with`,
        fix: `remove that rule from ${view.where}, or make the cluster again with the ingress you want (--ingress)`,
      });
    } else
      reports.push({
        door,
        verdict: 'holds',
        detail: `asked for${isWorld(rule.cidr) ? ' (by name, with --allow-anywhere)' : ''}`,
      });
  }
  if (view.rules.length === 0)
    reports.push({ door: 'firewall', verdict: 'holds', detail: `${view.where} lets nobody in from outside` });
  return reports;
}

/** Key files: the client's key (or the combined file) and the CA key dcp made, for this user only. */
async function keyDoors(tls: ClientTls, dir: string): Promise<DoorReport[]> {
  const keys = [tls.clientKey ?? tls.clientCert, join(dir, 'tls', 'ca-key.pem')];
  const reports: DoorReport[] = [];
  for (const key of keys) {
    const info = await stat(key).catch(() => undefined);
    if (!info) continue;
    const mode = info.mode & 0o777;
    const others = mode & 0o077;
    const foreignOwner = typeof process.getuid === 'function' && info.uid !== process.getuid();
    reports.push(
      others || foreignOwner
        ? {
            door: `key file: ${key}`,
            verdict: 'open',
            detail: others
              ? `mode ${mode.toString(8).padStart(4, '0')}: other users can read it, and act as this cluster's ${key.includes('ca-key') ? 'CA' : 'client'}`
              : `owned by uid ${info.uid}, not you: that user can read it`,
            fix: others ? `chmod 600 ${key}` : `make a copy of your own, chmod 600`,
          }
        : { door: `key file: ${key}`, verdict: 'holds', detail: 'mode 0600, yours' },
    );
  }
  return reports;
}

/** Every check, in the order a reader thinks of the doors. */
export async function examine(input: DoctorInput): Promise<DoorReport[]> {
  const { record, dir, resources, provider } = input;
  const now = input.now ?? new Date();
  const tls = record.tls;
  const reports: DoorReport[] = [];
  if (!record.scheduler_address)
    return [
      {
        door: 'scheduler',
        verdict: 'open',
        detail: `${record.name} has no scheduler address (it is ${record.status})`,
        fix: `dcp down ${record.name}`,
      },
    ];
  if (!tls) {
    const plain = await speaksPlain(record.scheduler_address);
    reports.push({
      door: 'scheduler: plain TCP',
      verdict: 'open',
      detail: `TLS is off: ${record.scheduler_address}${plain ? ' speaks Dask in the clear' : ''}, with no authentication: whoever reaches it can run code`,
      fix: remake(record.name),
    });
    if (record.dashboard_url)
      reports.push({
        door: 'dashboard: no certificate',
        verdict: 'open',
        detail: `TLS is off: ${record.dashboard_url} is plain HTTP with no login`,
        fix: remake(record.name),
      });
  } else {
    const stranger = await strangerCertificate();
    reports.push(...(await schedulerDoors(record, tls, stranger, now)));
    if (record.dashboard_url) reports.push(...(await dashboardDoors(record, tls, stranger)));
    reports.push(...(await certificateDoors(record, tls, dir, now)));
  }
  if (record.provider === 'local') reports.push(...(await listeningDoors(record, resources)));
  else if (provider.firewall) {
    const view = await provider.firewall(record).catch((error: unknown) => messageOf(error));
    reports.push(
      ...(typeof view === 'string'
        ? [{ door: 'firewall', verdict: 'warn' as const, detail: `the rules could not be read: ${view}` }]
        : firewallDoors(view)),
    );
  } else
    reports.push({
      door: 'firewall',
      verdict: 'skip',
      detail: `dcp cannot read ${record.provider}'s firewall yet`,
    });
  if (tls) reports.push(...(await keyDoors(tls, dir)));
  if (record.provider !== 'local')
    reports.push({
      door: 'keys on the VMs',
      verdict: 'skip',
      detail:
        "not read back from the VMs: dcp's boot script gives each the CA certificate and its own role's key only",
    });
  return reports;
}
