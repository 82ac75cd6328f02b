import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { isRequestBatch, type RequestBatch } from '../core/requests/request-batch.js';
import { BatchpipeError } from '../errors.js';
import { makeDir } from '../internal/durable-write.js';
import { parseOptions } from '../options.js';
import { type Connection, redactURL } from '../providers/connection.js';
import type { Rejection, RequestItem } from '../types.js';
import { BatchApi } from './batch-api.js';
import { BatchRun, completionWindowHours, newManifest, type RunEvent } from './batch-run.js';
import { writeContentHashes } from './content-hashes.js';
import { readManifest, writeManifest } from './manifest.js';
import { adoptFile, exists, hasManifest, promoteStaging, RUNS_DIR, runIdFor, stagingDir } from './run-dir.js';
import { RunLock, takeoverNote } from './run-lock.js';
import { type PreparedSummary, REJECTIONS_FILE, ROW_HASHES_FILE, Sharder, SUMMARY_FILE } from './sharder.js';

export const RunFields = {
  /** Where runs live (each in `<runsDir>/<run-id>`). Default `.batchpipe/runs`. */
  runsDir: z.string().min(1).default(RUNS_DIR),
  /** This run's directory, instead of one named by its id. */
  runDir: z.string().min(1).optional(),
  /** `24h` .. `336h` (DashScope) or `24h` (OpenAI); `14d` is read as `336h`. Default `24h`. */
  completionWindow: z.string().default('24h'),
  /** Attempts per request: requests that fail with a retryable code are sent again. Default 3. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /** Send requests an expired batch left unrun again (default true). */
  resubmitExpired: z.boolean().default(true),
  /** Delete uploaded input files once their batch ended (they count toward the 10,000-file quota). */
  deleteInputFiles: z.boolean().default(false),
  /** Delete output and error files at the provider once downloaded. */
  deleteOutputFiles: z.boolean().default(false),
  /** Seconds between polls of a running batch. Default 60 (the provider suggests 1-2 minutes); 1 for the local service. */
  pollInterval: z.number().positive().optional(),
  /** Seconds an API call may take before it is abandoned (and, for uploads and creates, looked up). Default 600. */
  requestTimeout: z.number().positive().optional(),
  /**
   * Seconds after an upload or create was sent before its effect is looked for (a retry after a lost
   * reply, a resume after a crash): a provider may still be committing a call whose client is gone,
   * and a lookup made too soon would miss it and send it again. Default 30; 1 for the local service.
   */
  lookupDelay: z.number().min(0).optional(),
  /**
   * Submit afresh, as a run of its own (its id gets a random part, so its batches' names are its own),
   * even when a run of the same work made its batches already. Without it, a new run first looks up at
   * the provider what a run of the same work made (from another run directory, or one since deleted)
   * and adopts it. Default false.
   */
  newRun: z.boolean().default(false),
  /** Batches uploaded and created at once. Default 4. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /** Progress events. */
  onEvent: z.custom<(event: RunEvent) => void>((v) => typeof v === 'function').optional(),
  /** Aborting detaches: batches keep running at the provider and the run resumes later. */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal).optional(),
};
export const RunOptions = z.strictObject(RunFields);
export type RunOptions = z.input<typeof RunOptions>;
type Settings = z.output<typeof RunOptions>;

/** Opens a run's API and settings from its options. */
export function runtimeFor(
  connection: Connection,
  opts: Settings,
): { api: BatchApi; pollIntervalMs: number } {
  if (connection.profile.syncOnly)
    throw new BatchpipeError(
      'BP_USAGE',
      `provider ${connection.provider} has no Batch API (files and batches), only synchronous calls: send its requests with \`batchpipe run --mode sync\` (or chatSink)`,
      { option: 'provider' },
    );
  const api = new BatchApi(connection, {
    onRetry: (message) => opts.onEvent?.({ type: 'note', message }),
    ...(opts.requestTimeout !== undefined && { timeoutMs: opts.requestTimeout * 1000 }),
    ...(opts.lookupDelay !== undefined && { settleMs: opts.lookupDelay * 1000 }),
  });
  const pollSeconds = opts.pollInterval ?? (connection.provider === 'local' ? 1 : 60);
  return { api, pollIntervalMs: pollSeconds * 1000 };
}

/**
 * Opens an existing run to work on it (taking its lock, see BatchRun.open) and reports each stored
 * option given with another value (see BatchRun.applyOptions). Close it when done.
 */
export async function openRun(
  dir: string,
  connection: Connection,
  options: RunOptions,
  lock?: RunLock,
): Promise<BatchRun> {
  const opts = parseOptions(RunOptions, options, 'run');
  const { api, pollIntervalMs } = runtimeFor(connection, opts);
  const run = await BatchRun.open(
    dir,
    api,
    {
      pollIntervalMs,
      concurrency: opts.concurrency,
      stuckGraceMs: 2 * 3_600_000,
      onEvent: opts.onEvent,
      signal: opts.signal,
    },
    lock,
  );
  try {
    // The options as given, not as defaulted: an option left out keeps the run's own value.
    await run.applyOptions(
      {
        completionWindow: options.completionWindow,
        maxAttempts: options.maxAttempts,
        resubmitExpired: options.resubmitExpired,
        deleteInputFiles: options.deleteInputFiles,
        deleteOutputFiles: options.deleteOutputFiles,
      },
      connection.profile.completionWindowHours,
    );
    return run;
  } catch (error) {
    await run.close();
    throw error;
  }
}

