/**
 * The generated certificates against real peers: Python's ssl configured by distributed's own
 * Security object, and a real `dask scheduler` + `dask worker`.
 */
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { dcp, json, tempDir } from '../helpers/cli.js';
import { describeWithDask, runPython, startPython, stop, freePort, type Started } from '../helpers/dask.js';
import { makeCert } from '../helpers/openssl.js';
import { handshake, type Peer } from '../helpers/tls.js';

interface GenJson {
  dask: { scheduler_command: string[]; worker_command: string[]; snippet: string; scheduler_address: string };
}

let tls: string;
let other: string;
let generated: GenJson;

const peer = (dir: string, role: Peer['role']): Peer => ({
  role,
  ca: join(dir, 'ca.pem'),
  cert: join(dir, `${role}.pem`),
  key: join(dir, `${role}-key.pem`),
});

beforeAll(async () => {
  const dir = tempDir();
  tls = join(dir, 'tls');
  other = join(dir, 'other');
  const [a, b] = await Promise.all([
    dcp(['certs', 'gen', '--out', tls, '--json']),
    dcp(['certs', 'gen', '--out', other]),
  ]);
  expect(a.exitCode, a.stderr).toBe(0);
  expect(b.exitCode, b.stderr).toBe(0);
  generated = json<GenJson>(a.stdout);
});

describeWithDask('mutual TLS with the contexts distributed builds', () => {
  it.each([
    ['scheduler', 'worker', false],
    ['scheduler', 'client', false],
    ['worker', 'scheduler', false],
    ['scheduler', 'worker', true],
    ['scheduler', 'client', true],
    ['worker', 'scheduler', true],
  ] as const)('%s accepts %s (VERIFY_X509_STRICT forced: %s)', async (server, client, strict) => {
    const result = await handshake(peer(tls, server), peer(tls, client), strict);
    expect(result).toEqual({ ok: true, server_error: null, client_error: null });
  });

  it('the scheduler refuses a client whose certificate comes from another CA', async () => {
    const stranger = { ...peer(other, 'client'), ca: join(tls, 'ca.pem') };
    const result = await handshake(peer(tls, 'scheduler'), stranger, false);
    expect(result.ok).toBe(false);
    expect(result.server_error).toMatch(/CERTIFICATE_VERIFY_FAILED|unknown ca/i);
  });

  it('the scheduler refuses a client with no certificate', async () => {
    const result = await handshake(
      peer(tls, 'scheduler'),
      { role: 'client', ca: join(tls, 'ca.pem'), cert: null, key: null },
      false,
    );
    expect(result.ok).toBe(false);
    expect(result.server_error).toMatch(/PEER_DID_NOT_RETURN_A_CERTIFICATE|certificate required/i);
  });

  it('what verify warns about is what strict mode rejects: a CA with non-critical basicConstraints', async () => {
    const dir = tempDir();
    const ca = await makeCert(dir, 'lax-ca', {
      extensions: [
        'basicConstraints = CA:TRUE',
        'keyUsage = critical, keyCertSign',
        'subjectKeyIdentifier = hash',
      ],
      days: 30,
    });
    const leafExtensions = [
      'basicConstraints = CA:FALSE',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      'extendedKeyUsage = serverAuth, clientAuth',
    ];
    const server = await makeCert(dir, 'lax-scheduler', { ca, extensions: leafExtensions });
    const client = await makeCert(dir, 'lax-client', { ca, extensions: leafExtensions });
    const peers: [Peer, Peer] = [
      { role: 'scheduler', ca: ca.cert, ...server },
      { role: 'client', ca: ca.cert, ...client },
    ];
    expect((await handshake(...peers, false)).ok).toBe(true);
    const strict = await handshake(...peers, true);
    expect(strict.ok).toBe(false);
    expect(`${strict.server_error} ${strict.client_error}`).toMatch(
      /basic constraints .*not marked critical/i,
    );

    const verify = await dcp([
      'certs',
      'verify',
      '--ca',
      ca.cert,
      '--cert',
      client.cert,
      '--key',
      client.key,
      '--json',
    ]);
    expect(verify.exitCode).toBe(0);
    expect(json<{ warnings: { code: string }[] }>(verify.stdout).warnings.map((w) => w.code)).toEqual([
      'strict-basic-constraints',
    ]);
  });
});

