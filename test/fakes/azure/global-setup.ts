/**
 * vitest globalSetup: makes the fake Azure CA before the workers start, and names it in
 * NODE_EXTRA_CA_CERTS (which Node reads only at process start) and DCP_TEST_AZURE_CA_DIR, so every
 * worker forked after this inherits both and trusts the fake's https without any agent option.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CA_DIR_ENV, ensureCaDir } from './ca.js';

export default function setup(): () => void {
  const given = process.env[CA_DIR_ENV];
  const dir = given || mkdtempSync(join(tmpdir(), 'dcp-azure-ca-'));
  ensureCaDir(dir);
  process.env[CA_DIR_ENV] = dir;
  const ours = join(dir, 'ca.pem');
  const theirs = process.env.NODE_EXTRA_CA_CERTS;
  if (theirs && theirs !== ours && !theirs.startsWith(dir)) {
    // Keep the certificates already trusted (a corporate proxy's, say): one bundle with both.
    const bundle = join(dir, 'bundle.pem');
    writeFileSync(bundle, `${readFileSync(theirs, 'utf8').trim()}\n${readFileSync(ours, 'utf8')}`);
    process.env.NODE_EXTRA_CA_CERTS = bundle;
  } else process.env.NODE_EXTRA_CA_CERTS = ours;
  return () => {
    if (!given) rmSync(dir, { recursive: true, force: true });
  };
}
