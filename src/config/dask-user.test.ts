import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { daskConfigGet, stricterMinVersion, userDaskConfig } from './dask-user.js';

function folders() {
  const base = mkdtempSync(join(tmpdir(), 'dcp-dask-user-'));
  const root = join(base, 'etc-dask');
  const home = join(base, 'home');
  const user = join(home, '.config', 'dask');
  mkdirSync(root, { recursive: true });
  mkdirSync(user, { recursive: true });
  return { root, home, user, env: { DASK_ROOT_CONFIG: root, HOME: home } };
}

const MIN = 'distributed.comm.tls.min-version';

describe('the user’s Dask configuration, merged as Dask merges it', () => {
  it('later folders win, files in name order, - and _ as one key', async () => {
    const { root, user, env } = folders();
    writeFileSync(join(root, 'a.yaml'), 'distributed:\n  comm:\n    tls:\n      min_version: 1.3\n');
    writeFileSync(join(user, 'b.yml'), 'distributed:\n  comm:\n    tls:\n      ciphers: ECDHE\n');
    const config = await userDaskConfig({ env });
    expect(daskConfigGet(config.config, MIN)).toBe(1.3);
    expect(daskConfigGet(config.config, 'distributed.comm.tls.ciphers')).toBe('ECDHE');
    writeFileSync(
      join(user, 'z.json'),
      JSON.stringify({ distributed: { comm: { tls: { 'min-version': 1.2 } } } }),
    );
    expect(daskConfigGet((await userDaskConfig({ env })).config, MIN)).toBe(1.2);
  });

  it('DASK_ variables win over files, their values read as Python literals', async () => {
    const { user, env } = folders();
    writeFileSync(join(user, 'dask.yaml'), 'distributed:\n  comm:\n    tls:\n      min-version: 1.2\n');
    const config = await userDaskConfig({
      env: {
        ...env,
        DASK_DISTRIBUTED__COMM__TLS__MIN_VERSION: '1.3',
        DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION: 'True',
      },
    });
    expect(daskConfigGet(config.config, MIN)).toBe(1.3);
    expect(daskConfigGet(config.config, 'distributed.comm.require-encryption')).toBe(true);
  });

  it('leaves out dcp’s own file; a file it cannot read is named, and then nothing is asserted', async () => {
    const { user, env } = folders();
    writeFileSync(join(user, 'dcp-client.yaml'), 'distributed:\n  comm:\n    tls:\n      min-version: 1.3\n');
    const mine = await userDaskConfig({ env, exclude: [join(user, 'dcp-client.yaml')] });
    expect(daskConfigGet(mine.config, MIN)).toBeUndefined();
    writeFileSync(join(user, 'a.yaml'), 'distributed:\n  comm:\n    tls:\n      min-version: 1.3\n');
    writeFileSync(join(user, 'broken.yaml'), 'distributed: [\n');
    const broken = await userDaskConfig({ env, exclude: [join(user, 'dcp-client.yaml')] });
    expect(broken.unreadable).toEqual([join(user, 'broken.yaml')]);
    expect(stricterMinVersion(broken)).toBeUndefined();
  });

  it('reads a repeated key as PyYAML does: the last one wins, the file still counts', async () => {
    const { user, env } = folders();
    writeFileSync(
      join(user, 'a.yaml'),
      'distributed:\n  comm:\n    tls:\n      min-version: 1.3\nlogging: {}\nlogging: {}\n',
    );
    const read = await userDaskConfig({ env });
    expect(read.unreadable).toEqual([]);
    expect(stricterMinVersion(read)).toBe(1.3);
  });

  it('keeps only a minimum stricter than Dask’s own, and nothing Dask would not take', () => {
    const at = (value: unknown) => ({
      config: { distributed: { comm: { tls: { 'min-version': value } } } },
      unreadable: [],
    });
    expect(stricterMinVersion({ config: {}, unreadable: [] })).toBeUndefined();
    expect(stricterMinVersion(at(1.3))).toBe(1.3);
    expect(stricterMinVersion(at('1.3'))).toBe(1.3);
    expect(stricterMinVersion(at(1.2))).toBeUndefined();
    expect(stricterMinVersion(at(1.1))).toBeUndefined();
    expect(stricterMinVersion(at(null))).toBeUndefined();
  });
});