/**
 * Creates the run for shards already written in `shardsDir` (a prepared directory or a staging
 * directory), or finds it when the same shards were submitted before: the run id is a hash of the
 * shards and the options, so the same command on the same input resumes the same run. The run
 * comes back open, holding its lock.
 */
export async function createOrResumeRun(
  shardsDir: string,
  summary: PreparedSummary,
  connection: Connection,
  options: RunOptions,
  staged: boolean,
): Promise<BatchRun> {
  const opts = parseOptions(RunOptions, options, 'run');
  if (summary.shards.length === 0)
    throw new BatchpipeError('BP_USAGE', 'there are no requests to submit (every row was rejected?)');
  const completionWindow = completionWindowHours(
    opts.completionWindow,
    connection.profile.completionWindowHours,
  );
  const identity = {
    shards: summary.shards,
    provider: connection.provider,
    // Redacted: credentials in the URL are no part of the work, and never written (the id is a hash, but still).
    baseURL: connection.provider === 'local' ? null : redactURL(connection.baseURL ?? null),
    endpoint: summary.shards[0]!.endpoint,
    completionWindow,
  };
  const workId = runIdFor(identity);
  const runId = opts.newRun ? runIdFor({ ...identity, fresh: randomBytes(8).toString('hex') }) : workId;
  const runDir = resolve(opts.runDir ?? join(opts.runsDir, runId));
  let promoted = false;
  try {
    if (staged) promoted = await promoteStaging(shardsDir, runDir);
    else await makeDir(runDir);
  } catch (error) {
    // A run directory the file system refuses: the staged shards go, as they would with any refusal.
    if (staged) await rm(shardsDir, { recursive: true, force: true });
    throw error;
  }
  // Everything from here on happens under the lock: two processes on one input make one run.
  let lock: RunLock;
  try {
    lock = await RunLock.acquire(runDir, (stale) =>
      opts.onEvent?.({ type: 'note', message: takeoverNote(runDir, stale) }),
    );
  } catch (error) {
    if (staged && !promoted) await rm(shardsDir, { recursive: true, force: true });
    throw error;
  }
  try {
    if (await hasManifest(runDir)) {
      const existing = await readManifest(runDir);
      // A fresh run given its directory again resumes it (its id, random in part, is not made again).
      const freshAgain = opts.newRun && existing.work_id === workId && existing.run_id !== workId;
      if (existing.run_id !== runId && !freshAgain) {
        const sameWork = (existing.work_id ?? existing.run_id) === workId;
        throw new BatchpipeError(
          'BP_RUN_MISMATCH',
          sameWork
            ? `${runDir} holds run ${existing.run_id} of this work, made without --new-run: a fresh run needs another --run-dir (or leave out --new-run to go on with this one)`
            : `${runDir} holds run ${existing.run_id}, not this input with these options (${runId}); pick another --run-dir`,
        );
      }
    } else {
      // A new run, or one whose first process died before its manifest: its files are put in place again.
      if (!promoted) await adoptShards(shardsDir, runDir, summary);
      const manifest = newManifest({
        runId,
        workId,
        lookEarlier: !opts.newRun,
        connection,
        shards: summary.shards,
        rows: summary.rows,
        rejected: summary.rejected,
        completionWindow,
        maxAttempts: opts.maxAttempts,
        resubmitExpired: opts.resubmitExpired,
        deleteInputFiles: opts.deleteInputFiles,
        deleteOutputFiles: opts.deleteOutputFiles,
      });
      manifest.content_hashes = await writeContentHashes(runDir, summary.shards);
      await writeManifest(runDir, manifest);
    }
    if (staged && !promoted) await rm(shardsDir, { recursive: true, force: true });
    return await openRun(runDir, connection, options, lock);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/** Links (or copies) a prepared directory's shards and rejections into a new run dir. */
async function adoptShards(from: string, runDir: string, summary: PreparedSummary): Promise<void> {
  await makeDir(runDir);
  for (const shard of summary.shards) await adoptFile(join(from, shard.file), join(runDir, shard.file));
  if (await exists(join(from, REJECTIONS_FILE)))
    await adoptFile(join(from, REJECTIONS_FILE), join(runDir, REJECTIONS_FILE));
  if (await exists(join(from, ROW_HASHES_FILE)))
    await adoptFile(join(from, ROW_HASHES_FILE), join(runDir, ROW_HASHES_FILE));
  await adoptFile(join(from, SUMMARY_FILE), join(runDir, SUMMARY_FILE));
}

/** Reads a prepared directory's summary (shards.json), naming the directory when there is none. */
export async function readPrepared(dir: string): Promise<PreparedSummary> {
  try {
    return JSON.parse(await readFile(join(dir, SUMMARY_FILE), 'utf8')) as PreparedSummary;
  } catch (error) {
    throw new BatchpipeError(
      'BP_USAGE',
      `${dir} is not a prepared directory (no readable ${SUMMARY_FILE}); run batchpipe prepare first, or give a .jsonl file`,
      {},
      { cause: error },
    );
  }
}

/** Shards request items (or batches of them) into a fresh staging directory under the runs dir; returns it and the summary. */
export async function stageRequests(
  items: AsyncIterable<RequestBatch | RequestItem | Rejection>,
  runsDir: string,
  connection: Connection,
): Promise<{ dir: string; summary: PreparedSummary }> {
  const dir = await stagingDir(runsDir);
  const sharder = new Sharder(dir, 'requests', connection.profile.limits);
  try {
    for await (const item of items) {
      const pending = isRequestBatch(item) ? sharder.addBatch(item) : sharder.add(item);
      if (pending) await pending;
    }
    return { dir, summary: await sharder.finish() };
  } catch (error) {
    await sharder.abort();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
