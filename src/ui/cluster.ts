/** How clusters look: progress lines, the `up` summary, tables, status. */
import { daskTlsYaml } from '../config/dask-tls.js';
import type { UpPlan } from '../cluster/spec.js';
import type { ClusterEntry, ClusterRecord } from '../cluster/state.js';
import type { ProviderName } from '../config/schema.js';
import { envSnippet, pythonClientSnippet } from '../cluster/snippet.js';
import type { DiscoveredCluster, MemberStatus, ProgressEvent } from '../providers/provider.js';
import type { DoorReport } from '../cluster/doctor.js';
import type { Style } from './style.js';

export type SnippetFormat = 'python' | 'env' | 'yaml';

export function snippetFor(record: ClusterRecord, format: SnippetFormat): string {
  const address = record.scheduler_address ?? '';
  switch (format) {
    case 'python':
      return pythonClientSnippet(address, record.tls);
    case 'env':
      return envSnippet(address, record.tls);
    case 'yaml':
      return record.tls ? daskTlsYaml(record.tls) : '# TLS is off: no Dask configuration is needed\n';
  }
}

/** The client's certificate and key, or the one file that holds both. */
export function clientFiles(tls: NonNullable<ClusterRecord['tls']>): string {
  return tls.clientKey ? `${tls.clientCert} + ${tls.clientKey}` : `${tls.clientCert} (certificate and key)`;
}

/**
 * How to reach the dashboard, for the summaries. Behind mutual TLS a browser cannot open the URL
 * itself: the `dcp dashboard` command is the way in. Without TLS it is open, as the user asked.
 */
export function dashboardRows(record: ClusterRecord): [string, string][] {
  if (!record.dashboard_url) return [];
  if (!record.tls)
    return [['dashboard', `${record.dashboard_url} (plain HTTP, open to whoever reaches it: TLS is off)`]];
  return [
    ['dashboard', `dcp dashboard ${record.name} (mutual TLS: ${record.dashboard_url})`],
    ...(record.details.bokeh === false ? [['', NO_BOKEH] as [string, string]] : []),
  ];
}

/** Said where the dashboard is offered, for a cluster whose Python cannot draw its plots. */
export const NO_BOKEH =
  "no plots: the cluster's Python lacks Bokeh (pip-install the version its /status page names)";

/** What `up` can say of a cluster it made: ready, or made without waiting (--no-wait). */
export function upState(record: ClusterRecord): string {
  return record.status === 'ready' ? 'ready' : 'starting (not waited for)';
}

export function clusterJson(record: ClusterRecord) {
  return {
    name: record.name,
    provider: record.provider,
    status: record.status,
    scheduler_address: record.scheduler_address,
    dashboard_url: record.dashboard_url,
    dashboard_command: record.dashboard_url ? `dcp dashboard ${record.name}` : null,
    workers: record.workers,
    tls: record.tls && {
      ca_file: record.tls.caFile,
      client_cert: record.tls.clientCert,
      client_key: record.tls.clientKey,
    },
    dask_config_file: record.dask_config_file,
    created_at: record.created_at,
    snippet: snippetFor(record, 'python'),
  };
}

/** One stderr line per engine event, for runs without the terminal UI. */
export function progressLine(event: ProgressEvent, style: Style): string {
  const mark =
    event.status === 'done' ? style.green('✓') : event.status === 'start' ? style.cyan('›') : style.dim('·');
  return `${mark} ${event.step}${event.detail ? style.dim(`: ${event.detail}`) : ''}`;
}

const indent = (text: string) => text.trimEnd().replace(/^(?=.)/gm, '    ');

