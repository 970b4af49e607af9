#!/usr/bin/env node
// `dcp certs gen` against the openssl commands that make the same set (a CA and scheduler,
// worker and client certificates, RSA 2048, the same extensions), timed in the same run and
// interleaved so both see the same machine. Goal: ratio (dcp / openssl) <= 1.0.
// Usage: npm run build && node bench/certs-gen.mjs [rounds]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compare, time } from './compare.mjs';

const rounds = Number(process.argv[2] ?? 15);
const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dcp-bench-'));

const config = join(work, 'openssl.cnf');
writeFileSync(
  config,
  `[req]
distinguished_name = dn
prompt = no
[dn]
CN = dcp CA
O = dcp
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:dask-role, DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`,
);
const script = join(work, 'openssl-gen.sh');
writeFileSync(
  script,
  `set -e
cd "$1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 3650 -config "$2" -extensions ca 2>/dev/null
for role in scheduler worker client; do
  openssl req -newkey rsa:2048 -nodes -keyout $role-key.pem -out $role.csr -subj "/CN=dask-$role/O=dcp" 2>/dev/null
  openssl x509 -req -in $role.csr -CA ca.pem -CAkey ca-key.pem -days 365 -extfile "$2" -extensions leaf -out $role.pem 2>/dev/null
done
chmod 600 *-key.pem
`,
);

await compare({
  bench: 'certs-gen',
  rounds,
  reference: 'openssl',
  goal: 1.0,
  measureDcp: (i) =>
    time(() =>
      execFileSync(process.execPath, [cli, 'certs', 'gen', '--out', join(work, `dcp-${i}`), '--json'], {
        stdio: 'ignore',
      }),
    ),
  measureReference: (i) => {
    const out = join(work, `openssl-${i}`);
    mkdirSync(out);
    return time(() => execFileSync('sh', [script, out, config], { stdio: 'ignore' }));
  },
});
// The reference made what dcp makes: check it once.
execFileSync(
  'openssl',
  [
    'verify',
    '-x509_strict',
    '-CAfile',
    join(work, 'openssl-0', 'ca.pem'),
    join(work, 'openssl-0', 'worker.pem'),
  ],
  { stdio: 'ignore' },
);
rmSync(work, { recursive: true, force: true });
