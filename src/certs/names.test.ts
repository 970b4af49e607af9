import { describe, expect, it } from 'vitest';
import { DcpError } from '../errors.js';
import { parseAltName, parseAltNames } from './names.js';

describe('parseAltName', () => {
  it.each([
    ['10.0.0.5', { type: 'ip', value: '10.0.0.5' }],
    ['fd00::5', { type: 'ip', value: 'fd00::5' }],
    ['[fd00:0::5]', { type: 'ip', value: 'fd00::5' }],
    ['Sched.Example.com.', { type: 'dns', value: 'sched.example.com' }],
    ['*.dask.internal', { type: 'dns', value: '*.dask.internal' }],
    ['localhost', { type: 'dns', value: 'localhost' }],
  ])('%s', (input, expected) => {
    expect(parseAltName(input)).toEqual(expected);
  });

  it.each([
    '10.0.0.300',
    '10.1',
    'under_score.example',
    '-leading.example',
    'a..b',
    'has space',
    'x'.repeat(64),
    '',
  ])('rejects %j as a usage error', (input) => {
    expect(() => parseAltName(input)).toThrow(DcpError);
    try {
      parseAltName(input);
    } catch (error) {
      expect((error as DcpError).exitCode).toBe(2);
    }
  });

  it('splits commas and drops repeats', () => {
    expect(parseAltNames(['a.example,10.0.0.1', 'A.example'])).toEqual([
      { type: 'dns', value: 'a.example' },
      { type: 'ip', value: '10.0.0.1' },
    ]);
  });
});
