/**
 * X.509 encoding and decoding. Node's crypto makes keys, signs and parses what it can
 * (X509Certificate); node-forge's ASN.1 codec fills the gaps Node leaves: building a
 * certificate, and reading extension details Node does not expose (criticality, key usage
 * bits, key identifiers). Nothing here assumes RSA, so any CA key Node can sign with works.
 */
import { createHash, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;
/** Public in node-forge, missing from its type definitions. */
const pkiExtensions = forge.pki as unknown as {
  certificateExtensionsFromAsn1(extensions: Asn1): RawExtension[];
  certificateExtensionsToAsn1(extensions: unknown[]): Asn1;
};

const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
} as const;

/** Extensions OpenSSL understands (X509_supported_extension); any other marked critical fails verification. */
const OPENSSL_HANDLED = new Set([
  '2.16.840.1.113730.1.1', // nsCertType
  '2.5.29.15', // keyUsage
  '2.5.29.17', // subjectAltName
  '2.5.29.19', // basicConstraints
  '2.5.29.32', // certificatePolicies
  '2.5.29.37', // extKeyUsage
  '1.3.6.1.5.5.7.1.7', // sbgp-ipAddrBlock
  '1.3.6.1.5.5.7.1.8', // sbgp-autonomousSysNum
  '2.5.29.36', // policyConstraints
  '1.3.6.1.5.5.7.1.14', // proxyCertInfo
  '2.5.29.33', // policyMappings
  '2.5.29.54', // inhibitAnyPolicy
  '2.5.29.30', // nameConstraints
]);

const EXTENDED_KEY_USAGES: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
  '2.5.29.37.0': 'anyExtendedKeyUsage',
};

export const KEY_USAGES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

/** What dcp needs to know about a certificate, beyond what Node's X509Certificate says. */
export interface Certificate {
  readonly x509: X509Certificate;
  readonly pem: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
  readonly fingerprint256: string;
  readonly publicKey: KeyObject;
  readonly keyDescription: string;
  readonly selfSigned: boolean;
  /** X.509 version: 1 (no extensions possible) or 3. */
  readonly version: number;
  readonly basicConstraints: { ca: boolean; critical: boolean; pathLen?: number } | undefined;
  readonly keyUsage: { critical: boolean; usages: KeyUsage[] } | undefined;
  /** Names (serverAuth, clientAuth, ...) or dotted OIDs; undefined when the extension is absent. */
  readonly extKeyUsage: string[] | undefined;
  readonly subjectAltNames: string[];
  readonly subjectAltNameCritical: boolean;
  readonly subjectKeyId: string | undefined;
  readonly authorityKeyId: string | undefined;
  /** The DER subject Name, reused verbatim as the issuer of certificates this one signs. */
  readonly subjectNameDer: Buffer;
  readonly issuerNameDer: Buffer;
  /** OIDs of critical extensions OpenSSL does not know, each a reason to reject the certificate. */
  readonly unhandledCritical: string[];
}

function bytes(buffer: Buffer): forge.util.ByteStringBuffer {
  return forge.util.createBuffer(buffer.toString('binary'));
}

/**
 * DER to ASN.1 without looking inside BIT STRINGs: forge would otherwise try to decode a key
 * in them. (The options object is real; forge's type definitions only know a boolean.)
 */
function fromDer(der: Buffer): Asn1 {
  return (asn1.fromDer as unknown as (input: forge.util.ByteStringBuffer, options: object) => Asn1)(
    bytes(der),
    { decodeBitStrings: false },
  );
}

function fromBinary(value: string): Buffer {
  return Buffer.from(value, 'binary');
}

