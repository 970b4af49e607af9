/** Which Dask image cloud VMs get, asked of a registry on 127.0.0.1 that behaves like ghcr.io. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lookupImage, matchingImage, parseReference } from '../../src/providers/image.js';
import { startFakeRegistry, type FakeRegistry } from '../fakes/registry/index.js';
import { describeWithDask, localVersions, python } from '../helpers/dask.js';

describe('image references', () => {
  it.each([
    [
      'ghcr.io/dask/dask:2024.5.0-py3.12',
      { registry: 'ghcr.io', repository: 'dask/dask', tag: '2024.5.0-py3.12' },
    ],
    ['daskdev/dask', { registry: 'registry-1.docker.io', repository: 'daskdev/dask', tag: 'latest' }],
    ['python:3.12', { registry: 'registry-1.docker.io', repository: 'library/python', tag: '3.12' }],
    ['localhost:5000/team/dask:1', { registry: 'localhost:5000', repository: 'team/dask', tag: '1' }],
  ])('%s', (image, parts) => {
    expect(parseReference(image)).toEqual(parts);
  });
});

describe('asking the registry', () => {
  let registry: FakeRegistry;
  beforeAll(async () => {
    registry = await startFakeRegistry('dask/dask', ['2022.12.1', '2022.12.1-py3.10']);
  });
  afterAll(() => registry.close());

  it('found and missing, through the anonymous token dance', async () => {
    expect(await lookupImage(`${registry.host}/dask/dask:2022.12.1-py3.10`)).toBe('found');
    expect(await lookupImage(`${registry.host}/dask/dask:2022.12.1-py3.99`)).toBe('missing');
    expect(registry.requests.slice(0, 3)).toEqual([
      'HEAD /v2/dask/dask/manifests/2022.12.1-py3.10',
      'GET /token',
      'HEAD /v2/dask/dask/manifests/2022.12.1-py3.10',
    ]);
  });

  it('unknown when the registry cannot say: no token for that repository, nobody listening', async () => {
    expect(await lookupImage(`${registry.host}/someone/private:1`)).toBe('unknown');
    expect(await lookupImage('127.0.0.1:9/dask/dask:1')).toBe('unknown');
  });
});

describeWithDask('the image matching this machine', () => {
  let versions: { distributed: string; python: string };
  beforeAll(async () => {
    versions = await localVersions();
  });

  it('is the exact tag when the registry has it', async () => {
    const registry = await startFakeRegistry('dask/dask', [
      `${versions.distributed}-py${versions.python}`,
      versions.distributed,
    ]);
    try {
      expect(await matchingImage(python(), `${registry.host}/dask/dask`)).toEqual({
        image: `${registry.host}/dask/dask:${versions.distributed}-py${versions.python}`,
      });
    } finally {
      await registry.close();
    }
  });

  it('falls back to the release tag, saying the Python differs, when there is no build for this Python', async () => {
    const registry = await startFakeRegistry('dask/dask', [versions.distributed]);
    try {
      const chosen = await matchingImage(python(), `${registry.host}/dask/dask`);
      expect(chosen.image).toBe(`${registry.host}/dask/dask:${versions.distributed}`);
      expect(chosen.warning).toContain(
        `no image of distributed ${versions.distributed} for Python ${versions.python}`,
      );
    } finally {
      await registry.close();
    }
  });

  it('is a usage error naming --image when the release has no image at all', async () => {
    const registry = await startFakeRegistry('dask/dask', ['1999.1.1']);
    try {
      await expect(matchingImage(python(), `${registry.host}/dask/dask`)).rejects.toMatchObject({
        exitCode: 2,
        hint: expect.stringContaining('--image'),
      });
    } finally {
      await registry.close();
    }
  });

  it('takes the exact tag when the registry cannot be asked', async () => {
    expect((await matchingImage(python(), '127.0.0.1:9/dask/dask')).image).toBe(
      `127.0.0.1:9/dask/dask:${versions.distributed}-py${versions.python}`,
    );
  });
});
