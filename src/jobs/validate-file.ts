import { stat } from 'node:fs/promises';
import { RequestRules, rejectionOf } from '../core/requests/request-rules.js';
import type { ErrorCode } from '../errors.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { SeenIds } from '../internal/seen-ids.js';
import { type Warning, WarningLog } from '../internal/warnings.js';
import type { ProviderProfile } from '../providers/profile.js';
import { requestSource } from '../sources/request-source.js';
import type { Rejection, RequestItem } from '../types.js';

/** A problem with a whole file: the provider fails the batch for it, whatever its lines say. */
export interface FileProblem {
  code: ErrorCode;
  message: string;
}

/** What `validateRequestFile` found. */
export interface FileReport {
  file: string;
  lines: number;
  valid: number;
  invalid: number;
  bytes: number;
  models: string[];
  endpoints: string[];
  problems: FileProblem[];
  warnings: Warning[];
  /** True when the provider would accept the file as it is. */
  ok: boolean;
  /** Invalid lines by rule. */
  byCode: Record<string, number>;
}

export interface ValidateFileOptions {
  profile: ProviderProfile;
  /** Called for every line that breaks a rule; a returned promise is awaited before the next line. */
  onRejection?: (rejection: Rejection) => void | Promise<void>;
  /** Reject prompts that plainly exceed a known context window. Default true. */
  checkContext?: boolean;
}

/**
 * Checks a Batch API input file as the provider will: every line (JSON object, UTF-8, custom_id
 * unique in the file and at most 256 characters, method, url, one model, body shape, line size, context)
 * and the file as a whole (not empty, within the line and byte limits, or the dry run's smaller ones).
 * Reads the file once, streaming; lines are checked as stored, not re-serialized. Memory stays flat
 * whatever the file's size (custom_ids are kept as hashes, on disk past 256k).
 */
export async function validateRequestFile(
  input: SourceInput,
  options: ValidateFileOptions & { name?: string },
): Promise<FileReport> {
  const seen = new SeenIds();
  try {
    return await checkFile(input, options, seen);
  } finally {
    seen.close();
  }
}

/**
 * Checks several request files as one run: each as `validateRequestFile` does, and custom_ids unique
 * across all of them, since results are joined back to rows by custom_id (a duplicate in a later file
 * is refused naming the file and line that used it first). `onReport` hears each file's report as it
 * is done.
 */
export async function validateRequestFiles(
  inputs: SourceInput[],
  options: ValidateFileOptions & { onReport?: (report: FileReport) => void | Promise<void> },
): Promise<FileReport[]> {
  const seen = new SeenIds();
  const reports: FileReport[] = [];
  try {
    for (const input of inputs) {
      const report = await checkFile(input, options, seen);
      reports.push(report);
      await options.onReport?.(report);
    }
  } finally {
    seen.close();
  }
  return reports;
}

async function checkFile(
  input: SourceInput,
  options: ValidateFileOptions & { name?: string },
  seenIds: SeenIds,
): Promise<FileReport> {
  const file = inputName(input, options.name);
  const { profile } = options;
  const warnings = new WarningLog();
  const rules = new RequestRules(
    profile,
    {
      singleModel: true,
      checkContext: options.checkContext ?? true,
      warnThinkingDefault: true,
      idScope: 'file',
      seenIds,
    },
    warnings,
  );
  const models = new Set<string>();
  const endpoints = new Set<string>();
  const report: FileReport = {
    file,
    lines: 0,
    valid: 0,
    invalid: 0,
    bytes: 0,
    models: [],
    endpoints: [],
    problems: [],
    warnings: [],
    ok: false,
    byCode: {},
  };
  const reject = (rejection: Rejection): void | Promise<void> => {
    report.invalid++;
    report.byCode[rejection.code] = (report.byCode[rejection.code] ?? 0) + 1;
    return options.onRejection?.(rejection);
  };
  // A file's size is its size; a stream's is what its valid lines add up to.
  let streamed = 0;
  const source = requestSource(input, { name: file });
  try {
    for await (const item of source as AsyncIterable<RequestItem | Rejection>) {
      report.lines++;
      if (item.kind === 'rejection') {
        await reject(item);
        continue;
      }
      streamed += item.bytes! + 1;
      const verdict = await rules.check(item.request, item, item.text, item.bytes);
      if (!verdict.ok) {
        await reject(rejectionOf(verdict, item));
        continue;
      }
      report.valid++;
      models.add(String(verdict.request.body.model));
      endpoints.add(verdict.request.url);
    }
  } finally {
    rules.close();
  }
  if (source.byteOrderMark) {
    // Line 1 was checked without the mark. batchpipe submit re-writes the lines (without it); a file
    // uploaded as it is may have the mark read as part of line 1's JSON (the local service does so).
    warnings.warn(
      'BP_WARN_BOM',
      'the file starts with a UTF-8 byte-order mark (EF BB BF); batchpipe submit leaves it out, but a provider given the file as it is may read it as part of line 1 and fail that line; save the file without it',
      { file, line: 1 },
    );
  }
  report.bytes = typeof input === 'string' || input instanceof URL ? (await stat(input)).size : streamed;
  report.models = [...models];
  report.endpoints = [...endpoints];
  const dryRun =
    profile.dryRun && report.models.length === 1 && report.models[0] === profile.dryRun.model
      ? profile.dryRun
      : undefined;
  const maxLines = dryRun ? dryRun.maxLines : profile.limits.maxLinesPerFile;
  const maxBytes = dryRun ? dryRun.maxBytes : profile.limits.maxBytesPerFile;
  const label = dryRun ? 'a dry-run file' : 'a file';
  if (report.lines === 0)
    report.problems.push({ code: 'BP_FILE_EMPTY', message: 'the file holds no requests' });
  if (report.lines > maxLines) {
    report.problems.push({
      code: 'BP_FILE_TOO_MANY_LINES',
      message: `${report.lines} lines, but ${label} may hold at most ${maxLines}; split it (batchpipe prepare does)`,
    });
  }
  if (report.bytes > maxBytes) {
    report.problems.push({
      code: 'BP_FILE_TOO_LARGE',
      message: `${report.bytes} bytes, but ${label} may be at most ${maxBytes}; split it (batchpipe prepare does)`,
    });
  }
  report.warnings = warnings.list();
  report.ok = report.invalid === 0 && report.problems.length === 0;
  return report;
}
