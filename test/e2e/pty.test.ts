/**
 * `dcp up` as a person runs it: the built CLI in a real terminal (tmux), Enter pressed at every
 * question, the summary read off the screen, then `dcp down --all --yes`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { startFakeEc2 } from '../fakes/ec2/index.js';
import { CLI, dcp, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, python } from '../helpers/dask.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux) {
  if (process.env.CI)
    throw new Error('tmux is not installed, and CI must run the terminal test: apt-get install -y tmux');
  console.warn('\n*** SKIPPING the terminal test: no tmux (apt-get install -y tmux) ***\n');
}

const session = `dcp-e2e-${process.pid}`;
const stopped = `dcp-e2e-stop-${process.pid}`;
const home = tempDir('dcp-home-');
const tmux = (...args: string[]) => execa('tmux', args, { reject: false });
const screen = async (name = session) =>
  (await tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', name)).stdout;

afterAll(async () => {
  await tmux('kill-session', '-t', session);
  await tmux('kill-session', '-t', stopped);
  await dcp(['down', '--all', '--yes'], { home });
});

/** Presses Enter at each question as it appears, until dcp exits; returns the screen and the questions. */
async function enterEverywhere(name: string): Promise<{ text: string; answered: string[] }> {
  const answered: string[] = [];
  let text = '';
  for (let i = 0; i < 300 && !/dcp exited: \d+/.test(text); i++) {
    await sleep(100);
    text = await screen(name);
    // The question waiting for an answer is the last line starting with "?" that is not answered yet.
    const open = text
      .split('\n')
      .filter((line) => /^\? /.test(line))
      .at(-1);
    if (
      open &&
      !answered.includes(open) &&
      !text.split('\n').some((line) => line.startsWith(`✔ ${open.slice(2).split('?')[0]}`))
    ) {
      answered.push(open);
      await tmux('send-keys', '-t', name, 'Enter');
    }
  }
  return { text, answered };
}

describeWithDask('dcp up in a terminal', () => {
  it.skipIf(!hasTmux)(
    'Enter at every question makes a local TLS cluster and shows how to connect',
    async () => {
      const command = `env -u CI HOME=${home} XDG_STATE_HOME=${home}/.local/state ${process.execPath} ${CLI} up; echo "dcp exited: $?"; sleep 600`;
      expect(
        (await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '50', command)).exitCode,
      ).toBe(0);

      const { text, answered } = await enterEverywhere(session);
      expect(text, text).toMatch(/dcp exited: 0/);
      expect(answered.length).toBeGreaterThanOrEqual(6);
      expect(text).toMatch(/Where should the cluster run\? local/);
      expect(text).toMatch(
        /The same without questions:\n\s+dcp up --provider local --tls auto --workers 2 --name dask-[a-z]+-[a-z]+/,
      );
      expect(text).toMatch(/✓ workers\s+[\d.]+s\s+2\/2 connected/);
      expect(text).toMatch(/scheduler\s+tls:\/\/127\.0\.0\.1:\d+/);
      expect(text).toContain('client = Client("tls://127.0.0.1:');

      const listed = json<{ clusters: { name: string; status: string }[] }>(
        (await dcp(['list', '--json'], { home })).stdout,
      ).clusters;
      expect(listed).toHaveLength(1);
      expect(listed[0]!.status).toBe('ready');
      const down = await dcp(['down', '--all', '--yes'], { home });
      expect(down.exitCode).toBe(0);
      expect(
        json<{ clusters: unknown[] }>((await dcp(['list', '--json'], { home })).stdout).clusters,
      ).toEqual([]);
    },
  );

  it.skipIf(!hasTmux)(
    'Ctrl-C while it waits: the rollback shows as it happens, and nothing is left',
    async () => {
      // Workers that never come: `up` waits, and Ctrl-C finds it waiting.
      const fake = join(tempDir(), 'python-hang');
      writeFileSync(
        fake,
        `#!/bin/sh\nif [ "$3" = "worker" ]; then exec sleep 300; fi\nexec ${python()} "$@"\n`,
      );
      chmodSync(fake, 0o755);
      const command = `env -u CI HOME=${home} XDG_STATE_HOME=${home}/.local/state ${process.execPath} ${CLI} up --yes --name ctrl-c --python ${fake}; echo "dcp exited: $?"; sleep 600`;
      expect(
        (await tmux('new-session', '-d', '-s', stopped, '-x', '120', '-y', '40', command)).exitCode,
      ).toBe(0);
      let text = '';
      for (let i = 0; i < 150 && !/workers\s+[\d.]+s\s+0\/2/.test(text); i++) {
        await sleep(100);
        text = await screen(stopped);
      }
      await tmux('send-keys', '-t', stopped, 'C-c');
      for (let i = 0; i < 150 && !/dcp exited: \d+/.test(text); i++) {
        await sleep(100);
        text = await screen(stopped);
      }
      expect(text, text).toMatch(/dcp exited: 130/);
      expect(text).toMatch(/✓ roll back\s+[\d.]+s\s+removed .*worker-1 \(pid \d+\).*scheduler/);
      expect(text).toMatch(/✗ workers/);
      expect(text).toContain('interrupted (Ctrl-C)');
      expect(
        json<{ clusters: unknown[] }>((await dcp(['list', '--json'], { home })).stdout).clusters,
      ).toEqual([]);
    },
  );
});

