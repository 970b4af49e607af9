/** `dcp certs gen | inspect | verify`: parse → core → render. */
import { generateCertificateSet, type GenOptions } from '../certs/gen.js';
import { inspectFiles } from '../certs/inspect.js';
import { verifyFiles, type VerifyOptions } from '../certs/verify.js';
import { ExitCode } from '../errors.js';
import { genJson, renderGen, renderInspect, renderVerify } from '../ui/certs.js';
import type { Output } from '../ui/output.js';

export async function gen(options: GenOptions, out: Output): Promise<ExitCode> {
  const result = await generateCertificateSet(options);
  for (const warning of result.warnings) out.warn(warning);
  out.result(genJson(result), () => renderGen(result, out.style));
  return ExitCode.ok;
}

export async function inspect(files: string[], out: Output): Promise<ExitCode> {
  const summaries = await inspectFiles(files);
  out.result({ files: summaries }, () => renderInspect(summaries, out.style));
  return summaries.some((file) => file.problems.length > 0) ? ExitCode.failed : ExitCode.ok;
}

export async function verify(options: VerifyOptions, out: Output): Promise<ExitCode> {
  const report = await verifyFiles(options);
  out.result(report, () => renderVerify(report, out.style));
  return report.ok ? ExitCode.ok : ExitCode.failed;
}
