/** The reference implementation: OpenSSL's own command line. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

export async function openssl(args: string[], options: { cwd?: string; input?: string } = {}) {
  const result = await execa('openssl', args, { reject: false, cwd: options.cwd, input: options.input });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Like `openssl` but throws with its stderr on failure. */
export async function opensslOk(args: string[], options: { cwd?: string } = {}): Promise<string> {
  const result = await openssl(args, options);
  if (result.exitCode !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${result.stderr}`);
  return result.stdout;
}

/**
 * A certificate made by `openssl req -x509` (self-signed) or `openssl x509 -req` (signed by
 * `ca`), with exactly the extensions given, in OpenSSL config syntax, and nothing else.
 */
export async function makeCert(
  dir: string,
  name: string,
  options: { extensions: string[]; ca?: { cert: string; key: string }; days?: number; key?: string },
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = options.key ?? join(dir, `${name}-key.pem`);
  const config = join(dir, `${name}.cnf`);
  writeFileSync(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      `CN = ${name}`,
      '[ext]',
      ...options.extensions,
    ].join('\n') + '\n',
  );
  if (!options.key)
    await opensslOk(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key]);
  const days = String(options.days ?? 30);
  if (options.ca) {
    const csr = join(dir, `${name}.csr`);
    await opensslOk(['req', '-new', '-key', key, '-config', config, '-out', csr]);
    await opensslOk([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      options.ca.cert,
      '-CAkey',
      options.ca.key,
      '-days',
      days,
      '-extfile',
      config,
      '-extensions',
      'ext',
      '-out',
      cert,
    ]);
  } else {
    await opensslOk([
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-config',
      config,
      '-extensions',
      'ext',
      '-days',
      days,
      '-out',
      cert,
    ]);
  }
  return { cert, key };
}
