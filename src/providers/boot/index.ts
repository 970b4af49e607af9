/**
 * The first-boot script every cloud VM of a cluster runs as root (EC2 user data, GCP startup
 * script, Azure custom data, droplet user data). It writes the VM's TLS files into a root-only
 * folder, then starts `dask scheduler` or `dask worker` detached, under a supervisor that powers
 * the VM off when Dask exits: the scheduler exits after its idle timeout, and a worker once its
 * scheduler has been gone for a while, so an abandoned cluster stops billing by itself.
 *
 * A VM receives the CA certificate and its own role's certificate and key, never the CA key.
 */
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { pemBlocks } from '../../certs/pem.js';
import { memberTls } from '../../cluster/snippet.js';
import { DcpError } from '../../errors.js';
import type { ClusterTls, CreateContext } from '../provider.js';
import { GATE_FILE, GATE_SOURCE } from '../dashboard-gate.js';
import type { TlsParams } from '../../config/tls-params.js';

export type Runtime = 'docker' | 'preinstalled';

/** PEM texts for one role, and the cluster's TLS versions and ciphers. */
export interface RoleTls {
  ca: string;
  cert: string;
  key: string;
  params: TlsParams;
}

export interface BootOptions {
  role: 'scheduler' | 'worker';
  cluster: string;
  runtime: Runtime;
  /** The container image (runtime docker). */
  image: string;
  tls: RoleTls | null;
  /** Workers: the scheduler's private IP; they never go through its public address. */
  schedulerHost?: string;
  /** Scheduler: seconds without work before it exits (and the VM with it). */
  idleTimeoutSeconds: number;
  threads?: number;
  memoryLimit?: string;
  /** Where the VM keeps its TLS files and log; root-only. */
  stateDir?: string;
  /** How the VM stops itself once Dask has exited. Tests replace it; VMs keep the default. */
  powerOff?: string;
  /** cloud-init's folder of scripts run at every boot: a rebooted VM starts Dask again. */
  perBootDir?: string;
  /** Where Dask's last log lines go when it exits: the console the cloud shows. */
  console?: string;
  /**
   * Azure's scheduler: once Dask has ended for being idle, delete `resourceUrl` (the cluster's
   * resource group) with a token of the VM's managed identity from `tokenUrl`, so that an idle
   * cluster stops billing (a VM powered off from inside still bills there). The power-off stays
   * the fallback.
   */
  selfDelete?: { tokenUrl: string; resourceUrl: string };
}

/**
 * What a VM of `role` receives: the CA certificate and its own role's certificate and key. Only
 * the certificates of the CA file go (a CA key kept beside them never leaves this machine), and a
 * key kept in the certificate file is split off, so the VM's certificate file holds no key.
 */
export async function readRoleTls(
  tls: ClusterTls | null,
  role: 'scheduler' | 'worker',
): Promise<RoleTls | null> {
  if (!tls) return null;
  const keyFile = tls.key[role];
  const [ca, cert, key] = await Promise.all([
    readFile(tls.caFile, 'utf8'),
    readFile(tls.cert[role], 'utf8'),
    keyFile ? readFile(keyFile, 'utf8') : undefined,
  ]);
  const caCertificates = pemBlocks(ca, 'certificate');
  return key === undefined
    ? {
        ca: caCertificates,
        cert: pemBlocks(cert, 'certificate'),
        key: pemBlocks(cert, 'key'),
        params: tls.params,
      }
    : { ca: caCertificates, cert, key, params: tls.params };
}

/**
 * The boot script of one member of the cluster being made: the spec's runtime, image, idle
 * timeout and worker sizes, with its own role's TLS; workers are told where the scheduler is.
 */
export async function memberScript(
  context: Pick<CreateContext, 'spec' | 'tls'>,
  role: 'scheduler' | 'worker',
  schedulerHost?: string,
  cloud: Pick<BootOptions, 'selfDelete'> = {},
): Promise<string> {
  const { spec } = context;
  return bootScript({
    role,
    cluster: spec.name,
    runtime: spec.runtime,
    image: spec.image ?? '',
    tls: await readRoleTls(context.tls, role),
    idleTimeoutSeconds: spec.idleTimeoutSeconds,
    ...(schedulerHost === undefined ? {} : { schedulerHost }),
    ...(role === 'worker' && spec.threads ? { threads: spec.threads } : {}),
    ...(role === 'worker' && spec.memoryLimit ? { memoryLimit: spec.memoryLimit } : {}),
    ...cloud,
  });
}

