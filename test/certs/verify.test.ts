import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { followHint } from '../helpers/hints.js';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKey, privateKeyPem } from '../../src/certs/authority.js';
import { parsePem } from '../../src/certs/pem.js';
import { buildCertificate } from '../../src/certs/x509.js';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { makeCert, openssl, opensslOk } from '../helpers/openssl.js';

interface Report {
  ok: boolean;
  role: string;
  problems: { code: string; message: string; hint: string }[];
  warnings: { code: string; message: string; hint: string }[];
}

let dir: string;
let tls: string;
let other: string;

async function verify(args: string[]) {
  const run = await dcp(['certs', 'verify', ...args, '--json']);
  return {
    exitCode: run.exitCode,
    report: run.stdout ? json<Report>(run.stdout) : undefined,
    stderr: run.stderr,
  };
}

const codes = (findings: { code: string }[]) => findings.map((f) => f.code);

beforeAll(async () => {
  dir = tempDir();
  tls = join(dir, 'tls');
  other = join(dir, 'other');
  const [a, b] = await Promise.all([
    dcp(['certs', 'gen', '--out', tls]),
    dcp(['certs', 'gen', '--out', other]),
  ]);
  expect(a.exitCode, a.stderr).toBe(0);
  expect(b.exitCode, b.stderr).toBe(0);
});

describe('dcp certs verify: a good set', () => {
  it.each(['scheduler', 'worker', 'client'])('accepts the %s files, with no warnings', async (role) => {
    const { exitCode, report } = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, `${role}.pem`),
      '--key',
      join(tls, `${role}-key.pem`),
    ]);
    expect(exitCode).toBe(0);
    expect(report).toMatchObject({ ok: true, role, problems: [], warnings: [] });
  });

  it('accepts a file holding both certificate and key, without --key', async () => {
    const combined = join(dir, 'combined.pem');
    writeFileSync(
      combined,
      readFileSync(join(tls, 'worker.pem'), 'utf8') + readFileSync(join(tls, 'worker-key.pem'), 'utf8'),
      { mode: 0o600 },
    );
    const { exitCode, report } = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      combined,
      '--role',
      'worker',
    ]);
    expect(exitCode).toBe(0);
    expect(report?.warnings).toEqual([]);
  });

  it('says so in one line for a person', async () => {
    const run = await dcp([
      'certs',
      'verify',
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'client.pem'),
      '--key',
      join(tls, 'client-key.pem'),
    ]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toBe(
      `✓ Dask will accept ${join(tls, 'client.pem')} as the client (CN=dask-client, O=dcp)`,
    );
  });
});

