import { Writable } from 'node:stream';
import { z } from 'zod';
import { RequestReuse, type ReuseSettings } from '../cache/request-reuse.js';
import { isRequestBatch, type RequestBatch } from '../core/requests/request-batch.js';
import { SliceField } from '../core/rows/row-slice.js';
import { byteSize, parseOptions } from '../options.js';
import type { FileLimits } from '../providers/profile.js';
import { profileOf, providerOption } from '../providers/resolve-profile.js';
import { type PreparedSummary, Sharder } from '../run/sharder.js';
import { takeBatches } from '../streams/batch-protocol.js';
import type { Rejection, RequestItem } from '../types.js';

export type { PreparedSummary, ShardSummary } from '../run/sharder.js';
export { REJECTIONS_FILE, SUMMARY_FILE } from '../run/sharder.js';

const ShardRequestsOptions = z.strictObject({
  /** Directory for the request files, `rejections.jsonl` and `shards.json` (created if missing). */
  outDir: z.string().min(1),
  /** Provider whose per-file limits apply. Default "local" (DashScope's limits). */
  provider: providerOption,
  /** Requests per file; default the provider's (50,000). */
  maxLinesPerFile: z.number().int().positive().optional(),
  /** Bytes per file; default the provider's (500 MB for DashScope). */
  maxBytesPerFile: byteSize.optional(),
  /** File name prefix. Default "requests". */
  prefix: z
    .string()
    .regex(/^[\w.-]+$/, 'expected letters, digits, ".", "_" or "-"')
    .default('requests'),
  /** The slice of a table the requests are of (sliceRows): written in shards.json, so a run of them is that slice's. */
  slice: SliceField,
  /**
   * Identical requests sent once, and answers taken from a result cache (RequestReuse): the lines
   * not sent go to `request-keys.tsv`, `cached.jsonl` and `reused.requests.jsonl`, and a run answers
   * the duplicates after it ended (`settleReuse`). Default: none.
   */
  reuse: z
    .custom<ReuseSettings>(
      (v) =>
        typeof v === 'object' && v !== null && ['auto', 'on', 'off'].includes((v as ReuseSettings).dedup),
      'expected { dedup: "auto" | "on" | "off", cache: ResultCache | undefined }',
    )
    .optional(),
});
export type ShardRequestsOptions = z.input<typeof ShardRequestsOptions>;

/** The Writable `shardRequests` returns; `summary` is set once it has finished. */
export interface ShardRequestsStream extends Writable {
  readonly summary: PreparedSummary | undefined;
  /** Rows handled so far (request lines and rejections), as they are written: for progress. */
  readonly rows: number;
}

/**
 * Cuts request lines into files within the provider's per-file limits (lines and bytes), one model per
 * file, named `<prefix>-00001.jsonl` in order of creation, so the same input gives the same files.
 * Rejections go to `rejections.jsonl`. On finish it writes `shards.json` (lines, bytes and sha256 per
 * file) and removes files an earlier run listed there that this run did not write again. Files are
 * written under a temporary name and renamed when complete. Takes RequestItems and Rejections, or
 * batches of them from batchpipe's own stages.
 */
export function shardRequests(options: ShardRequestsOptions): ShardRequestsStream {
  const opts = parseOptions(ShardRequestsOptions, options, 'shardRequests');
  const profile = profileOf(opts.provider);
  const limits: FileLimits = {
    ...profile.limits,
    maxLinesPerFile: opts.maxLinesPerFile ?? profile.limits.maxLinesPerFile,
    maxBytesPerFile: opts.maxBytesPerFile ?? profile.limits.maxBytesPerFile,
  };
  const reuse = opts.reuse && new RequestReuse(opts.outDir, opts.reuse);
  const sharder = new Sharder(opts.outDir, opts.prefix, limits, opts.slice, reuse);
  let summary: PreparedSummary | undefined;
  const add = (item: RequestBatch | RequestItem | Rejection, done: (error?: Error | null) => void) => {
    let pending: Promise<void> | undefined;
    try {
      pending = isRequestBatch(item) ? sharder.addBatch(item) : sharder.add(item);
    } catch (error) {
      return done(error as Error);
    }
    if (pending) pending.then(() => done(), done);
    else done();
  };
  const stream = new Writable({
    objectMode: true,
    highWaterMark: 1,
    write(item: RequestBatch | RequestItem | Rejection, _encoding, done) {
      add(item, done);
    },
    final(done) {
      sharder.finish().then((result) => {
        summary = result;
        done();
      }, done);
    },
    destroy(error, done) {
      sharder.abort().then(
        () => done(error),
        () => done(error),
      );
    },
  }) as ShardRequestsStream;
  takeBatches(stream);
  Object.defineProperty(stream, 'summary', { get: () => summary, enumerable: true });
  Object.defineProperty(stream, 'rows', { get: () => sharder.rows, enumerable: true });
  return stream;
}
