import { Command, Option } from 'commander';
import { PROVIDER_NAMES } from '../providers/profile.js';
import type { FileReport } from '../run/validate-file.js';
import type { Rejection } from '../types.js';
import { CliExit } from './exit.js';
import { count, info, type Output, plural, printJson, rejectionLine, warningLine } from './output.js';
import { integer, list } from './parse-values.js';

interface ValidateFlags {
  provider?: (typeof PROVIDER_NAMES)[number];
  models?: string[];
  anyModel?: boolean;
  checkContext: boolean;
  maxErrors: number;
  json?: boolean;
  quiet?: boolean;
}

export function validateCommand(): Command {
  return new Command('validate')
    .description('check Batch API input files (JSONL) against the provider rules, as the provider will')
    .argument('<files...>', 'request files to check')
    .addOption(
      new Option('--provider <name>', 'provider whose rules and limits apply').choices(PROVIDER_NAMES),
    )
    .option('--models <ids>', 'extra model ids the provider offers, comma-separated', list)
    .option('--any-model', 'accept any model id (the provider decides)')
    .option('--no-check-context', 'skip the check that prompts fit the model context window')
    .option('--max-errors <n>', 'problems to print per file', integer, 20)
    .option('--json', 'print the reports and every problem as JSON on stdout')
    .option('--quiet', 'print nothing; the exit code says it all')
    .addHelpText(
      'after',
      `
Exit code 0 when every file would be accepted, 1 when any line or file breaks a rule, 2 on a usage error.

Example:
  batchpipe validate my-requests.jsonl --provider dashscope`,
    )
    .action(async (files: string[], flags: ValidateFlags) => {
      const { defaultProvider } = await import('../providers/connection.js');
      const { resolveProfile } = await import('../providers/resolve-profile.js');
      const { validateRequestFile } = await import('../run/validate-file.js');
      const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
      const profile = resolveProfile({
        provider: flags.provider ?? defaultProvider(),
        models: flags.models,
        anyModel: flags.anyModel,
      });
      const reports: Array<FileReport & { rejections: Rejection[] }> = [];
      for (const file of files) {
        const rejections: Rejection[] = [];
        let shown = 0;
        const report = await validateRequestFile(file, {
          profile,
          checkContext: flags.checkContext,
          onRejection: (r) => {
            if (out.json) rejections.push(r);
            else if (shown++ < flags.maxErrors) info(out, rejectionLine(r, false));
          },
        });
        reports.push({ ...report, rejections });
        if (!out.json) describe(out, report, flags.maxErrors);
      }
      if (out.json) printJson(reports);
      if (!reports.every((r) => r.ok)) throw new CliExit(1);
    });
}

function describe(out: Output, report: FileReport, maxErrors: number): void {
  if (report.invalid > maxErrors)
    info(out, `... and ${count(report.invalid - maxErrors)} more problems in ${report.file}`);
  for (const problem of report.problems) info(out, `${report.file}: ${problem.code} ${problem.message}`);
  for (const w of report.warnings) info(out, warningLine(w));
  const verdict = report.ok ? 'ok' : 'REFUSED';
  const models = report.models.length > 0 ? `, model ${report.models.join(', ')}` : '';
  const byCode = Object.entries(report.byCode).map(([code, n]) => `${count(n)} ${code}`);
  if (byCode.length > 0) info(out, `${report.file}: invalid lines by rule: ${byCode.join(', ')}`);
  info(
    out,
    `${report.file}: ${verdict}: ${plural(report.lines, 'line')}, ${count(report.valid)} valid, ${count(report.invalid)} invalid, ${count(report.bytes)} bytes${models}`,
  );
}
