import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { badRequest } from './api-error.js';
import { FAULT_SUFFIX } from './batch-faults.js';
import { type BatchRecord, type BatchStore, type Ending, TERMINAL } from './batches-store.js';
import { CallSignals } from './call-signals.js';
import type { ServiceClock } from './clock.js';
import { createDryRunEngine } from './engine/dry-run-engine.js';
import { DRY_RUN_ENDPOINT, type Engine } from './engine/engine.js';
import {
  answersInline,
  type ExecuteContext,
  executeBatch,
  type HaltReason,
  validateAndAnswer,
} from './execute.js';
import type { FileStore } from './files-store.js';
import { newFileId } from './ids.js';
import { BatchResults, ERROR_PART, OUTPUT_PART, type Progress } from './results.js';
import { Semaphore } from './semaphore.js';
import { type Validation, validateInputFile } from './validate-input.js';

export interface SchedulerOptions {
  batches: BatchStore;
  files: FileStore;
  clock: ServiceClock;
  engine: Engine;
  concurrency: number;
  maxActiveBatches: number;
  checkpointMs: number;
  log: (line: string) => void;
  /** Called when a batch fault crashes the service: the owner stops it as a crash and starts it again. */
  onCrash: () => void;
}

interface Running {
  promise: Promise<void>;
  /** Stops dispatch: a cancel, an expiry, or a close. */
  halt: AbortController;
  timer: NodeJS.Timeout | undefined;
}

/** setTimeout's longest delay; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Moves batches through their lifecycle: validating -> in_progress -> finalizing -> completed, or
 * failed, expired, cancelling -> cancelled. Every non-terminal batch has a runner; at most
 * `maxActiveBatches` validate or run at once (the rest wait in `validating`, as providers queue) and
 * their requests share one pool of `concurrency` slots. Every status change is durable before it is
 * visible; a restart picks every unfinished batch up where its state and progress log left it.
 */
