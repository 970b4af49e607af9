import { describe, expect, it } from 'vitest';
import { cipherProblem, resolveTlsParams, tlsParamsEnv } from './tls-params.js';

describe('cipherProblem', () => {
  it.each([
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE+AESGCM:!aNULL',
    'HIGH:!aNULL:!eNULL',
    'ECDHE+AESGCM:@SECLEVEL=3',
  ])('takes %s', (ciphers) => expect(cipherProblem(ciphers)).toBeUndefined());

  it.each([
    ['NOPE', /selects no cipher/],
    ['TLS_AES_256_GCM_SHA384', /TLS 1\.3 suites only/],
    ['eNULL', /selects eNULL/],
    ['ALL:aNULL', /selects aNULL/],
    ['ECDHE-ECDSA-NULL-SHA', /selects ECDHE-ECDSA-NULL-SHA/],
    ['HIGH:@SECLEVEL=0', /@SECLEVEL=0/],
    // OpenSSL splits on semicolons, commas and spaces too: so does the check.
    ['HIGH;@SECLEVEL=0', /@SECLEVEL=0/],
    ['ECDHE-ECDSA-AES256-GCM-SHA384;@SECLEVEL=0;aNULL;eNULL', /@SECLEVEL=0/],
    ['ALL,@SECLEVEL=1', /@SECLEVEL=1/],
    ['ALL:@SECLEVEL=0\t', /@SECLEVEL=0/],
  ])('refuses %j', (ciphers, reason) => expect(cipherProblem(ciphers)).toMatch(reason));
});

describe('resolveTlsParams', () => {
  const user = (tls: Record<string, unknown>) => ({
    config: { distributed: { comm: { tls } } },
    unreadable: [],
  });

  it("takes the user's Dask values where dcp says nothing, and never goes below their minimum", () => {
    const { params, warnings } = resolveTlsParams(
      { tls_min_version: '1.2' },
      user({ 'min-version': 1.3, 'max-version': 1.3, ciphers: 'ECDHE+AESGCM' }),
    );
    expect(params).toEqual({
      minVersion: 1.3,
      maxVersion: 1.3,
      ciphers: 'ECDHE+AESGCM',
      requireEncryption: true,
    });
    expect(warnings).toEqual([expect.stringMatching(/below the 1\.3 of your Dask configuration/)]);
  });

  it("drops weak ciphers of the user's own Dask files, saying so", () => {
    const { params, warnings } = resolveTlsParams({}, user({ ciphers: 'HIGH;@SECLEVEL=0;eNULL' }));
    expect(params.ciphers).toBeUndefined();
    expect(warnings).toEqual([expect.stringMatching(/the cluster keeps Python's defaults/)]);
  });

  it('names every key for members, None where unset, so no other Dask file chooses one', () => {
    expect(tlsParamsEnv({ minVersion: 1.2, requireEncryption: true })).toEqual({
      DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION: 'True',
      DASK_DISTRIBUTED__COMM__TLS__MIN_VERSION: '1.2',
      DASK_DISTRIBUTED__COMM__TLS__MAX_VERSION: 'None',
      DASK_DISTRIBUTED__COMM__TLS__CIPHERS: 'None',
    });
    expect(tlsParamsEnv({ minVersion: 1.3, ciphers: `it's "odd"`, requireEncryption: false })).toMatchObject({
      DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION: 'False',
      DASK_DISTRIBUTED__COMM__TLS__CIPHERS: `"it's \\"odd\\""`,
    });
  });
});