export function renderUp(record: ClusterRecord, style: Style): string {
  const rows: [string, string][] = [
    ['scheduler', record.scheduler_address ?? ''],
    ...dashboardRows(record),
    ['workers', String(record.workers)],
    [
      'TLS',
      record.tls
        ? `CA ${record.tls.caFile}\n             client ${clientFiles(record.tls)}`
        : style.yellow('off'),
    ],
    ...(record.dask_config_file
      ? ([
          [
            'Dask config',
            `${record.dask_config_file} (a plain Client("${record.scheduler_address}") works now)`,
          ],
        ] as [string, string][])
      : []),
  ];
  return [
    `${style.green('✓')} Cluster ${style.bold(record.name)} is ${upState(record)} (${record.provider}, ${record.workers} worker${record.workers === 1 ? '' : 's'}, ${record.tls ? 'TLS' : 'no TLS'})`,
    '',
    ...rows.map(([label, value]) => `  ${label.padEnd(11)} ${value}`),
    '',
    style.bold('Connect from Python:'),
    indent(snippetFor(record, 'python')),
    '',
    style.bold('Or with environment variables:'),
    indent(snippetFor(record, 'env')),
    '',
    `${style.bold('Next:')} dcp status ${record.name}  ·  dcp dashboard ${record.name}  ·  dcp down ${record.name}`,
    '',
  ].join('\n');
}

/** The review before `up` creates anything: what, where, open to whom, and where keys go. */
export function reviewLines(
  plan: UpPlan,
  providerPlan: string[],
  clusterStateDir: string,
  clientConfig: string,
): string[] {
  const { spec, tls } = plan;
  const cloud = spec.provider !== 'local';
  const lines = [...providerPlan];
  if (cloud) {
    if (spec.networking === 'private')
      lines.push('give no VM a public IP: the scheduler is reachable inside its network only');
    for (const rule of spec.ingress) {
      lines.push(
        `open ports ${rule.ports.join(', ')} to ${rule.cidr === 'me' ? 'your public address only (looked up now)' : rule.cidr}`,
      );
    }
  }
  lines.push(
    tls.mode === 'auto'
      ? `TLS: a fresh CA and certificates in ${clusterStateDir}/tls; the CA key never leaves this machine`
      : tls.mode === 'byo'
        ? `TLS: your files (${'dir' in tls ? tls.dir : [tls.ca, tls.cert, tls.key ?? '(its key is in the certificate file)'].join(', ')}), checked before anything starts`
        : 'TLS off: plain TCP, unencrypted and unauthenticated',
  );
  if (tls.mode !== 'off') lines.push(`point plain Client("tls://...") at it in ${clientConfig}`);
  // What a project file chose leads, marked: whoever wrote that file chose it, not these flags.
  return [...plan.fromProject.map((line) => `! ${line}`), ...lines];
}

