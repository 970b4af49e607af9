import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envVariable, loadSettings } from './load.js';

describe('loadSettings', () => {
  it('flags win over everything, and say so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcp-load-'));
    mkdirSync(join(dir, 'dask'));
    writeFileSync(join(dir, 'dask', 'dcp.yaml'), 'dcp:\n  workers: 3\n  provider: aws\n');
    writeFileSync(join(dir, '.dcprc.json'), JSON.stringify({ workers: 4 }));
    const loaded = await loadSettings({
      flags: { workers: 9 },
      env: { DASK_CONFIG: join(dir, 'dask'), DCP_WORKERS: '5' },
      cwd: dir,
    });
    expect(loaded.settings.workers).toBe(9);
    expect(loaded.origins.get('workers')).toEqual({ source: 'flag' });
    expect(loaded.origins.get('provider')).toEqual({ source: 'user', file: join(dir, 'dask', 'dcp.yaml') });
    expect(loaded.files.project).toBe(join(dir, '.dcprc.json'));
  });

  it('names variables after the key', () => {
    expect(envVariable('aws.instance_type')).toBe('DCP_AWS_INSTANCE_TYPE');
    expect(envVariable('idle_timeout')).toBe('DCP_IDLE_TIMEOUT');
  });
});
