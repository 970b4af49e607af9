/**
 * Firewall ingress in Coiled's shape: `[{ports: [8786, 8787], cidr: "10.1.0.0/16"}]`. CIDRs are
 * parsed by ipaddr.js (IPv4 and IPv6) and stored normalised; the whole internet is opened only
 * when asked for by name; `me` stands for the caller's public address, looked up at `up` time.
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { DcpError, messageOf, usageError } from '../errors.js';

/** Scheduler (client → scheduler) and dashboard. */
export const DASK_PORTS = [8786, 8787];
export const ME = 'me';
export const DEFAULT_MY_IP_URL = 'https://checkip.amazonaws.com';

export interface IngressRule {
  ports: number[];
  cidr: string;
}

interface ParsedCidr {
  cidr: string;
  /** Set when the input had host bits set and was narrowed to its network. */
  normalisedFrom?: string;
  /** 0.0.0.0/0 or ::/0. */
  anywhere: boolean;
  /** Wider than any private range: more than a /8 of public IPv4, or a /32 of public IPv6. */
  wide: boolean;
}

/** IPv6 ranges wider than /32 that hold no public address: unique local, link-local, multicast. */
const NON_PUBLIC_IPV6 = ['fc00::/7', 'fe80::/10', 'ff00::/8'].map((cidr) => ipaddr.IPv6.parseCIDR(cidr));
const IPV4_IN_IPV6 = ['::ffff:0:0/96', '64:ff9b::/96'].map((cidr) => ipaddr.IPv6.parseCIDR(cidr));

/**
 * Whether a range holds public addresses beyond what one network needs. No private IPv4 range is
 * wider than /8 (10.0.0.0/8), so anything wider holds public space; IPv6 sites get a /32 at most.
 */
function isWide(network: ipaddr.IPv4 | ipaddr.IPv6, prefix: number): boolean {
  if (network.kind() === 'ipv4') return prefix < 8;
  const v6 = network as ipaddr.IPv6;
  // IPv4-mapped and NAT64 addresses carry the IPv4 internet in their last 32 bits.
  for (const [block, bits] of IPV4_IN_IPV6) {
    if (prefix <= bits && block.match(v6, prefix)) return true;
    if (prefix > bits && v6.match(block, bits)) return prefix - bits < 8;
  }
  return prefix < 32 && !NON_PUBLIC_IPV6.some(([block, bits]) => prefix >= bits && v6.match(block, bits));
}

