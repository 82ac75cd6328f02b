import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Command } from 'commander';
import { BatchpipeError } from '../errors.js';
import type { FileReport } from '../jobs/validate-file.js';
import type { ProviderName } from '../providers/profile.js';
import type { Rejection } from '../types.js';
import { cliWording, inCliWords } from './cli-wording.js';
import { CliExit } from './exit.js';
import { count, info, type Output, plural, rejectionLine, warningLine } from './output.js';
import { integer } from './parse-values.js';
import { addProviderOptions, addShardOptions } from './request-options.js';

interface ValidateFlags {
  provider?: ProviderName;
  models?: string[];
  anyModel?: boolean;
  contextWindows?: Record<string, number>;
  checkContext: boolean;
  maxLinesPerFile?: number;
  maxBytesPerFile?: number;
  maxLineBytes?: number;
  maxErrors: number;
  json?: boolean;
  quiet?: boolean;
}

export function validateCommand(): Command {
  const command = new Command('validate')
    .description('check Batch API input files (JSONL) against the provider rules, as the provider will')
    .argument('<files...>', 'request files to check (checked as one run: custom_ids unique across them)');
  addProviderOptions(command);
  addShardOptions(command);
  command
    .option('--max-errors <n>', 'problems to print per file', integer, 20)
    .option('--json', 'print the reports and every problem as JSON on stdout (problems streamed as found)')
    .option('--quiet', 'print nothing; the exit code says it all')
    .addHelpText(
      'after',
      `
Exit 1 when any line or file breaks a rule (or a custom_id repeats across the files: results are
joined back by custom_id). The files
batchpipe prepare writes beside its request files (rejections.jsonl, shards.json) are skipped.

Example:
  batchpipe validate my-requests.jsonl --provider dashscope`,
    )
    .action((files: string[], flags: ValidateFlags) => inCliWords(command, () => run(command, files, flags)));
  return command;
}

async function run(command: Command, files: string[], flags: ValidateFlags): Promise<void> {
  const { defaultProvider } = await import('../providers/connection.js');
  const { resolveProfile } = await import('../providers/resolve-profile.js');
  const { validateRequestFiles } = await import('../jobs/validate-file.js');
  const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
  const profile = resolveProfile({
    provider: flags.provider ?? defaultProvider(),
    models: flags.models,
    anyModel: flags.anyModel,
    contextWindows: flags.contextWindows,
    maxLinesPerFile: flags.maxLinesPerFile,
    maxBytesPerFile: flags.maxBytesPerFile,
    maxLineBytes: flags.maxLineBytes,
  });
  const checked = files.filter((file) => {
    const why = preparedOutput(file);
    // A note on stderr even with --json: stdout stays one JSON document.
    if (why && !out.quiet) process.stderr.write(`skipped ${file}: ${why}\n`);
    return why === undefined;
  });
  if (checked.length === 0)
    throw new BatchpipeError('BP_USAGE', 'no request file to check: every file given was skipped');

  const json = out.json ? new JsonReports() : undefined;
  let shown = 0;
  const reports = await validateRequestFiles(checked, {
    profile,
    checkContext: flags.checkContext,
    onRejection: (r) => {
      if (json) return json.rejection(r);
      if (shown++ < flags.maxErrors) info(out, cliWording(command, rejectionLine(r, false)));
    },
    onReport: (report) => {
      shown = 0;
      if (json) return json.report(report);
      describe(command, out, report, flags.maxErrors);
    },
  });
  await json?.end();
  if (!reports.every((r) => r.ok)) throw new CliExit(1);
}

/**
 * Why a file is one batchpipe prepare wrote beside its request files, not a request file: a shell
 * glob such as `out/*.jsonl` takes rejections.jsonl too.
 */
function preparedOutput(file: string): string | undefined {
  const name = basename(file);
  if (name !== 'rejections.jsonl' && name !== 'shards.json') return undefined;
  if (!existsSync(join(dirname(file), 'shards.json'))) return undefined;
  return name === 'shards.json'
    ? "batchpipe prepare's summary, not a request file"
    : "batchpipe prepare's list of rejected rows, not a request file";
}

function describe(command: Command, out: Output, report: FileReport, maxErrors: number): void {
  if (report.invalid > maxErrors)
    info(out, `... and ${count(report.invalid - maxErrors)} more problems in ${report.file}`);
  for (const problem of report.problems) info(out, `${report.file}: ${problem.code} ${problem.message}`);
  for (const w of report.warnings) info(out, cliWording(command, warningLine(w)));
  const verdict = report.ok ? 'ok' : 'REFUSED';
  const models = report.models.length > 0 ? `, model ${report.models.join(', ')}` : '';
  const byCode = Object.entries(report.byCode).map(([code, n]) => `${count(n)} ${code}`);
  if (byCode.length > 0) info(out, `${report.file}: invalid lines by rule: ${byCode.join(', ')}`);
  info(
    out,
    `${report.file}: ${verdict}: ${plural(report.lines, 'line')}, ${count(report.valid)} valid, ${count(report.invalid)} invalid, ${count(report.bytes)} bytes${models}`,
  );
}

/**
 * The --json document, written as it is found: `[{"file", "rejections": [...], ...report}, ...]`.
 * Each file's rejections stream out before its report, so a file with millions of bad lines never
 * sits in memory; they leave in 64 KB writes, not one write each.
 */
class JsonReports {
  #files = 0;
  #file: string | undefined;
  #rejections = 0;
  #pending = '';

  rejection(r: Rejection): Promise<void> | undefined {
    this.#open(r.file);
    this.#pending += `${this.#rejections++ === 0 ? '' : ',\n'}    ${JSON.stringify(r)}`;
    return this.#pending.length >= FLUSH_CHARS ? this.#flush() : undefined;
  }

  report(report: FileReport): Promise<void> | undefined {
    this.#open(report.file);
    const { file: _file, ...rest } = report;
    this.#pending += `${this.#rejections === 0 ? '' : '\n  '}],\n  ${JSON.stringify(rest).slice(1)}`;
    this.#file = undefined;
    return this.#flush();
  }

  end(): Promise<void> | undefined {
    this.#pending += this.#files === 0 ? '[]\n' : '\n]\n';
    return this.#flush();
  }

  #open(file: string): void {
    if (this.#file === file) return;
    this.#file = file;
    this.#rejections = 0;
    this.#pending += `${this.#files++ === 0 ? '[\n' : ',\n'}  {"file":${JSON.stringify(file)},"rejections":[\n`;
  }

  /** Writes what is pending to stdout, waiting when its buffer is full. */
  #flush(): Promise<void> | undefined {
    const text = this.#pending;
    this.#pending = '';
    if (process.stdout.write(text)) return undefined;
    return new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}

const FLUSH_CHARS = 64 * 1024;
