import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { BatchpipeError } from '../../errors.js';
import { BufferedFile } from '../../internal/buffered-file.js';
import { makeDir, makeParentDir, writeFileAtomic } from '../../internal/durable-write.js';
import { linkedSignal } from '../../internal/linked-signal.js';
import { parseOptions } from '../../options.js';
import { type Connection, redactURL } from '../../providers/connection.js';
import { backoffMs } from '../../providers/retry.js';
import type { RunCounts, RunEvent } from '../batch-run.js';
import { customIdOf, jsonlBuffers } from '../request-ids.js';
import { adoptFile, exists, hasManifest, promoteStaging, RUNS_DIR, runIdFor } from '../run-dir.js';
import { RunLock, takeoverNote } from '../run-lock.js';
import {
  type PreparedSummary,
  REJECTIONS_FILE,
  ROW_HASHES_FILE,
  type ShardSummary,
  SUMMARY_FILE,
} from '../sharder.js';
import { AnswerJournal, type JournalState, readJournal } from './answer-journal.js';
import { Pacer } from './pacer.js';
import { CallAborted, type CallResult, SyncCaller, type SyncRequest } from './sync-call.js';

/** A sync run's record: what it is, written once when it begins. */
export const SYNC_FILE = 'sync.json';
/** The answers journals, one per shard, named as the shard. */
export const ANSWERS_DIR = 'answers';

/**
 * Refusals (429, 503) one row may meet before it is left failed (and sent again by the next run of
 * the command). They do not count as attempts: the request never ran. batchpipe's cap, not a
 * document's.
 */
export const MAX_REFUSALS = 30;
/** First wait before a retry, and the longest, ms. */
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 60_000;
/** Per-call timeout, seconds, where the endpoint documents none (Batch Chat's default is 3,600). */
const DEFAULT_TIMEOUT_S = 600;
/** The most calls in flight where the endpoint documents no cap (Batch Chat: 10,000 pending per model). */
const DEFAULT_MAX_IN_FLIGHT = 1000;
/** How long a detach lets the calls in flight finish before dropping them, ms. */
const DETACH_GRACE_MS = 2000;
/** How often a running sync run reports its progress, ms. */
const PROGRESS_EVERY_MS = 5000;

export const SyncFields = {
  /** Where runs live (each in `<runsDir>/<run-id>`). Default `.batchpipe/runs`. */
  runsDir: z.string().min(1).default(RUNS_DIR),
  /** This run's directory, instead of one named by its id. */
  runDir: z.string().min(1).optional(),
  /** A run of its own even when a run of the same work exists (its answers are paid for again). */
  newRun: z.boolean().default(false),
  /** Attempts per row for failures a retry may fix (timeouts, 5xx, lost connections). Default 3. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /**
   * Seconds one call may wait for its answer (Batch Chat queues calls: 60-3,600, default 3,600, as
   * documented; elsewhere up to 3,600, default 600). The openai SDK's own default (600 s) would cut
   * a queued Batch Chat call short.
   */
  callTimeout: z.number().positive().max(3600).optional(),
  /** Most calls in flight at once (Batch Chat: 10,000, its pending cap per model; else 1,000). */
  maxInFlight: z.number().int().min(1).max(100_000).optional(),
  /** Most calls started per second (Batch Chat: 1,000, its documented rate; else none). */
  maxPerSecond: z.number().positive().max(100_000).optional(),
  /** Progress events (notes). */
  onEvent: z.custom<(event: RunEvent) => void>((v) => typeof v === 'function').optional(),
  /** Aborting detaches: calls in flight are dropped (not answered, so not billed) and sent again on resume. */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal).optional(),
};
export const SyncOptions = z.strictObject(SyncFields);
export type SyncOptions = z.input<typeof SyncOptions>;
type SyncSettings = z.output<typeof SyncOptions>;

/** What `sync.json` holds. */
export interface SyncRecord {
  version: 1;
  mode: 'sync';
  run_id: string;
  work_id: string;
  provider: { name: string; base_url: string | null };
  endpoint: string;
  rows: number;
  rejected: number;
  shards: ShardSummary[];
  created_at: string;
}

