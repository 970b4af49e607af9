/**
 * The first-boot script every cloud VM of a cluster runs as root (EC2 user data, GCP startup
 * script, Azure custom data, droplet user data). It writes the VM's TLS files into a root-only
 * folder, then starts `dask scheduler` or `dask worker` detached, under a supervisor that powers
 * the VM off when Dask exits: the scheduler exits after its idle timeout, and a worker once its
 * scheduler has been gone for a while, so an abandoned cluster stops billing by itself.
 *
 * A VM receives the CA certificate and its own role's certificate and key, never the CA key.
 */
import { gzipSync } from 'node:zlib';
import { daskTlsArgs } from '../../cluster/snippet.js';
import { DcpError } from '../../errors.js';

export type Runtime = 'docker' | 'preinstalled';

/** PEM texts for one role. */
export interface RoleTls {
  ca: string;
  cert: string;
  key: string;
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
}

export const SCHEDULER_PORT = 8786;
export const DASHBOARD_PORT = 8787;
/** EC2's limit on user data, before base64; the other clouds allow at least this much. */
export const USER_DATA_LIMIT = 16_384;
/**
 * How long a worker waits for a scheduler, at start and after losing it. It covers the
 * scheduler's own first boot (installing Docker, pulling the image), then ends orphaned workers.
 */
export const WORKER_DEATH_TIMEOUT_SECONDS = 900;

/** Single-quoted for the shell, so nothing in a value is ever expanded. */
function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** A here-document whose end marker cannot occur in the (PEM) text it carries. */
function fileFromHeredoc(path: string, text: string): string {
  let marker = 'DCP_END_OF_FILE';
  while (text.includes(marker)) marker += '_';
  return `cat > ${path} <<'${marker}'\n${text.trimEnd()}\n${marker}\n`;
}

/** `dask scheduler ...` or `dask worker ...` arguments, with TLS files under `tlsDir`. */
export function daskArguments(options: BootOptions, tlsDir: string): string[] {
  const tls = options.tls ? daskTlsArgs({ caFile: `${tlsDir}/ca.pem`, cert: `${tlsDir}/${options.role}.pem`, key: `${tlsDir}/${options.role}-key.pem` }) : [];
  const protocol = options.tls ? 'tls' : 'tcp';
  if (options.role === 'scheduler') {
    return [
      'scheduler',
      '--protocol', protocol,
      '--port', String(SCHEDULER_PORT),
      '--dashboard-address', `:${DASHBOARD_PORT}`,
      '--idle-timeout', `${options.idleTimeoutSeconds}s`,
      ...tls,
    ];
  }
  if (!options.schedulerHost) throw new Error('a worker boot script needs the scheduler address');
  return [
    'worker', `${protocol}://${options.schedulerHost}:${SCHEDULER_PORT}`,
    '--death-timeout', `${WORKER_DEATH_TIMEOUT_SECONDS}s`,
    ...(options.threads ? ['--nthreads', String(options.threads)] : []),
    ...(options.memoryLimit ? ['--memory-limit', options.memoryLimit] : []),
    ...tls,
  ];
}

/** The command that runs Dask on the VM, for the chosen runtime. */
function daskCommand(options: BootOptions, stateDir: string): { install: string; run: string } {
  if (options.runtime === 'preinstalled') {
    const args = daskArguments(options, `${stateDir}/tls`).map(quote).join(' ');
    // `dask` where the image has it on PATH (pip, conda), else the module (Debian's package).
    return { install: '', run: `if command -v dask >/dev/null; then exec dask ${args}; else exec python3 -m dask ${args}; fi` };
  }
  const args = daskArguments(options, '/dcp-tls').map(quote).join(' ');
  return {
    install: [
      'if ! command -v docker >/dev/null; then',
      '  export DEBIAN_FRONTEND=noninteractive',
      '  apt-get update -q && apt-get install -y -q docker.io',
      'fi',
      'systemctl start docker 2>/dev/null || true',
      '',
    ].join('\n'),
    // The host network: Dask announces the VM's own addresses, which the others can reach.
    run: `exec docker run --rm --name dcp-dask --network host -v ${quote(`${stateDir}/tls`)}:/dcp-tls:ro ${quote(options.image)} dask ${args}`,
  };
}

/** The whole script: `#!/bin/bash`, safe to run again on the same VM. */
export function bootScript(options: BootOptions): string {
  const stateDir = options.stateDir ?? '/var/lib/dcp';
  const powerOff = options.powerOff ?? 'shutdown -h now';
  const { install, run } = daskCommand(options, stateDir);
  const tlsFiles = options.tls
    ? [
        fileFromHeredoc('"$DCP_DIR/tls/ca.pem"', options.tls.ca),
        fileFromHeredoc(`"$DCP_DIR/tls/${options.role}.pem"`, options.tls.cert),
        fileFromHeredoc(`"$DCP_DIR/tls/${options.role}-key.pem"`, options.tls.key),
      ].join('')
    : '';
  return `#!/bin/bash
# The ${options.role} of Dask cluster ${options.cluster}, set up by dcp at first boot (as root).
set -euo pipefail
umask 077
DCP_DIR=${quote(stateDir)}
mkdir -p "$DCP_DIR/tls"
chmod 700 "$DCP_DIR" "$DCP_DIR/tls"
${tlsFiles}${install}cat > "$DCP_DIR/run-dask" <<'DCP_END_OF_RUNNER'
#!/bin/bash
# Runs Dask; when it exits, for whatever reason, the VM powers off and stops billing.
${run}
DCP_END_OF_RUNNER
cat > "$DCP_DIR/supervise" <<DCP_END_OF_SUPERVISOR
#!/bin/bash
status=0
"$DCP_DIR/run-dask" || status=\\$?
echo "dcp: dask ${options.role} exited with status \\$status at \\$(date -u +%FT%TZ); powering off"
${powerOff}
DCP_END_OF_SUPERVISOR
chmod 700 "$DCP_DIR/run-dask" "$DCP_DIR/supervise"
# Detached, so the boot (cloud-init) finishes while Dask runs on.
setsid "$DCP_DIR/supervise" </dev/null >>"$DCP_DIR/dask.log" 2>&1 &
echo "dcp: started the dask ${options.role}; its log is $DCP_DIR/dask.log"
`;
}

/** The script as the VM's user data: gzip-compressed (cloud-init reads both) only when too big. */
export function userData(script: string): Buffer {
  const raw = Buffer.from(script);
  if (raw.length <= USER_DATA_LIMIT) return raw;
  const packed = gzipSync(raw, { level: 9 });
  if (packed.length > USER_DATA_LIMIT) {
    throw new DcpError(`the boot script is ${packed.length} bytes even compressed, over the ${USER_DATA_LIMIT}-byte user data limit`, {
      hint: 'a long certificate chain makes it big: issue the cluster certificates from a CA without intermediates, or use --tls auto',
    });
  }
  return packed;
}
