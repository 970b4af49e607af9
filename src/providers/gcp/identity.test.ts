import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveIdentity } from './identity.js';

describe('where a GCP cluster goes, as gcloud finds it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dcp-gcp-identity-'));
  const key = join(dir, 'key.json');
  writeFileSync(key, JSON.stringify({ type: 'service_account', project_id: 'from-key-file' }));
  const gcloud = join(dir, 'gcloud');
  mkdirSync(join(gcloud, 'configurations'), { recursive: true });
  writeFileSync(join(gcloud, 'configurations', 'config_default'), '[compute]\nzone = europe-west1-b\n');
  const env = { HOME: dir, CLOUDSDK_CONFIG: gcloud, GOOGLE_APPLICATION_CREDENTIALS: key };

  it('takes the credentials file’s project last, and names where each came from', async () => {
    expect(await resolveIdentity({}, env)).toEqual({
      project: 'from-key-file',
      zone: 'europe-west1-b',
      origins: { project: key, zone: join(gcloud, 'configurations', 'config_default') },
    });
    expect(
      await resolveIdentity({ zone: 'us-central1-a' }, { ...env, GOOGLE_CLOUD_PROJECT: 'from-variable' }),
    ).toMatchObject({
      project: 'from-variable',
      zone: 'us-central1-a',
      origins: { project: 'GOOGLE_CLOUD_PROJECT', zone: '--zone (gcp.zone)' },
    });
  });

  it('refuses what is not a project id or a zone, naming where it came from', async () => {
    await expect(resolveIdentity({}, { ...env, CLOUDSDK_CORE_PROJECT: '../x' })).rejects.toThrow(
      /^CLOUDSDK_CORE_PROJECT: "\.\.\/x" is not a Google Cloud project id/,
    );
    await expect(resolveIdentity({ zone: 'us"central' }, env)).rejects.toThrow(/is not a zone/);
  });
});
