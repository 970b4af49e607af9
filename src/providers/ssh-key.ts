/**
 * A cluster's own SSH key: clouds that would otherwise set a root password (DigitalOcean mails
 * one) or need a key to make a VM get this one. Ed25519 from Node's crypto; the private key is
 * written in OpenSSH's own format (OpenSSH 9.2 does not read a PKCS#8 Ed25519 key), 0600, in the
 * cluster's state folder, and never leaves this machine.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PRIVATE_FILE, writeFilesAtomically } from '../util/files.js';

export const SSH_KEY_FILE = 'ssh-key';

export interface SshKey {
  /** `ssh-ed25519 AAAA... comment`, as `authorized_keys` and cloud APIs take it. */
  publicKey: string;
  /** OpenSSH's MD5 fingerprint (`aa:bb:...`), as DigitalOcean names a key. */
  md5Fingerprint: string;
  /** The private key's file. */
  file: string;
}

/** SSH's wire encoding: a uint32 length, then the bytes. */
function sshString(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

/** The private key in OpenSSH's format (PROTOCOL.key), unencrypted: the file's mode guards it. */
function openSshPrivateKey(publicRaw: Buffer, seed: Buffer, publicBlob: Buffer, comment: string): string {
  const check = randomBytes(4);
  let secret = Buffer.concat([
    check,
    check,
    sshString('ssh-ed25519'),
    sshString(publicRaw),
    sshString(Buffer.concat([seed, publicRaw])),
    sshString(comment),
  ]);
  const padding = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: padding }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(secret),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/** Makes a key pair for `comment` (the cluster), writes the private key into `dir`, returns the public half. */
export async function makeSshKey(dir: string, comment: string): Promise<SshKey> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicRaw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(publicRaw)]);
  const file = join(dir, SSH_KEY_FILE);
  await writeFilesAtomically(
    [{ path: file, content: openSshPrivateKey(publicRaw, seed, publicBlob, comment), mode: PRIVATE_FILE }],
    { overwrite: false },
  );
  return {
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
    md5Fingerprint: createHash('md5').update(publicBlob).digest('hex').match(/../g)!.join(':'),
    file,
  };
}
