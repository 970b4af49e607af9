import { describe, expect, it } from 'vitest';
import { DcpError } from '../../errors.js';
import { awsError } from './ec2.js';
import { architecture } from './network.js';

function sdkError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

describe('AWS errors as dcp errors', () => {
  it('names the action and the code, with a hint for what to do', () => {
    const error = awsError(
      'RunInstances',
      sdkError(
        'VcpuLimitExceeded',
        'You have requested more vCPU capacity than your current vCPU limit of 32 allows.',
      ),
    );
    expect(error).toBeInstanceOf(DcpError);
    expect(error.message).toBe(
      'AWS refused RunInstances: VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 32 allows.',
    );
    expect(error.hint).toMatch(/quota/);
  });

  it('keeps the encoded authorization blob off the one-line message, with the command that decodes it', () => {
    const blob = 'x'.repeat(600);
    const error = awsError(
      'CreateSecurityGroup',
      sdkError(
        'UnauthorizedOperation',
        `You are not authorized to perform this operation. Encoded authorization failure message: ${blob}`,
      ),
    );
    expect(error.message).toBe(
      'AWS refused CreateSecurityGroup: UnauthorizedOperation: You are not authorized to perform this operation.',
    );
    expect(error.details).toBe(
      `what AWS checked: aws sts decode-authorization-message --encoded-message ${blob}`,
    );
    expect(error.hint).toMatch(/permissions/);
  });

  it('has no hint to give for a code it does not know', () => {
    expect(awsError('DescribeVpcs', sdkError('Weird', 'odd')).hint).toBeUndefined();
  });
});

describe('architecture of an instance type', () => {
  it.each([
    ['t3.medium', 'x86_64'],
    ['m7g.large', 'arm64'],
    ['c6gn.xlarge', 'arm64'],
    ['t4g.small', 'arm64'],
    ['a1.medium', 'arm64'],
    ['m7i.large', 'x86_64'],
    ['g5.xlarge', 'x86_64'],
    ['r8g.large', 'arm64'],
  ] as const)('%s runs %s', (type, arch) => {
    expect(architecture(type)).toBe(arch);
  });
});