describeWithDask('Ctrl-C in a terminal right after ready', () => {
  it.skipIf(!hasTmux)(
    'the cluster is either kept, saying so, with exit 0, or rolled back with 130: never both',
    async () => {
      const lateHome = tempDir('dcp-home-late-');
      const name = `dcp-e2e-late-${process.pid}`;
      const command = `env -u CI HOME=${lateHome} XDG_STATE_HOME=${lateHome}/.local/state ${process.execPath} ${CLI} up --yes --name late --workers 1 --python ${python()}; echo "dcp exited: $?"; sleep 600`;
      expect((await tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '50', command)).exitCode).toBe(
        0,
      );
      try {
        let text = '';
        // The live view lingers a moment on its last frame after ready: Ctrl-C lands there.
        for (let i = 0; i < 1500 && !/✓ workers\s+[\d.]+s\s+1\/1 connected/.test(text); i++) {
          await sleep(20);
          text = await screen(name);
        }
        await tmux('send-keys', '-t', name, 'C-c');
        for (let i = 0; i < 150 && !/dcp exited: \d+/.test(text); i++) {
          await sleep(100);
          text = await screen(name);
        }
        const listed = json<{ clusters: { status: string }[] }>(
          (await dcp(['list', '--json'], { home: lateHome })).stdout,
        ).clusters;
        if (/dcp exited: 0/.test(text)) {
          expect(listed.map((c) => c.status)).toEqual(['ready']);
          expect(text, text).toContain('late is ready');
          if (text.includes('interrupted'))
            expect(text).toContain('interrupted after late was ready: it is kept');
        } else {
          expect(text, text).toMatch(/dcp exited: 130/);
          expect(listed).toEqual([]);
        }
      } finally {
        await tmux('kill-session', '-t', name);
        await dcp(['down', '--all', '--yes'], { home: lateHome });
      }
    },
  );
});

describe('dcp up --provider aws in a terminal', () => {
  it.skipIf(!hasTmux)(
    'Enter at every question: public, open to my address only, TLS; the steps and the summary show, and down removes it all',
    async () => {
      const fake = await startFakeEc2({ shuttingDownMs: 50 });
      const name = `dcp-e2e-aws-${process.pid}`;
      const awsHome = tempDir('dcp-home-aws-');
      const env = {
        AWS_ENDPOINT_URL_EC2: fake.url,
        AWS_ACCESS_KEY_ID: 'AKIDFAKE',
        AWS_SECRET_ACCESS_KEY: 'fake',
        AWS_EC2_METADATA_DISABLED: 'true',
        DCP_MY_IP_URL: `${fake.url}/checkip`,
      };
      const exports = Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      try {
        // The region, the image and --no-wait as flags (the fake's addresses are not to be connected to); the rest asked.
        const command = `env -u CI HOME=${awsHome} XDG_STATE_HOME=${awsHome}/.local/state ${exports} ${process.execPath} ${CLI} up --provider aws --region us-east-1 --image ghcr.io/dask/dask:2022.12.1-py3.11 --no-wait; echo "dcp exited: $?"; sleep 600`;
        expect((await tmux('new-session', '-d', '-s', name, '-x', '140', '-y', '60', command)).exitCode).toBe(
          0,
        );
        const { text, answered } = await enterEverywhere(name);
        expect(text, text).toMatch(/dcp exited: 0/);
        expect(answered.some((q) => /How will you reach the scheduler/.test(q))).toBe(true);
        expect(text).toMatch(/Who may connect.*only this machine/);
        for (const step of [
          'find network',
          'security group',
          'launch scheduler',
          'launch workers',
          'public address',
        ])
          expect(text).toMatch(new RegExp(`✓ ${step}\\s`));
        expect(text).toMatch(/security group\s+[\d.]+s\s+sg-\w+: 203\.0\.113\.7\/32 → 8786,8787/);
        const scheduler = fake.instances().find((i) => i.tags['dcp:role'] === 'scheduler')!;
        expect(text).toMatch(
          new RegExp(`scheduler\\s+tls://${scheduler.publicIp!.replaceAll('.', '\\.')}:8786`),
        );
        const down = await dcp(['down', '--all', '--yes'], { home: awsHome, env });
        expect(down.exitCode, down.stderr).toBe(0);
        expect(fake.leftovers(scheduler.tags['dcp:cluster']!)).toEqual({ instances: [], securityGroups: [] });
      } finally {
        await tmux('kill-session', '-t', name);
        await fake.close();
      }
    },
  );
});
