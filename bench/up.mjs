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
import { compare, time } from './compare.mjs';

const rounds = Number(process.argv[2] ?? 5);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const python = process.env.DCP_PYTHON ?? '/usr/bin/python3';
const home = mkdtempSync(join(tmpdir(), 'dcp-bench-up-'));
const env = {
  ...process.env,
  HOME: home,
  XDG_STATE_HOME: join(home, 'state'),
  DCP_PYTHON: python,
  CI: 'true',
};
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
    const child = spawn(python, ['-m', 'dask', ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
  const files = (role) => [
    '--tls-ca-file',
    join(tls, 'ca.pem'),
    '--tls-cert',
    join(tls, `${role}.pem`),
    '--tls-key',
    join(tls, `${role}-key.pem`),
  ];
  let children = [];
  const elapsed = await time(async () => {
    const scheduler = await start(
      [
        'scheduler',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--dashboard-address',
        `127.0.0.1:${dashboard}`,
        '--protocol',
        'tls',
        ...files('scheduler'),
      ],
      /Scheduler at:/,
    );
    const address = `tls://127.0.0.1:${port}`;
    children = [
      scheduler,
      ...(await Promise.all(
        [1, 2].map(() =>
          start(
            ['worker', address, '--host', '127.0.0.1', '--no-dashboard', ...files('worker')],
            /Registered to:/,
          ),
        ),
      )),
    ];
  });
  for (const child of children) {
    child.removeAllListeners('exit');
    process.kill(-child.pid, 'SIGKILL');
  }
  return elapsed;
}

async function withDcp(round) {
  const elapsed = await time(() =>
    execFileSync(
      process.execPath,
      [cli, 'up', '--provider', 'local', '--workers', '2', '--name', `bench-${round}`, '--json'],
      { env, stdio: 'ignore' },
    ),
  );
  execFileSync(process.execPath, [cli, 'down', `bench-${round}`, '--yes'], { env, stdio: 'ignore' });
  return elapsed;
}

await compare({
  bench: 'up-local',
  rounds,
  reference: 'by_hand',
  goal: 1.25,
  measureDcp: withDcp,
  measureReference: byHand,
});
rmSync(home, { recursive: true, force: true });
