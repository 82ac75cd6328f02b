import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { RequestBuilder } from '../core/requests/request-builder.js';
import { settingsRefusal } from '../core/requests/request-rules.js';
import { BatchpipeError } from '../errors.js';
import { type Warning, WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import type { ProviderProfile } from '../providers/profile.js';
import { PROFILES } from '../providers/profiles.js';
import { findModel, snapshotOf } from '../providers/resolve-profile.js';
import { type PreparedSummary, REJECTIONS_FILE } from '../run/sharder.js';
import { shardRequests } from '../sinks/shard-requests.js';
import { toRequests } from '../transforms/to-requests.js';
import { validateRequests } from '../transforms/validate-requests.js';
import { openTable, RequestJobFields, requestJob } from './settings.js';

const PrepareOptions = z.strictObject({
  /** Directory for the request files, rejections.jsonl and shards.json. */
  outDir: z.string().min(1),
  ...RequestJobFields,
});
export type PrepareOptions = z.input<typeof PrepareOptions>;

export interface PrepareResult extends PreparedSummary {
  /** Where the files are. */
  outDir: string;
  /** Distinct warnings, with how many rows raised each. */
  warnings: Warning[];
}

/** How many codes the "nothing to submit" message names. */
const SHOWN_CODES = 3;

/**
 * BP_NOTHING_TO_SUBMIT when rows were read and not one became a request (every row is still in
 * rejections.jsonl), naming the most common rejection codes; undefined otherwise.
 */
export function nothingToSubmit(result: PreparedSummary & { outDir: string }): BatchpipeError | undefined {
  if (result.rows === 0 || result.requests > 0) return undefined;
  const codes = Object.entries(result.rejections.by_code).sort((a, b) => b[1] - a[1]);
  const common = codes.slice(0, SHOWN_CODES).map(([code, n]) => `${code} ${n.toLocaleString('en-US')}`);
  if (codes.length > SHOWN_CODES) common.push('...');
  const rows = result.rows === 1 ? '1 row was' : `all ${result.rows.toLocaleString('en-US')} rows were`;
  return new BatchpipeError(
    'BP_NOTHING_TO_SUBMIT',
    `nothing to submit: ${rows} rejected (most common: ${common.join(', ')}); see ${join(result.outDir, result.rejections.file)}`,
  );
}

/**
 * Turns a table into Batch API request files: reads CSV/TSV/JSONL, builds a request per row (template
 * or mapper), checks every provider rule, and cuts the lines into files within the provider's limits.
 * Every row ends up once: as a request line or in rejections.jsonl. The function behind
 * `batchpipe prepare`, and nothing more than the stages a script composes:
 * `pipeline(csvSource(...), toRequests(...), validateRequests(...), shardRequests(...))`.
 * Throws BP_MODEL_NOT_OFFERED or BP_ENDPOINT_NOT_OFFERED, once every row has been written to
 * rejections.jsonl, when the `model` or `endpoint` option is one the provider does not offer: that is a
 * mistake in the settings, not in the rows.
 */
export async function prepare(input: string | Readable, options: PrepareOptions): Promise<PrepareResult> {
  const opts = parseOptions(PrepareOptions, options, 'prepare');
  const job = requestJob(input, opts);
  const { profile } = job;
  const onWarning = opts.onWarning;
  const early = localModelWarning(profile, opts.model);
  if (early) onWarning?.(early);
  const refused = settingsRefusal(
    profile,
    opts.endpoint,
    opts.model,
    opts.imageColumn !== undefined || opts.videoColumn !== undefined,
  );
  // Checks the request options (template xor mapper, model...) before anything is read.
  const builder = RequestBuilder.create(job.requests);
  const sourceWarnings = new WarningLog(onWarning);
  // A template reads a few columns (a mapper may read any): a columnar source reads only those.
  const columns =
    opts.mapper === undefined
      ? [...builder.columns, ...(opts.idColumn === undefined ? [] : [opts.idColumn])]
      : undefined;
  const source = openTable(input, job.table, sourceWarnings, columns);
  const build = toRequests(job.requests);
  const validate = validateRequests({ provider: profile, ...job.rules, onWarning });
  const sink = shardRequests({ outDir: opts.outDir, provider: profile });
  await pipeline(source, build, validate, sink);
  const warnings = [
    ...(early ? [early] : []),
    ...sourceWarnings.list(),
    ...build.warnings.list(),
    ...validate.warnings.list(),
  ];
  return settled({ ...sink.summary!, outDir: opts.outDir, warnings }, refused);
}

/**
 * The embedded service emulates DashScope and fails, at validation, a batch whose model DashScope does
 * not offer; the client's `local` profile takes any model, since `batchpipe serve --models any` and the
 * upstream engine do. Said before anything is submitted, rather than learned from a failed batch.
 */
function localModelWarning(profile: ProviderProfile, model: string | undefined): Warning | undefined {
  if (profile.name !== 'local' || model === undefined) return undefined;
  const dryRun = PROFILES['dashscope-cn'].dryRun?.model;
  const beijing = PROFILES['dashscope-cn'];
  if (model === dryRun || findModel(beijing, model) || snapshotOf(beijing, model)) return undefined;
  return {
    code: 'BP_WARN_LOCAL_MODEL',
    message: `model "${model}" is not one DashScope offers: the local service fails its batches at validation unless it runs with --models any or an upstream engine (batchpipe serve --models any)`,
    count: 1,
  };
}

/** The result, or the error of settings the provider refuses (after the rows went to rejections.jsonl). */
function settled(result: PrepareResult, refused: ReturnType<typeof settingsRefusal>): PrepareResult {
  if (!refused) return result;
  const where = join(result.outDir, REJECTIONS_FILE);
  const rows =
    result.rejected === 0
      ? 'no row was read'
      : `${result.rejected === result.rows ? 'every row was' : `${result.rejected} of ${result.rows} rows were`} rejected and written to ${where}`;
  throw new BatchpipeError(
    refused.code,
    `${refused.message}; ${rows}; pick what the provider offers, or another provider`,
    { option: refused.code === 'BP_ENDPOINT_NOT_OFFERED' ? 'endpoint' : 'model' },
  );
}
