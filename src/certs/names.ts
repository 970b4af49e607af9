/** The names a certificate can be issued for, checked as a user types them. */
import ipaddr from 'ipaddr.js';
import { usageError } from '../errors.js';
import type { AltName } from './x509.js';

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/**
 * `--san` value: an IPv4/IPv6 address or a DNS host name (a leading `*.` wildcard allowed).
 * Anything else is a usage error that says which.
 */
export function parseAltName(value: string): AltName {
  const text = value.trim();
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // A zone (fe80::1%eth0) names an interface on one machine; a certificate cannot carry it.
  if (
    !bare.includes('%') &&
    ipaddr.isValid(bare) &&
    (bare.includes(':') || ipaddr.IPv4.isValidFourPartDecimal(bare))
  ) {
    return { type: 'ip', value: ipaddr.parse(bare).toString() };
  }
  const labels = (text.startsWith('*.') ? text.slice(2) : text).replace(/\.$/, '').split('.');
  const hostName =
    text.length <= 253 &&
    labels.every((label) => LABEL.test(label)) &&
    // An all-numeric last label is a mistyped IP address (10.0.0.300), not a host name.
    !/^\d+$/.test(labels[labels.length - 1] ?? '');
  if (!hostName) {
    throw usageError(
      `--san ${JSON.stringify(value)} is neither a host name nor an IP address`,
      'use a DNS name like scheduler.example.com, or an address like 10.0.0.5 or fd00::5',
    );
  }
  return { type: 'dns', value: text.replace(/\.$/, '').toLowerCase() };
}

/** The distinct names, in order. */
export function uniqueAltNames(names: AltName[]): AltName[] {
  return names.filter(
    (name, index) =>
      names.findIndex((other) => other.type === name.type && other.value === name.value) === index,
  );
}

/** `--san a,b --san c` → the distinct names, in order. */
export function parseAltNames(values: string[]): AltName[] {
  return uniqueAltNames(
    values
      .flatMap((value) => value.split(','))
      .filter((value) => value.trim() !== '')
      .map(parseAltName),
  );
}