export type SyncState = 'done' | 'detached';

/**
 * A durable sync run: every request line sent to a synchronous endpoint (Batch Chat, or any
 * OpenAI-compatible chat or embeddings server) as its own call, paced by a Pacer, retried with
 * backoff, each row's final answer journalled as it comes (answers/<shard>). Killed at any moment,
 * the same command resumes it: rows with an answer in the journal are never sent again (they were
 * paid for); rows whose last call failed in a way a later try may fix (a timeout, a refusal: not
 * billed) are sent again. Holds its directory's lock until `close`.
 */
export class SyncRun {
  readonly dir: string;
  readonly record: SyncRecord;
  readonly #connection: Connection;
  readonly #settings: SyncSettings;
  readonly #lock: RunLock;
  #ok = 0;
  #failed = 0;
  #known = 0;

  private constructor(
    dir: string,
    record: SyncRecord,
    connection: Connection,
    settings: SyncSettings,
    lock: RunLock,
  ) {
    this.dir = dir;
    this.record = record;
    this.#connection = connection;
    this.#settings = settings;
    this.#lock = lock;
  }

  /** Requests of the run (rows less rejections). */
  get requests(): number {
    return this.record.shards.reduce((n, s) => n + s.lines, 0);
  }

  /**
   * Creates the sync run for shards in `shardsDir` (a staging directory when `staged`), or finds it
   * when the same shards were sent before to the same endpoint: its id is a hash of them, so the same
   * command resumes the same run. Comes back holding its lock.
   */
  static async createOrResume(
    shardsDir: string,
    summary: PreparedSummary,
    connection: Connection,
    options: SyncOptions,
    staged: boolean,
  ): Promise<SyncRun> {
    const opts = parseOptions(SyncOptions, options, 'sync run');
    const timeout = callTimeoutSeconds(connection, opts.callTimeout);
    if (summary.shards.length === 0)
      throw new BatchpipeError('BP_USAGE', 'there are no requests to send (every row was rejected?)');
    const baseURL = connection.provider === 'local' ? null : redactURL(connection.baseURL ?? null);
    const identity = {
      shards: summary.shards,
      provider: connection.provider,
      baseURL,
      endpoint: summary.shards[0]!.endpoint,
      // Not a window: what keeps a sync run's id apart from a batch run's of the same requests.
      completionWindow: 'sync',
    };
    const workId = syncId(runIdFor(identity));
    const runId = opts.newRun
      ? syncId(runIdFor({ ...identity, fresh: randomBytes(8).toString('hex') }))
      : workId;
    const dir = resolve(opts.runDir ?? join(opts.runsDir, runId));
    let promoted = false;
    try {
      if (staged) promoted = await promoteStaging(shardsDir, dir);
      else await makeDir(dir);
    } catch (error) {
      if (staged) await rm(shardsDir, { recursive: true, force: true });
      throw error;
    }
    let lock: RunLock;
    try {
      lock = await RunLock.acquire(dir, (stale) =>
        opts.onEvent?.({ type: 'note', message: takeoverNote(dir, stale) }),
      );
    } catch (error) {
      if (staged && !promoted) await rm(shardsDir, { recursive: true, force: true });
      throw error;
    }
    try {
      let record: SyncRecord;
      if (await hasManifest(dir))
        throw new BatchpipeError(
          'BP_RUN_MISMATCH',
          `${dir} holds a batch run, not a sync run; pick another --run-dir`,
        );
      if (await exists(join(dir, SYNC_FILE))) {
        record = await readSyncRecord(dir);
        const freshAgain = opts.newRun && record.work_id === workId && record.run_id !== workId;
        if (record.run_id !== runId && !freshAgain)
          throw new BatchpipeError(
            'BP_RUN_MISMATCH',
            record.work_id === workId
              ? `${dir} holds sync run ${record.run_id} of this work, made without --new-run: a fresh run needs another --run-dir`
              : `${dir} holds sync run ${record.run_id}, not this input with these options (${runId}); pick another --run-dir`,
          );
      } else {
        if (!promoted) await adoptShards(shardsDir, dir, summary);
        record = {
          version: 1,
          mode: 'sync',
          run_id: runId,
          work_id: workId,
          provider: { name: connection.provider, base_url: baseURL },
          endpoint: identity.endpoint,
          rows: summary.rows,
          rejected: summary.rejected,
          shards: summary.shards,
          created_at: new Date().toISOString(),
        };
        await makeDir(join(dir, ANSWERS_DIR));
        await writeFileAtomic(join(dir, SYNC_FILE), `${JSON.stringify(record, null, 2)}\n`);
      }
      if (staged && !promoted) await rm(shardsDir, { recursive: true, force: true });
      return new SyncRun(dir, record, connection, { ...opts, callTimeout: timeout }, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Per-request totals so far (after `wait`, of the whole run). */
  counts(): RunCounts {
    const requests = this.requests;
    return {
      rows: this.record.rows,
      rejected: this.record.rejected,
      ok: this.#ok,
      failed: this.#failed,
      expired: 0,
      cancelled: 0,
      pending: Math.max(0, requests - this.#known),
    };
  }

  /**
   * Sends every row that has no answer yet, shard by shard, and returns once each has its final line
   * (`done`), or once the signal aborted (`detached`: the calls in flight are dropped, unanswered).
   * Throws when an answer cannot be written (a full disk): what was written stays, and resumes.
   */
  async wait(): Promise<SyncState> {
    const opts = this.#settings;
    // The run's own signal: the caller's detach, or a write that failed, stops every row.
    // Two signals: `stop` ends sending (no new call, no retry); `drop` abandons the calls in flight.
    // A detach drops them only after a grace period: an answer on its way when Ctrl-C came is paid for
    // either way, so it is better kept than thrown away.
    const stop = new AbortController();
    const drop = new AbortController();
    let grace: NodeJS.Timeout | undefined;
    const outer = linkedSignal(opts.signal);
    outer.signal.addEventListener(
      'abort',
      () => {
        stop.abort(outer.signal.reason);
        grace = setTimeout(() => drop.abort(outer.signal.reason), DETACH_GRACE_MS);
      },
      { once: true },
    );
    setMaxListeners(0, stop.signal);
    setMaxListeners(0, drop.signal);
    const signal = stop.signal;
    const sync = this.#connection.profile.sync;
    const maxInFlight = opts.maxInFlight ?? sync?.maxPendingPerModel ?? DEFAULT_MAX_IN_FLIGHT;
    const documentedRate = sync ? Math.min(sync.maxPerSecond, sync.maxPer10s / 10) : Number.POSITIVE_INFINITY;
    const pacer = new Pacer({
      maxInFlight,
      maxPerSecond: Math.min(opts.maxPerSecond ?? Number.POSITIVE_INFINITY, documentedRate),
    });
    const caller = new SyncCaller(this.#connection, Math.round(opts.callTimeout! * 1000));
    const tasks = new Set<Promise<void>>();
    // Rows started and not finished, in flight or waiting to retry: bounded, so a storm of refusals
    // cannot pull the whole input into memory.
    const maxActive = maxInFlight + 256;
    let room: (() => void) | undefined;
    let fatal: unknown;
    const journals: AnswerJournal[] = [];
    this.#ok = 0;
    this.#failed = 0;
    this.#known = 0;
    const progress = setInterval(() => {
      const c = this.counts();
      opts.onEvent?.({
        type: 'note',
        message: `sync: ${c.ok + c.failed}/${this.requests} answered (${c.ok} ok, ${c.failed} failed), ${pacer.inFlight} in flight, window ${pacer.window}${Number.isFinite(pacer.rate) ? `, ${Math.round(pacer.rate)} calls/s` : ''}`,
      });
    }, PROGRESS_EVERY_MS);
    progress.unref();
    try {
      shards: for (const shard of this.record.shards) {
        const path = join(this.dir, ANSWERS_DIR, shard.file);
        const states = await readJournal(path);
        const journal = await AnswerJournal.open(path);
        journals.push(journal);
        for await (const bytes of jsonlBuffers(join(this.dir, shard.file))) {
          if (fatal !== undefined || signal.aborted) break shards;
          const id = customIdOf(bytes);
          const state = id === undefined ? undefined : states.get(id);
          if (state === 'ok' || state === 'failed') {
            this.#tally(state, true);
            continue;
          }
          const request = JSON.parse(bytes.toString('utf8')) as SyncRequest;
          while (tasks.size >= maxActive) await new Promise<void>((r) => (room = r));
          let ticket: Awaited<ReturnType<Pacer['acquire']>>;
          try {
            ticket = await pacer.acquire(signal);
          } catch {
            break shards;
          }
          const task: Promise<void> = this.#send(request, journal, pacer, caller, ticket, signal, drop.signal)
            .catch((error: unknown) => {
              fatal ??= error;
              stop.abort(error);
              drop.abort(error);
            })
            .finally(() => {
              tasks.delete(task);
              room?.();
              room = undefined;
            });
          tasks.add(task);
        }
      }
      await Promise.all(tasks);
    } finally {
      clearTimeout(grace);
      clearInterval(progress);
      pacer.close(new CallAborted('run ended'));
      for (const journal of journals) {
        try {
          await journal.close();
        } catch (error) {
          fatal ??= error;
        }
      }
      outer.unlink();
    }
    if (fatal !== undefined) throw fatal;
    return opts.signal?.aborted ? 'detached' : 'done';
  }

  #tally(state: JournalState | 'ok' | 'failed', known: boolean): void {
    if (state === 'ok') this.#ok++;
    else this.#failed++;
    if (known) this.#known++;
  }

  /** One row, from its first call to its final line (or to a detach: then no line, sent again on resume). */
  async #send(
    request: SyncRequest,
    journal: AnswerJournal,
    pacer: Pacer,
    caller: SyncCaller,
    first: { startedAt: number },
    signal: AbortSignal,
    drop: AbortSignal,
  ): Promise<void> {
    let ticket = first;
    let attempts = 0;
    let refusals = 0;
    for (;;) {
      let result: CallResult;
      // A signal per call: the SDK leaves its listener on the signal it is given.
      const call = linkedSignal(drop);
      try {
        result = await caller.call(request, call.signal);
      } catch (error) {
        pacer.release(ticket, 'failed');
        if (error instanceof CallAborted) return;
        throw error;
      } finally {
        call.unlink();
      }
      pacer.release(ticket, result.outcome);
      if (result.outcome === 'refused') refusals++;
      else if (result.outcome !== 'ok') attempts++;
      const again =
        result.outcome !== 'ok' &&
        result.retryable &&
        (result.outcome === 'refused' ? refusals < MAX_REFUSALS : attempts < this.#settings.maxAttempts);
      if (!again) {
        journal.append(JSON.stringify(finalLine(result, attempts, refusals)));
        this.#tally(result.outcome === 'ok' ? 'ok' : 'failed', true);
        return;
      }
      const wait =
        result.retryAfterMs !== undefined
          ? result.retryAfterMs * (1 + Math.random() * 0.2)
          : backoffMs(
              Math.max(0, (result.outcome === 'refused' ? refusals : attempts) - 1),
              BACKOFF_BASE_MS,
              BACKOFF_CAP_MS,
            );
      try {
        await sleep(wait, undefined, { signal });
        ticket = await pacer.acquire(signal);
      } catch {
        return;
      }
    }
  }

  /**
   * Writes every request's final line to `path` (results.jsonl: what the join reads), shard by shard,
   * the last line of each row from its journal; a row with none (the run did not finish) gets a
   * BP_RESULT_MISSING line. Memory is one shard's ids. Returns the lines written.
   */
  async writeResults(path: string): Promise<number> {
    await makeParentDir(path);
    const file = new BufferedFile(path);
    let lines = 0;
    const put = async (text: string) => {
      lines++;
      const pending = file.append(`${text}\n`, Buffer.byteLength(text) + 1);
      if (pending) await pending;
    };
    try {
      for (const shard of this.record.shards) {
        const journal = join(this.dir, ANSWERS_DIR, shard.file);
        const last = new Map<string, number>();
        if (await exists(journal)) {
          let n = 0;
          for await (const bytes of jsonlBuffers(journal)) {
            const id = customIdOf(bytes);
            if (id !== undefined) last.set(id, n);
            n++;
          }
          n = 0;
          for await (const bytes of jsonlBuffers(journal)) {
            const id = customIdOf(bytes);
            if (id !== undefined && last.get(id) === n) await put(bytes.toString('utf8'));
            n++;
          }
        }
        for await (const bytes of jsonlBuffers(join(this.dir, shard.file))) {
          const id = customIdOf(bytes);
          if (id === undefined || last.has(id)) continue;
          await put(
            JSON.stringify({
              custom_id: id,
              response: null,
              error: {
                code: 'BP_RESULT_MISSING',
                message: 'the sync run ended before this request was answered; the same command sends it',
              },
            }),
          );
        }
      }
      await file.close();
    } catch (error) {
      await file.discard();
      throw error;
    }
    return lines;
  }

  /** Releases the run directory. */
  async close(): Promise<void> {
    await this.#lock.release();
  }
}

/** The line kept for a row: its answer, or its last failure, saying whether a later run tries again. */
function finalLine(result: CallResult, attempts: number, refusals: number): Record<string, unknown> {
  if (result.outcome === 'ok') return result.line;
  const line: Record<string, unknown> = { ...result.line, bp_attempts: attempts, bp_refusals: refusals };
  if (result.retryable) {
    line.bp_retry = true;
    const error = result.line.error;
    if (error && typeof error.message === 'string' && !error.message.includes('run the same command'))
      line.error = {
        ...error,
        message: `${error.message} (gave up after ${attempts} failed attempts and ${refusals} refusals; not answered, so not billed: run the same command again later to send it again)`,
      };
  }
  return line;
}

/** `run-<hash>` as a sync run's id, `sync-<hash>`. */
function syncId(runId: string): string {
  return runId.replace(/^run-/, 'sync-');
}

/** The per-call timeout in seconds: the option, checked against the endpoint's documented range, or its default. */
export function callTimeoutSeconds(connection: Connection, given: number | undefined): number {
  const range = connection.profile.sync?.timeoutSeconds;
  if (given === undefined) return range?.default ?? DEFAULT_TIMEOUT_S;
  if (range && (given < range.min || given > range.max))
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `option "callTimeout": provider ${connection.provider} takes a call timeout from ${range.min} to ${range.max} seconds, as documented, got ${given}`,
      { option: 'callTimeout' },
    );
  return given;
}

/** Reads a sync run's record. */
export async function readSyncRecord(dir: string): Promise<SyncRecord> {
  try {
    return JSON.parse(await readFile(join(dir, SYNC_FILE), 'utf8')) as SyncRecord;
  } catch (error) {
    throw new BatchpipeError(
      'BP_MANIFEST_CORRUPT',
      `${join(dir, SYNC_FILE)} cannot be read: ${(error as Error).message}`,
      { file: join(dir, SYNC_FILE) },
      { cause: error },
    );
  }
}

/** Puts a prepared directory's files into a new run dir (links, or copies). */
async function adoptShards(from: string, dir: string, summary: PreparedSummary): Promise<void> {
  await makeDir(dir);
  for (const shard of summary.shards) await adoptFile(join(from, shard.file), join(dir, shard.file));
  for (const name of [REJECTIONS_FILE, ROW_HASHES_FILE, SUMMARY_FILE])
    if (await exists(join(from, name))) await adoptFile(join(from, name), join(dir, name));
}