describe('dcp certs verify: each problem, exit 1 with a hint', () => {
  it('a key that does not match the certificate', async () => {
    const { exitCode, report } = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'scheduler.pem'),
      '--key',
      join(tls, 'worker-key.pem'),
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['key-mismatch']);
    expect(report!.problems[0]!.hint).toBeTruthy();
  });

  it('a certificate not signed by that CA', async () => {
    const { exitCode, report } = await verify([
      '--ca',
      join(other, 'ca.pem'),
      '--cert',
      join(tls, 'client.pem'),
      '--key',
      join(tls, 'client-key.pem'),
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['not-signed-by-ca']);
    expect(report!.problems[0]!.message).toMatch(/was not signed by the CA in .*other\/ca\.pem/);
  });

  it('an expired certificate, and one not valid yet', async () => {
    const ca = parsePem('ca', readFileSync(join(tls, 'ca.pem'), 'utf8')).certificates[0]!;
    const caKey = parsePem('ca-key', readFileSync(join(tls, 'ca-key.pem'), 'utf8')).keys[0]!.key!;
    const day = 86_400_000;
    for (const [name, from, to, code] of [
      ['expired', Date.now() - 30 * day, Date.now() - day, 'expired'],
      ['future', Date.now() + day, Date.now() + 30 * day, 'not-yet-valid'],
    ] as const) {
      const keys = await generateKey();
      const cert = join(dir, `${name}.pem`);
      const key = join(dir, `${name}-key.pem`);
      writeFileSync(
        cert,
        buildCertificate({
          subject: { commonName: name },
          publicKey: keys.publicKey,
          issuer: { certificate: ca, key: caKey },
          notBefore: new Date(from),
          notAfter: new Date(to),
          ca: false,
          altNames: [],
        }),
      );
      writeFileSync(key, privateKeyPem(keys.privateKey));
      const { exitCode, report } = await verify([
        '--ca',
        join(tls, 'ca.pem'),
        '--cert',
        cert,
        '--key',
        key,
        '--role',
        'client',
      ]);
      expect(exitCode, name).toBe(1);
      expect(codes(report!.problems)).toEqual([code]);
    }
  });

  describe('extended key usage against the role', () => {
    let caFiles: { cert: string; key: string };
    const leaf = (name: string, eku?: string) =>
      makeCert(dir, name, {
        ca: caFiles,
        extensions: [
          'basicConstraints = CA:FALSE',
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid',
          ...(eku ? [`extendedKeyUsage = ${eku}`] : []),
        ],
      });

    beforeAll(() => {
      caFiles = { cert: join(tls, 'ca.pem'), key: join(tls, 'ca-key.pem') };
    });

    it.each([
      ['serverAuth', 'worker', 'lacks clientAuth'],
      ['serverAuth', 'client', 'lacks clientAuth'],
      ['clientAuth', 'scheduler', 'lacks serverAuth'],
      ['codeSigning', 'worker', 'lacks serverAuth and clientAuth'],
    ])('%s is unfit for a %s', async (eku, role, why) => {
      const files = await leaf(`eku-${eku}-${role}`, eku);
      const { exitCode, report } = await verify([
        '--ca',
        caFiles.cert,
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--role',
        role,
      ]);
      expect(exitCode).toBe(1);
      expect(codes(report!.problems)).toEqual(['extended-key-usage']);
      expect(report!.problems[0]!.message).toContain(why);
    });

    it.each([
      ['clientAuth', 'client'],
      ['serverAuth, clientAuth', 'scheduler'],
      ['no extension', 'worker'],
    ])('%s is fit for a %s', async (eku, role) => {
      const files = await leaf(`eku-ok-${role}`, eku === 'no extension' ? undefined : eku);
      const { exitCode, report } = await verify([
        '--ca',
        caFiles.cert,
        '--cert',
        files.cert,
        '--key',
        files.key,
        '--role',
        role,
      ]);
      expect(report!.problems).toEqual([]);
      expect(exitCode).toBe(0);
    });
  });

  it('a CA without basicConstraints CA:TRUE', async () => {
    const fake = await makeCert(dir, 'not-a-ca', {
      extensions: ['basicConstraints = critical, CA:FALSE', 'subjectKeyIdentifier = hash'],
    });
    const leaf = await makeCert(dir, 'signed-by-not-a-ca', {
      ca: fake,
      extensions: ['authorityKeyIdentifier = keyid'],
    });
    const { exitCode, report } = await verify(['--ca', fake.cert, '--cert', leaf.cert, '--key', leaf.key]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['ca-not-ca']);
  });

  it('a private key encrypted with a passphrase', async () => {
    const encrypted = join(dir, 'encrypted-key.pem');
    await opensslOk([
      'pkey',
      '-in',
      join(tls, 'worker-key.pem'),
      '-aes256',
      '-passout',
      'pass:secret',
      '-out',
      encrypted,
    ]);
    const { exitCode, report } = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'worker.pem'),
      '--key',
      encrypted,
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['key-encrypted']);
    // The hint, followed as printed: the key it was given stays whole, the plain copy is 0600.
    const before = readFileSync(encrypted);
    const followed = await followHint(report!.problems[0]!.hint, { cwd: dir, passphrase: 'secret' });
    expect(followed.exitCode, followed.stderr).toBe(0);
    expect(readFileSync(encrypted)).toEqual(before);
    const plain = join(dir, 'encrypted-key-decrypted.pem');
    expect(statSync(plain).mode & 0o777).toBe(0o600);
    const again = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'worker.pem'),
      '--key',
      plain,
    ]);
    expect(again.report!.problems).toEqual([]);
    // Its output must be new: a file already there (planted by another user, say) is refused, not filled.
    writeFileSync(plain, 'planted\n', { mode: 0o666 });
    const refused = await followHint(report!.problems[0]!.hint, { cwd: dir, passphrase: 'secret' });
    expect(refused.exitCode).not.toBe(0);
    expect(readFileSync(plain, 'utf8')).toBe('planted\n');
  });

  it('a CA file holding the CA key too: a warning, as whoever gets the file can issue certificates', async () => {
    const both = join(dir, 'ca-and-key.pem');
    writeFileSync(
      both,
      readFileSync(join(tls, 'ca.pem'), 'utf8') + readFileSync(join(tls, 'ca-key.pem'), 'utf8'),
    );
    chmodSync(both, 0o644);
    const { exitCode, report } = await verify([
      '--ca',
      both,
      '--cert',
      join(tls, 'worker.pem'),
      '--key',
      join(tls, 'worker-key.pem'),
    ]);
    expect(exitCode).toBe(0);
    expect(report!.warnings).toEqual([
      expect.objectContaining({
        code: 'ca-file-holds-key',
        message: expect.stringContaining('and other users can read it (mode 644)') as string,
      }),
    ]);
  });

  it('the hints for a key and a DER file named as their own output would be write a new file', async () => {
    // Named so that the obvious `-out` would be the input itself.
    const sub = join(dir, 'same-name');
    mkdirSync(sub);
    const keyDer = join(sub, 'worker-key.pem');
    await opensslOk(['pkey', '-in', join(tls, 'worker-key.pem'), '-outform', 'DER', '-out', keyDer]);
    const certDer = join(sub, 'worker.pem');
    await opensslOk(['x509', '-in', join(tls, 'worker.pem'), '-outform', 'DER', '-out', certDer]);
    const { report } = await verify(['--ca', join(tls, 'ca.pem'), '--cert', certDer, '--key', keyDer]);
    expect(codes(report!.problems)).toEqual(['not-pem', 'not-pem']);
    for (const problem of report!.problems) {
      const input = problem.message.includes('key file') ? keyDer : certDer;
      const before = readFileSync(input);
      const followed = await followHint(problem.hint, { cwd: sub });
      expect(followed.exitCode, followed.stderr).toBe(0);
      expect(readFileSync(input)).toEqual(before);
    }
    const converted = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(sub, 'worker-pem.pem'),
      '--key',
      join(sub, 'worker-key-pem.pem'),
    ]);
    expect(converted.report!.problems).toEqual([]);
    expect(statSync(join(sub, 'worker-key-pem.pem')).mode & 0o777).toBe(0o600);
  });

  it('a key that other users can read: a warning naming the file and chmod 600', async () => {
    const open = join(dir, 'open-key.pem');
    writeFileSync(open, readFileSync(join(tls, 'worker-key.pem')), { mode: 0o644 });
    chmodSync(open, 0o644);
    const { exitCode, report } = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'worker.pem'),
      '--key',
      open,
    ]);
    expect(exitCode).toBe(0);
    expect(report!.warnings).toEqual([
      {
        code: 'key-readable-by-others',
        message: `${open} holds a private key and is open to other users (mode 644): a private key should be readable by you alone`,
        hint: `chmod 600 ${open}`,
      },
    ]);
  });

  it('a FIFO, a device and a huge file are refused at once, never read through', async () => {
    const fifo = join(dir, 'fifo.pem');
    await execa('mkfifo', [fifo]);
    const big = join(dir, 'big.pem');
    writeFileSync(big, Buffer.alloc(1024 * 1024 + 1, 'A'));
    for (const [file, reason] of [
      [fifo, 'it is a FIFO, not a regular file'],
      ['/dev/zero', 'it is a device, not a regular file'],
      [big, 'it is larger than 1 MiB'],
    ] as const) {
      for (const args of [
        ['certs', 'inspect', file],
        ['certs', 'verify', '--ca', file, '--cert', join(tls, 'worker.pem')],
      ]) {
        const run = await dcp(args, { timeoutMs: 10_000 });
        expect(run.exitCode, `${args.join(' ')}: ${run.stderr}`).toBe(2);
        expect(run.stderr).toContain(reason);
      }
    }
  });

  it('a traditional (PKCS#1) encrypted key is caught too', async () => {
    const encrypted = join(dir, 'encrypted-traditional.pem');
    await opensslOk([
      'rsa',
      '-in',
      join(tls, 'worker-key.pem'),
      '-aes256',
      '-traditional',
      '-passout',
      'pass:secret',
      '-out',
      encrypted,
    ]);
    expect(readFileSync(encrypted, 'utf8')).toContain('Proc-Type: 4,ENCRYPTED');
    const { report } = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'worker.pem'),
      '--key',
      encrypted,
    ]);
    expect(codes(report!.problems)).toEqual(['key-encrypted']);
  });

  it('files that are not PEM: DER, and plain text', async () => {
    const der = join(dir, 'worker.der');
    await opensslOk(['x509', '-in', join(tls, 'worker.pem'), '-outform', 'DER', '-out', der]);
    const derRun = await verify([
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      der,
      '--key',
      join(tls, 'worker-key.pem'),
    ]);
    expect(derRun.exitCode).toBe(1);
    expect(codes(derRun.report!.problems)).toEqual(['not-pem']);
    expect(derRun.report!.problems[0]!.message).toContain('binary DER');
    expect(derRun.report!.problems[0]!.hint).toContain('openssl x509 -inform DER');

    const textFile = join(dir, 'readme.txt');
    writeFileSync(textFile, 'not a certificate\n');
    const textRun = await verify([
      '--ca',
      textFile,
      '--cert',
      join(tls, 'worker.pem'),
      '--key',
      join(tls, 'worker-key.pem'),
    ]);
    expect(textRun.exitCode).toBe(1);
    expect(codes(textRun.report!.problems)).toEqual(['not-pem']);
  });

  it('prints one line per problem, each with a hint', async () => {
    const run = await dcp([
      'certs',
      'verify',
      '--ca',
      join(other, 'ca.pem'),
      '--cert',
      join(tls, 'scheduler.pem'),
      '--key',
      join(tls, 'client-key.pem'),
    ]);
    expect(run.exitCode).toBe(1);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^✗ Dask will reject .*scheduler\.pem as the scheduler: 2 problems$/);
    expect(lines.slice(1).filter((l) => l.startsWith('  ✗ '))).toHaveLength(2);
    expect(lines.slice(1).filter((l) => /^\s+hint: /.test(l))).toHaveLength(2);
  });
});

