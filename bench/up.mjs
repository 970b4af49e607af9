#!/usr/bin/env node
// `dcp up --provider local --workers 2` until ready, against starting the same scheduler and two
// workers by hand with certificates that already exist (scheduler first, then the workers once
// it listens, as a tutorial does), timed in the same run, interleaved. dcp's time includes
// making its CA and certificates and its readiness check. Goal: ratio (dcp / by hand) <= 1.25.
// Usage: npm run build && node bench/up.mjs [rounds]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const rounds = Number(process.argv[2] ?? 5);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const python = process.env.DCP_PYTHON ?? '/usr/bin/python3';
const home = mkdtempSync(join(tmpdir(), 'dcp-bench-up-'));
const env = { ...process.env, HOME: home, XDG_STATE_HOME: join(home, 'state'), DCP_PYTHON: python, CI: 'true' };
const tls = join(home, 'tls');
execFileSync(process.execPath, [cli, 'certs', 'gen', '--out', tls], { env, stdio: 'ignore' });

const freePort = () =>
  new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/** Starts `python -m dask ...` in its own group; resolves with it once `ready` shows in its output. */
function start(args, ready) {
  return new Promise((resolve, reject) => {
    const child = spawn(python, ['-m', 'dask', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const onData = (chunk) => {
      output += chunk;
      if (ready.test(output)) resolve(child);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', () => reject(new Error(`exited before ready:\n${output}`)));
  });
}

async function byHand() {
  const [port, dashboard] = await Promise.all([freePort(), freePort()]);
  const files = (role) => ['--tls-ca-file', join(tls, 'ca.pem'), '--tls-cert', join(tls, `${role}.pem`), '--tls-key', join(tls, `${role}-key.pem`)];
  const began = process.hrtime.bigint();
  const scheduler = await start(['scheduler', '--host', '127.0.0.1', '--port', String(port), '--dashboard-address', `127.0.0.1:${dashboard}`, '--protocol', 'tls', ...files('scheduler')], /Scheduler at:/);
  const address = `tls://127.0.0.1:${port}`;
  const workers = await Promise.all([1, 2].map(() => start(['worker', address, '--host', '127.0.0.1', '--no-dashboard', ...files('worker')], /Registered to:/)));
  const elapsed = Number(process.hrtime.bigint() - began) / 1e6;
  for (const child of [...workers, scheduler]) {
    child.removeAllListeners('exit');
    process.kill(-child.pid, 'SIGKILL');
  }
  return elapsed;
}

function withDcp(round) {
  const began = process.hrtime.bigint();
  execFileSync(process.execPath, [cli, 'up', '--provider', 'local', '--workers', '2', '--name', `bench-${round}`, '--json'], { env, stdio: 'ignore' });
  const elapsed = Number(process.hrtime.bigint() - began) / 1e6;
  execFileSync(process.execPath, [cli, 'down', `bench-${round}`, '--yes'], { env, stdio: 'ignore' });
  return elapsed;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const dcp = [];
const hand = [];
for (let i = 0; i < rounds; i++) {
  if (i % 2 === 0) {
    dcp.push(withDcp(i));
    hand.push(await byHand());
  } else {
    hand.push(await byHand());
    dcp.push(withDcp(i));
  }
}
rmSync(home, { recursive: true, force: true });

const result = {
  bench: 'up-local',
  rounds,
  dcp_median_ms: Math.round(median(dcp)),
  by_hand_median_ms: Math.round(median(hand)),
  ratio: Number((median(dcp) / median(hand)).toFixed(2)),
  goal: '<= 1.25',
};
console.log(JSON.stringify(result));
process.exitCode = result.ratio <= 1.25 ? 0 : 1;
