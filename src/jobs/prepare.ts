import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { DedupMode } from '../cache/request-reuse.js';
import { ResultCache } from '../cache/result-cache.js';
import { RequestBuilder } from '../core/requests/request-builder.js';
import { settingsRefusal } from '../core/requests/request-rules.js';
import { BatchpipeError } from '../errors.js';
import { type Warning, WarningLog } from '../internal/warnings.js';
import { watchCount } from '../internal/watch-count.js';
import { parseOptions } from '../options.js';
import type { ProviderProfile } from '../providers/profile.js';
import { PROFILES } from '../providers/profiles.js';
import { findModel, snapshotOf } from '../providers/resolve-profile.js';
import type { RunEvent } from '../run/batch-run.js';
import { type PreparedSummary, REJECTIONS_FILE } from '../run/sharder.js';
import { shardRequests } from '../sinks/shard-requests.js';
import { sliceRows } from '../transforms/slice-rows.js';
import { toRequests } from '../transforms/to-requests.js';
import { validateRequests } from '../transforms/validate-requests.js';
import { estimateRows } from './row-estimate.js';
import { openTable, RequestJobFields, requestJob } from './settings.js';

const PrepareOptions = z.strictObject({
  /** Directory for the request files, rejections.jsonl and shards.json. */
  outDir: z.string().min(1),
  /**
   * Identical requests (same model and body) sent once: `auto` where a repeat would be the same draw
   * (the body sets `temperature: 0` or a `seed`), `true` always, `false` never. Default false here
   * (`runTable` defaults to auto: it answers the duplicates after the run).
   */
  dedup: z.union([z.boolean(), z.literal('auto')]).default(false),
  /** A result cache (docs/cache.md) whose answers are taken instead of sending, under the same rule. */
  cacheDir: z.string().min(1).optional(),
  /** Progress: `rows` events of stage `prepare`, a few a second (see RunEvent). */
  onEvent: z.custom<(event: RunEvent) => void>((v) => typeof v === 'function').optional(),
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
  // Every request answered from the cache: nothing to send, and nothing wrong.
  if (result.reuse && result.reuse.cached > 0) return undefined;
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
  const parsed = parseOptions(PrepareOptions, options, 'prepare');
  const dedup: DedupMode = parsed.dedup === 'auto' ? 'auto' : parsed.dedup ? 'on' : 'off';
  const reusing = dedup !== 'off' || parsed.cacheDir !== undefined;
  // Keys are made where lines are rendered (on the render threads), under the same rule.
  const opts = reusing
    ? { ...parsed, requestKeys: parsed.requestKeys ?? (dedup === 'on' ? 'on' : 'auto') }
    : parsed;
  const { onEvent: _onEvent, ...jobOptions } = opts;
  const job = requestJob(input, jobOptions);
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
  const validate = validateRequests({ provider: profile, ...job.rules, onWarning });
  const cache = opts.cacheDir === undefined ? undefined : await ResultCache.open(opts.cacheDir);
  // The key table is made as large as the table's rows call for (no growth); a slice keeps a part of them.
  const expectedKeys = reusing && !opts.slice ? await estimateRows(input, job.table) : undefined;
  const reuse = reusing ? { dedup, cache, expectedKeys } : undefined;
  // Repeats are marked where the lines are rendered, off this thread (the sharder reads the marks).
  const build = toRequests(
    dedup === 'off'
      ? job.requests
      : { ...job.requests, markRepeats: expectedKeys === undefined ? {} : { expectedKeys } },
  );
  const sink = shardRequests({
    outDir: opts.outDir,
    provider: profile,
    slice: opts.slice,
    ...(reuse && { reuse }),
  });
  const onEvent = opts.onEvent;
  const progress = onEvent
    ? watchCount(
        () => sink.rows,
        (rows, final) => onEvent({ type: 'rows', stage: 'prepare', rows, final }),
      )
    : undefined;
  try {
    if (opts.slice) {
      // Other slices' rows are dropped as they are read, before any request is built for them.
      const slice = sliceRows({ slice: opts.slice, idColumn: opts.idColumn });
      await pipeline(source, slice, build, validate, sink);
    } else await pipeline(source, build, validate, sink);
  } catch (error) {
    progress?.stop(false);
    throw error;
  } finally {
    cache?.close();
  }
  progress?.stop();
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
