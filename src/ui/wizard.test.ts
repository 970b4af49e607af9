import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { planUp } from '../cluster/spec.js';
import { flatten, type LoadedSettings, type Origin } from '../config/load.js';
import { DEFAULTS, type ProviderName, type Settings } from '../config/schema.js';
import type { UpFlags } from '../cluster/spec.js';
import type { ByoFiles } from '../cluster/tls.js';
import {
  equivalentCommand,
  runWizard,
  WizardCancelled,
  type Choice,
  type Prompter,
  type WizardContext,
} from './wizard.js';

const SUBSCRIPTION = '8c1f6a2e-3b4d-4e5f-9a6b-7c8d9e0f1a2b';

/** Answers by question: a string picks a choice or types text, a boolean confirms; Enter is `undefined`. */
type Script = [RegExp, string | boolean | undefined][];

function scripted(script: Script) {
  const asked: string[] = [];
  const said: string[] = [];
  const next = (message: string) => {
    asked.push(message);
    const index = script.findIndex(([pattern]) => pattern.test(message));
    if (index < 0) throw new Error(`unexpected question: ${message}`);
    const [[, answer]] = script.splice(index, 1) as [[RegExp, string | boolean | undefined]];
    return answer;
  };
  const prompter: Prompter = {
    async select<T extends string>(q: { message: string; choices: Choice<T>[]; default?: T }) {
      const answer = next(q.message) as T | undefined;
      const value = answer ?? q.default ?? q.choices[0]!.value;
      const choice = q.choices.find((c) => c.value === value);
      if (!choice || choice.disabled) throw new Error(`cannot pick ${value} for ${q.message}`);
      return value;
    },
    async input(q) {
      const answer = (next(q.message) as string | undefined) ?? q.default ?? '';
      const valid = q.validate?.(answer) ?? true;
      if (valid !== true) throw new Error(`invalid answer ${answer}: ${valid}`);
      return answer;
    },
    async confirm(q) {
      const answer = next(q.message) as boolean | undefined;
      return answer ?? q.default;
    },
    say: (text) => said.push(text),
  };
  return { prompter, asked, said, left: script };
}

function loaded(
  settings: Settings = {},
  from: Origin = { source: 'user', file: '/home/u/.config/dask/dcp.yaml' },
): LoadedSettings {
  const origins = new Map<string, Origin>();
  for (const key of Object.keys(DEFAULTS)) origins.set(key, { source: 'default' });
  for (const key of flatten(settings).keys()) origins.set(key, from);
  return {
    settings: { ...DEFAULTS, ...settings },
    origins,
    files: { user: '/home/u/.config/dask/dcp.yaml', project: null },
    skipped: [],
  };
}

function context(overrides: Partial<WizardContext> = {}): WizardContext {
  return {
    flags: { wait: true, insecure: false },
    env: {},
    loaded: loaded(),
    checkTls: async () => ({ problems: [], warnings: [] }),
    plan: async () => ['start things'],
    nameTaken: (name) => name === 'taken',
    ...overrides,
  };
}

const ENTER = undefined;
const REVIEW: Script = [
  [/Save these choices/, ENTER],
  [/Create it\?/, ENTER],
];

