import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CACHED_FILE, REQUEST_KEYS_FILE, REUSED_REQUESTS_FILE } from '../cache/request-reuse.js';
import { isRequestBatch, type RequestBatch } from '../core/requests/request-batch.js';
import { BatchpipeError } from '../errors.js';
import { makeDir } from '../internal/durable-write.js';
import { parseOptions } from '../options.js';
import { type Connection, redactURL } from '../providers/connection.js';
import type { RateLimits } from '../providers/profile.js';
import type { Rejection, RequestItem } from '../types.js';
import { BatchApi } from './batch-api.js';
import { BatchRun, completionWindowHours, newManifest, type RunEvent } from './batch-run.js';
import { writeContentHashes } from './content-hashes.js';
import { earlierKeyedRun, REQUEST_KEYS_FORMAT } from './earlier-key-runs.js';
import { readManifest, writeManifest } from './manifest.js';
import { adoptFile, exists, hasManifest, promoteStaging, RUNS_DIR, runIdFor, stagingDir } from './run-dir.js';
import { RunLock, takeoverNote } from './run-lock.js';
import { type PreparedSummary, REJECTIONS_FILE, ROW_HASHES_FILE, Sharder, SUMMARY_FILE } from './sharder.js';
import { checkTaskLabel, type TaskLabel } from './task-metadata.js';

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
  /**
   * Delete uploaded input files once their batch ended (they count toward the 10,000-file quota).
   * Default: when the run's files, kept, could take the account over the provider's storage (more
   * than a third of its files: input, output and error file per batch), else kept.
   */
  deleteInputFiles: z.boolean().optional(),
  /** Delete output and error files at the provider once downloaded. Default: as `deleteInputFiles`. */
  deleteOutputFiles: z.boolean().optional(),
  /** Keep every file at the provider (`deleteInputFiles` and `deleteOutputFiles` false). */
  keepFiles: z.boolean().optional(),
  /**
   * Minutes of the provider's clock per real minute, for a simulated provider whose clock runs fast
   * (the local service's `timeScale`): its documented per-minute rates are kept in its minutes. Default 1.
   */
  providerTimeScale: z.number().positive().optional(),
  /**
   * Seconds between polls of a running batch. Default 60 against a provider, which then retrieves no
   * batch more than once in 60 s, jitter included (DashScope: "Poll every 1-2 minutes"); 1 for the
   * local service. A value given is followed as given: faster only when asked.
   */
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
  /**
   * The start of every batch's `ds_name` (DashScope shows it as the task's name), cut so the run's own
   * identity (`bp-<run>-<job>`) still fits in 100 characters after it. Kept by the run.
   */
  taskName: z.string().optional(),
  /** Every batch's `ds_description`, cut to 200 characters. Kept by the run. */
  taskDescription: z.string().optional(),
  /**
   * More metadata on every batch, within the provider's bounds (OpenAI: 16 pairs with batchpipe's own
   * four, keys up to 64 and values up to 512 characters). Kept by the run.
   */
  metadata: z.record(z.string(), z.string()).optional(),
  /**
   * Before a run's first upload, count the account's stored files (up to 1,000 of them) and warn
   * when the run would take it past the provider's documented storage (DashScope: 10,000 files, 100 GB).
   * Default true where the provider documents a limit.
   */
  checkStorage: z.boolean().default(true),
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
): { api: BatchApi; pollIntervalMs: number; pollGapMs: number } {
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
    ...(opts.providerTimeScale !== undefined && { providerTimeScale: opts.providerTimeScale }),
  });
  return { api, ...pollPolicy(connection.provider, opts.pollInterval) };
}

/**
 * The connection as one of `count` slice processes uses it: each documented per-account rate (creates,
 * queries, lists, cancels a minute, batches unfinished at once) divided by `count`, rounded up, so
 * `count` processes running at once, which share no limiter, stay within the account's limits. A
 * provider's 429 is still retried, honouring retry-after.
 */
