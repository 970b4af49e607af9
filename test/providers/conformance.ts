/**
 * What every cloud provider must show, against its cloud's wire-level fake through its real
 * client: addressing (public and private), ingress exactly as asked and never the world, members
 * reaching each other, one key per VM and never the CA's, nothing left after a fault at each
 * mutating call or a Ctrl-C at each step, `down` and `list` from a machine with no state, and
 * the calls and their order for 50 workers (the workers sent before the scheduler runs).
 *
 * A cloud joins with an adapter (`CloudUnderTest`) and one file that calls `conformance(cloud)`.
 * Addresses the fakes hand out are never connected to: these runs do not wait for readiness.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createCluster, destroyCluster, type FindElsewhere } from '../../src/cluster/engine.js';
import { planUp, type UpFlags } from '../../src/cluster/spec.js';
import { clusterDir } from '../../src/cluster/state.js';
import { DcpError, ExitCode } from '../../src/errors.js';
import type { ProgressEvent, Provider } from '../../src/providers/provider.js';
import { Interrupted } from '../../src/util/interrupt.js';
import { tempDir } from '../helpers/cli.js';
import { privateHome } from './cloud-env.js';

/** A VM as the fake holds it. */
export interface FakeMember {
  role: string;
  privateIp: string;
  publicIp: string | undefined;
  /** The boot script the VM runs, as text. */
  boot: string;
  /** When the cloud was asked for it, and when it ran (undefined: not yet). */
  requestedAt: number;
  runningAt: number | undefined;
}

export interface CloudUnderTest {
  name: string;
  provider: Provider;
  /** Starts the fake and returns the variables that point the client at it. */
  start(): Promise<NodeJS.ProcessEnv>;
  stop(): Promise<void>;
  /** Flags every `up` of this cloud takes (a zone, say). */
  flags: Partial<UpFlags>;
  /** What the user's own address (`me`) is, as the fake answers it. */
  myIp(): string;
  members(cluster: string): FakeMember[];
  /** Who from outside may reach the cluster's VMs, as `cidr:port` (one per port). */
  ingress(cluster: string): string[];
  /** Whether the firewall lets every member reach every other (a rule by group or tag). */
  membersReachEachOther(cluster: string): boolean;
  /** Everything of the cluster the cloud still has (VMs stopped but billed included), in words. */
  leftovers(cluster: string): string[];
  clearCalls(): void;
  /** Mutating calls since the last clear, by name, in order. */
  mutatingCalls(): string[];
  /** The mutating calls of an `up` of this many workers, in order. */
  upCalls(workers: number): string[];
  /** The next call `method` after `skip` of them is refused for lack of permission. */
  refuse(method: string, skip: number): void;
  /** What the refusal's message and hint say. */
  refusal: { message: RegExp; hint: RegExp };
  /** Mutating calls whose refusal `up` survives with less (a warning saying what), not a rollback. */
  degrades?: Record<string, RegExp>;
  /** `up`'s progress steps, each a moment for Ctrl-C. */
  steps: string[];
  /** Flags for a private cluster, and the range that may then reach the scheduler. */
  privateNetwork: { flags: Partial<UpFlags>; cidr: string };
  /** The most mutating calls `up` may make for 50 workers. */
  callsFor50: number;
  /** Where `down NAME --provider` looks, with no state on this machine. */
  elsewhere: FindElsewhere;
}

const quiet = { progress: () => undefined };