describe('the answers, through the same checks as flags', () => {
  const env = { DASK_CONFIG: mkdtempSync(join(tmpdir(), 'dcp-wizard-')) };

  it('Enter everywhere plans a local TLS cluster of 2 workers', async () => {
    const { prompter } = scripted([
      [/Where should/, ENTER],
      [/TLS for scheduler/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, ENTER],
      ...REVIEW,
    ]);
    const plan = await planUp((await runWizard(context(), prompter)).flags, env);
    expect(plan.spec).toMatchObject({ provider: 'local', workers: 2 });
    expect(plan.tls).toEqual({ mode: 'auto' });
  });

  it('one pair of files, saved: used now, and not saved as a bare `tls: byo`', async () => {
    const { prompter } = scripted([
      [/TLS for scheduler/, 'byo'],
      [/Your files are/, 'files'],
      [/CA certificate/, 'ca.pem'],
      [/^Certificate/, 'dask.pem'],
      [/Private key/, 'dask-key.pem'],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'pair'],
      [/Save these choices/, true],
      [/Create it\?/, ENTER],
    ]);
    const plan = await planUp(
      (await runWizard(context({ flags: { wait: true, insecure: false, provider: 'local' } }), prompter))
        .flags,
      env,
    );
    expect(plan.tls).toEqual({
      mode: 'byo',
      ca: resolve('ca.pem'),
      cert: resolve('dask.pem'),
      key: resolve('dask-key.pem'),
    });
    expect(plan.chosen.tls).toBeUndefined();
  });
});

