import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { makeSshKey } from '../../src/providers/ssh-key.js';

/** ssh-keygen (openssh-client) reads the key as OpenSSH itself would; .ci/run installs it. */
function sshKeygen(...args: string[]): string | undefined {
  try {
    return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (process.env.CI)
      throw new Error('ssh-keygen is missing: apt-get install -y openssh-client', { cause: error });
    console.warn('\n*** SKIPPING the ssh-keygen checks: apt-get install -y openssh-client ***\n');
    return undefined;
  }
}

describe('makeSshKey', () => {
  it('writes a private key OpenSSH reads (0600), whose public half and MD5 fingerprint are the ones returned', async () => {
    const dir = tempDir('dcp-ssh-key-');
    const key = await makeSshKey(dir, 'dcp-demo');
    expect(statSync(key.file).mode & 0o777).toBe(0o600);
    expect(readFileSync(key.file, 'utf8')).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ dcp-demo$/);
    const derived = sshKeygen('-y', '-f', key.file);
    if (derived === undefined) return;
    expect(derived.trim()).toBe(key.publicKey);
    expect(sshKeygen('-l', '-E', 'md5', '-f', key.file)).toContain(`MD5:${key.md5Fingerprint} dcp-demo`);
  });

  it('never overwrites a key already there', async () => {
    const dir = tempDir('dcp-ssh-key-');
    const first = await makeSshKey(dir, 'a');
    await expect(makeSshKey(dir, 'b')).rejects.toThrow();
    expect(sshKeygen('-y', '-f', first.file)?.trim() ?? first.publicKey).toBe(first.publicKey);
  });
});