export const SCHEDULER_PORT = 8786;
export const DASHBOARD_PORT = 8787;
/** EC2's limit on user data, before base64; the other clouds allow at least this much. */
export const USER_DATA_LIMIT = 16_384;
/**
 * How long a worker waits for a scheduler, at start and after losing it. It covers the
 * scheduler's own first boot (installing Docker, pulling the image), then ends orphaned workers.
 */
const WORKER_DEATH_TIMEOUT_SECONDS = 900;

/** Single-quoted for the shell, so nothing in a value is ever expanded. */
function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * `dask scheduler ...` or `dask worker ...` arguments and the variables Dask reads, with TLS files
 * (and the dashboard gate) under `tlsDir`.
 */
export function daskInvocation(
  options: BootOptions,
  tlsDir: string,
): { args: string[]; env: Record<string, string> } {
  const tls = options.tls
    ? memberTls({
        caFile: `${tlsDir}/ca.pem`,
        cert: `${tlsDir}/${options.role}.pem`,
        key: `${tlsDir}/${options.role}-key.pem`,
        gate: `${tlsDir}/${GATE_FILE}`,
        params: options.tls.params,
      })
    : { args: [], env: {} };
  return { args: [...daskArguments(options), ...tls.args], env: tls.env };
}

function daskArguments(options: BootOptions): string[] {
  const protocol = options.tls ? 'tls' : 'tcp';
  if (options.role === 'scheduler') {
    return [
      'scheduler',
      '--protocol',
      protocol,
      '--port',
      String(SCHEDULER_PORT),
      '--dashboard-address',
      `:${DASHBOARD_PORT}`,
      '--idle-timeout',
      `${options.idleTimeoutSeconds}s`,
    ];
  }
  if (!options.schedulerHost) throw new Error('a worker boot script needs the scheduler address');
  return [
    'worker',
    `${protocol}://${options.schedulerHost}:${SCHEDULER_PORT}`,
    '--death-timeout',
    `${WORKER_DEATH_TIMEOUT_SECONDS}s`,
    ...(options.threads ? ['--nthreads', String(options.threads)] : []),
    ...(options.memoryLimit ? ['--memory-limit', options.memoryLimit] : []),
  ];
}

/** The lines that run Dask on the VM, for the chosen runtime; a failure among them powers it off. */
function daskCommand(options: BootOptions, stateDir: string): string {
  if (options.runtime === 'preinstalled') {
    const { args, env } = daskInvocation(options, `${stateDir}/tls`);
    const words = args.map(quote).join(' ');
    const exports = Object.entries(env).map(([name, value]) => `export ${name}=${quote(value)}\n`);
    // `dask` where the image has it on PATH (pip, conda), else the module (Debian's package).
    return `${exports.join('')}if command -v dask >/dev/null; then exec dask ${words}; else exec python3 -m dask ${words}; fi`;
  }
  const { args, env } = daskInvocation(options, '/dcp-tls');
  const words = args.map(quote).join(' ');
  const variables = Object.entries(env).map(([name, value]) => `-e ${quote(`${name}=${value}`)} `);
  return [
    'set -e',
    // Here, not in the boot script: a failed install (no route to the mirrors from a private
    // subnet, say) must end in the power-off like any other failure.
    'if ! command -v docker >/dev/null; then',
    '  export DEBIAN_FRONTEND=noninteractive',
    '  apt-get -o DPkg::Lock::Timeout=600 update -q',
    '  apt-get -o DPkg::Lock::Timeout=600 install -y -q docker.io',
    'fi',
    'systemctl start docker 2>/dev/null || true',
    // The host network: Dask announces the VM's own addresses, which the others can reach. No
    // capabilities: code a Dask client sends runs here as root, and with NET_RAW a packet socket
    // would pass the host's firewall (Azure's scheduler keeps the metadata service from it).
    `exec docker run --rm --name dcp-dask --network host --cap-drop ALL --security-opt no-new-privileges -v ${quote(`${stateDir}/tls`)}:/dcp-tls:ro ${variables.join('')}${quote(options.image)} dask ${words}`,
  ].join('\n');
}

