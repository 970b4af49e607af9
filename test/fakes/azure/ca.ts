/**
 * The certificate authority of the fake Azure endpoints. The Azure SDKs refuse bearer tokens over
 * plain http, so the fake serves https with a leaf for its address signed by this CA, and clients
 * trust it through NODE_EXTRA_CA_CERTS (read by Node only at process start: see global-setup.ts).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';

export const CA_DIR_ENV = 'DCP_TEST_AZURE_CA_DIR';

function keyPair(): { pem: string; key: forge.pki.rsa.PrivateKey; pub: forge.pki.rsa.PublicKey } {
  // Node's crypto makes the key (forge's pure-JS RSA is slow); forge builds the certificates.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { pem, key, pub: forge.pki.setRsaPublicKey(key.n, key.e) };
}

function certificate(
  subject: string,
  pub: forge.pki.rsa.PublicKey,
  signer: forge.pki.rsa.PrivateKey,
  issuer: forge.pki.Certificate | undefined,
  extensions: object[],
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = pub;
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 5 * 365 * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: subject }]);
  cert.setIssuer(issuer ? issuer.subject.attributes : [{ name: 'commonName', value: subject }]);
  cert.setExtensions(extensions);
  cert.sign(signer, forge.md.sha256.create());
  return cert;
}

/** Makes the CA files in `dir` (ca.pem, ca-key.pem) unless they are there. */
export function ensureCaDir(dir: string): void {
  if (existsSync(join(dir, 'ca.pem')) && existsSync(join(dir, 'ca-key.pem'))) return;
  mkdirSync(dir, { recursive: true });
  const { pem, key, pub } = keyPair();
  const cert = certificate('dcp test Azure CA', pub, key, undefined, [
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  // The key first, the certificate last: a reader that sees ca.pem sees the key too.
  writeFileSync(join(dir, 'ca-key.pem'), pem, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.pem'), forge.pki.certificateToPem(cert));
}

let ca: { cert: string; key: string; file: string } | undefined;
const leaves = new Map<string, { cert: string; key: string }>();

/**
 * The fake's CA, made once per process under os.tmpdir(), or the one in $DCP_TEST_AZURE_CA_DIR
 * (made there if missing). `file` is what NODE_EXTRA_CA_CERTS must name.
 */
export function fakeAzureCa(): { cert: string; key: string; file: string } {
  if (ca) return ca;
  const dir = process.env[CA_DIR_ENV] || mkdtempSync(join(tmpdir(), 'dcp-azure-ca-'));
  ensureCaDir(dir);
  const file = join(dir, 'ca.pem');
  ca = { cert: readFileSync(file, 'utf8'), key: readFileSync(join(dir, 'ca-key.pem'), 'utf8'), file };
  return ca;
}

/** A server certificate for `ip` (and localhost) signed by the CA, made once per process and address. */
export function fakeAzureLeaf(ip = '127.0.0.1'): { cert: string; key: string } {
  const made = leaves.get(ip);
  if (made) return made;
  const authority = fakeAzureCa();
  const caCert = forge.pki.certificateFromPem(authority.cert);
  const caKey = forge.pki.privateKeyFromPem(authority.key) as forge.pki.rsa.PrivateKey;
  const { pem, pub } = keyPair();
  const cert = certificate(ip, pub, caKey, caCert, [
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip },
        { type: 2, value: 'localhost' },
      ],
    },
  ]);
  // The chain, so a client that trusts only the CA can verify the leaf.
  const leaf = { cert: forge.pki.certificateToPem(cert) + authority.cert, key: pem };
  leaves.set(ip, leaf);
  return leaf;
}
