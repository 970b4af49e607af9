/** Two (or more) dcp processes writing the same Dask file at once never lose an update. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changeUserSettings } from '../../src/config/store.js';
import { dcp, json, tempDir } from '../helpers/cli.js';

describe('concurrent writers', () => {
  it('two dcp processes setting different keys at once both land', async () => {
    for (let round = 0; round < 3; round++) {
      const home = tempDir('dcp-home-');
      const [a, b] = await Promise.all([
        dcp(['config', 'set', 'workers', '7'], { home }),
        dcp(['config', 'set', 'aws.region', 'ap-south-1'], { home }),
      ]);
      expect(a.exitCode, a.stderr).toBe(0);
      expect(b.exitCode, b.stderr).toBe(0);
      const listed = json<{ settings: { workers: number; aws?: { region?: string } } }>(
        (await dcp(['config', 'list', '--json'], { home })).stdout,
      );
      expect(listed.settings.workers).toBe(7);
      expect(listed.settings.aws?.region).toBe('ap-south-1');
    }
  });

  it('five processes appending ingress rules at once: all five rules are kept', async () => {
    const home = tempDir('dcp-home-');
    const cidrs = ['10.1.0.0/16', '10.2.0.0/16', '10.3.0.0/16', '10.4.0.0/16', '10.5.0.0/16'];
    const results = await Promise.all(
      cidrs.map((cidr) => dcp(['config', 'set', 'ingress', '--cidr', cidr, '--append'], { home })),
    );
    for (const result of results) expect(result.exitCode, result.stderr).toBe(0);
    const saved = json<{ value: { cidr: string }[] }>(
      (await dcp(['config', 'get', 'ingress', '--json'], { home })).stdout,
    ).value;
    expect(saved.map((rule) => rule.cidr).sort()).toEqual(cidrs);
  });

  it('in one process too: twenty overlapping updates, none lost', async () => {
    const home = tempDir('dcp-home-');
    const env = { HOME: home, DASK_CONFIG: join(home, 'dask') };
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        changeUserSettings(
          (current) =>
            new Map([['ingress', [...(current.ingress ?? []), { ports: [8786], cidr: `10.${i}.0.0/16` }]]]),
          env,
        ),
      ),
    );
    const text = readFileSync(join(home, 'dask', 'dcp.yaml'), 'utf8');
    for (let i = 0; i < 20; i++) expect(text).toContain(`cidr: 10.${i}.0.0/16`);
  });
});
