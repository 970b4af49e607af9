import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI, dcp, json, tempDir } from '../helpers/cli.js';
import { makeCert, openssl, opensslOk } from '../helpers/openssl.js';
import { followHint } from '../helpers/hints.js';

const ROLES = ['scheduler', 'worker', 'client'] as const;
const FILES = ['ca.pem', 'ca-key.pem', ...ROLES.flatMap((r) => [`${r}.pem`, `${r}-key.pem`])];

interface GenJson {
  dir: string;
  ca: { cert: string; key: string | null; created: boolean; not_after: string };
  certificates: { role: string; cert: string; key: string; not_after: string; subject_alt_names: string[] }[];
  dask: { scheduler_address: string; scheduler_command: string[]; worker_command: string[]; snippet: string };
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

async function text(cert: string): Promise<string> {
  return opensslOk(['x509', '-in', cert, '-noout', '-text']);
}

describe('dcp certs gen', () => {
  let out: string;
  let result: GenJson;
  let run: Awaited<ReturnType<typeof dcp>>;

  beforeAll(async () => {
    out = join(tempDir(), 'tls');
    run = await dcp([
      'certs',
      'gen',
      '--out',
      out,
      '--san',
      'sched.example.com',
      '--san',
      '10.0.0.5',
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    result = json<GenJson>(run.stdout);
  });

  it('writes the CA and one certificate and key per role, with private modes', () => {
    expect(readdirSync(out).sort()).toEqual([...FILES].sort());
    expect(mode(out)).toBe(0o700);
    for (const file of FILES)
      expect(mode(join(out, file)), file).toBe(file.endsWith('-key.pem') ? 0o600 : 0o644);
  });

  it('passes openssl verify -x509_strict, for the purposes each role is used for', async () => {
    for (const role of ROLES) {
      const cert = join(out, `${role}.pem`);
      for (const purpose of role === 'client' ? ['sslclient'] : ['sslserver', 'sslclient']) {
        const check = await openssl([
          'verify',
          '-x509_strict',
          '-purpose',
          purpose,
          '-CAfile',
          join(out, 'ca.pem'),
          cert,
        ]);
        expect(check.stdout + check.stderr, `${role} ${purpose}`).toBe(`${cert}: OK`);
      }
    }
  });

  it('uses the certificate profile: critical CA constraints, leaf usages, key identifiers, SANs', async () => {
    const ca = await text(join(out, 'ca.pem'));
    expect(ca).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(ca).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const caKeyId = ca.match(/Subject Key Identifier:\s+([0-9A-F:]+)/)?.[1];
    expect(caKeyId).toBeTruthy();

    const serials = new Set<string>();
    for (const role of ROLES) {
      const leaf = await text(join(out, `${role}.pem`));
      expect(leaf).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
      expect(leaf).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
      expect(leaf).toMatch(
        /Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/,
      );
      expect(leaf).toMatch(/Public-Key: \(2048 bit\)/);
      expect(leaf.match(/Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/)?.[1]).toBe(caKeyId);
      expect(leaf.match(/Subject Key Identifier:\s+([0-9A-F:]+)/)?.[1]).not.toBe(caKeyId);
      const serial = (
        await opensslOk(['x509', '-in', join(out, `${role}.pem`), '-noout', '-serial'])
      ).replace('serial=', '');
      expect(serial).toMatch(/^[0-9A-F]{30,34}$/); // 128 random bits, positive
      serials.add(serial);
      if (role !== 'client') {
        expect(leaf).toContain('DNS:sched.example.com');
        expect(leaf).toContain('IP Address:10.0.0.5');
        expect(leaf).toContain('IP Address:127.0.0.1');
      }
    }
    expect(serials.size).toBe(3);
  });

  it('computes key identifiers as OpenSSL does for the same key', async () => {
    const dir = tempDir();
    const reference = await makeCert(dir, 'same-key', {
      key: join(out, 'worker-key.pem'),
      extensions: ['subjectKeyIdentifier = hash'],
    });
    const ours = (await text(join(out, 'worker.pem'))).match(/Subject Key Identifier:\s+([0-9A-F:]+)/)?.[1];
    expect((await text(reference.cert)).match(/Subject Key Identifier:\s+([0-9A-F:]+)/)?.[1]).toBe(ours);
  });

  it('reports what it wrote with expiry dates, and the Dask flags and Security snippet for the files', () => {
    expect(result.ca).toMatchObject({
      cert: join(out, 'ca.pem'),
      key: join(out, 'ca-key.pem'),
      created: true,
    });
    const days = (Date.parse(result.certificates[0]!.not_after) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThanOrEqual(365);
    expect(result.dask.scheduler_address).toBe('tls://sched.example.com:8786');
    expect(result.dask.scheduler_command).toEqual([
      'dask',
      'scheduler',
      '--protocol',
      'tls',
      '--tls-ca-file',
      join(out, 'ca.pem'),
      '--tls-cert',
      join(out, 'scheduler.pem'),
      '--tls-key',
      join(out, 'scheduler-key.pem'),
    ]);
    expect(result.dask.worker_command.slice(0, 3)).toEqual([
      'dask',
      'worker',
      'tls://sched.example.com:8786',
    ]);
    expect(result.dask.snippet).toContain(`tls_client_key="${join(out, 'client-key.pem')}"`);
  });

  it('prints the next steps for a person, and never key material', async () => {
    const human = await dcp(['certs', 'gen', '--out', join(tempDir(), 'h')]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toMatch(/ca\.pem\s+CA certificate, expires \d{4}-\d\d-\d\d/);
    expect(human.stdout).toContain('dask scheduler --protocol tls --tls-ca-file');
    expect(human.stdout).toContain('security = Security(');
    for (const stream of [human.stdout, human.stderr, run.stdout, run.stderr]) {
      expect(stream).not.toMatch(/PRIVATE KEY|MII[A-Za-z0-9+/]{20}/);
    }
  });

  it('keeps keys private even under a permissive umask, and certificates readable under a strict one', async () => {
    for (const umask of ['000', '077']) {
      const dir = join(tempDir(), `umask-${umask}`);
      const child = await execa(
        'sh',
        ['-c', `umask ${umask} && exec "$0" "$@"`, process.execPath, CLI, 'certs', 'gen', '--out', dir],
        {
          reject: false,
          env: { HOME: tempDir(), CI: 'true' },
        },
      );
      expect(child.exitCode, child.stderr).toBe(0);
      expect(mode(dir)).toBe(0o700);
      for (const file of FILES)
        expect(mode(join(dir, file)), `${umask} ${file}`).toBe(file.endsWith('-key.pem') ? 0o600 : 0o644);
    }
  });

  it('never overwrites without --force, and replaces atomically with it', async () => {
    const before = Object.fromEntries(FILES.map((f) => [f, readFileSync(join(out, f), 'utf8')]));
    const refused = await dcp(['certs', 'gen', '--out', out]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/already exist.*nothing was written/);
    expect(refused.stderr).toMatch(/hint: pass --force/);
    for (const f of FILES) expect(readFileSync(join(out, f), 'utf8'), f).toBe(before[f]);

    const forced = await dcp(['certs', 'gen', '--out', out, '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual([...FILES].sort()); // no temporary files left
    for (const f of FILES) {
      expect(readFileSync(join(out, f), 'utf8'), f).not.toBe(before[f]);
      expect(mode(join(out, f))).toBe(f.endsWith('-key.pem') ? 0o600 : 0o644);
    }
  });

  it('warns about an existing folder other users can enter', async () => {
    const dir = tempDir();
    chmodSync(dir, 0o755);
    const loose = await dcp(['certs', 'gen', '--out', dir]);
    expect(loose.exitCode).toBe(0);
    expect(loose.stderr).toMatch(/warning: .* is open to other users \(mode 755\)/);
  });
});

describe('dcp certs gen --key-type ec', () => {
  it('makes ECDSA P-256 keys whose certificates pass strict verification, signing keys only', async () => {
    const out = join(tempDir(), 'ec');
    const run = await dcp(['certs', 'gen', '--out', out, '--key-type', 'ec']);
    expect(run.exitCode, run.stderr).toBe(0);
    for (const role of ROLES) {
      const check = await openssl([
        'verify',
        '-x509_strict',
        '-purpose',
        role === 'client' ? 'sslclient' : 'sslserver',
        '-CAfile',
        join(out, 'ca.pem'),
        join(out, `${role}.pem`),
      ]);
      expect(check.stdout + check.stderr).toBe(`${join(out, `${role}.pem`)}: OK`);
    }
    const leaf = await text(join(out, 'scheduler.pem'));
    expect(leaf).toMatch(/Public-Key: \(256 bit\)/);
    expect(leaf).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(leaf).toContain('ecdsa-with-SHA256');
    const bad = await dcp(['certs', 'gen', '--out', join(tempDir(), 'x'), '--key-type', 'dsa']);
    expect(bad.exitCode).toBe(2);
  });
});

describe('dcp certs gen --ca-cert/--ca-key', () => {
  it.each([
    ['RSA', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']],
    ['EC P-256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']],
    ['Ed25519', ['-algorithm', 'ED25519']],
  ])('issues from an existing %s CA, copying its certificate but never its key', async (_name, keyArgs) => {
    const dir = tempDir();
    const caKey = join(dir, 'corp-ca-key.pem');
    await opensslOk(['genpkey', ...keyArgs, '-out', caKey]);
    const ca = await makeCert(dir, 'corp-ca', {
      key: caKey,
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign, cRLSign',
        'subjectKeyIdentifier = hash',
      ],
      days: 3650,
    });
    const out = join(dir, 'out');
    const run = await dcp([
      'certs',
      'gen',
      '--out',
      out,
      '--ca-cert',
      ca.cert,
      '--ca-key',
      ca.key,
      '--days',
      '30',
      '--json',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    const result = json<GenJson>(run.stdout);
    expect(result.ca).toMatchObject({ created: false, key: null });
    expect(existsSync(join(out, 'ca-key.pem'))).toBe(false);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(readFileSync(ca.cert, 'utf8'));
    for (const role of ROLES) {
      const check = await openssl(['verify', '-x509_strict', '-CAfile', ca.cert, join(out, `${role}.pem`)]);
      expect(check.stdout + check.stderr).toBe(`${join(out, `${role}.pem`)}: OK`);
    }
  });

  it('reissues role certificates from a CA already in the --out folder, leaving ca.pem alone', async () => {
    const out = join(tempDir(), 'tls');
    expect((await dcp(['certs', 'gen', '--out', out])).exitCode).toBe(0);
    const ca = readFileSync(join(out, 'ca.pem'), 'utf8');
    const again = await dcp([
      'certs',
      'gen',
      '--out',
      out,
      '--ca-cert',
      join(out, 'ca.pem'),
      '--ca-key',
      join(out, 'ca-key.pem'),
      '--force',
    ]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(ca);
    expect(
      (await openssl(['verify', '-x509_strict', '-CAfile', join(out, 'ca.pem'), join(out, 'client.pem')]))
        .exitCode,
    ).toBe(0);
  });
});

describe('dcp certs gen: CAs that are not simple roots', () => {
  const CA_EXT = [
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];

  it('an intermediate CA with its root in the --ca-cert file: ca.pem holds both, and strict verification passes', async () => {
    const dir = tempDir();
    const root = await makeCert(dir, 'root', { extensions: CA_EXT, days: 3650 });
    const intermediate = await makeCert(dir, 'intermediate', { ca: root, extensions: CA_EXT, days: 1000 });
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, readFileSync(intermediate.cert, 'utf8') + readFileSync(root.cert, 'utf8'));
    const out = join(dir, 'out');
    const run = await dcp([
      'certs',
      'gen',
      '--out',
      out,
      '--ca-cert',
      bundle,
      '--ca-key',
      intermediate.key,
      '--days',
      '30',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('warning');
    expect(
      (await openssl(['verify', '-x509_strict', '-CAfile', join(out, 'ca.pem'), join(out, 'worker.pem')]))
        .exitCode,
    ).toBe(0);
  });

  it('an intermediate alone: a warning that Python before 3.13 will reject the set', async () => {
    const dir = tempDir();
    const root = await makeCert(dir, 'root', { extensions: CA_EXT, days: 3650 });
    const intermediate = await makeCert(dir, 'intermediate', { ca: root, extensions: CA_EXT, days: 1000 });
    const run = await dcp([
      'certs',
      'gen',
      '--out',
      join(dir, 'out'),
      '--ca-cert',
      intermediate.cert,
      '--ca-key',
      intermediate.key,
      '--days',
      '30',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /warning: .* is not a self-signed root and holds none: Python before 3.13 will reject/,
    );
  });

  it('replacing the set from another CA removes the old CA key, which no longer matches', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    expect((await dcp(['certs', 'gen', '--out', out])).exitCode).toBe(0);
    const corp = await makeCert(dir, 'corp', { extensions: CA_EXT });
    const run = await dcp([
      'certs',
      'gen',
      '--out',
      out,
      '--ca-cert',
      corp.cert,
      '--ca-key',
      corp.key,
      '--days',
      '20',
      '--force',
    ]);
    expect(run.exitCode, run.stderr).toBe(0);
    expect(existsSync(join(out, 'ca-key.pem'))).toBe(false);
    expect(run.stderr).toContain('it belonged to the CA these files no longer use');
  });

  it('a wildcard name is written into the certificates but never used as the address', async () => {
    const run = await dcp([
      'certs',
      'gen',
      '--out',
      join(tempDir(), 'w'),
      '--san',
      '*.dask.internal',
      '--san',
      '10.0.0.5',
      '--json',
    ]);
    expect(json<GenJson>(run.stdout).dask.scheduler_address).toBe('tls://10.0.0.5:8786');
  });

  it('no temporary key files are left when interrupted at any moment', async () => {
    const out = join(tempDir(), 'interrupted');
    for (let i = 0; i < 12; i++) {
      const child = execa(process.execPath, [CLI, 'certs', 'gen', '--out', out, '--force'], {
        reject: false,
        env: { HOME: tempDir(), CI: 'true' },
      });
      await new Promise((resolve) => setTimeout(resolve, 250 + i * 60));
      child.kill('SIGINT');
      const result = await child;
      // Finished, stopped itself (130), or was signalled before it could listen for signals.
      expect(
        result.exitCode === 0 || result.exitCode === 130 || result.signal === 'SIGINT',
        `${result.exitCode} ${result.signal}`,
      ).toBe(true);
      if (existsSync(out)) expect(readdirSync(out).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    }
  });
});

describe('dcp certs gen: bad input exits 2 with a one-line reason and writes nothing', () => {
  let notPem: string;
  let leafOnly: { cert: string; key: string };
  let encryptedKey: string;
  let otherKey: string;
  let ed448: { cert: string; key: string };

  beforeAll(async () => {
    const dir = tempDir();
    const ed448Key = join(dir, 'ed448-key.pem');
    await opensslOk(['genpkey', '-algorithm', 'ED448', '-out', ed448Key]);
    ed448 = await makeCert(dir, 'ed448-ca', {
      key: ed448Key,
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
    });
    notPem = join(dir, 'notes.txt');
    await execa('sh', ['-c', `echo "just some text" > ${notPem}`]);
    leafOnly = await makeCert(dir, 'leaf', { extensions: ['basicConstraints = CA:FALSE'] });
    encryptedKey = join(dir, 'enc-key.pem');
    await opensslOk([
      'pkey',
      '-in',
      leafOnly.key,
      '-aes256',
      '-passout',
      'pass:secret',
      '-out',
      encryptedKey,
    ]);
    otherKey = join(dir, 'other-key.pem');
    await opensslOk(['genpkey', '-algorithm', 'RSA', '-out', otherKey]);
  });

  const cases: [string, () => string[], RegExp][] = [
    ['--days 0', () => ['--days', '0'], /--days "0" is not a number of days/],
    ['--days abc', () => ['--days', 'abc'], /--days "abc" is not a number of days/],
    ['--ca-days -5', () => ['--ca-days', '-5'], /--ca-days "-5" is not a number of days/],
    [
      'a SAN neither host nor IP',
      () => ['--san', 'not a host!'],
      /--san "not a host!" is neither a host name nor an IP address/,
    ],
    ['a mistyped IP as SAN', () => ['--san', '10.0.0.300'], /--san "10.0.0.300" is neither/],
    [
      'an unreadable --ca-cert',
      () => ['--ca-cert', '/nonexistent/ca.pem', '--ca-key', otherKey],
      /cannot read --ca-cert \/nonexistent\/ca.pem: no such file/,
    ],
    [
      'a non-PEM --ca-cert',
      () => ['--ca-cert', notPem, '--ca-key', otherKey],
      /--ca-cert .* holds no certificate: it is not a PEM file/,
    ],
    [
      'a --ca-cert that is no CA',
      () => ['--ca-cert', leafOnly.cert, '--ca-key', leafOnly.key],
      /--ca-cert: the CA certificate "CN=leaf" in .* says basicConstraints CA:FALSE/,
    ],
    ['--ca-cert without --ca-key', () => ['--ca-cert', leafOnly.cert], /--ca-cert and --ca-key go together/],
    ['leaves that outlive the CA', () => ['--days', '400', '--ca-days', '300'], /would outlive its CA/],
    ['a SAN with an interface zone', () => ['--san', 'fe80::1%eth0'], /--san "fe80::1%eth0" is neither/],
    [
      'a CA key dcp cannot sign with',
      () => ['--ca-cert', ed448.cert, '--ca-key', ed448.key],
      /--ca-key .*: dcp cannot sign with ed448 keys/,
    ],
  ];

  it.each(cases)('%s', async (_name, args, reason) => {
    const out = join(tempDir(), 'never');
    const run = await dcp(['certs', 'gen', '--out', out, ...args()]);
    expect(run.exitCode).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(reason);
    expect(lines.slice(1).every((line) => /^\s+hint: /.test(line))).toBe(true);
    expect(run.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  it('an encrypted or mismatched CA key', async () => {
    const dir = tempDir();
    const ca = await makeCert(dir, 'ca', {
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
    });
    const encrypted = join(dir, 'ca-enc.pem');
    await opensslOk(['pkey', '-in', ca.key, '-aes256', '-passout', 'pass:x', '-out', encrypted]);
    for (const [key, reason] of [
      [encrypted, /--ca-key .* is encrypted with a passphrase/],
      [otherKey, /--ca-key .* is not the key of --ca-cert/],
    ] as const) {
      const out = join(dir, 'never');
      const run = await dcp(['certs', 'gen', '--out', out, '--ca-cert', ca.cert, '--ca-key', key]);
      expect(run.exitCode).toBe(2);
      expect(run.stderr.split('\n')[0]).toMatch(reason);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('the hint for an encrypted CA key, followed as printed, keeps the key and writes a 0600 copy', async () => {
    const dir = tempDir();
    const ca = await makeCert(dir, 'root', {
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
    });
    // The name the old hint wrote to: following it emptied the key.
    await opensslOk([
      'pkey',
      '-in',
      ca.key,
      '-aes256',
      '-passout',
      'pass:x',
      '-out',
      join(dir, 'ca-key.pem'),
    ]);
    const before = readFileSync(join(dir, 'ca-key.pem'));
    const run = await dcp(
      ['certs', 'gen', '--out', 'tls', '--ca-cert', 'root.pem', '--ca-key', 'ca-key.pem'],
      {
        cwd: dir,
      },
    );
    expect(run.exitCode).toBe(2);
    const hint = run.stderr.split('\n').find((line) => line.includes('hint:'))!;
    const followed = await followHint(hint, { cwd: dir, passphrase: 'x' });
    expect(followed.exitCode, followed.stderr).toBe(0);
    expect(readFileSync(join(dir, 'ca-key.pem'))).toEqual(before);
    expect(statSync(join(dir, 'ca-key-decrypted.pem')).mode & 0o777).toBe(0o600);
    const issued = await dcp(
      [
        'certs',
        'gen',
        '--out',
        'tls',
        '--days',
        '7',
        '--ca-cert',
        'root.pem',
        '--ca-key',
        'ca-key-decrypted.pem',
      ],
      { cwd: dir },
    );
    expect(issued.exitCode, issued.stderr).toBe(0);
  });

  it('an --out that is a file', async () => {
    const file = join(tempDir(), 'a-file');
    writeFileSync(file, 'x');
    const run = await dcp(['certs', 'gen', '--out', join(file, 'tls')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(
      /^error: cannot use .*a-file\/tls as a folder: part of the path is a file, not a folder$/,
    );
  });

  it('--json still prints one JSON document: the error', async () => {
    const run = await dcp(['certs', 'gen', '--out', join(tempDir(), 'x'), '--days', 'abc', '--json']);
    expect(run.exitCode).toBe(2);
    expect(json(run.stdout)).toEqual({
      error: {
        message: '--days "abc" is not a number of days from 1 to 36525',
        hint: 'for example --days 365',
        exit_code: 2,
      },
    });
  });
});