export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #slots: Semaphore;
  readonly #pool: Semaphore;
  readonly #running = new Map<string, Running>();
  readonly #dryRun = createDryRunEngine();
  readonly #stop = new AbortController();
  readonly #calls = new CallSignals();
  #stopping = false;
  #crashing = false;

  constructor(options: SchedulerOptions) {
    this.#o = options;
    this.#slots = new Semaphore(options.maxActiveBatches);
    this.#pool = new Semaphore(options.concurrency);
  }

  /** The shared request pool (synchronous calls queue on it too). */
  get pool(): Semaphore {
    return this.#pool;
  }

  get stopSignal(): AbortSignal {
    return this.#stop.signal;
  }

  /**
   * Signals for single calls (a request of a batch, a synchronous call, a fault's wait), aborted
   * when the service stops. Use these, not `stopSignal`, for anything that adds a listener per call.
   */
  get calls(): CallSignals {
    return this.#calls;
  }

  /** Counts of running batches from their last checkpoint, so no one sees a resumed batch restart from zero. */
  async restoreProgress(): Promise<void> {
    for (const record of this.#o.batches.all())
      if (!TERMINAL.has(record.batch.status) && record.internal.validated && record.internal.ending === null)
        showProgress(record, await BatchResults.lastCheckpoint(this.#o.batches.workDir(record.batch.id)));
  }

  /** Picks up every batch that had not reached a terminal state. */
  resumeAll(): void {
    for (const record of this.#o.batches.all()) if (!TERMINAL.has(record.batch.status)) this.launch(record);
  }

  launch(record: BatchRecord): void {
    const id = record.batch.id;
    if (this.#running.has(id) || this.#stopping) return;
    const running: Running = { promise: Promise.resolve(), halt: new AbortController(), timer: undefined };
    this.#running.set(id, running);
    this.#armExpiry(record, running);
    running.promise = this.#run(record, running)
      .catch((error: unknown) => this.#crashed(record, error))
      .finally(() => {
        clearTimeout(running.timer);
        this.#running.delete(id);
      });
  }

  /** True while a batch that is not finished reads this input file. */
  isReading(fileId: string): boolean {
    for (const record of this.#o.batches.all())
      if (record.batch.input_file_id === fileId && !TERMINAL.has(record.batch.status)) return true;
    return false;
  }

  /** validating/in_progress -> cancelling, durably; the runner then stops dispatching. */
  async cancel(record: BatchRecord): Promise<void> {
    const { batch } = record;
    if (batch.status === 'cancelling') return;
    if (TERMINAL.has(batch.status) || batch.status === 'finalizing' || record.internal.ending !== null)
      throw badRequest(`Cannot cancel a batch with status ${batch.status}.`, null, 'batch_not_cancellable');
    batch.status = 'cancelling';
    batch.cancelling_at = this.#o.clock.now();
    await this.#o.batches.save(record);
    this.#running.get(batch.id)?.halt.abort('cancel');
  }

  /** Ends a batch's window now (`expires_at` becomes now): what runs finishes, then it expires. */
  async expireNow(record: BatchRecord): Promise<void> {
    const { batch } = record;
    if (batch.status === 'cancelling') return;
    if (TERMINAL.has(batch.status) || batch.status === 'finalizing' || record.internal.ending !== null)
      throw badRequest(`Cannot expire a batch with status ${batch.status}.`, null, 'batch_not_expirable');
    this.#endWindow(record);
    await this.#o.batches.save(record);
    this.#running.get(batch.id)?.halt.abort('expire');
  }

  async close(): Promise<void> {
    this.#halt();
    await Promise.allSettled([...this.#running.values()].map((r) => r.promise));
    await this.#o.batches.flush();
  }

  /** Stops like a crash: runners drop what they hold without a last checkpoint. */
  async crash(): Promise<void> {
    this.#crashing = true;
    await this.close();
  }

  #halt(): void {
    this.#stopping = true;
    this.#stop.abort('stop');
    this.#calls.stop('stop');
    for (const running of this.#running.values()) running.halt.abort('stop');
  }

  #endWindow(record: BatchRecord): void {
    record.batch.expires_at = Math.min(record.batch.expires_at, this.#o.clock.now());
  }

  /** Batch faults that end a run at a given request: a forced expiry, or a crash of the service. */
  #beforeDispatch(record: BatchRecord, line: number): HaltReason | null {
    const faults = record.internal.faults;
    if (!faults) return null;
    if (faults.crashAfter !== null && !faults.crashed && line > faults.crashAfter) {
      faults.crashed = true;
      // Saved before the crash (close waits for pending saves), so the restart does not crash again.
      void this.#o.batches.save(record).catch(() => {});
      this.#crashing = true;
      this.#halt();
      this.#o.log(
        `batch ${record.batch.id}: crashing the service after ${faults.crashAfter} requests${FAULT_SUFFIX}`,
      );
      this.#o.onCrash();
      return 'stop';
    }
    if (faults.expireAfter !== null && line > faults.expireAfter) {
      if (record.batch.expires_at > this.#o.clock.now()) {
        this.#endWindow(record);
        void this.#o.batches.save(record).catch(() => {});
      }
      return 'expire';
    }
    return null;
  }

  #haltReason(record: BatchRecord): HaltReason | null {
    if (this.#stopping) return 'stop';
    if (record.batch.status === 'cancelling') return 'cancel';
    if (this.#o.clock.now() >= record.batch.expires_at) return 'expire';
    return null;
  }

  #armExpiry(record: BatchRecord, running: Running): void {
    const wait = this.#o.clock.realMsUntil(record.batch.expires_at);
    running.timer = setTimeout(
      () => {
        if (this.#o.clock.now() >= record.batch.expires_at) running.halt.abort('expire');
        else this.#armExpiry(record, running);
      },
      Math.min(MAX_TIMER_MS, Math.ceil(wait) + 1),
    );
    running.timer.unref();
  }

  async #run(record: BatchRecord, running: Running): Promise<void> {
    const { batch, internal } = record;
    let slot = false;
    if (internal.ending === null && this.#haltReason(record) === null) {
      try {
        await this.#slots.acquire(running.halt.signal);
        slot = true;
      } catch {
        // Halted while queued: cancelled, expired or closing; handled below without a slot.
      }
    }
    try {
      const ctx = this.#context(record, running);
      // Every run needs the engine ready, a resumed one too (it skips validation).
      await ctx.engine.ready();
      if (internal.ending === null && !internal.validated) {
        if (slot) await this.#validate(record, ctx);
        if (TERMINAL.has(batch.status)) return;
        if (!internal.validated) {
          const reason = this.#haltReason(record);
          if (reason === null || reason === 'stop') return;
          // Halted before validation finished: no request ran, no result file.
          await this.#end(record, reason === 'cancel' ? 'cancelled' : 'expired', 0);
        }
      }
      if (internal.ending === null) {
        const ended = await executeBatch(ctx, record, slot);
        if (ended === 'stopped') return;
        await this.#end(record, ended.ending, ended.errorLines);
      }
      await this.#finalize(record);
    } finally {
      if (slot) this.#slots.release();
    }
  }

  #context(record: BatchRecord, running: Running): ExecuteContext {
    return {
      inputPath: this.#o.files.contentPath(record.batch.input_file_id),
      workDir: this.#o.batches.workDir(record.batch.id),
      // A dry run's lines are chat requests, checked and answered without inference.
      engine: record.batch.endpoint === DRY_RUN_ENDPOINT ? this.#dryRun : this.#o.engine,
      endpoint: record.batch.endpoint === DRY_RUN_ENDPOINT ? '/v1/chat/completions' : record.batch.endpoint,
      clock: this.#o.clock,
      pool: this.#pool,
      concurrency: this.#o.concurrency,
      haltSignal: running.halt.signal,
      stopSignal: this.#stop.signal,
      calls: this.#calls,
      haltReason: () => this.#haltReason(record),
      beforeDispatch: (line) => this.#beforeDispatch(record, line),
      crashing: () => this.#crashing,
      checkpointMs: this.#o.checkpointMs,
      onProgress: (progress) => showProgress(record, progress),
    };
  }

  async #validate(record: BatchRecord, ctx: ExecuteContext): Promise<void> {
    const { batch, internal } = record;
    const input = this.#o.files.get(batch.input_file_id);
    const rules = {
      limits: internal.limits,
      endpoint: batch.endpoint,
      models: internal.models ? new Set(internal.models) : null,
      maxErrors: internal.maxValidationErrors,
      dryRunModel: internal.dryRunModel ?? null,
    };
    // An inline engine answers while validating (one read of the file); answers only count if the
    // whole file passes. Otherwise validate first, as providers do, then run.
    const forced = internal.faults?.failFile;
    const result: Validation = forced
      ? {
          kind: 'failed',
          errors: [
            {
              code: forced,
              line: null,
              message: `the input file failed validation${FAULT_SUFFIX}`,
              param: null,
            },
          ],
        }
      : !input
        ? {
            kind: 'failed',
            errors: [
              {
                code: 'file_not_found',
                line: null,
                message: 'the input file no longer exists',
                param: 'input_file_id',
              },
            ],
          }
        : answersInline(ctx.engine, record)
          ? await validateAndAnswer(ctx, record, rules, input.bytes)
          : await validateInputFile(
              ctx.inputPath,
              input.bytes,
              rules,
              () => this.#haltReason(record) !== null,
            );
    if (result.kind === 'halted' || this.#haltReason(record) !== null) return;
    const now = this.#o.clock.now();
    if (result.kind === 'failed') {
      batch.status = 'failed';
      batch.failed_at = now;
      batch.errors = { object: 'list', data: result.errors };
      await this.#o.batches.save(record);
      await rm(this.#o.batches.workDir(batch.id), { recursive: true, force: true });
      return;
    }
    internal.validated = true;
    batch.status = 'in_progress';
    batch.in_progress_at = now;
    batch.model = result.model;
    batch.request_counts = { total: result.lines, completed: 0, failed: 0 };
    await this.#o.batches.save(record);
  }

  /** Records how the run ended, with final counts, before any result file is made. */
  async #end(record: BatchRecord, ending: Ending, errorLines: number): Promise<void> {
    record.internal.ending = ending;
    record.internal.errorLines = errorLines;
    await this.#o.batches.save(record);
  }

  /** Makes the result files stored files and sets the terminal status. Safe to redo after a crash. */
  async #finalize(record: BatchRecord): Promise<void> {
    const { batch, internal } = record;
    const ending = internal.ending!;
    const clock = this.#o.clock;
    if (ending === 'completed' && batch.status !== 'finalizing') {
      batch.status = 'finalizing';
      batch.finalizing_at = clock.now();
      await this.#o.batches.save(record);
    }
    if (internal.outputFileId === undefined || internal.errorFileId === undefined) {
      // No output file when nothing succeeded, no error file when nothing failed (the APIs' nulls).
      internal.outputFileId = batch.request_counts.completed > 0 ? newFileId('batch_output') : null;
      internal.errorFileId = internal.errorLines > 0 ? newFileId('batch_error') : null;
      await this.#o.batches.save(record);
    }
    const work = this.#o.batches.workDir(batch.id);
    const now = clock.now();
    if (internal.outputFileId)
      await this.#o.files.adoptResult(internal.outputFileId, 'batch_output', join(work, OUTPUT_PART), now);
    if (internal.errorFileId)
      await this.#o.files.adoptResult(internal.errorFileId, 'batch_error', join(work, ERROR_PART), now);
    batch.output_file_id = internal.outputFileId;
    batch.error_file_id = internal.errorFileId;
    batch.status = ending;
    if (ending === 'completed') batch.completed_at = now;
    else if (ending === 'expired') batch.expired_at = now;
    else batch.cancelled_at = now;
    await this.#o.batches.save(record);
    await rm(work, { recursive: true, force: true });
  }

  /** A runner failed for a reason of its own (disk full, a bug): the batch fails, the service lives. */
  async #crashed(record: BatchRecord, error: unknown): Promise<void> {
    if (this.#stopping) return;
    const message = (error as Error)?.message ?? String(error);
    this.#o.log(`batch ${record.batch.id} failed: ${message}`);
    const { batch } = record;
    if (TERMINAL.has(batch.status)) return;
    batch.status = 'failed';
    batch.failed_at = this.#o.clock.now();
    batch.errors = {
      object: 'list',
      data: [
        {
          code: 'server_error',
          line: null,
          message: `the service failed to run the batch: ${message}`,
          param: null,
        },
      ],
    };
    await this.#o.batches.save(record).catch(() => {});
  }
}

function showProgress(record: BatchRecord, progress: Progress): void {
  const { batch } = record;
  batch.request_counts.completed = progress.completed;
  batch.request_counts.failed = progress.failed;
  batch.usage = {
    input_tokens: progress.inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: progress.outputTokens,
    output_tokens_details: { reasoning_tokens: progress.reasoningTokens },
    total_tokens: progress.inputTokens + progress.outputTokens,
  };
}
