import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { z } from 'zod';
import type { RequestBatch } from '../core/requests/request-batch.js';
import type { ResultFiles } from '../core/results/result-lines.js';
import { BatchpipeError } from '../errors.js';
import { parseOptions } from '../options.js';
import { resolveConnection } from '../providers/connection.js';
import { PROVIDER_NAMES } from '../providers/profile.js';
import type { RunCounts } from '../run/batch-run.js';
import { jsonlLines } from '../run/request-ids.js';
import { RESULTS_FILE } from '../run/run-dir.js';
import type { ResultLine } from '../run/run-results.js';
import { REJECTIONS_FILE } from '../run/sharder.js';
import { stageRequests } from '../run/start-run.js';
import { SyncFields, SyncRun } from '../run/sync/sync-run.js';
import type { Rejection, RequestItem } from '../types.js';
import { newRunSinkState, requireBaseURL, wireRunSink } from './run-sink.js';

const ChatSinkOptions = z.strictObject({
  /** Provider (default: from the environment, see resolveConnection); `dashscope-batch-chat` is Batch Chat. */
  provider: z.enum(PROVIDER_NAMES).optional(),
  /** OpenAI-compatible base URL, e.g. a local service's `url`. */
  baseURL: z.string().url().optional(),
  /** API key (default: from the environment). Never written anywhere. */
  apiKey: z.string().min(1).optional(),
  /** Extra model ids the provider offers. */
  models: z.array(z.string().min(1)).optional(),
  ...SyncFields,
});
export type ChatSinkOptions = z.input<typeof ChatSinkOptions>;

/** The Duplex `chatSink` returns; `runDir` and `counts` are set once the run is known and has ended. */
export interface ChatSinkStream extends Duplex {
  readonly runDir: string | undefined;
  readonly counts: RunCounts | undefined;
}

/**
 * Request lines in, result lines out, through a synchronous endpoint: Batch Chat
 * (`provider: "dashscope-batch-chat"`) or any OpenAI-compatible chat or embeddings server. Each line
 * is a call of its own, paced (a window and a rate that adapt to 429s, 503s and timeouts, within the
 * endpoint's documented caps), retried with backoff, and its final answer journalled in a run
 * directory named by the requests' content, so the same pipeline killed at any point resumes without
 * paying again for a row already answered. Out comes every request's final result line (and every
 * Rejection that came in), exactly once, in the Batch API's output-file shape: joinResults reads it
 * as it reads a batch's. Aborting `signal` detaches: calls in flight are dropped (not billed).
 */
export function chatSink(options: ChatSinkOptions = {}): ChatSinkStream {
  const opts = parseOptions(ChatSinkOptions, options, 'chatSink');
  const { provider, baseURL, apiKey, models, ...sync } = options;
  const connection = resolveConnection({ provider: opts.provider, baseURL, apiKey, models });
  requireBaseURL(connection, 'chatSink');
  const shown = newRunSinkState();
  const teardown = new AbortController();
  const stream = Duplex.from(async function* (
    source: AsyncIterable<RequestBatch | RequestItem | Rejection>,
  ): AsyncGenerator<ResultLine | Rejection | ResultFiles> {
    const staged = await stageRequests(source, opts.runsDir, connection);
    const signal = sync.signal ? AbortSignal.any([sync.signal, teardown.signal]) : teardown.signal;
    const run = await SyncRun.createOrResume(
      staged.dir,
      staged.summary,
      connection,
      { ...sync, signal },
      true,
    );
    try {
      shown.runDir = run.dir;
      const state = await run.wait();
      shown.counts = run.counts();
      if (state === 'detached')
        throw new BatchpipeError(
          'BP_USAGE',
          `detached from ${shown.runDir}; answered rows are kept; the same pipeline resumes it`,
        );
      const results = join(run.dir, RESULTS_FILE);
      await run.writeResults(results);
      const rejections = join(run.dir, REJECTIONS_FILE);
      if (shown.handOver) {
        yield {
          kind: 'result-files',
          files: [results],
          parse: undefined,
          problems: undefined,
          rejections: [rejections],
        };
        return;
      }
      if (existsSync(rejections))
        for await (const line of jsonlLines(rejections)) {
          const { row, ...rest } = JSON.parse(line) as Omit<Rejection, 'kind' | 'index'> & { row: number };
          yield { kind: 'rejection', index: row, ...rest };
        }
      for await (const line of jsonlLines(results)) yield JSON.parse(line) as ResultLine;
    } finally {
      await run.close();
    }
  }) as ChatSinkStream;
  return wireRunSink(stream, shown, teardown);
}