describe('dcp certs verify: strict-verification gaps are warnings naming Python 3.13', () => {
  it.each([
    [
      'a CA whose basicConstraints is not critical',
      ['basicConstraints = CA:TRUE', 'keyUsage = critical, keyCertSign', 'subjectKeyIdentifier = hash'],
      'strict-basic-constraints',
    ],
    [
      'a CA without keyUsage',
      ['basicConstraints = critical, CA:TRUE', 'subjectKeyIdentifier = hash'],
      'strict-ca-key-usage',
    ],
    [
      'a CA without subjectKeyIdentifier',
      [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = none',
      ],
      'strict-subject-key-id',
    ],
  ])('%s', async (name, caExtensions, code) => {
    const ca = await makeCert(dir, `strict-${code}`, { extensions: caExtensions });
    const leaf = await makeCert(dir, `strict-${code}-leaf`, {
      ca,
      extensions: ['basicConstraints = CA:FALSE', 'authorityKeyIdentifier = keyid, issuer'],
    });
    const { exitCode, report } = await verify(['--ca', ca.cert, '--cert', leaf.cert, '--key', leaf.key]);
    expect(report!.problems, name).toEqual([]);
    expect(exitCode).toBe(0);
    expect(codes(report!.warnings)).toContain(code);
    expect(report!.warnings.find((w) => w.code === code)!.message).toContain('Python 3.13');
    // What the warning says is what OpenSSL does: fine when lenient, refused when strict.
    expect((await openssl(['verify', '-CAfile', ca.cert, leaf.cert])).exitCode).toBe(0);
    expect((await openssl(['verify', '-x509_strict', '-CAfile', ca.cert, leaf.cert])).exitCode).not.toBe(0);
  });

  it('a certificate without authorityKeyIdentifier', async () => {
    const ca = await makeCert(dir, 'aki-ca', {
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
    });
    const leaf = await makeCert(dir, 'aki-leaf', {
      ca,
      extensions: ['basicConstraints = CA:FALSE', 'authorityKeyIdentifier = none'],
    });
    const { exitCode, report } = await verify(['--ca', ca.cert, '--cert', leaf.cert, '--key', leaf.key]);
    expect(exitCode).toBe(0);
    expect(codes(report!.warnings)).toEqual(['strict-authority-key-id']);
    expect((await openssl(['verify', '-CAfile', ca.cert, leaf.cert])).exitCode).toBe(0);
    expect((await openssl(['verify', '-x509_strict', '-CAfile', ca.cert, leaf.cert])).exitCode).not.toBe(0);
  });
});

