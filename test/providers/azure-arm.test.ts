/** dcp's Azure clients: the endpoint override, the credentials check before anything, and ARM's errors in dcp's words. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { armEndpoint, armError, connectArm } from '../../src/providers/azure/arm.js';
import { CloudApiError } from '../../src/providers/cloud.js';
import { SEED, startFakeAzure, type FakeAzure } from '../fakes/azure/index.js';
import { tempDir } from '../helpers/cli.js';

let fake: FakeAzure;
beforeAll(async () => {
  fake = await startFakeAzure();
});
afterAll(async () => fake?.close());

/** Only the Azure CLI credential (no managed-identity probe of 169.254.169.254), with `az` from `path`. */
const azEnv = (path: string) => ({
  ...process.env,
  DCP_AZURE_ENDPOINT: fake.url,
  AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential',
  PATH: path,
});

describe('connecting to ARM', () => {
  it('an endpoint over http, with a password, or more than an origin, is refused', () => {
    expect(() => armEndpoint({ DCP_AZURE_ENDPOINT: 'http://127.0.0.1:1' })).toThrow(/is not https/);
    expect(() => armEndpoint({ DCP_AZURE_ENDPOINT: 'https://u:p@example.com' })).toThrow(
      /user name or password/,
    );
    // An origin only: the scheduler appends its group's path to it.
    expect(() =>
      armEndpoint({
        DCP_AZURE_ENDPOINT: 'https://management.azure.com/subscriptions/s/resourceGroups/victim#',
      }),
    ).toThrow(/has a path, query or fragment/);
    expect(armEndpoint({ DCP_AZURE_ENDPOINT: 'https://management.example/' })).toBe(
      'https://management.example',
    );
    expect(armEndpoint({})).toBe('https://management.azure.com');
  });

  it('no credentials: exit 2 saying az login, and no ARM call', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, azEnv(tempDir('dcp-az-nopath-')));
    try {
      await expect(connectArm(SEED.subscriptionId)).rejects.toMatchObject({
        exitCode: 2,
        message: expect.stringMatching(/^no Azure credentials found/),
        hint: expect.stringMatching(/az login/),
      });
    } finally {
      process.env = saved;
    }
    expect(fake.calls.filter((call) => call.method !== 'token')).toEqual([]);
  });

  it('with the Azure CLI signed in, the clients reach the fake', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, azEnv(`${fake.writeAzCli(tempDir('dcp-az-bin-'))}:${process.env.PATH ?? ''}`));
    try {
      const arm = await connectArm(SEED.subscriptionId);
      const groups = [];
      for await (const group of arm.resources.resourceGroups.list()) groups.push(group.name);
      expect(groups).toContain(SEED.userGroup);
    } finally {
      process.env = saved;
    }
  });
});

describe('ARM errors in dcp’s words', () => {
  it('a RestError keeps its code and status; a failed long-running operation’s code is read from its message', () => {
    const quota = armError('virtualMachines.createOrUpdate', {
      code: 'OperationNotAllowed',
      statusCode: 409,
      message:
        'Operation could not be completed as it results in exceeding approved Total Regional Cores quota.',
    });
    expect(quota).toBeInstanceOf(CloudApiError);
    expect(quota).toMatchObject({
      status: 409,
      code: 'OperationNotAllowed',
      hint: expect.stringMatching(/quota/),
    });
    const allocation = armError(
      'virtualMachineScaleSets.createOrUpdate',
      new Error(
        'The long-running operation has failed. AllocationFailed. Allocation failed. We do not have sufficient capacity.',
      ),
    );
    expect(allocation.code).toBe('AllocationFailed');
    expect(allocation.message).toBe(
      'Azure refused virtualMachineScaleSets.createOrUpdate: AllocationFailed: Allocation failed. We do not have sufficient capacity.',
    );
    expect(allocation.hint).toMatch(/another --instance-type or --region/);
  });
});