/** A file written by a here-document whose end marker cannot occur in the text it carries. */
function heredoc(path: string, text: string): string {
  let marker = 'DCP_END_OF_FILE';
  while (text.includes(marker)) marker += '_';
  return `cat > ${path} <<'${marker}'\n${text.trimEnd()}\n${marker}\n`;
}

/**
 * While Dask runs, nothing on the VM reaches the instance metadata service's token endpoint: code
 * sent by a Dask client (root in the container, which shares the host's network but has no
 * capabilities to change its firewall or send raw packets) cannot borrow the VM's identity.
 * `-I` puts the block in, `-D` lifts it.
 */
function metadataRule(tokenUrl: string, action: '-I' | '-D'): string {
  const url = new URL(tokenUrl);
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return `iptables -w ${action} OUTPUT -d ${quote(url.hostname)} -p tcp --dport ${port} -m comment --comment dcp-metadata -j REJECT`;
}

/**
 * Shell lines that delete the VM's own resource group through its managed identity, once Dask
 * ended cleanly for being idle (a crash, an OOM kill or a restart of Docker only powers off, which
 * can be undone), retried while a new role assignment may not have reached ARM yet. The token
 * never appears in a command line (curl reads the header from stdin) nor in the log.
 */
function selfDeletion({ tokenUrl, resourceUrl }: NonNullable<BootOptions['selfDelete']>): string {
  return `if [ "$status" = 0 ] && tail -c +$((since + 1)) "$DCP_DIR/dask.log" | grep -qE 'Scheduler closing after being idle|idle-timeout-exceeded'; then
  deleted=''
  for pause in 0 20 60 180; do
    sleep "$pause"
    answer=$(curl -sS -f --noproxy '*' --max-time 30 -H Metadata:true ${quote(tokenUrl)}) || continue
    token=$(printf '%s' "$answer" | sed -n 's/.*"access_token" *: *"\\([^"]*\\)".*/\\1/p')
    [ -n "$token" ] || continue
    if printf 'Authorization: Bearer %s\\n' "$token" | curl -sS -f --max-time 60 -o /dev/null -X DELETE -H @- ${quote(resourceUrl)}; then
      deleted=yes
      break
    fi
  done
  unset answer token
  if [ -n "$deleted" ]; then
    echo "dcp: asked Azure to delete this cluster's resource group: the bill stops with it"
  else
    echo "dcp: could not delete this cluster's resource group; a stopped VM is still billed until dcp down"
  fi
else
  echo "dcp: dask did not end for being idle: this cluster's resource group stays (a stopped VM is still billed until dcp down)"
fi`;
}