describe('dcp certs verify: bad arguments exit 2', () => {
  it('a --ca that does not exist', async () => {
    const run = await dcp([
      'certs',
      'verify',
      '--ca',
      join(dir, 'missing.pem'),
      '--cert',
      join(tls, 'worker.pem'),
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toMatch(/^error: cannot read --ca .*missing\.pem: no such file/);
  });

  it('an unknown --role', async () => {
    const run = await dcp([
      'certs',
      'verify',
      '--ca',
      join(tls, 'ca.pem'),
      '--cert',
      join(tls, 'worker.pem'),
      '--role',
      'nanny',
    ]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      "argument 'nanny' is invalid. Allowed choices are scheduler, worker, client",
    );
  });

  it('no --cert', async () => {
    const run = await dcp(['certs', 'verify', '--ca', join(tls, 'ca.pem')]);
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain("required option '--cert <file>' not specified");
  });
});

describe('dcp certs verify: chains and CAs, judged as OpenSSL judges them', () => {
  const CA_EXT = [
    'basicConstraints = critical, CA:TRUE',
    'keyUsage = critical, keyCertSign, cRLSign',
    'subjectKeyIdentifier = hash',
  ];
  const LEAF_EXT = [
    'basicConstraints = CA:FALSE',
    'subjectKeyIdentifier = hash',
    'authorityKeyIdentifier = keyid',
  ];
  let root: { cert: string; key: string };
  let intermediate: { cert: string; key: string };
  let leaf: { cert: string; key: string };

  /** `openssl verify` with OpenSSL's own purpose check, strict or not. */
  const opensslAccepts = async (
    ca: string,
    cert: string,
    options: { strict?: boolean; untrusted?: string; purpose?: string } = {},
  ) =>
    (
      await openssl([
        'verify',
        ...(options.strict ? ['-x509_strict'] : []),
        '-purpose',
        options.purpose ?? 'sslclient',
        ...(options.untrusted ? ['-untrusted', options.untrusted] : []),
        '-CAfile',
        ca,
        cert,
      ])
    ).exitCode === 0;

  beforeAll(async () => {
    root = await makeCert(dir, 'chain-root', {
      extensions: [...CA_EXT, 'authorityKeyIdentifier = keyid'],
      days: 3650,
    });
    intermediate = await makeCert(dir, 'chain-intermediate', {
      ca: root,
      extensions: [...CA_EXT, 'authorityKeyIdentifier = keyid'],
      days: 1000,
    });
    leaf = await makeCert(dir, 'chain-leaf', { ca: intermediate, extensions: LEAF_EXT });
  });

  it('a leaf sent with its intermediate, trusted through the root', async () => {
    const withChain = join(dir, 'chain-leaf-full.pem');
    writeFileSync(withChain, readFileSync(leaf.cert, 'utf8') + readFileSync(intermediate.cert, 'utf8'));
    const { exitCode, report } = await verify([
      '--ca',
      root.cert,
      '--cert',
      withChain,
      '--key',
      leaf.key,
      '--role',
      'client',
    ]);
    expect(report!.problems).toEqual([]);
    expect(exitCode).toBe(0);
    expect(await opensslAccepts(root.cert, leaf.cert, { untrusted: intermediate.cert, strict: true })).toBe(
      true,
    );
  });

  it('a CA file with only the intermediate: a partial chain, which only Python 3.13+ accepts', async () => {
    const { exitCode, report } = await verify([
      '--ca',
      intermediate.cert,
      '--cert',
      leaf.cert,
      '--key',
      leaf.key,
      '--role',
      'client',
    ]);
    expect(exitCode).toBe(0);
    expect(codes(report!.warnings)).toEqual(['partial-chain']);
    expect(report!.warnings[0]!.message).toContain('Python before 3.13');
    expect(await opensslAccepts(intermediate.cert, leaf.cert)).toBe(false);
    expect(
      (await openssl(['verify', '-partial_chain', '-CAfile', intermediate.cert, leaf.cert])).exitCode,
    ).toBe(0);
  });

  it('an intermediate that is no CA, sent along with the leaf', async () => {
    const fake = await makeCert(dir, 'chain-fake-intermediate', {
      ca: root,
      extensions: [
        'basicConstraints = CA:FALSE',
        'subjectKeyIdentifier = hash',
        'authorityKeyIdentifier = keyid',
      ],
    });
    const below = await makeCert(dir, 'chain-below-fake', { ca: fake, extensions: LEAF_EXT });
    const withChain = join(dir, 'chain-below-fake-full.pem');
    writeFileSync(withChain, readFileSync(below.cert, 'utf8') + readFileSync(fake.cert, 'utf8'));
    const { exitCode, report } = await verify([
      '--ca',
      root.cert,
      '--cert',
      withChain,
      '--key',
      below.key,
      '--role',
      'client',
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['ca-not-ca']);
    expect(await opensslAccepts(root.cert, below.cert, { untrusted: fake.cert })).toBe(false);
  });

  it('a CA whose extended key usage leaves out what the role needs', async () => {
    const narrow = await makeCert(dir, 'eku-ca', {
      extensions: [...CA_EXT, 'extendedKeyUsage = clientAuth'],
    });
    const server = await makeCert(dir, 'eku-ca-leaf', { ca: narrow, extensions: LEAF_EXT });
    const { exitCode, report } = await verify([
      '--ca',
      narrow.cert,
      '--cert',
      server.cert,
      '--key',
      server.key,
      '--role',
      'scheduler',
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['ca-extended-key-usage']);
    expect(await opensslAccepts(narrow.cert, server.cert, { purpose: 'sslserver' })).toBe(false);
    // For a client, clientAuth is all it takes, and OpenSSL agrees.
    expect(
      (await verify(['--ca', narrow.cert, '--cert', server.cert, '--key', server.key, '--role', 'client']))
        .exitCode,
    ).toBe(0);
    expect(await opensslAccepts(narrow.cert, server.cert, { purpose: 'sslclient' })).toBe(true);
  });

  it('a CA that is not valid yet', async () => {
    const keys = await generateKey();
    const caPem = buildCertificate({
      subject: { commonName: 'future CA' },
      publicKey: keys.publicKey,
      selfSigningKey: keys.privateKey,
      notBefore: new Date(Date.now() + 86_400_000),
      notAfter: new Date(Date.now() + 30 * 86_400_000),
      ca: true,
      altNames: [],
    });
    const caPath = join(dir, 'future-ca.pem');
    writeFileSync(caPath, caPem);
    const leafKeys = await generateKey();
    const leafPath = join(dir, 'future-leaf.pem');
    writeFileSync(
      leafPath,
      buildCertificate({
        subject: { commonName: 'leaf of a future CA' },
        publicKey: leafKeys.publicKey,
        issuer: { certificate: parsePem(caPath, caPem).certificates[0]!, key: keys.privateKey },
        notBefore: new Date(Date.now() - 86_400_000),
        notAfter: new Date(Date.now() + 10 * 86_400_000),
        ca: false,
        altNames: [],
      }),
    );
    const { exitCode, report } = await verify(['--ca', caPath, '--cert', leafPath, '--role', 'client']);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['ca-not-yet-valid']);
    expect(await opensslAccepts(caPath, leafPath)).toBe(false);
  });

  it('a CA with the right name and key whose key identifier is not the one the leaf names', async () => {
    const caKey = join(dir, 'akid-ca-key.pem');
    await opensslOk(['genpkey', '-algorithm', 'RSA', '-out', caKey]);
    const first = await makeCert(dir, 'akid-ca', {
      key: caKey,
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = 01:02:03:04',
      ],
    });
    const signed = await makeCert(dir, 'akid-leaf', {
      ca: first,
      extensions: ['basicConstraints = CA:FALSE', 'authorityKeyIdentifier = keyid'],
    });
    const other = join(dir, 'akid-other');
    mkdirSync(other);
    const second = await makeCert(other, 'akid-ca', {
      key: caKey,
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = 0A:0B:0C:0D',
      ],
    });
    expect(
      (await verify(['--ca', first.cert, '--cert', signed.cert, '--key', signed.key, '--role', 'client']))
        .exitCode,
    ).toBe(0);
    const { exitCode, report } = await verify([
      '--ca',
      second.cert,
      '--cert',
      signed.cert,
      '--key',
      signed.key,
      '--role',
      'client',
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['not-signed-by-ca']);
    expect(await opensslAccepts(second.cert, signed.cert)).toBe(false);
  });

  it('an unknown extension marked critical', async () => {
    const odd = await makeCert(dir, 'critical-leaf', {
      ca: root,
      extensions: [...LEAF_EXT, '1.2.3.4 = critical, ASN1:UTF8String:surprise'],
    });
    const { exitCode, report } = await verify([
      '--ca',
      root.cert,
      '--cert',
      odd.cert,
      '--key',
      odd.key,
      '--role',
      'client',
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['unknown-critical-extension']);
    expect(await opensslAccepts(root.cert, odd.cert)).toBe(false);
  });

  it('a leaf issued by another CA, given as its own CA: refused, as OpenSSL refuses it', async () => {
    const { exitCode, report } = await verify([
      '--ca',
      leaf.cert,
      '--cert',
      leaf.cert,
      '--key',
      leaf.key,
      '--role',
      'client',
    ]);
    expect(exitCode).toBe(1);
    expect(codes(report!.problems)).toEqual(['ca-is-the-certificate']);
    expect(report!.problems[0]!.message).toContain('not a CA');
    expect(await opensslAccepts(leaf.cert, leaf.cert)).toBe(false);
    // With its real issuer in the same file, the chain is whole again.
    const bundle = join(dir, 'leaf-and-chain.pem');
    writeFileSync(
      bundle,
      [leaf.cert, intermediate.cert, root.cert].map((f) => readFileSync(f, 'utf8')).join(''),
    );
    const whole = await verify(['--ca', bundle, '--cert', leaf.cert, '--key', leaf.key, '--role', 'client']);
    expect(whole.report!.problems).toEqual([]);
    expect(await opensslAccepts(bundle, leaf.cert)).toBe(true);
  });

  it('a self-signed certificate trusted as itself (pinned), even without CA:TRUE', async () => {
    const pinned = await makeCert(dir, 'pinned', {
      extensions: ['basicConstraints = critical, CA:FALSE', 'subjectKeyIdentifier = hash'],
    });
    const { exitCode, report } = await verify([
      '--ca',
      pinned.cert,
      '--cert',
      pinned.cert,
      '--key',
      pinned.key,
      '--role',
      'client',
    ]);
    expect(report!.problems).toEqual([]);
    expect(exitCode).toBe(0);
    expect(await opensslAccepts(pinned.cert, pinned.cert, { strict: true })).toBe(true);
  });

  it('a version 1 root: tolerated by lenient OpenSSL, a warning naming Python 3.13', async () => {
    const v1Key = join(dir, 'v1-root-key.pem');
    const v1 = join(dir, 'v1-root.pem');
    await opensslOk([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      v1Key,
      '-out',
      v1,
      '-days',
      '30',
      '-subj',
      '/CN=v1 root',
      '-config',
      '/dev/null',
    ]);
    const text = await opensslOk(['x509', '-in', v1, '-noout', '-text']);
    expect(text).toMatch(/Version: 1 \(0x0\)/);
    const signed = await makeCert(dir, 'v1-leaf', {
      ca: { cert: v1, key: v1Key },
      extensions: ['basicConstraints = CA:FALSE', 'subjectKeyIdentifier = hash'],
    });
    const { exitCode, report } = await verify([
      '--ca',
      v1,
      '--cert',
      signed.cert,
      '--key',
      signed.key,
      '--role',
      'client',
    ]);
    expect(report!.problems).toEqual([]);
    expect(exitCode).toBe(0);
    expect(codes(report!.warnings)).toContain('strict-ca-basic-constraints');
    expect(await opensslAccepts(v1, signed.cert)).toBe(true);
    expect(await opensslAccepts(v1, signed.cert, { strict: true })).toBe(false);
  });
});
