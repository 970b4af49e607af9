/**
 * Stand-in VMs: network namespaces joined by a bridge on this machine, each with its own address
 * on a private /24 that the host reaches through the bridge. Nothing leaves the machine.
 * Needs root and iproute2; CI has both.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { describe } from 'vitest';

/** Why namespaces cannot be made here (tried for real: root alone may lack CAP_NET_ADMIN), or undefined. */
function canMakeNamespaces(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  const probe = `dcp-probe-${process.pid}`;
  const made = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (made.error) return `no ip command (${made.error.message}); apt-get install -y iproute2`;
  if (made.status !== 0) return made.stderr.trim() || `ip netns add exited with ${made.status}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

/** `describe` for tests that need namespaces: a failure in CI when they cannot be made, a loud skip elsewhere. */
export function describeWithNetns(name: string, body: () => void): void {
  const reason = canMakeNamespaces();
  if (reason) {
    if (process.env.CI)
      throw new Error(`network namespaces cannot be made here (${reason}), and CI must run "${name}"`);
    console.warn(`\n*** SKIPPING "${name}": network namespaces cannot be made (${reason}) ***\n`);
  }
  describe.skipIf(Boolean(reason))(name, body);
}

export interface Host {
  namespace: string;
  ip: string;
}

export interface Network {
  /** The host's own address on the bridge. */
  gateway: string;
  hosts: Record<string, Host>;
  /** Runs a command inside a host's namespace, with a VM's bare environment. */
  exec(
    host: string,
    command: string[],
    env?: Record<string, string>,
  ): Promise<{ exitCode?: number; all: string }>;
  /** Kills every process left in the namespaces, then removes them and the bridge. */
  remove(): Promise<void>;
}

const ip = (...args: string[]) => execa('ip', args);

export async function makeNetwork(names: string[]): Promise<Network> {
  const id = randomBytes(3).toString('hex');
  // 10.213.x.0/24 with a random x: unlikely to meet a route of this machine, checked below.
  const prefix = `10.213.${randomBytes(1)[0]! % 250}`;
  const routes = (await ip('route')).stdout;
  if (routes.includes(`${prefix}.`))
    throw new Error(`${prefix}.0/24 is already routed here; run the test again`);
  const bridge = `dcpbr${id}`;
  const hosts: Record<string, Host> = {};
  const made: { namespaces: string[]; bridge?: string } = { namespaces: [] };
  const network: Network = {
    gateway: `${prefix}.1`,
    hosts,
    exec: async (host, command, env = {}) =>
      await execa(
        'ip',
        [
          'netns',
          'exec',
          hosts[host]!.namespace,
          'env',
          '-i',
          'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          'HOME=/root',
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
          ...command,
        ],
        {
          reject: false,
          all: true,
          // Not a socket: bash reads ~/.bashrc when its stdin is one, as if started by rshd.
          stdin: 'ignore',
          timeout: 60_000,
        },
      ),
    async remove() {
      for (const namespace of made.namespaces) {
        const pids = (await execa('ip', ['netns', 'pids', namespace], { reject: false })).stdout
          .split('\n')
          .filter(Boolean)
          .map(Number);
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
        await execa('ip', ['netns', 'del', namespace], { reject: false });
      }
      if (made.bridge) await execa('ip', ['link', 'del', made.bridge], { reject: false });
    },
  };
  try {
    await ip('link', 'add', bridge, 'type', 'bridge');
    made.bridge = bridge;
    await ip('addr', 'add', `${prefix}.1/24`, 'dev', bridge);
    await ip('link', 'set', bridge, 'up');
    for (const [i, name] of names.entries()) {
      const namespace = `dcp-${name}-${id}`;
      await ip('netns', 'add', namespace);
      made.namespaces.push(namespace);
      const outside = `dcpv${id}${i}`;
      await ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace);
      await ip('link', 'set', outside, 'master', bridge, 'up');
      const address = `${prefix}.${i + 2}`;
      await ip('-n', namespace, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
      await ip('-n', namespace, 'link', 'set', 'eth0', 'up');
      await ip('-n', namespace, 'link', 'set', 'lo', 'up');
      hosts[name] = { namespace, ip: address };
    }
  } catch (error) {
    await network.remove();
    throw error;
  }
  return network;
}