/** Rows under a bold header, each column as wide as its widest cell. */
function table(rows: string[][], style: Style): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return (
    rows
      .map((row, i) =>
        row
          .map((cell, j) => (i === 0 ? style.bold(cell.padEnd(widths[j]!)) : cell.padEnd(widths[j]!)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/**
 * A cluster in a list: one shape whether this machine's state or a cloud's tags tell of it. What
 * one source cannot know is null.
 */
export interface ListEntry {
  name: string;
  provider: ProviderName | null;
  location: string | null;
  /** The record's status; `damaged` when this machine's state cannot be read; a cloud's view otherwise. */
  status: string;
  scheduler_address: string | null;
  dashboard_url: string | null;
  workers: number | null;
  created_at: string | null;
  /** Whether this machine has state for it. */
  here: boolean;
  /** Why the state is damaged. */
  problem: string | null;
  /** What a cloud reports: its members, and the other resources carrying the cluster's tag. */
  members: MemberStatus[] | null;
  resources: string[] | null;
}

const NOTHING = {
  location: null,
  scheduler_address: null,
  dashboard_url: null,
  workers: null,
  created_at: null,
};

export function listEntry(entry: ClusterEntry): ListEntry {
  const { record } = entry;
  if (!record) {
    return {
      name: entry.name,
      provider: null,
      ...NOTHING,
      status: 'damaged',
      here: true,
      problem: entry.damaged ?? 'its state has no cluster.json (an up that ended before writing it)',
      members: null,
      resources: null,
    };
  }
  return {
    name: record.name,
    provider: record.provider,
    location: placeOf(record.details),
    status: record.status,
    scheduler_address: record.scheduler_address,
    dashboard_url: record.dashboard_url,
    workers: record.workers,
    created_at: record.created_at,
    here: true,
    problem: null,
    members: null,
    resources: null,
  };
}

/** Where a cloud put it, as its record says: AWS's and DigitalOcean's region, GCP's zone, Azure's location. */
function placeOf(details: Record<string, unknown>): string | null {
  const place = details.region ?? details.zone ?? details.location;
  return typeof place === 'string' ? place : null;
}

export function discoveredEntry(cluster: DiscoveredCluster, here: boolean): ListEntry {
  const scheduler = cluster.members.find((member) => member.role === 'scheduler');
  return {
    name: cluster.name,
    provider: cluster.provider,
    ...NOTHING,
    location: cluster.location,
    status: scheduler?.running ? 'running' : (cluster.stoppedStatus ?? 'stopped'),
    scheduler_address: cluster.schedulerAddress,
    workers: cluster.members.filter((member) => member.role === 'worker').length,
    here,
    problem: null,
    members: cluster.members,
    resources: cluster.resources,
  };
}

export function renderList(clusters: ListEntry[], style: Style): string {
  if (clusters.length === 0) return `No clusters. Create one with: dcp up\n`;
  const damaged = clusters.filter((c) => c.problem);
  return (
    table(
      [
        ['NAME', 'PROVIDER', 'STATUS', 'SCHEDULER', 'WORKERS', 'CREATED'],
        ...clusters.map((c) => [
          c.name,
          c.provider ?? '-',
          c.problem ? style.yellow(c.status) : c.status,
          c.scheduler_address ?? '-',
          c.workers === null ? '-' : String(c.workers),
          c.created_at?.replace('T', ' ').slice(0, 16) ?? '-',
        ]),
      ],
      style,
    ) +
    damaged
      .map((c) => `${style.yellow('!')} ${c.name}: ${c.problem}; dcp down ${c.name} removes it\n`)
      .join('')
  );
}

/** `dcp list --provider`: what a cloud holds, and whether this machine has its state. */
export function renderDiscovered(
  clusters: ListEntry[],
  provider: string,
  location: string | undefined,
  style: Style,
): string {
  if (clusters.length === 0) return `No dcp clusters in ${provider}${location ? ` ${location}` : ''}.\n`;
  return table(
    [
      ['NAME', 'REGION', 'STATUS', 'SCHEDULER', 'RUNNING', 'OTHER', 'STATE HERE'],
      ...clusters.map((c) => [
        c.name,
        c.location ?? '-',
        c.status,
        c.scheduler_address ?? '-',
        `${c.members!.filter((m) => m.running).length}/${c.members!.length}`,
        c.resources!.join(', ') || '-',
        c.here ? 'yes' : 'no',
      ]),
    ],
    style,
  );
}

export interface StatusReport {
  name: string;
  provider: string;
  scheduler_address: string | null;
  dashboard_url: string | null;
  reachable: boolean;
  workers: number;
  expected_workers: number;
  threads: number;
  members: MemberStatus[];
}

export function renderDoctor(name: string, checks: DoorReport[], style: Style): string {
  const marks = {
    holds: style.green('✓'),
    open: style.red('✗'),
    warn: style.yellow('!'),
    skip: style.dim('-'),
  };
  const open = checks.filter((check) => check.verdict === 'open').length;
  return [
    ...checks.map(
      (check) =>
        `${marks[check.verdict]} ${check.door}: ${check.detail}${check.fix ? style.dim(` (fix: ${check.fix})`) : ''}`,
    ),
    '',
    open === 0
      ? `${style.green('✓')} every door of ${style.bold(name)} holds`
      : `${style.red('✗')} ${open} door${open === 1 ? '' : 's'} of ${style.bold(name)} ${open === 1 ? 'does' : 'do'} not hold`,
    '',
  ].join('\n');
}

export function renderStatus(status: StatusReport, style: Style): string {
  const healthy = status.reachable && status.workers >= status.expected_workers;
  return [
    `${healthy ? style.green('✓') : style.yellow('!')} ${style.bold(status.name)} (${status.provider}): scheduler ${status.reachable ? 'reachable' : style.red('not reachable')} at ${status.scheduler_address}`,
    `  workers     ${status.workers}/${status.expected_workers} connected${status.reachable ? `, ${status.threads} threads` : ''}`,
    `  dashboard   ${status.dashboard_url}`,
    ...status.members.map(
      (m) => `  ${m.role.padEnd(11)} ${m.id} ${m.running ? 'running' : style.red('not running')}`,
    ),
    '',
  ].join('\n');
}