describe('the wizard', () => {
  it('Enter at every question, with nothing configured: a local TLS cluster of 2 workers', async () => {
    const { prompter, asked, said, left } = scripted([
      [/Where should the cluster run/, ENTER],
      [/TLS for scheduler/, ENTER],
      [/How many workers/, ENTER],
      [/Threads per worker/, ENTER],
      [/Cluster name/, ENTER],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(context(), prompter);
    expect(left).toEqual([]);
    expect(asked).toHaveLength(7);
    expect(flags).toMatchObject({ provider: 'local', tls: 'auto', workers: '2', save: false });
    expect(flags.name).toMatch(/^dask-[a-z]+-[a-z]+$/);
    expect(flags.threads).toBeUndefined();
    expect(said.join('\n')).toContain(`dcp up --provider local --tls auto --workers 2 --name ${flags.name}`);
  });

  it.each([
    ['aws', /AWS region/, 'region', 'eu-west-1'],
    ['gcp', /GCP zone/, 'zone', 'europe-west1-b'],
    ['azure', /Azure location/, 'region', 'westeurope'],
    ['digitalocean', /DigitalOcean region/, 'region', 'ams3'],
  ] as const)(
    '%s, public: its %s, networking, and ingress for my address by default',
    async (provider, question, flag, value) => {
      const { prompter, left } = scripted([
        [/Where should the cluster run/, provider],
        [question, value],
        // GCP's project and Azure's subscription, asked when nothing (gcloud, az, a setting) gives one.
        ...(provider === 'gcp' ? [[/Google Cloud project id/, 'my-project-1'] as [RegExp, string]] : []),
        ...(provider === 'azure' ? [[/Azure subscription id/, SUBSCRIPTION] as [RegExp, string]] : []),
        [/How will you reach the scheduler/, ENTER],
        [/Who may connect/, ENTER],
        [/TLS for scheduler/, ENTER],
        [/How many workers/, '4'],
        [/Threads per worker/, '2'],
        [/Instance type/, 'big-one'],
        [/Cluster name/, 'analytics'],
        ...REVIEW,
      ]);
      const { flags } = await runWizard(context(), prompter);
      expect(left).toEqual([]);
      expect(flags).toMatchObject({
        provider,
        [flag]: value,
        public: true,
        ingress: ['me'],
        tls: 'auto',
        workers: '4',
        threads: '2',
        instanceType: 'big-one',
        name: 'analytics',
      });
      expect(equivalentCommand(flags)).toBe(
        `dcp up --provider ${provider} --${flag} ${value}${provider === 'gcp' ? ' --project my-project-1' : provider === 'azure' ? ` --subscription ${SUBSCRIPTION}` : ''} --public --ingress me --tls auto --workers 4 --threads 2 --instance-type big-one --name analytics`,
      );
    },
  );

  it('offers the region of the AWS profile as the answer to the region question', async () => {
    const { prompter, left } = scripted([
      [/AWS region/, ENTER],
      [/How will you reach/, ENTER],
      [/Who may connect/, ENTER],
      [/TLS for scheduler/, ENTER],
      [/How many workers/, ENTER],
      [/Threads per worker/, ENTER],
      [/Instance type/, ENTER],
      [/Cluster name/, ENTER],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({
        flags: { wait: true, insecure: false, provider: 'aws' },
        configuredLocation: async (p) => (p === 'aws' ? 'ap-southeast-2' : undefined),
      }),
      prompter,
    );
    expect(left).toEqual([]);
    expect(flags.region).toBe('ap-southeast-2');
  });

  it('GCP: neither the zone nor the project gcloud is configured with is asked again', async () => {
    const { prompter, left, asked, said } = scripted([
      [/How will you reach/, ENTER],
      [/Who may connect/, ENTER],
      [/TLS for scheduler/, ENTER],
      [/How many workers/, ENTER],
      [/Threads per worker/, ENTER],
      [/Instance type/, ENTER],
      [/Cluster name/, ENTER],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({
        flags: { wait: true, insecure: false, provider: 'gcp' },
        configuredLocation: async (p) => (p === 'gcp' ? 'europe-west4-b' : undefined),
        configuredAccount: async (p) => (p === 'gcp' ? 'from-gcloud-1' : undefined),
      }),
      prompter,
    );
    expect(left).toEqual([]);
    expect(asked.some((q) => /project|zone/i.test(q))).toBe(false);
    // Said, and left to the provider, which reads gcloud's configuration as gcloud does.
    expect(said.join('\n')).toContain("GCP zone: europe-west4-b (gcloud's configuration)");
    expect(flags.zone).toBeUndefined();
    expect(flags.project).toBeUndefined();
  });

  it('Azure: az’s location and subscription are not asked again; a private cluster names a VNet as GROUP/VNET', async () => {
    const { prompter, left, asked, said } = scripted([
      [/How will you reach/, 'private'],
      [/Which VNet of yours, as RESOURCE_GROUP\/VNET/, 'net-rg/dask-vnet'],
      [/Which subnet\? \(empty: the VNet’s first\)/, 'workers'],
      [/TLS for scheduler/, ENTER],
      [/How many workers/, ENTER],
      [/Threads per worker/, ENTER],
      [/Instance type/, ENTER],
      [/Cluster name/, ENTER],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({
        flags: { wait: true, insecure: false, provider: 'azure' },
        configuredLocation: async (p) => (p === 'azure' ? 'northeurope' : undefined),
        configuredAccount: async (p) => (p === 'azure' ? SUBSCRIPTION : undefined),
      }),
      prompter,
    );
    expect(left).toEqual([]);
    expect(asked.some((q) => /subscription|location/i.test(q))).toBe(false);
    expect(said.join('\n')).toContain("Azure location: northeurope (az's configuration)");
    expect(said.join('\n')).toContain(`Azure subscription: ${SUBSCRIPTION} (az's configuration)`);
    expect(flags).toMatchObject({ private: true, vpc: 'net-rg/dask-vnet', subnet: 'workers' });
    expect(flags.region).toBeUndefined();
    // No VNet of the cluster's own on Azure: an empty answer is not taken.
    const empty = scripted([
      [/How will you reach/, 'private'],
      [/Which VNet/, ''],
    ]);
    await expect(
      runWizard(
        context({
          flags: {
            wait: true,
            insecure: false,
            provider: 'azure',
            region: 'westeurope',
            subscription: SUBSCRIPTION,
          },
        }),
        empty.prompter,
      ),
    ).rejects.toThrow(/invalid answer : RESOURCE_GROUP\/VNET/);
  });

  it('public with networks typed in, the whole internet refused', async () => {
    const { prompter } = scripted([
      [/Who may connect/, 'cidrs'],
      [/CIDR blocks/, '0.0.0.0/0'],
    ]);
    const ctx = context({
      flags: { wait: true, insecure: false, provider: 'aws', region: 'eu-west-1', public: true },
    });
    await expect(runWizard(ctx, prompter)).rejects.toThrow(/the whole internet/);
    // In pieces too: a range wider than any one network is refused the same way.
    const halves = scripted([
      [/Who may connect/, 'cidrs'],
      [/CIDR blocks/, '0.0.0.0/1, 128.0.0.0/1'],
    ]);
    await expect(runWizard(ctx, halves.prompter)).rejects.toThrow(
      /0\.0\.0\.0\/1 would open ports .* --allow-anywhere/,
    );
    const typed = scripted([
      [/Who may connect/, 'cidrs'],
      [/CIDR blocks/, '203.0.113.0/24, 10.1.0.0/16'],
      [/TLS/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/Instance type/, ENTER],
      [/name/, 'x1'],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(ctx, typed.prompter);
    expect(flags.ingress).toEqual(['203.0.113.0/24', '10.1.0.0/16']);
  });

  it('private: asks for the network instead of ingress', async () => {
    const { prompter, asked } = scripted([
      [/How will you reach the scheduler/, 'private'],
      [/Which VPC/, 'vpc-0abc'],
      [/Which subnet/, 'subnet-0def'],
      [/TLS/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/Instance type/, ENTER],
      [/name/, 'x2'],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'aws', region: 'eu-west-1' } }),
      prompter,
    );
    expect(flags).toMatchObject({ private: true, vpc: 'vpc-0abc', subnet: 'subnet-0def', ingress: [] });
    expect(equivalentCommand(flags)).toContain('--private --vpc vpc-0abc --subnet subnet-0def');
    expect(asked.some((q) => /Who may connect/.test(q))).toBe(false);
  });

  it('private DigitalOcean with Docker: asks how droplets reach the internet; preinstalled does not', async () => {
    const answers = (egress: [RegExp, string][]) =>
      scripted([
        [/How will you reach the scheduler/, 'private'],
        [/Which VPC/, 'dask-vpc'],
        ...egress,
        [/TLS/, ENTER],
        [/workers/, ENTER],
        [/Threads/, ENTER],
        [/Instance type/, ENTER],
        [/name/, 'x3'],
        ...REVIEW,
      ]);
    const docker = answers([[/how do they get there/, 'public']]);
    const { flags } = await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'digitalocean', region: 'ams3' } }),
      docker.prompter,
    );
    expect(docker.left).toEqual([]);
    expect(docker.asked.some((q) => /Which subnet/.test(q))).toBe(false);
    expect(flags).toMatchObject({ private: true, vpc: 'dask-vpc', egress: 'public' });
    expect(equivalentCommand(flags)).toContain('--private --vpc dask-vpc --egress public');
    const preinstalled = answers([]);
    await runWizard(
      context({
        flags: {
          wait: true,
          insecure: false,
          provider: 'digitalocean',
          region: 'ams3',
          runtime: 'preinstalled',
        },
      }),
      preinstalled.prompter,
    );
    expect(preinstalled.left).toEqual([]);
    expect(preinstalled.asked.some((q) => /how do they get there/.test(q))).toBe(false);
  });

  it('bring-your-own files: a bad folder is explained and asked again', async () => {
    const { prompter, said } = scripted([
      [/TLS for scheduler/, 'byo'],
      [/Your files are/, 'dir'],
      [/Folder with the files/, '/bad'],
      [/Try other files/, ENTER],
      [/Folder with the files/, '/good'],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x3'],
      ...REVIEW,
    ]);
    const checkTls = async (files: ByoFiles) => ({
      problems: 'dir' in files && files.dir === '/bad' ? ['the key does not belong to the certificate'] : [],
      warnings: [],
    });
    const { flags } = await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'local' }, checkTls }),
      prompter,
    );
    expect(said.join('\n')).toContain(
      'Dask would not accept these files:\n  ✗ the key does not belong to the certificate',
    );
    expect(flags).toMatchObject({ tls: 'byo', tlsDir: '/good' });
  });

  it('bring-your-own files that keep failing: the way out is a fresh set', async () => {
    const { prompter } = scripted([
      [/TLS for scheduler/, 'byo'],
      [/Your files are/, 'dir'],
      [/Folder with the files/, '/bad'],
      [/Try other files/, false],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x9'],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({
        flags: { wait: true, insecure: false, provider: 'local' },
        checkTls: async () => ({ problems: ['no'], warnings: [] }),
      }),
      prompter,
    );
    expect(flags.tls).toBe('auto');
    expect(flags.tlsDir).toBeUndefined();
  });

  it('bring-your-own: one CA, certificate and key for every role', async () => {
    const { prompter } = scripted([
      [/TLS for scheduler/, 'byo'],
      [/Your files are/, 'files'],
      [/CA certificate/, '/ca.pem'],
      [/^Certificate/, '/dask.pem'],
      [/Private key/, '/dask-key.pem'],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x4'],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'local' } }),
      prompter,
    );
    expect(flags).toMatchObject({
      tls: 'byo',
      tlsCa: '/ca.pem',
      tlsCert: '/dask.pem',
      tlsKey: '/dask-key.pem',
    });
  });

  it('bring-your-own: an empty key answer means the key is in the certificate file', async () => {
    const { prompter } = scripted([
      [/TLS for scheduler/, 'byo'],
      [/Your files are/, 'files'],
      [/CA certificate/, '/ca.pem'],
      [/^Certificate/, '/combined.pem'],
      [/Private key/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x5'],
      ...REVIEW,
    ]);
    const checked: ByoFiles[] = [];
    const { flags } = await runWizard(
      context({
        flags: { wait: true, insecure: false, provider: 'local' },
        checkTls: async (files) => (checked.push(files), { problems: [], warnings: [] }),
      }),
      prompter,
    );
    expect(checked).toEqual([{ ca: '/ca.pem', cert: '/combined.pem' }]);
    expect(flags).toMatchObject({ tls: 'byo', tlsCa: '/ca.pem', tlsCert: '/combined.pem' });
    expect(flags.tlsKey).toBeUndefined();
    const plan = await planUp(flags, { DASK_CONFIG: mkdtempSync(join(tmpdir(), 'dcp-wizard-')) });
    expect(plan.tls).toEqual({ mode: 'byo', ca: '/ca.pem', cert: '/combined.pem' });
  });

  it('bring-your-own: an empty CA or certificate path is refused at the question', async () => {
    for (const script of [
      [
        [/TLS for scheduler/, 'byo'],
        [/Your files are/, 'files'],
        [/CA certificate/, '  '],
      ],
      [
        [/TLS for scheduler/, 'byo'],
        [/Your files are/, 'files'],
        [/CA certificate/, '/ca.pem'],
        [/^Certificate/, ''],
      ],
      [
        [/TLS for scheduler/, 'byo'],
        [/Your files are/, 'dir'],
        [/Folder/, ''],
      ],
    ] as Script[]) {
      const { prompter } = scripted(script);
      await expect(
        runWizard(context({ flags: { wait: true, insecure: false, provider: 'local' } }), prompter),
      ).rejects.toThrow(/a path is needed here/);
    }
  });

  it('TLS off: refused on a public network, then asked again', async () => {
    const { prompter, said, asked } = scripted([
      [/TLS for scheduler/, 'off'],
      [/TLS for scheduler/, 'auto'],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/Instance type/, ENTER],
      [/name/, 'x5'],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({
        flags: {
          wait: true,
          insecure: false,
          provider: 'gcp',
          zone: 'z',
          project: 'my-project-1',
          public: true,
          ingress: ['me'],
        },
      }),
      prompter,
    );
    expect(said.join('\n')).toContain('TLS off is refused on a public network');
    expect(asked.some((q) => /Really turn TLS off/.test(q))).toBe(false);
    expect(flags.tls).toBe('auto');
  });

  it('TLS off where allowed needs an explicit yes', async () => {
    const declined = scripted([
      [/TLS for scheduler/, 'off'],
      [/Really turn TLS off/, ENTER],
      [/TLS for scheduler/, 'off'],
      [/Really turn TLS off/, true],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x6'],
      ...REVIEW,
    ]);
    const { flags } = await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'local' } }),
      declined.prompter,
    );
    expect(flags.tls).toBe('off');
    expect(declined.left).toEqual([]);
  });

  it('asks nothing that flags or saved settings answer', async () => {
    const { prompter, asked } = scripted([[/Threads/, ENTER], ...REVIEW]);
    const flags: UpFlags = { wait: true, insecure: false, provider: 'local', tls: 'auto', name: 'given' };
    await runWizard(context({ flags, loaded: loaded({ workers: 3 }) }), prompter);
    expect(asked).toEqual([
      'Threads per worker? (empty: Dask decides from the CPUs)',
      'Save these choices as your defaults?',
      'Create it?',
    ]);
  });

  it('a saved provider, region and instance type are not asked again', async () => {
    const { prompter, asked } = scripted([
      [/How will you reach/, ENTER],
      [/Who may connect/, ENTER],
      [/TLS/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x7'],
      ...REVIEW,
    ]);
    const saved: Settings = {
      provider: 'aws' as ProviderName,
      aws: { region: 'eu-west-1', instance_type: 't3.large' },
    };
    const { flags } = await runWizard(context({ loaded: loaded(saved) }), prompter);
    expect(asked.some((q) => /Where should|AWS region|Instance type/.test(q))).toBe(false);
    expect(flags.instanceType).toBeUndefined(); // the saved one stays in effect
  });

  it('AWS_REGION answers the region question, as it satisfies the check', async () => {
    const { prompter, asked } = scripted([
      [/How will you reach/, ENTER],
      [/Who may connect/, ENTER],
      [/TLS/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/Instance type/, ENTER],
      [/name/, 'x8'],
      ...REVIEW,
    ]);
    await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'aws' }, env: { AWS_REGION: 'eu-west-1' } }),
      prompter,
    );
    expect(asked.some((q) => /AWS region/.test(q))).toBe(false);
  });

  it('a saved byo without its folder answers nothing: TLS is asked', async () => {
    const { prompter, asked } = scripted([
      [/TLS for scheduler/, ENTER],
      [/workers/, ENTER],
      [/Threads/, ENTER],
      [/name/, 'x10'],
      ...REVIEW,
    ]);
    await runWizard(
      context({ flags: { wait: true, insecure: false, provider: 'local' }, loaded: loaded({ tls: 'byo' }) }),
      prompter,
    );
    expect(asked[0]).toMatch(/TLS for scheduler/);
  });

  it('a name in use is refused at the question', async () => {
    const { prompter } = scripted([
      [/Threads/, ENTER],
      [/Cluster name/, 'taken'],
    ]);
    await expect(
      runWizard(
        context({ flags: { wait: true, insecure: false, provider: 'local', tls: 'auto', workers: '2' } }),
        prompter,
      ),
    ).rejects.toThrow(/a cluster named taken already exists/);
  });

  it('saying yes to saving sets --save; saying no at the review creates nothing', async () => {
    const saving = scripted([
      [/Threads/, ENTER],
      [/Save these choices/, true],
      [/Create it\?/, ENTER],
    ]);
    const base: UpFlags = {
      wait: true,
      insecure: false,
      provider: 'local',
      tls: 'auto',
      name: 'n1',
      workers: '2',
    };
    expect((await runWizard(context({ flags: base }), saving.prompter)).flags.save).toBe(true);
    const refusing = scripted([
      [/Threads/, ENTER],
      [/Save these choices/, ENTER],
      [/Create it\?/, false],
    ]);
    await expect(runWizard(context({ flags: base }), refusing.prompter)).rejects.toBeInstanceOf(
      WizardCancelled,
    );
  });
});
