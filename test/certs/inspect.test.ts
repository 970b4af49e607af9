import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FileSummary } from '../../src/certs/inspect.js';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { makeCert, opensslOk } from '../helpers/openssl.js';

let dir: string;
let tls: string;

const inspect = async (files: string[]) => {
  const run = await dcp(['certs', 'inspect', ...files, '--json']);
  return { ...run, files: run.stdout ? json<{ files: FileSummary[] }>(run.stdout).files : [] };
};

beforeAll(async () => {
  dir = tempDir();
  tls = join(dir, 'tls');
  const run = await dcp(['certs', 'gen', '--out', tls, '--san', '10.1.2.3']);
  expect(run.exitCode, run.stderr).toBe(0);
});

describe('dcp certs inspect', () => {
  it('shows subject, issuer, names, validity, key, usages and the fingerprint openssl computes', async () => {
    const { exitCode, files } = await inspect([join(tls, 'scheduler.pem'), join(tls, 'ca.pem')]);
    expect(exitCode).toBe(0);
    const [leaf, ca] = [files[0]!.certificates[0]!, files[1]!.certificates[0]!];
    expect(leaf).toMatchObject({
      subject: 'CN=dask-scheduler, O=dcp',
      issuer: ca.subject,
      subject_alt_names: ['IP:10.1.2.3', 'DNS:dask-scheduler', 'DNS:localhost', 'IP:127.0.0.1', 'IP:::1'],
      key: 'RSA 2048',
      key_usage: ['digitalSignature', 'keyEncipherment'],
      extended_key_usage: ['serverAuth', 'clientAuth'],
      ca: false,
      self_signed: false,
    });
    expect(leaf.days_left).toBeGreaterThanOrEqual(364);
    expect(ca).toMatchObject({
      ca: true,
      self_signed: true,
      key_usage: ['keyCertSign', 'cRLSign'],
      extended_key_usage: null,
    });
    const fingerprint = await opensslOk([
      'x509',
      '-in',
      join(tls, 'scheduler.pem'),
      '-noout',
      '-fingerprint',
      '-sha256',
    ]);
    expect(fingerprint).toBe(`sha256 Fingerprint=${leaf.sha256_fingerprint}`);
    const end = await opensslOk(['x509', '-in', join(tls, 'scheduler.pem'), '-noout', '-enddate']);
    expect(new Date(end.replace('notAfter=', '')).toISOString()).toBe(leaf.not_after);
  });

  it('reads a file holding a certificate and its key, and never shows key material', async () => {
    const combined = join(dir, 'combined.pem');
    writeFileSync(
      combined,
      readFileSync(join(tls, 'client.pem'), 'utf8') + readFileSync(join(tls, 'client-key.pem'), 'utf8'),
    );
    const { exitCode, files, stdout } = await inspect([combined]);
    expect(exitCode).toBe(0);
    expect(files[0]!.keys).toEqual([
      { label: 'PRIVATE KEY', key: 'RSA 2048', encrypted: false, matches_certificate: 0, error: null },
    ]);
    const human = await dcp(['certs', 'inspect', combined]);
    expect(human.stdout).toContain('private key: RSA 2048, matches certificate 1');
    for (const out of [stdout, human.stdout, human.stderr]) expect(out).not.toMatch(/PRIVATE KEY-----|MII/);
  });

  it('describes EC keys and encrypted keys', async () => {
    const ecKey = join(dir, 'ec-key.pem');
    await opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ecKey]);
    const ec = await makeCert(dir, 'ec', { key: ecKey, extensions: ['basicConstraints = CA:FALSE'] });
    const encrypted = join(dir, 'enc.pem');
    await opensslOk(['pkey', '-in', ecKey, '-aes256', '-passout', 'pass:x', '-out', encrypted]);
    const { files } = await inspect([ec.cert, encrypted]);
    expect(files[0]!.certificates[0]!.key).toBe('EC P-256');
    expect(files[1]!.keys[0]).toMatchObject({ encrypted: true, key: null });
  });

  it('exits 1 for a file that is not PEM, and 2 for one that does not exist', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'hello\n');
    const bad = await inspect([join(tls, 'ca.pem'), text]);
    expect(bad.exitCode).toBe(1);
    expect(bad.files[1]!.problems).toEqual(['it is not a PEM file']);
    const missing = await dcp(['certs', 'inspect', join(dir, 'nope.pem')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/^error: cannot read file .*nope\.pem: no such file/);
  });
});
