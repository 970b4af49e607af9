/** Where dcp's Azure provider finds the subscription and location: flags, variables, then the Azure CLI's files. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configuredLocation, resolveIdentity } from '../../src/providers/azure/identity.js';
import { SEED, startFakeAzure, type FakeAzure } from '../fakes/azure/index.js';
import { tempDir } from '../helpers/cli.js';

let fake: FakeAzure;
beforeAll(async () => {
  fake = await startFakeAzure();
});
afterAll(async () => fake?.close());

describe('subscription and location', () => {
  it('come from the Azure CLI’s files (azureProfile.json with its byte-order mark, [defaults] location)', async () => {
    const dir = fake.writeAzureProfile(tempDir('dcp-az-config-'));
    expect(readFileSync(`${dir}/azureProfile.json`, 'utf8').charCodeAt(0)).toBe(0xfeff);
    const env = { HOME: tempDir('dcp-az-home-'), AZURE_CONFIG_DIR: dir };
    expect(await resolveIdentity({}, env)).toEqual({
      subscription: SEED.subscriptionId,
      location: SEED.location,
      origins: { subscription: `${dir}/azureProfile.json`, location: `${dir}/config` },
    });
    expect(await configuredLocation(env)).toBe(SEED.location);
  });

  it('a flag or setting wins over a variable, which wins over the files', async () => {
    const dir = fake.writeAzureProfile(tempDir('dcp-az-config-'));
    const other = '11111111-2222-3333-4444-555555555555';
    const env = { AZURE_CONFIG_DIR: dir, AZURE_SUBSCRIPTION_ID: other, AZURE_DEFAULTS_LOCATION: 'eastus' };
    expect(await resolveIdentity({}, env)).toMatchObject({ subscription: other, location: 'eastus' });
    expect(
      await resolveIdentity(
        { subscription: SEED.subscriptionId.toUpperCase(), location: 'northeurope' },
        env,
      ),
    ).toMatchObject({ subscription: SEED.subscriptionId, location: 'northeurope' });
  });

  it('missing or malformed: a usage error naming the flag, the variable and the az command', async () => {
    const env = { AZURE_CONFIG_DIR: tempDir('dcp-az-empty-') };
    // Both missing: said at once, not one run at a time.
    await expect(resolveIdentity({}, env)).rejects.toMatchObject({
      exitCode: 2,
      message: 'no Azure subscription and no location are known',
      hint: expect.stringMatching(/--subscription ID --region LOCATION/),
    });
    await expect(resolveIdentity({ location: 'westeurope' }, env)).rejects.toMatchObject({
      exitCode: 2,
      message: 'no Azure subscription is known',
      hint: expect.stringMatching(/--subscription.*AZURE_SUBSCRIPTION_ID.*az account set/),
    });
    await expect(resolveIdentity({ subscription: SEED.subscriptionId }, env)).rejects.toMatchObject({
      message: 'no location is known for azure',
      hint: expect.stringMatching(/--region.*AZURE_DEFAULTS_LOCATION.*az config set defaults.location/),
    });
    expect(
      await resolveIdentity({ subscription: SEED.subscriptionId }, env, { locationRequired: false }),
    ).toMatchObject({ location: undefined });
    await expect(resolveIdentity({ subscription: 'not-a-guid', location: 'x' }, env)).rejects.toThrow(
      /"not-a-guid" is not an Azure subscription id/,
    );
    await expect(
      resolveIdentity({ subscription: SEED.subscriptionId, location: 'West Europe' }, env),
    ).rejects.toThrow(/"West Europe" is not an Azure location/);
  });
});