describeWithDask('a real dask scheduler and worker started with the generated files', () => {
  let scheduler: Started;
  let address: string;

  beforeAll(async () => {
    const [port, dashboard] = await Promise.all([freePort(), freePort()]);
    address = `tls://127.0.0.1:${port}`;
    // Exactly the commands `certs gen` printed, run as `python3 -m dask ...` on free ports.
    const [, ...schedulerArgs] = generated.dask.scheduler_command;
    scheduler = await startPython(
      [
        '-m',
        'dask',
        ...schedulerArgs,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--dashboard-address',
        `127.0.0.1:${dashboard}`,
      ],
      /Scheduler at:/,
    );
    const [, , , ...workerArgs] = generated.dask.worker_command;
    const worker = await startPython(
      [
        '-m',
        'dask',
        'worker',
        address,
        ...workerArgs,
        '--host',
        '127.0.0.1',
        '--nthreads',
        '1',
        '--no-dashboard',
      ],
      /Registered to:/,
    );
    return async () => {
      await stop(worker.process);
      await stop(scheduler.process);
    };
  });

  it('serves a Client made by the printed snippet with the client certificate', async () => {
    const snippet = generated.dask.snippet.replace(generated.dask.scheduler_address, address);
    const run = await runPython(
      `${snippet}\nclient.wait_for_workers(1, timeout=30)\nprint(client.submit(lambda x: x + 1, 41).result(), len(client.scheduler_info()["workers"]))\nclient.close()`,
    );
    expect(run.exitCode, run.all).toBe(0);
    expect(run.stdout.trim()).toBe('42 1');
  });

  it("dcp's readiness check is refused with another CA's client certificate, and let in with the right one", async () => {
    const { schedulerAnswers } = await import('../../src/cluster/readiness.js');
    const ca = join(tls, 'ca.pem');
    expect(
      await schedulerAnswers(address, {
        caFile: ca,
        clientCert: join(other, 'client.pem'),
        clientKey: join(other, 'client-key.pem'),
      }),
    ).toBe(false);
    expect(
      await schedulerAnswers(address, {
        caFile: ca,
        clientCert: join(tls, 'client.pem'),
        clientKey: join(tls, 'client-key.pem'),
      }),
    ).toBe(true);
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const stranger = generated.dask.snippet
      .replace(generated.dask.scheduler_address, address)
      .replaceAll(join(tls, 'client'), join(other, 'client'))
      .replace('security=security)', 'security=security, timeout=5)');
    const run = await runPython(
      `import sys\ntry:\n${indent(stranger)}\nexcept OSError as error:\n    print("refused:", error)\n    sys.exit(3)\nprint("connected")`,
    );
    // It trusts the scheduler's CA, so the refusal is the scheduler's.
    expect(stranger).toContain(`tls_ca_file="${join(tls, 'ca.pem')}"`);
    expect(run.stdout, run.all).toMatch(/^refused:/);
    expect(run.exitCode).toBe(3);
    expect(scheduler.log()).toMatch(/TLS handshake failed .*CERTIFICATE_VERIFY_FAILED/);
  });

  it('refuses a client with no certificate', async () => {
    // distributed will not even try TLS without a client certificate, so speak TLS directly.
    const port = address.split(':').at(-1);
    const code = [
      'import socket, ssl',
      `ctx = ssl.create_default_context(cafile=${JSON.stringify(join(tls, 'ca.pem'))})`,
      'ctx.check_hostname = False',
      'try:',
      `    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", ${port}), timeout=10)) as s:`,
      '        s.sendall(b"\\0" * 8)',
      '        data = s.recv(1)',
      '        print("refused: closed" if data == b"" else "answered")',
      'except socket.timeout:',
      '    print("no answer")',
      '# The refusal comes as an alert, a reset or a closed pipe, depending on who is quicker.',
      'except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as error:',
      '    print("refused:", type(error).__name__, error)',
    ].join('\n');
    const run = await runPython(code);
    expect(run.stdout, run.all).toMatch(/^refused: /);
    for (let i = 0; i < 40 && !/PEER_DID_NOT_RETURN_A_CERTIFICATE/.test(scheduler.log()); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(scheduler.log()).toMatch(/TLS handshake failed .*PEER_DID_NOT_RETURN_A_CERTIFICATE/);
  });
});

function indent(code: string): string {
  return code.replace(/^(?=.)/gm, '    ');
}