/** The whole script: `#!/bin/bash`, safe to run again on the same VM. */
export function bootScript(options: BootOptions): string {
  const stateDir = options.stateDir ?? '/var/lib/dcp';
  const powerOff = options.powerOff ?? 'shutdown -h now';
  const perBoot = options.perBootDir ?? '/var/lib/cloud/scripts/per-boot';
  const console = options.console ?? '/dev/console';
  // Names are checked long before this; a comment line still must not be broken out of.
  const cluster = options.cluster.replace(/[^\w.-]/g, '?');
  const tlsFiles = options.tls
    ? [
        heredoc('"$DCP_DIR/tls/ca.pem"', options.tls.ca),
        heredoc(`"$DCP_DIR/tls/${options.role}.pem"`, options.tls.cert),
        heredoc(`"$DCP_DIR/tls/${options.role}-key.pem"`, options.tls.key),
        heredoc(`"$DCP_DIR/tls/${GATE_FILE}"`, GATE_SOURCE),
      ].join('')
    : '';
  // The supervisor: one at a time (the lock stays with Dask), and when Dask exits, for whatever
  // reason, its last words go to the console (where the cloud's console output shows them)
  // and the VM powers off.
  const supervise = [
    '#!/bin/bash',
    'DCP_DIR=' + quote(stateDir),
    'exec 9>"$DCP_DIR/supervise.lock"',
    'flock -n 9 || exit 0',
    'status=0',
    // Where this run's part of the log begins: what Dask said as it ended is read from there.
    'since=$(stat -c %s "$DCP_DIR/dask.log" 2>/dev/null || echo 0)',
    ...(options.selfDelete
      ? [
          // Dask runs only behind the block: without it, any client could borrow the identity.
          `if ${metadataRule(options.selfDelete.tokenUrl, '-I')}; then`,
          '  "$DCP_DIR/run-dask" || status=$?',
          `  ${metadataRule(options.selfDelete.tokenUrl, '-D')} 2>/dev/null || true`,
          'else',
          '  echo "dcp: could not keep Dask off the instance metadata service: not starting it"',
          '  status=1',
          'fi',
        ]
      : ['"$DCP_DIR/run-dask" || status=$?']),
    // Dask was stopped by a reboot or shutdown under way: powering off (or deleting) would undo it.
    '[ "$(systemctl is-system-running 2>/dev/null)" = stopping ] && exit 0',
    `echo "dcp: dask ${options.role} exited with status $status at $(date -u +%FT%TZ); powering off"`,
    `{ echo "dcp: the last lines of the dask ${options.role}'s log:"; tail -n 20 "$DCP_DIR/dask.log"; } > ${quote(console)} 2>/dev/null || true`,
    ...(options.selfDelete ? [selfDeletion(options.selfDelete)] : []),
    powerOff,
  ].join('\n');
  const start = [
    '#!/bin/bash',
    // Detached, so the boot (cloud-init) finishes while Dask runs on.
    `setsid ${quote(`${stateDir}/supervise`)} </dev/null >>${quote(`${stateDir}/dask.log`)} 2>&1 &`,
    `echo "dcp: started the dask ${options.role}; its log is "${quote(`${stateDir}/dask.log`)}`,
  ].join('\n');
  return `#!/bin/bash
# The ${options.role} of Dask cluster ${cluster}, set up by dcp at first boot (as root).
set -euo pipefail
umask 077
# A VM that cannot be set up is of no use: it powers off rather than bill.
trap 'echo "dcp: the boot script failed; powering off"; ${powerOff.replaceAll("'", `'\\''`)}' ERR
DCP_DIR=${quote(stateDir)}
mkdir -p "$DCP_DIR/tls"
chmod 700 "$DCP_DIR" "$DCP_DIR/tls"
${tlsFiles}${heredoc('"$DCP_DIR/run-dask"', `#!/bin/bash\n${daskCommand(options, stateDir)}`)}${heredoc('"$DCP_DIR/supervise"', supervise)}${heredoc('"$DCP_DIR/start"', start)}chmod 700 "$DCP_DIR/run-dask" "$DCP_DIR/supervise" "$DCP_DIR/start"
# User data runs once; after a reboot cloud-init's per-boot scripts start Dask again, so the
# idle timeout can still power the VM off.
PER_BOOT=${quote(perBoot)}
if [ -d "$(dirname "$PER_BOOT")" ]; then
  mkdir -p "$PER_BOOT"
  ln -sf "$DCP_DIR/start" "$PER_BOOT/dcp-dask"
fi
"$DCP_DIR/start"
`;
}

/** The script as the VM's user data: gzip-compressed (cloud-init reads both) only when too big. */
export function userData(script: string): Buffer {
  const raw = Buffer.from(script);
  if (raw.length <= USER_DATA_LIMIT) return raw;
  const packed = gzipSync(raw, { level: 9 });
  if (packed.length > USER_DATA_LIMIT) {
    throw new DcpError(
      `the boot script is ${packed.length} bytes even compressed, over the ${USER_DATA_LIMIT}-byte user data limit`,
      {
        hint: 'a long certificate chain makes it big: issue the cluster certificates from a CA without intermediates, or use --tls auto',
      },
    );
  }
  return packed;
}
