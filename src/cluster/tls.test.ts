import { describe, expect, it } from 'vitest';
import { checkByoFiles } from './tls.js';

describe('checkByoFiles', () => {
  it('a file that cannot be read is a problem to fix, named by the flag given, not an end', async () => {
    const check = await checkByoFiles({ ca: '/nonexistent/ca.pem', cert: '/nonexistent/dask.pem' });
    expect(check.problems).toEqual([
      'cannot read --tls-ca /nonexistent/ca.pem: no such file (check the path given to --tls-ca)',
    ]);
    const folder = await checkByoFiles({ dir: '/nonexistent' });
    expect(folder.problems[0]).toMatch(
      /^cannot read --tls-dir \(ca\.pem\) \/nonexistent\/ca\.pem: no such file/,
    );
  });
});
