/**
 * `dcp up` as a person runs it: the built CLI in a real terminal (tmux), Enter pressed at every
 * question, the summary read off the screen, then `dcp down --all --yes`.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, expect, it } from 'vitest';
import { CLI, dcp, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, python } from '../helpers/dask.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
if (!hasTmux) {
  if (process.env.CI) throw new Error('tmux is not installed, and CI must run the terminal test: apt-get install -y tmux');
  console.warn('\n*** SKIPPING the terminal test: no tmux (apt-get install -y tmux) ***\n');
}

const session = `dcp-e2e-${process.pid}`;
const stopped = `dcp-e2e-stop-${process.pid}`;
const home = tempDir('dcp-home-');
const tmux = (...args: string[]) => execa('tmux', args, { reject: false });
const screen = async (name = session) => (await tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', name)).stdout;

afterAll(async () => {
  await tmux('kill-session', '-t', session);
  await tmux('kill-session', '-t', stopped);
  await dcp(['down', '--all', '--yes'], { home });
});

describeWithDask('dcp up in a terminal', () => {
  it.skipIf(!hasTmux)('Enter at every question makes a local TLS cluster and shows how to connect', async () => {
    const command = `env -u CI HOME=${home} XDG_STATE_HOME=${home}/.local/state ${process.execPath} ${CLI} up; echo "dcp exited: $?"; sleep 600`;
    expect((await tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '50', command)).exitCode).toBe(0);

    const answered: string[] = [];
    let text = '';
    for (let i = 0; i < 300 && !/dcp exited: \d+/.test(text); i++) {
      await sleep(100);
      text = await screen();
      // The question waiting for an answer is the last line starting with "?" that is not answered yet.
      const open = text.split('\n').filter((line) => /^\? /.test(line)).at(-1);
      if (open && !answered.includes(open) && !text.split('\n').some((line) => line.startsWith(`✔ ${open.slice(2).split('?')[0]}`))) {
        answered.push(open);
        await tmux('send-keys', '-t', session, 'Enter');
      }
    }
    expect(text, text).toMatch(/dcp exited: 0/);
    expect(answered.length).toBeGreaterThanOrEqual(6);
    expect(text).toMatch(/Where should the cluster run\? local/);
    expect(text).toMatch(/The same without questions:\n\s+dcp up --provider local --tls auto --workers 2 --name dask-[a-z]+-[a-z]+/);
    expect(text).toMatch(/✓ workers\s+[\d.]+s\s+2\/2 connected/);
    expect(text).toMatch(/scheduler\s+tls:\/\/127\.0\.0\.1:\d+/);
    expect(text).toContain('client = Client("tls://127.0.0.1:');

    const listed = json<{ clusters: { name: string; status: string }[] }>((await dcp(['list', '--json'], { home })).stdout).clusters;
    expect(listed).toHaveLength(1);
    expect(listed[0]!.status).toBe('ready');
    const down = await dcp(['down', '--all', '--yes'], { home });
    expect(down.exitCode).toBe(0);
    expect(json<{ clusters: unknown[] }>((await dcp(['list', '--json'], { home })).stdout).clusters).toEqual([]);
  });

  it.skipIf(!hasTmux)('Ctrl-C while it waits: the rollback shows as it happens, and nothing is left', async () => {
    // Workers that never come: `up` waits, and Ctrl-C finds it waiting.
    const fake = join(tempDir(), 'python-hang');
    writeFileSync(fake, `#!/bin/sh\nif [ "$3" = "worker" ]; then exec sleep 300; fi\nexec ${python()} "$@"\n`);
    chmodSync(fake, 0o755);
    const command = `env -u CI HOME=${home} XDG_STATE_HOME=${home}/.local/state ${process.execPath} ${CLI} up --yes --name ctrl-c --python ${fake}; echo "dcp exited: $?"; sleep 600`;
    expect((await tmux('new-session', '-d', '-s', stopped, '-x', '120', '-y', '40', command)).exitCode).toBe(0);
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
    expect(json<{ clusters: unknown[] }>((await dcp(['list', '--json'], { home })).stdout).clusters).toEqual([]);
  });
});