export function conformance(cloud: CloudUnderTest): void {
  const saved = { ...process.env };
  let counter = 0;

  beforeAll(async () => {
    const home = tempDir(`dcp-${cloud.name}-conformance-`);
    Object.assign(process.env, { ...privateHome(home), ...(await cloud.start()) });
  });
  afterAll(async () => {
    process.env = saved;
    await cloud.stop();
  });
  beforeEach(() => cloud.clearCalls());

  function flags(extra: Partial<UpFlags> = {}): UpFlags {
    return {
      name: `${cloud.name}-conf-${++counter}`,
      provider: cloud.provider.name,
      wait: false,
      insecure: false,
      image: 'ghcr.io/dask/dask:2022.12.1-py3.11',
      workers: '2',
      ...cloud.flags,
      ...extra,
    };
  }

  async function up(
    extra: Partial<UpFlags> = {},
    onProgress: (event: ProgressEvent) => void = () => undefined,
    interrupt = new AbortController(),
  ) {
    const plan = await planUp(flags(extra));
    return createCluster(plan, cloud.provider, { progress: onProgress }, interrupt.signal);
  }

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error as DcpError,
    );

  describe(`${cloud.name} conformance`, () => {
    it('public: the client goes to the public IP, workers to the private address, none to the public one', async () => {
      const record = await up();
      const members = cloud.members(record.name);
      const scheduler = members.find((m) => m.role === 'scheduler')!;
      const workers = members.filter((m) => m.role === 'worker');
      expect(workers).toHaveLength(2);
      expect(scheduler.publicIp).toBeTruthy();
      expect(record.scheduler_address).toBe(`tls://${scheduler.publicIp}:8786`);
      expect(record.dashboard_url).toBe(`https://${scheduler.publicIp}:8787/status`);
      for (const worker of workers) {
        expect(worker.boot).toMatch(/'tls:\/\/[^']+:8786'/);
        expect(worker.boot).not.toContain(scheduler.publicIp);
      }
      // Open to the caller's own address only, on the scheduler's two ports.
      expect(cloud.ingress(record.name).sort()).toEqual([
        `${cloud.myIp()}/32:8786`,
        `${cloud.myIp()}/32:8787`,
      ]);
      expect(cloud.membersReachEachOther(record.name)).toBe(true);
      await destroyCluster(record.name, quiet);
      expect(cloud.leftovers(record.name)).toEqual([]);
    });

    it('private: no public IP anywhere, the client uses the private IP, the network’s range may reach it', async () => {
      const record = await up({ private: true, ...cloud.privateNetwork.flags });
      const members = cloud.members(record.name);
      expect(members.every((m) => m.publicIp === undefined)).toBe(true);
      const scheduler = members.find((m) => m.role === 'scheduler')!;
      expect(record.scheduler_address).toBe(`tls://${scheduler.privateIp}:8786`);
      expect(cloud.ingress(record.name).sort()).toEqual([
        `${cloud.privateNetwork.cidr}:8786`,
        `${cloud.privateNetwork.cidr}:8787`,
      ]);
      await destroyCluster(record.name, quiet);
    });

    it('ingress exactly as asked, and never the whole internet unless asked by name', async () => {
      await expect(planUp(flags({ ingress: ['0.0.0.0/0'] }))).rejects.toThrow(/whole internet/);
      const record = await up({ ingress: ['198.51.100.0/24:8786', '192.0.2.0/28:8786,8787'] });
      expect(cloud.ingress(record.name).sort()).toEqual([
        '192.0.2.0/28:8786',
        '192.0.2.0/28:8787',
        '198.51.100.0/24:8786',
      ]);
      await destroyCluster(record.name, quiet);
      const open = await up({ ingress: ['0.0.0.0/0:8786'], allowAnywhere: true });
      expect(cloud.ingress(open.name)).toEqual(['0.0.0.0/0:8786']);
      await destroyCluster(open.name, quiet);
    });

    it('hands each VM only its own role: no CA key anywhere, no other role’s key', async () => {
      const record = await up();
      const tls = join(clusterDir(record.name), 'tls');
      const pem = (file: string) => readFileSync(join(tls, file), 'utf8').trim();
      for (const member of cloud.members(record.name)) {
        expect(member.boot).toContain(pem('ca.pem'));
        expect(member.boot).toContain(pem(`${member.role}-key.pem`));
        expect(member.boot).not.toContain(pem('ca-key.pem'));
        for (const other of ['scheduler', 'worker', 'client'].filter((r) => r !== member.role))
          expect(member.boot).not.toContain(pem(`${other}-key.pem`));
      }
      await destroyCluster(record.name, quiet);
    });

    it('50 workers: few mutating calls, and the workers sent before the scheduler runs', async () => {
      const record = await up({ workers: '50' });
      const calls = cloud.mutatingCalls();
      expect(calls.length).toBeLessThanOrEqual(cloud.callsFor50);
      expect(calls).toEqual(cloud.upCalls(50));
      const members = cloud.members(record.name);
      const scheduler = members.find((m) => m.role === 'scheduler')!;
      const workers = members.filter((m) => m.role === 'worker');
      expect(workers).toHaveLength(50);
      const firstWorker = Math.min(...workers.map((w) => w.requestedAt));
      expect(scheduler.runningAt === undefined || firstWorker < scheduler.runningAt).toBe(true);
      await destroyCluster(record.name, quiet);
      expect(cloud.leftovers(record.name)).toEqual([]);
    });

    describe('a failure at any mutating call leaves nothing behind', () => {
      const calls = cloud.upCalls(2);
      for (const [i, method] of calls.entries()) {
        const skip = calls.slice(0, i).filter((m) => m === method).length;
        const degraded = cloud.degrades?.[method];
        it(`call ${i + 1}: ${method}${skip ? ` (#${skip + 1})` : ''}`, async () => {
          cloud.refuse(method, skip);
          const name = `${cloud.name}-fault-${i}`;
          if (degraded) {
            const warnings: string[] = [];
            const plan = await planUp(flags({ name }));
            await createCluster(
              plan,
              cloud.provider,
              { ...quiet, warn: (w) => warnings.push(w) },
              new AbortController().signal,
            );
            expect(warnings.join('\n')).toMatch(degraded);
            await destroyCluster(name, quiet);
            expect(cloud.leftovers(name)).toEqual([]);
            return;
          }
          const error = await failure(up({ name }));
          expect(error).toBeInstanceOf(DcpError);
          expect(error!.message).toMatch(cloud.refusal.message);
          expect(error!.message).toContain('rolled back');
          expect(error!.hint).toMatch(cloud.refusal.hint);
          expect(cloud.leftovers(name)).toEqual([]);
          expect(existsSync(clusterDir(name))).toBe(false);
        });
      }
    });

    describe('Ctrl-C at any step: exit 130, nothing left', () => {
      for (const step of cloud.steps)
        it(step, async () => {
          const interrupt = new AbortController();
          const name = `${cloud.name}-ctrl-c-${step.replaceAll(' ', '-')}`;
          const error = await failure(
            up(
              { name },
              (event) =>
                event.step === step && event.status === 'start' && interrupt.abort(new Interrupted('SIGINT')),
              interrupt,
            ),
          );
          expect(error?.exitCode).toBe(ExitCode.interrupted);
          expect(error?.message).toMatch(/^interrupted \(Ctrl-C\); rolled back/);
          expect(cloud.leftovers(name)).toEqual([]);
        });
    });

    it('list and down from another machine: no state here, found by tag', async () => {
      const record = await up();
      rmSync(clusterDir(record.name), { recursive: true });
      const found = (await cloud.provider.discover!(cloud.elsewhere.location)).find(
        (c) => c.name === record.name,
      );
      expect(found?.members.map((m) => m.role).sort()).toEqual(['scheduler', 'worker', 'worker']);
      expect(found?.schedulerAddress).toBe(record.scheduler_address);
      expect(found?.resources.length).toBeGreaterThan(0);
      // Without --provider, nothing is known here.
      expect(await destroyCluster(record.name, quiet)).toBeUndefined();
      expect(cloud.leftovers(record.name)).not.toEqual([]);
      const removed = await destroyCluster(record.name, quiet, process.env, cloud.elsewhere);
      expect(removed?.length).toBeGreaterThan(0);
      expect(cloud.leftovers(record.name)).toEqual([]);
      // Again: nothing to do, quietly.
      expect(await destroyCluster(record.name, quiet, process.env, cloud.elsewhere)).toBeUndefined();
    });
  });
}
