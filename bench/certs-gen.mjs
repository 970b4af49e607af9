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

function time(run) {
  const start = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const dcp = [];
const openssl = [];
for (let i = 0; i < rounds; i++) {
  const a = join(work, `dcp-${i}`);
  const b = join(work, `openssl-${i}`);
  mkdirSync(b);
  const runDcp = () => time(() => execFileSync(process.execPath, [cli, 'certs', 'gen', '--out', a, '--json'], { stdio: 'ignore' }));
  const runOpenssl = () => time(() => execFileSync('sh', [script, b, config], { stdio: 'ignore' }));
  // Alternate which goes first so neither always runs on a warmer machine.
  if (i % 2 === 0) {
    dcp.push(runDcp());
    openssl.push(runOpenssl());
  } else {
    openssl.push(runOpenssl());
    dcp.push(runDcp());
  }
}
execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', join(work, 'openssl-0', 'ca.pem'), join(work, 'openssl-0', 'worker.pem')], { stdio: 'ignore' });
rmSync(work, { recursive: true, force: true });

const result = {
  bench: 'certs-gen',
  rounds,
  dcp_median_ms: Math.round(median(dcp)),
  openssl_median_ms: Math.round(median(openssl)),
  ratio: Number((median(dcp) / median(openssl)).toFixed(2)),
  goal: '<= 1.0',
};
console.log(JSON.stringify(result));
process.exitCode = result.ratio <= 1.0 ? 0 : 1;
