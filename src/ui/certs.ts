/** How `dcp certs` results look: the JSON documents and the text a person reads. */
import { basename } from 'node:path';
import type { GenResult } from '../certs/gen.js';
import type { FileSummary } from '../certs/inspect.js';
import type { Finding, VerifyReport } from '../certs/verify.js';
import { isoDay } from '../certs/validity.js';
import { daskTlsArgs, pythonClientSnippet } from '../cluster/snippet.js';
import { shellCommand } from '../util/shell.js';
import type { Style } from './style.js';

/** What to run next with a generated set: flags for Dask's CLI, and the Python client. */
export function daskUsage(result: GenResult) {
  // The first name the user gave that a client can dial: a wildcard cannot be.
  const host = result.altNames.find((name) => !name.value.startsWith('*'))?.value ?? '127.0.0.1';
  const address = `tls://${host.includes(':') ? `[${host}]` : host}:8786`;
  const { files } = result;
  return {
    scheduler_address: address,
    scheduler_command: [
      'dask',
      'scheduler',
      '--protocol',
      'tls',
      ...daskTlsArgs({ caFile: files.ca, cert: files.cert.scheduler, key: files.key.scheduler }),
    ],
    worker_command: [
      'dask',
      'worker',
      address,
      ...daskTlsArgs({ caFile: files.ca, cert: files.cert.worker, key: files.key.worker }),
    ],
    snippet: pythonClientSnippet(address, {
      caFile: files.ca,
      clientCert: files.cert.client,
      clientKey: files.key.client,
    }),
  };
}

export function genJson(result: GenResult) {
  return {
    dir: result.dir,
    ca: {
      cert: result.ca.cert,
      key: result.ca.key,
      created: result.ca.created,
      subject: result.ca.subject,
      not_after: result.ca.notAfter.toISOString(),
    },
    certificates: result.certificates.map((c) => ({
      role: c.role,
      cert: c.cert,
      key: c.key,
      not_after: c.notAfter.toISOString(),
      subject_alt_names: c.altNames,
    })),
    warnings: result.warnings,
    dask: daskUsage(result),
  };
}

export function renderGen(result: GenResult, style: Style): string {
  const usage = daskUsage(result);
  const rows: [string, string][] = [
    [
      'ca.pem',
      `CA certificate, expires ${isoDay(result.ca.notAfter)}${result.ca.created ? '' : ' (your CA)'}`,
    ],
    ...(result.ca.key
      ? ([['ca-key.pem', 'CA private key (0600): keep it here, never copy it to a cluster']] as [
          string,
          string,
        ][])
      : []),
    ...result.certificates.flatMap((c): [string, string][] => [
      [
        basename(c.cert),
        `${c.role} certificate, expires ${isoDay(c.notAfter)}${c.role === 'client' ? '' : `, names ${c.altNames.join(' ')}`}`,
      ],
      [basename(c.key), `${c.role} private key (0600)`],
    ]),
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  const indent = (text: string) => text.replace(/^(?=.)/gm, '    ');
  return (
    [
      `${style.green('✓')} ${result.ca.created ? 'A new CA and certificates' : 'Certificates'} for scheduler, worker and client in ${style.bold(result.dir)}`,
      '',
      ...rows.map(([name, what]) => `  ${name.padEnd(width)}  ${style.dim(what)}`),
      '',
      style.bold('Next: start Dask with them'),
      `  ${shellCommand(usage.scheduler_command)}`,
      `  ${shellCommand(usage.worker_command)}`,
      '',
      style.bold('and connect from Python:'),
      indent(usage.snippet),
    ]
      .join('\n')
      .trimEnd() + '\n'
  );
}

export function renderVerify(report: VerifyReport, style: Style): string {
  const as = report.role === 'any' ? 'for every role' : `as the ${report.role}`;
  const head = report.ok
    ? `${style.green('✓')} Dask will accept ${report.files.cert} ${as}${report.subject ? ` (${report.subject})` : ''}`
    : `${style.red('✗')} Dask will reject ${report.files.cert} ${as}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'}`;
  const line = (mark: string) => (f: Finding) =>
    `  ${mark} ${f.message}\n      ${style.dim(`hint: ${f.hint}`)}`;
  return (
    [
      head,
      ...report.problems.map(line(style.red('✗'))),
      ...report.warnings.map(line(style.yellow('!'))),
    ].join('\n') + '\n'
  );
}

export function renderInspect(files: FileSummary[], style: Style): string {
  const out: string[] = [];
  for (const file of files) {
    out.push(style.bold(file.path));
    for (const problem of file.problems) out.push(`  ${style.red('✗')} ${problem}`);
    file.certificates.forEach((c, i) => {
      const validity = `${isoDay(new Date(c.not_before))} → ${isoDay(new Date(c.not_after))} (${c.days_left < 0 ? style.red(`expired ${-c.days_left} days ago`) : `${c.days_left} days left`})`;
      out.push(
        `  certificate ${i + 1}: ${c.subject || '(empty subject)'}`,
        ...(
          [
            ['issuer', c.self_signed ? `${c.issuer} (self-signed)` : c.issuer],
            ['names', c.subject_alt_names.join(', ') || '(none)'],
            ['valid', validity],
            ['key', c.key],
            ['key usage', c.key_usage?.join(', ') ?? '(extension absent)'],
            ['ext key usage', c.extended_key_usage?.join(', ') ?? '(extension absent: any)'],
            ['CA', c.ca ? 'yes' : 'no'],
            ['serial', c.serial],
            ['SHA-256', c.sha256_fingerprint],
          ] as const
        ).map(([label, value]) => `    ${style.dim(label.padEnd(13))} ${value}`),
      );
    });
    for (const k of file.keys) {
      const what = k.encrypted
        ? style.yellow('encrypted with a passphrase (Dask cannot load it)')
        : k.error
          ? style.red(`unreadable: ${k.error}`)
          : `${k.key}, ${k.matches_certificate === null ? 'matches no certificate in this file' : `matches certificate ${k.matches_certificate + 1}`}`;
      out.push(`  private key: ${what}`);
    }
  }
  return out.join('\n') + '\n';
}
