/** The DigitalOcean provider through dcp's REST client against the DigitalOcean fake, held to what every cloud must show. */
import { digitaloceanProvider } from '../../src/providers/digitalocean/index.js';
import { SEED, startFakeDigitalOcean, type FakeDigitalOcean } from '../fakes/digitalocean/index.js';
import { conformance } from './conformance.js';
import {
  digitaloceanEnvironment,
  digitaloceanIngress,
  digitaloceanLeftovers,
  digitaloceanMembers,
} from './cloud-env.js';

let fake: FakeDigitalOcean;

conformance({
  name: 'digitalocean',
  provider: digitaloceanProvider,
  async start() {
    // Droplets get their addresses a moment before they are active: workers sent on the
    // scheduler's address, not on its boot, show as sent before it runs.
    fake = await startFakeDigitalOcean({ addressingMs: 100, provisioningMs: 1_500, dropletLimit: 100 });
    return digitaloceanEnvironment(fake);
  },
  stop: async () => fake?.close(),
  flags: { region: SEED.region },
  myIp: () => fake.myIp,
  members: (cluster) => digitaloceanMembers(fake, cluster),
  ingress: (cluster) => digitaloceanIngress(fake, cluster),
  membersReachEachOther: (cluster) =>
    fake
      .firewalls()
      .some(
        (firewall) =>
          firewall.name === `dcp-${cluster}` &&
          firewall.inbound_rules.some(
            (rule) =>
              rule.protocol === 'tcp' &&
              (rule.ports === 'all' || rule.ports === '0' || rule.ports === '1-65535') &&
              rule.sources.tags?.some((tag) => firewall.tags.includes(tag)),
          ),
      ),
  leftovers: (cluster) => digitaloceanLeftovers(fake, cluster),
  clearCalls: () => {
    fake.calls.length = 0;
  },
  mutatingCalls: () => fake.mutatingCalls().map((call) => call.method),
  // A tag, an SSH key, a firewall, the scheduler, then the workers 10 at a time.
  upCalls: (workers) => [
    'tags.create',
    'sshKeys.create',
    'firewalls.create',
    'droplets.create',
    ...Array<string>(Math.ceil(workers / 10)).fill('droplets.create'),
  ],
  refuse: (method, skip) =>
    fake.fail(
      method,
      { status: 403, id: 'forbidden', message: 'You are not authorized to perform this operation.' },
      { skip },
    ),
  refusal: { message: /DigitalOcean refused [\w.]+: forbidden/, hint: /scope/ },
  steps: ['tags', 'ssh key', 'firewall', 'launch scheduler', 'scheduler address', 'launch workers'],
  privateNetwork: { flags: { vpc: SEED.natVpc }, cidr: SEED.natCidr },
  callsFor50: 10,
  elsewhere: { provider: 'digitalocean', location: SEED.region },
});