export function sharedConnection(connection: Connection, count: number): Connection {
  const rates = connection.profile.rateLimits;
  if (!rates || count <= 1) return connection;
  const share = (n: number) => Math.max(1, Math.ceil(n / count));
  const shared = Object.fromEntries(
    Object.entries(rates).map(([key, n]) => [key, typeof n === 'number' ? share(n) : n]),
  ) as unknown as RateLimits;
  return { ...connection, profile: { ...connection.profile, rateLimits: shared } };
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
  // A slice's process keeps to its share of the account's rates (read here: BatchRun.open reports a bad manifest).
  const slice = (await readManifest(dir).catch(() => undefined))?.slice;
  const { api, pollIntervalMs, pollGapMs } = runtimeFor(
    slice ? sharedConnection(connection, slice.count) : connection,
    opts,
  );
  const run = await BatchRun.open(
    dir,
    api,
    {
      pollIntervalMs,
      pollGapMs,
      concurrency: opts.concurrency,
      stuckGraceMs: 2 * 3_600_000,
      checkStorage: opts.checkStorage,
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
        deleteInputFiles: options.keepFiles ? false : options.deleteInputFiles,
        deleteOutputFiles: options.keepFiles ? false : options.deleteOutputFiles,
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
  // With the result cache, which keyed requests are sent depends on the cache: the run is the same
  // work whatever it held, so their files give way to the digest of every keyed request's id and key.
  const keyed = summary.reuse !== undefined && summary.reuse.keyed > 0;
  const identity = {
    shards: keyed ? summary.shards.filter((s) => !s.keyed) : summary.shards,
    ...(keyed && { requests: summary.reuse!.digest }),
    provider: connection.provider,
    // Redacted: credentials in the URL are no part of the work, and never written (the id is a hash, but still).
    baseURL: connection.provider === 'local' ? null : redactURL(connection.baseURL ?? null),
    endpoint: summary.shards[0]!.endpoint,
    completionWindow,
    slice: summary.slice,
  };
  // Checked before anything is written or sent; a label is no part of the work (the same work under
  // another name is the same run, and adopts what it made).
  const label = taskLabel(opts, connection);
  const workId = runIdFor(identity);
  const runId = opts.newRun ? runIdFor({ ...identity, fresh: randomBytes(8).toString('hex') }) : workId;
  const runDir = resolve(opts.runDir ?? join(opts.runsDir, runId));
  if (keyed && !opts.newRun && !(await hasManifest(runDir))) {
    const earlier = await earlierKeyedRun(opts.runsDir, runDir, {
      provider: identity.provider,
      baseURL: identity.baseURL,
      endpoint: identity.endpoint,
      completionWindow,
      rows: summary.rows,
      slice: summary.slice,
    });
    if (earlier !== undefined) {
      if (staged) await rm(shardsDir, { recursive: true, force: true });
      throw new BatchpipeError(
        'BP_RUN_MISMATCH',
        `${earlier} holds an unfinished run of ${summary.rows} rows made by an earlier version of batchpipe, whose request keys (SHA-256) gave the same work another run id: starting this run could send that work again. Finish it with \`batchpipe resume ${earlier}\`, or pass --new-run to start another`,
      );
    }
  }
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
      if (label && JSON.stringify(label) !== JSON.stringify(existing.task ?? null))
        opts.onEvent?.({
          type: 'note',
          message: `warning: the run keeps the task name, description and metadata it began with (${existing.task ? JSON.stringify(existing.task) : 'none'}): its batches carry them; another label is a new run (--new-run)`,
        });
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
      const storageBinds = filesWouldBind(summary.shards, connection.profile.storage ?? undefined);
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
        deleteInputFiles: opts.keepFiles ? false : (opts.deleteInputFiles ?? storageBinds),
        deleteOutputFiles: opts.keepFiles ? false : (opts.deleteOutputFiles ?? storageBinds),
        task: label,
      });
      if (summary.slice) manifest.slice = summary.slice;
      if (keyed) manifest.request_keys = REQUEST_KEYS_FORMAT;
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

/** The user's task label, checked for the provider; undefined when none was given. */
function taskLabel(opts: Settings, connection: Connection): TaskLabel | undefined {
  if (opts.taskName === undefined && opts.taskDescription === undefined && opts.metadata === undefined)
    return undefined;
  return checkTaskLabel(opts, connection.profile);
}

/**
 * Whether a run's files, all kept at the provider, could take the account over its storage: each
 * batch may leave three files (input, output, error), the results about as large as the requests.
 */
export function filesWouldBind(
  shards: ReadonlyArray<{ bytes: number }>,
  storage: { maxFiles: number; maxBytes: number } | undefined,
): boolean {
  if (!storage) return false;
  const bytes = shards.reduce((sum, s) => sum + s.bytes, 0);
  return shards.length * 3 > storage.maxFiles || bytes * 3 > storage.maxBytes;
}

/** Links (or copies) a prepared directory's shards and rejections into a new run dir. */
async function adoptShards(from: string, runDir: string, summary: PreparedSummary): Promise<void> {
  await makeDir(runDir);
  for (const shard of summary.shards) await adoptFile(join(from, shard.file), join(runDir, shard.file));
  if (await exists(join(from, REJECTIONS_FILE)))
    await adoptFile(join(from, REJECTIONS_FILE), join(runDir, REJECTIONS_FILE));
  for (const file of [ROW_HASHES_FILE, REQUEST_KEYS_FILE, CACHED_FILE, REUSED_REQUESTS_FILE])
    if (await exists(join(from, file))) await adoptFile(join(from, file), join(runDir, file));
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

/**
 * How a run polls. DashScope: "Poll every 1-2 minutes" (ref/dashscope-batch-api.txt). Against a
 * provider, by default, every 60 s and no batch more than once in 60 s, jitter included (jitter only
 * lengthens a wait). The local service is polled every second, the first polls sooner. A `pollInterval`
 * given is the user's call: against a provider it is followed as the gap, against the local service as
 * the interval.
 */
export function pollPolicy(
  provider: Connection['provider'],
  pollInterval: number | undefined,
): { pollIntervalMs: number; pollGapMs: number } {
  const local = provider === 'local';
  const intervalMs = (pollInterval ?? (local ? 1 : 60)) * 1000;
  return { pollIntervalMs: intervalMs, pollGapMs: local ? 0 : intervalMs };
}