/** `10.1.0.2/16` → `10.1.0.0/16` (noted); `1.2.3.4` → `1.2.3.4/32`; `me` stays `me`. Undefined when invalid. */
function tryParseCidr(input: string): ParsedCidr | undefined {
  const text = input.trim();
  if (text === ME) return { cidr: ME, anywhere: false, wide: false };
  const [address = '', bits, ...rest] = text.split('/');
  if (rest.length > 0 || !ipaddr.isValid(address)) return undefined;
  const parsed = ipaddr.parse(address);
  // ipaddr.js also reads `10.1` and octal forms as IPv4; a firewall rule wants the plain form.
  if (parsed.kind() === 'ipv4' && !ipaddr.IPv4.isValidFourPartDecimal(address)) return undefined;
  const max = parsed.kind() === 'ipv4' ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return undefined;
  const network =
    parsed.kind() === 'ipv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`)
      : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${prefix}`);
  const cidr = `${network.toString()}/${prefix}`;
  const given = `${parsed.toString()}/${prefix}`;
  return {
    cidr,
    anywhere: prefix === 0,
    wide: isWide(network, prefix),
    ...(bits !== undefined && given !== cidr ? { normalisedFrom: text } : {}),
  };
}

export function parseCidr(input: string, flag = '--cidr'): ParsedCidr {
  const parsed = tryParseCidr(input);
  if (!parsed) {
    throw usageError(
      `${flag} ${JSON.stringify(input)} is not a CIDR block`,
      'write it like 10.1.0.0/16, 203.0.113.7/32, fd00::/8, or me for your own address',
    );
  }
  return parsed;
}

const port = z
  .number({ error: 'ports are whole numbers from 1 to 65535' })
  .int({ error: 'ports are whole numbers from 1 to 65535' })
  .min(1, { error: 'ports are whole numbers from 1 to 65535' })
  .max(65535, { error: 'ports are whole numbers from 1 to 65535' });

export const ingressRuleSchema = z
  .object({
    ports: z.array(port).min(1, { error: 'a rule needs at least one port' }),
    cidr: z.string().refine((value) => tryParseCidr(value) !== undefined, {
      error: 'must be a CIDR block like 10.1.0.0/16, or me',
    }),
  })
  .strict();

/** `--ports 8786,8787`, or the ports of `--ingress CIDR:PORTS` (named by `flag`). */
export function parsePorts(text: string, flag?: string): number[] {
  const ports = text.split(',').map((part) => part.trim());
  const bad = ports.find((part) => !/^\d+$/.test(part) || Number(part) < 1 || Number(part) > 65535);
  if (bad !== undefined || ports.length === 0) {
    throw usageError(
      `${flag ?? `--ports ${JSON.stringify(text)}`}: ${JSON.stringify(bad ?? '')} is not a port from 1 to 65535`,
      flag ? 'for example --ingress 10.1.0.0/16:8786,8787' : 'for example --ports 8786,8787',
    );
  }
  return [...new Set(ports.map(Number))];
}

export interface IngressInput {
  cidrs: string[];
  ports?: string;
  /** Coiled's JSON list, instead of --cidr/--ports. */
  json?: string;
  allowAnywhere: boolean;
  /** How the user gave the CIDR and ports (`--ingress "10.0.0.0/8:99999"`), when not --cidr/--ports. */
  flag?: string;
}

/**
 * The rules a user asked for, checked and normalised, with the warnings to show. Opening a port
 * to 0.0.0.0/0 or ::/0, or to a public range wider than a /8 (IPv4) or /32 (IPv6), which the
 * whole internet is made of a few of, is refused unless `allowAnywhere`.
 */
export function buildIngressRules(input: IngressInput): { rules: IngressRule[]; warnings: string[] } {
  if (input.json !== undefined && (input.cidrs.length > 0 || input.ports !== undefined)) {
    throw usageError(
      'give the rules either as a JSON list or with --cidr/--ports, not both',
      `dcp config set ingress --cidr 10.1.0.0/16 --ports 8786,8787`,
    );
  }
  let requested: { ports: number[]; cidr: string; flag: string }[];
  if (input.json !== undefined) {
    let list: unknown;
    try {
      list = JSON.parse(input.json);
    } catch (error) {
      throw usageError(
        `ingress is not valid JSON: ${messageOf(error)}`,
        `for example '[{"ports": [8786], "cidr": "10.1.0.0/16"}]'`,
      );
    }
    // The CIDRs are checked below, one by one, for a precise message.
    const shape = z
      .array(ingressRuleSchema.extend({ cidr: z.string() }))
      .min(1, { error: 'the list is empty' })
      .safeParse(list);
    if (!shape.success) {
      const issue = shape.error.issues[0]!;
      throw usageError(
        `ingress[${issue.path.join('.')}]: ${issue.message}`,
        `each rule is {"ports": [8786, 8787], "cidr": "10.1.0.0/16"}`,
      );
    }
    requested = shape.data.map((rule, i) => ({ ...rule, flag: `ingress[${i}].cidr` }));
  } else {
    if (input.cidrs.length === 0)
      throw usageError(
        'no ingress rule given',
        'pass --cidr CIDR (repeatable), or a JSON list of {ports, cidr} rules',
      );
    const ports = input.ports === undefined ? DASK_PORTS : parsePorts(input.ports, input.flag);
    requested = input.cidrs
      .flatMap((c) => c.split(','))
      .map((cidr) => ({ ports, cidr, flag: input.flag ?? '--cidr' }));
  }

  const warnings: string[] = [];
  const rules = requested.map(({ ports, cidr, flag }) => {
    const parsed = parseCidr(cidr, flag);
    if (parsed.normalisedFrom)
      warnings.push(`${parsed.normalisedFrom} has host bits set; stored as the network ${parsed.cidr}`);
    if (parsed.anywhere || parsed.wide) {
      const whom = parsed.anywhere
        ? 'the whole internet'
        : `${parsed.cidr.includes(':') ? 'more than a /32 of public IPv6' : 'more than a /8 of public IPv4'} (a few such ranges make the whole internet)`;
      if (!input.allowAnywhere) {
        throw usageError(
          `${parsed.cidr} would open ports ${ports.join(', ')} to ${whom}`,
          'pass --allow-anywhere if you really mean it, or use me (your address) or your network’s CIDR',
        );
      }
      warnings.push(
        `${parsed.cidr} opens ports ${ports.join(', ')} to ${whom}: anyone there can reach them (TLS still guards the scheduler)`,
      );
    }
    return { ports: [...ports].sort((a, b) => a - b), cidr: parsed.cidr };
  });
  return { rules: dedupe(rules), warnings };
}

export function dedupe(rules: IngressRule[]): IngressRule[] {
  const seen = new Set<string>();
  return rules.filter((rule) => {
    const key = `${rule.cidr}|${rule.ports.join(',')}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}

/**
 * Replaces `me` with the caller's public address (/32 or /128), asked of `DCP_MY_IP_URL`
 * (default: AWS's checkip service, which answers with the address in plain text).
 */
export async function resolveMe(rules: IngressRule[], env = process.env): Promise<IngressRule[]> {
  if (!rules.some((rule) => rule.cidr === ME)) return rules;
  const url = env.DCP_MY_IP_URL || DEFAULT_MY_IP_URL;
  const hint =
    'pass the address yourself (--ingress 203.0.113.7/32), or set DCP_MY_IP_URL to a service that answers with it';
  let body: string;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    body = (await response.text()).trim();
  } catch (error) {
    throw new DcpError(`could not look up your public address at ${url}: ${messageOf(error)}`, { hint });
  }
  const parsed = tryParseCidr(body);
  if (!parsed || body.includes('/'))
    throw new DcpError(`${url} answered ${JSON.stringify(body.slice(0, 60))}, not an IP address`, { hint });
  return dedupe(rules.map((rule) => (rule.cidr === ME ? { ...rule, cidr: parsed.cidr } : rule)));
}
