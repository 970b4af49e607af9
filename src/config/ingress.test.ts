import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DcpError } from '../errors.js';
import { buildIngressRules, parseCidr, parsePorts, resolveMe } from './ingress.js';

describe('parseCidr', () => {
  it.each([
    ['10.1.0.0/16', '10.1.0.0/16', false],
    ['10.1.0.2/16', '10.1.0.0/16', true],
    ['203.0.113.7', '203.0.113.7/32', false],
    ['203.0.113.7/32', '203.0.113.7/32', false],
    ['fd00:1:2::5/48', 'fd00:1:2::/48', true],
    ['2001:db8::1', '2001:db8::1/128', false],
    ['me', 'me', false],
  ])('%s → %s', (input, cidr, normalised) => {
    const parsed = parseCidr(input);
    expect(parsed.cidr).toBe(cidr);
    expect(parsed.normalisedFrom !== undefined).toBe(normalised);
  });

  it.each([
    '10.1.0.300/16',
    '10.1/16',
    '10.1.0.0/33',
    'fd00::/129',
    '10.0.0.0/8/8',
    'example.com/24',
    '10.0.0.0/',
    '',
  ])('rejects %j', (input) => {
    expect(() => parseCidr(input)).toThrow(DcpError);
  });

  it('knows the whole internet in both families', () => {
    expect(parseCidr('0.0.0.0/0').anywhere).toBe(true);
    expect(parseCidr('::/0').anywhere).toBe(true);
    expect(parseCidr('0.0.0.0/1').anywhere).toBe(false);
  });

  it.each([
    ['0.0.0.0/1', true],
    ['128.0.0.0/1', true],
    ['1.0.0.0/7', true],
    ['10.0.0.0/8', false],
    ['44.0.0.0/8', false],
    ['::/1', true],
    ['8000::/1', true],
    ['2000::/3', true],
    ['2001:db8::/31', true],
    ['2001:db8::/32', false],
    ['fc00::/7', false],
    ['fe80::/10', false],
    ['::ffff:0:0/96', true],
    ['::ffff:0.0.0.0/97', true],
    ['::ffff:10.0.0.0/104', false],
    ['64:ff9b::/96', true],
  ])('knows %s as %s a range wider than any one network', (cidr, wide) => {
    expect(parseCidr(cidr).wide).toBe(wide);
  });
});

describe('parsePorts', () => {
  it('reads a comma list and drops repeats', () =>
    expect(parsePorts('8786, 8787,8786')).toEqual([8786, 8787]));
  it.each(['0', '65536', '70000', 'abc', '8786,', '8786-8787'])('rejects %j', (input) =>
    expect(() => parsePorts(input)).toThrow(/is not a port/),
  );
});

describe('buildIngressRules', () => {
  it('refuses the JSON form and --cidr together', () => {
    expect(() => buildIngressRules({ cidrs: ['10.0.0.0/8'], json: '[]', allowAnywhere: false })).toThrow(
      /either as a JSON list or with --cidr/,
    );
  });
  it('needs a rule', () => {
    expect(() => buildIngressRules({ cidrs: [], allowAnywhere: false })).toThrow(/no ingress rule given/);
  });
});

describe('resolveMe', () => {
  let url: string;
  let answer = '203.0.113.7\n';
  const server = createServer((_request, response) => response.end(answer));

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('replaces me with the address DCP_MY_IP_URL answers, as a /32', async () => {
    answer = '203.0.113.7\n';
    const rules = await resolveMe(
      [
        { ports: [8786, 8787], cidr: 'me' },
        { ports: [8786], cidr: '10.0.0.0/8' },
      ],
      { DCP_MY_IP_URL: url },
    );
    expect(rules).toEqual([
      { ports: [8786, 8787], cidr: '203.0.113.7/32' },
      { ports: [8786], cidr: '10.0.0.0/8' },
    ]);
  });

  it('an IPv6 answer becomes a /128', async () => {
    answer = '2001:db8::7';
    expect(await resolveMe([{ ports: [8786], cidr: 'me' }], { DCP_MY_IP_URL: url })).toEqual([
      { ports: [8786], cidr: '2001:db8::7/128' },
    ]);
  });

  it('an answer that is no address is an error with a hint', async () => {
    answer = '<html>captive portal</html>';
    await expect(resolveMe([{ ports: [8786], cidr: 'me' }], { DCP_MY_IP_URL: url })).rejects.toThrow(
      /not an IP address/,
    );
  });

  it('asks nobody when there is no me', async () => {
    expect(
      await resolveMe([{ ports: [8786], cidr: '10.0.0.0/8' }], { DCP_MY_IP_URL: 'http://127.0.0.1:1/' }),
    ).toEqual([{ ports: [8786], cidr: '10.0.0.0/8' }]);
  });
});