/** Parses one PEM certificate block. Throws on anything that is not a well-formed certificate. */
export function parseCertificate(pem: string): Certificate {
  const x509 = new X509Certificate(pem);
  const tbsFields = (fromDer(x509.raw).value as Asn1[])[0]!.value as Asn1[];
  const isTagged = (node: Asn1, tag: number) =>
    node.tagClass === asn1.Class.CONTEXT_SPECIFIC && node.type === tag;
  const offset = isTagged(tbsFields[0]!, 0) ? 1 : 0;
  const subjectName = tbsFields[offset + 4]!;
  const issuerName = tbsFields[offset + 2]!;
  const extensionsNode = tbsFields.find((node) => isTagged(node, 3));
  const extensions = extensionsNode ? pkiExtensions.certificateExtensionsFromAsn1(extensionsNode) : [];
  const find = (oid: string) => extensions.find((e) => e.id === oid);

  const bc = find(OID.basicConstraints);
  const ku = find(OID.keyUsage);
  const eku = find(OID.extKeyUsage);
  const san = find(OID.subjectAltName);
  const ski = find(OID.subjectKeyIdentifier);
  const aki = find(OID.authorityKeyIdentifier);

  const publicKey = x509.publicKey;
  const subject = oneLineName(x509.subject);
  const issuer = oneLineName(x509.issuer);
  const certificate: Certificate = {
    x509,
    pem: x509.toString(),
    subject,
    issuer,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serial: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
    publicKey,
    keyDescription: describeKey(publicKey),
    selfSigned: false,
    version: offset === 1 ? asn1.derToInteger((tbsFields[0]!.value as Asn1[])[0]!.value as string) + 1 : 1,
    basicConstraints: bc && {
      ca: bc.cA === true,
      critical: bc.critical,
      ...(bc.pathLenConstraint === undefined ? {} : { pathLen: bc.pathLenConstraint }),
    },
    keyUsage: ku && { critical: ku.critical, usages: KEY_USAGES.filter((usage) => ku[usage] === true) },
    extKeyUsage:
      eku &&
      (asn1.fromDer(eku.value).value as Asn1[]).map((node) => {
        const oid = asn1.derToOid(node.value as string);
        return EXTENDED_KEY_USAGES[oid] ?? oid;
      }),
    subjectAltNames: (san?.altNames ?? []).map(formatAltName),
    subjectAltNameCritical: san?.critical ?? false,
    subjectKeyId: ski?.subjectKeyIdentifier,
    authorityKeyId: aki && authorityKeyIdOf(aki.value),
    subjectNameDer: fromBinary(asn1.toDer(subjectName).getBytes()),
    issuerNameDer: fromBinary(asn1.toDer(issuerName).getBytes()),
    unhandledCritical: extensions.filter((e) => e.critical && !OPENSSL_HANDLED.has(e.id)).map((e) => e.id),
  };
  return { ...certificate, selfSigned: isIssuedBy(certificate, certificate) };
}

interface RawExtension {
  id: string;
  critical: boolean;
  value: string;
  cA?: boolean;
  pathLenConstraint?: number;
  altNames?: { type: number; value: string; ip?: string }[];
  subjectKeyIdentifier?: string;
  [usage: string]: unknown;
}

function authorityKeyIdOf(value: string): string | undefined {
  const keyId = (asn1.fromDer(value).value as Asn1[]).find(
    (node) => node.tagClass === asn1.Class.CONTEXT_SPECIFIC && node.type === 0,
  );
  return keyId && forge.util.bytesToHex(keyId.value as string);
}

function formatAltName(name: { type: number; value: string; ip?: string }): string {
  switch (name.type) {
    case 1:
      return `email:${name.value}`;
    case 2:
      return `DNS:${name.value}`;
    case 6:
      return `URI:${name.value}`;
    case 7:
      return `IP:${name.ip ?? '?'}`;
    default:
      return `other:${name.type}`;
  }
}

/** Node prints names one attribute a line; people read them as `CN=a, O=b`. */
function oneLineName(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

/** `RSA 2048`, `EC P-256`, `Ed25519`. */
export function describeKey(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return `RSA ${details.modulusLength ?? '?'}`;
    case 'ec':
      return `EC ${details.namedCurve === 'prime256v1' ? 'P-256' : details.namedCurve === 'secp384r1' ? 'P-384' : (details.namedCurve ?? '?')}`;
    case 'ed25519':
      return 'Ed25519';
    default:
      return key.asymmetricKeyType ?? 'unknown';
  }
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = fromDer(publicKey.export({ type: 'spki', format: 'der' }));
  const bitString = (spki.value as Asn1[])[1]!.value as string;
  return createHash('sha1')
    .update(fromBinary(bitString.slice(1)))
    .digest();
}

export interface AltName {
  type: 'dns' | 'ip';
  value: string;
}

export interface CertificateSpec {
  subject: { commonName: string; organizationName?: string };
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: boolean;
  altNames: AltName[];
  /** The signer; omitted for a self-signed CA. */
  issuer?: { certificate: Certificate; key: KeyObject };
  /** The key that signs a self-signed CA. */
  selfSigningKey?: KeyObject;
}

