import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { z } from 'zod';
import type { RequestBatch } from '../core/requests/request-batch.js';
import type { ResultFiles } from '../core/results/result-lines.js';
import { BatchpipeError } from '../errors.js';
import { parseOptions } from '../options.js';
import { resolveConnection } from '../providers/connection.js';
import { API_PATH_NAMES, ENDPOINTS, PROVIDER_NAMES } from '../providers/profile.js';
import type { RunCounts } from '../run/batch-run.js';
import { RESULTS_FILE } from '../run/run-dir.js';
import { type ResultLine, runResults, writeResults } from '../run/run-results.js';
import { REJECTIONS_FILE } from '../run/sharder.js';
import { createOrResumeRun, RunFields, stageRequests } from '../run/start-run.js';
import type { Rejection, RequestItem } from '../types.js';
import { newRunSinkState, requireBaseURL, wireRunSink } from './run-sink.js';

const BatchSinkOptions = z.strictObject({
  /** Provider (default: from the environment, see resolveConnection; "local" needs `baseURL`). */
  provider: z.enum(PROVIDER_NAMES).optional(),
  /** OpenAI-compatible base URL, e.g. a local service's `url`. */
  baseURL: z.string().url().optional(),
  /** API key (default: from the environment). Never written anywhere. */
  apiKey: z.string().min(1).optional(),
  /** Requests per file (default: the provider's limit, 50,000). */
  maxLinesPerFile: z.number().int().positive().optional(),
  /** Bytes per file (default: the provider's limit). */
  maxBytesPerFile: z.number().int().positive().optional(),
  /** Extra model ids the provider offers. */
  models: z.array(z.string().min(1)).optional(),
  /**
   * Where each Files and Batches call goes, relative to `baseURL` (`create`, `files`, `list`, `retrieve`,
   * `cancel`; `{batch_id}` stands for the id): the gateway's `/api/v1/batches` and `/v1/...` by default.
   */
  apiPaths: z.partialRecord(z.enum(API_PATH_NAMES), z.string()).optional(),
  ...RunFields,
});
export type BatchSinkOptions = z.input<typeof BatchSinkOptions>;

/** The Duplex `batchSink` returns; `runDir` and `counts` are set once the run is known and has ended. */
export interface BatchSinkStream extends Duplex {
  readonly runDir: string | undefined;
  readonly counts: RunCounts | undefined;
}

/**
 * Request lines in, result lines out, through the provider's Batch API, durably. The lines are cut
 * into files within the provider's limits in a run directory named by their content; each file is
 * uploaded, its batch created (never twice: intents are saved first and lost replies are looked up),
 * polled with backoff, and its output and error files downloaded; retryable failures go again as new
 * batches. Out comes every request's final result line (and every Rejection that came in), exactly
 * once, ready for joinResults. Killed at any point, the same pipeline on the same input resumes the
 * run; aborting `signal` detaches, leaving the batches running.
 */
export function batchSink(options: BatchSinkOptions = {}): BatchSinkStream {
  const { provider, baseURL, apiKey, maxLinesPerFile, maxBytesPerFile, models, apiPaths, runsDir } =
    parseOptions(BatchSinkOptions, options, 'batchSink');
  // The run's options as given, not as defaulted: a resumed run keeps what the caller left out.
  const {
    provider: _p,
    baseURL: _b,
    apiKey: _k,
    maxLinesPerFile: _l,
    maxBytesPerFile: _m,
    models: _s,
    apiPaths: _a,
    ...run
  } = options;
  const connection = resolveConnection({
    provider,
    baseURL,
    apiKey,
    maxLinesPerFile,
    maxBytesPerFile,
    models,
    apiPaths,
  });
  requireBaseURL(connection, 'batchSink');
  const shown = newRunSinkState();
  const teardown = new AbortController();
  const stream = Duplex.from(async function* (
    source: AsyncIterable<RequestBatch | RequestItem | Rejection>,
  ): AsyncGenerator<ResultLine | Rejection | ResultFiles> {
    const staged = await stageRequests(source, runsDir, connection);
    // A pipeline torn down while batches run (an error downstream, its own signal) detaches the run
    // too, so it lets go of the run dir instead of polling on unseen until the batches end.
    const signal = run.signal ? AbortSignal.any([run.signal, teardown.signal]) : teardown.signal;
    const batchRun = await createOrResumeRun(
      staged.dir,
      staged.summary,
      connection,
      { ...run, signal },
      true,
    );
    try {
      shown.runDir = batchRun.dir;
      const state = await batchRun.wait();
      shown.counts = batchRun.counts();
      if (state === 'detached')
        throw new BatchpipeError(
          'BP_USAGE',
          `detached from ${shown.runDir}; the batches keep running; the same pipeline resumes it`,
        );
      if (state === 'stuck') {
        const stuck = batchRun.stuck().map((j) => `${j.batch_id} (${j.status})`);
        throw new BatchpipeError(
          'BP_BATCH_STUCK',
          `batches ${stuck.join(', ')} are not finished well past their completion window; resume later (they are looked at again) or cancel them`,
          {},
        );
      }
      if (shown.handOver) {
        const results = join(batchRun.dir, RESULTS_FILE);
        await writeResults(batchRun, results);
        yield {
          kind: 'result-files',
          files: [results],
          parse: undefined,
          problems: undefined,
          rejections: [join(batchRun.dir, REJECTIONS_FILE)],
          endpoint: ENDPOINTS.find((e) => e === batchRun.manifest.endpoint),
        };
      } else yield* runResults(batchRun.dir, batchRun.manifest);
    } finally {
      await batchRun.close();
    }
  }) as BatchSinkStream;
  return wireRunSink(stream, shown, teardown);
}