/** Builds and signs a certificate with the profile of DESIGN.md section 5. Returns PEM. */
export function buildCertificate(spec: CertificateSpec): string {
  const signingKey = spec.issuer?.key ?? spec.selfSigningKey;
  if (!signingKey) throw new Error('buildCertificate needs an issuer or a self-signing key');
  const algorithm = signatureAlgorithm(signingKey);
  const subjectKeyId = keyIdentifier(spec.publicKey);
  const authorityKeyId = spec.issuer
    ? spec.issuer.certificate.subjectKeyId
      ? Buffer.from(spec.issuer.certificate.subjectKeyId, 'hex')
      : keyIdentifier(spec.issuer.certificate.publicKey)
    : subjectKeyId;

  const holder = forge.pki.createCertificate();
  holder.setSubject([
    { name: 'commonName', value: spec.subject.commonName },
    ...(spec.subject.organizationName
      ? [{ name: 'organizationName', value: spec.subject.organizationName }]
      : []),
  ]);
  holder.setExtensions([
    spec.ca
      ? { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 }
      : { name: 'basicConstraints', critical: true, cA: false },
    spec.ca
      ? { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true }
      : // RSA keys may also encrypt a key exchange; EC keys only sign (RFC 5480).
        {
          name: 'keyUsage',
          critical: true,
          digitalSignature: true,
          ...(spec.publicKey.asymmetricKeyType === 'rsa' ? { keyEncipherment: true } : {}),
        },
    ...(spec.ca ? [] : [{ name: 'extKeyUsage', serverAuth: true, clientAuth: true }]),
    ...(spec.altNames.length > 0
      ? [
          {
            name: 'subjectAltName',
            altNames: spec.altNames.map((n) =>
              n.type === 'ip' ? { type: 7, ip: n.value } : { type: 2, value: n.value },
            ),
          },
        ]
      : []),
    { name: 'subjectKeyIdentifier', value: octetString(subjectKeyId) },
    {
      name: 'authorityKeyIdentifier',
      value: sequence([
        asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, authorityKeyId.toString('binary')),
      ]),
    },
  ]);
  const subjectName = forge.pki.distinguishedNameToAsn1(holder.subject);
  const issuerName = spec.issuer ? fromDer(spec.issuer.certificate.subjectNameDer) : subjectName;

  const tbs = sequence([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [integer(Buffer.from([2]))]),
    integer(randomSerial()),
    algorithm.identifier,
    issuerName,
    sequence([time(spec.notBefore), time(spec.notAfter)]),
    subjectName,
    fromDer(spec.publicKey.export({ type: 'spki', format: 'der' })),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [
      pkiExtensions.certificateExtensionsToAsn1(holder.extensions).value[0] as Asn1,
    ]),
  ]);
  const tbsDer = fromBinary(asn1.toDer(tbs).getBytes());
  const signature = sign(algorithm.hash, tbsDer, signingKey);
  const certificate = sequence([
    tbs,
    algorithm.identifier,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + signature.toString('binary')),
  ]);
  const der = fromBinary(asn1.toDer(certificate).getBytes());
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;
}

/** Whether buildCertificate can sign with this key. */
export function canSignWith(key: KeyObject): boolean {
  return (
    key.asymmetricKeyType === 'rsa' ||
    key.asymmetricKeyType === 'ed25519' ||
    (key.asymmetricKeyType === 'ec' &&
      ['prime256v1', 'secp384r1', 'secp521r1'].includes(key.asymmetricKeyDetails?.namedCurve ?? ''))
  );
}

function signatureAlgorithm(key: KeyObject): { identifier: Asn1; hash: string | null } {
  const oid = (value: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes());
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return {
        identifier: sequence([
          oid(OID.sha256WithRSA),
          asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
        ]),
        hash: 'sha256',
      };
    case 'ec': {
      // RFC 5758: the hash follows the curve size; ECDSA identifiers carry no parameters.
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const [algorithmOid, hash] =
        curve === 'secp384r1'
          ? [OID.ecdsaWithSha384, 'sha384']
          : curve === 'secp521r1'
            ? [OID.ecdsaWithSha512, 'sha512']
            : [OID.ecdsaWithSha256, 'sha256'];
      return { identifier: sequence([oid(algorithmOid)]), hash };
    }
    case 'ed25519':
      return { identifier: sequence([oid(OID.ed25519)]), hash: null };
    default:
      throw new Error(`cannot sign with a ${key.asymmetricKeyType ?? 'unknown'} key`);
  }
}

function sequence(children: Asn1[]): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, children);
}

function octetString(value: Buffer): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, value.toString('binary'));
}

/** A DER INTEGER from unsigned big-endian bytes (a leading zero keeps it positive). */
function integer(value: Buffer): Asn1 {
  const positive = value[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), value]) : value;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, positive.toString('binary'));
}

/** 128 random bits; a zero first byte would make the DER integer non-minimal. */
function randomSerial(): Buffer {
  const serial = randomBytes(16);
  if (serial[0] === 0) serial[0] = 1;
  return serial;
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

/** Whether `key` is the private half of the certificate's public key. */
export function keyMatches(certificate: Certificate, key: KeyObject): boolean {
  try {
    return certificate.x509.checkPrivateKey(key);
  } catch {
    return false;
  }
}

/**
 * Whether `issuer` signed `certificate`, as OpenSSL decides it: the issuer name matches, the
 * authority key identifier (when both sides have one) matches, and the signature checks out.
 * Key usage is left to the caller, so a CA that may not sign is reported as such, not as a stranger.
 */
export function isIssuedBy(
  certificate: Pick<Certificate, 'x509' | 'issuer' | 'issuerNameDer' | 'authorityKeyId'>,
  issuer: Pick<Certificate, 'subject' | 'subjectNameDer' | 'subjectKeyId' | 'publicKey'>,
): boolean {
  const namesMatch =
    certificate.issuerNameDer.equals(issuer.subjectNameDer) ||
    certificate.issuer.toLowerCase() === issuer.subject.toLowerCase();
  const keyIdsMatch =
    !certificate.authorityKeyId || !issuer.subjectKeyId || certificate.authorityKeyId === issuer.subjectKeyId;
  try {
    return namesMatch && keyIdsMatch && certificate.x509.verify(issuer.publicKey);
  } catch {
    return false;
  }
}
