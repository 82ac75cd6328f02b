import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BatchRecord, Ending } from './batches-store.js';
import type { CallSignals } from './call-signals.js';
import type { ServiceClock } from './clock.js';
import type { Engine, EngineAnswer, EngineEndpoint, EngineRequest } from './engine/engine.js';
import { failureOf } from './engine/failures.js';
import { hashString } from './engine/random.js';
import { type InputLine, readLines } from './line-reader.js';
import { BatchResults, type Pending, type Progress } from './results.js';
import type { Semaphore } from './semaphore.js';
import {
  type CheckedLine,
  checkFileBytes,
  InputChecker,
  type InputRules,
  type Validation,
} from './validate-input.js';

/** Why a running batch stops dispatching requests. */
export type HaltReason = 'cancel' | 'expire' | 'stop';

export interface ExecuteContext {
  inputPath: string;
  workDir: string;
  engine: Engine;
  /** The endpoint the engine answers for this batch's lines. */
  endpoint: EngineEndpoint;
  clock: ServiceClock;
  pool: Semaphore;
  /** Size of the pool: windows of requests are a few times this. */
  concurrency: number;
  /** Aborted on cancel, expiry or close: stop dispatching (in-flight requests finish). */
  haltSignal: AbortSignal;
  /** Aborted on close only: in-flight work is dropped and redone after the restart. */
  stopSignal: AbortSignal;
  /** Per-request signals the close aborts (waits and engine calls listen on these, not on stopSignal). */
  calls: CallSignals;
  haltReason: () => HaltReason | null;
  /** Asked before each request is dispatched (line number): a batch fault may end the run there. */
  beforeDispatch: (line: number) => HaltReason | null;
  /** True when the stop is a crash: nothing more is made durable. */
  crashing: () => boolean;
  checkpointMs: number;
  onProgress: (progress: Progress) => void;
}

/** Lines answered between looks at the clock and the event loop, when answers are synchronous. */
const SYNC_STEP = 1024;
// OpenAI's guide: requests a batch did not run before its window ended go to the error file so.
const EXPIRED_ERROR = {
  code: 'batch_expired',
  message: 'This request could not be executed before the completion window expired.',
};

function engineRequest(
  ctx: ExecuteContext,
  record: BatchRecord,
  line: CheckedLine,
  signal: AbortSignal,
): EngineRequest {
  const knobs = record.internal.knobs;
  // Only a spoiled answer hangs on the conversation: the common case skips looking at the messages.
  const spoils = knobs.refuseRate + knobs.invalidJsonRate + knobs.truncateRate > 0;
  return {
    endpoint: ctx.endpoint,
    body: line.body,
    key: spoils ? fateKey(line.custom_id, line.body) : line.custom_id,
    knobs,
    now: ctx.clock.now(),
    signal,
  };
}

/**
 * What a request's fate (a valid answer, invalid JSON, a refusal) hangs on: its custom_id, and how
 * many answers the conversation already holds. A request sent again as it was (a retry) meets the same
 * fate; one that goes on the conversation (a re-ask quoting the invalid answer) is a new draw, as a
 * model answers a longer conversation afresh.
 */
function fateKey(customId: string, body: Record<string, unknown>): string {
  const messages = body.messages;
  if (!Array.isArray(messages)) return customId;
  let answers = 0;
  for (const m of messages) if ((m as { role?: unknown } | null)?.role === 'assistant') answers++;
  return answers === 0 ? customId : `${customId}#${answers}`;
}

function answerNow(ctx: ExecuteContext, record: BatchRecord, request: EngineRequest): EngineAnswer {
  const failure = failureOf(request.key, record.internal.seq, record.internal.knobs);
  if (failure) return failure;
  try {
    return ctx.engine.answer(request) as EngineAnswer;
  } catch (error) {
    return engineFailure(error);
  }
}

/** The seed of a batch's result order: the service's (or the batch's `bp_seed`) and its sequence number. */
function orderSeed(record: BatchRecord): number {
  return hashString(`order ${record.internal.seq}`, record.internal.knobs.seed);
}

/**
 * True when requests can be answered inline: a synchronous engine, no simulated latency, and no
 * fault that ends the run at a given request (those need the one-request-at-a-time path).
 */
export function answersInline(engine: Engine, record: BatchRecord): boolean {
  const faults = record.internal.faults;
  return (
    engine.synchronous &&
    record.internal.knobs.latencyMs === 0 &&
    (!faults || (faults.expireAfter === null && (faults.crashAfter === null || faults.crashed)))
  );
}

/**
 * Validation and answers in one read of the file, for an engine that answers inline: each valid line
 * is answered as it is checked and its result appended, so the file is read and parsed once. The
 * answers are held back from the batch until the whole file is valid; if it is not (or the batch is
 * halted first) they are discarded, so from outside no request ran, exactly as a provider's
 * validation then run. On success all results are checkpointed with the whole input consumed.
 */
export async function validateAndAnswer(
  ctx: ExecuteContext,
  record: BatchRecord,
  rules: InputRules,
  fileBytes: number,
): Promise<Validation> {
  const tooLarge = checkFileBytes(fileBytes, rules.limits);
  if (tooLarge) return tooLarge;
  const results = await BatchResults.open(ctx.workDir, true, orderSeed(record));
  const checker = new InputChecker(rules);
  let halted = false;
  try {
    reading: for await (const lines of readLines(ctx.inputPath, {
      maxLineBytes: rules.limits.maxLineBytes,
    })) {
      if (ctx.haltReason() !== null) {
        halted = true;
        break;
      }
      const window = results.window();
      for (const line of lines) {
        const checked = checker.check(line);
        if (checker.done) break reading;
        if (checked === null || !checker.clean) continue;
        results.settle(
          window,
          line,
          answerNow(ctx, record, engineRequest(ctx, record, checked, ctx.stopSignal)),
          checked.custom_id,
        );
        window.last = line;
      }
      if (checker.clean) await results.write(window);
      await yieldToLoop();
    }
    const verdict: Validation = halted || ctx.haltReason() !== null ? { kind: 'halted' } : checker.finish();
    if (verdict.kind === 'ok') await results.checkpoint();
    else await results.discard();
    return verdict;
  } finally {
    await results.close();
  }
}

/**
 * Runs a validated batch's requests from where its progress log says, appending results in
 * completion order and checkpointing every `checkpointMs` (see BatchResults). Answers inline in
 * windows of SYNC_STEP lines when it can; otherwise dispatches each request to the shared pool
 * (with the batch's latency), so a cancel or expiry stops dispatch while in-flight requests finish.
 * Memory holds one read chunk and its results, never the file.
 */
export async function executeBatch(
  ctx: ExecuteContext,
  record: BatchRecord,
  mayDispatch: boolean,
): Promise<{ ending: Ending; errorLines: number } | 'stopped'> {
  const { batch, internal } = record;
  const results = await BatchResults.open(ctx.workDir, false, orderSeed(record));
  const progress = results.progress;
  let lastCheckpoint = Date.now();
  ctx.onProgress(progress);

  const runInline = (lines: InputLine[], from: number, to: number): Pending => {
    const window = results.window();
    for (let i = from; i < to; i++) {
      const line = lines[i]!;
      const parsed = JSON.parse(line.text!) as CheckedLine;
      results.settle(
        window,
        line,
        answerNow(ctx, record, engineRequest(ctx, record, parsed, ctx.stopSignal)),
        parsed.custom_id,
      );
      window.last = line;
    }
    return window;
  };

  const runPooled = async (
    lines: InputLine[],
    from: number,
    to: number,
  ): Promise<{ window: Pending; stoppedBy: HaltReason | null }> => {
    const window = results.window();
    let stoppedBy: HaltReason | null = null;
    const tasks: Array<Promise<void>> = [];
    const latency = internal.knobs.latencyMs;
    for (let i = from; i < to; i++) {
      stoppedBy = ctx.haltReason() ?? ctx.beforeDispatch(lines[i]!.line);
      if (stoppedBy) break;
      try {
        await ctx.pool.acquire(ctx.haltSignal);
      } catch {
        stoppedBy = ctx.haltReason() ?? 'stop';
        break;
      }
      const line = lines[i]!;
      window.last = line;
      tasks.push(
        (async () => {
          const call = ctx.calls.open();
          try {
            const parsed = JSON.parse(line.text!) as CheckedLine;
            if (latency > 0) await sleep(latency, undefined, { signal: call.signal });
            let answer: EngineAnswer;
            try {
              answer =
                failureOf(parsed.custom_id, record.internal.seq, internal.knobs) ??
                (await ctx.engine.answer(engineRequest(ctx, record, parsed, call.signal)));
            } catch (error) {
              answer = engineFailure(error);
            }
            if (!ctx.stopSignal.aborted) results.settle(window, line, answer, parsed.custom_id);
          } finally {
            call.release();
            ctx.pool.release();
          }
        })(),
      );
    }
    await Promise.allSettled(tasks);
    return { window, stoppedBy: ctx.stopSignal.aborted ? 'stop' : stoppedBy };
  };

  const inline = answersInline(ctx.engine, record);
  let stoppedBy: HaltReason | null = mayDispatch ? null : (ctx.haltReason() ?? 'stop');
  try {
    const chunks = stoppedBy
      ? []
      : readLines(ctx.inputPath, {
          start: progress.offset,
          firstLine: progress.line + 1,
          maxLineBytes: internal.limits.maxLineBytes,
        });
    reading: for await (const lines of chunks) {
      // Pooled runs go in windows of a few times the pool, so progress shows and checkpoints often.
      const size = inline ? SYNC_STEP : Math.max(16, Math.min(1024, 4 * ctx.concurrency));
      for (let from = 0; from < lines.length; from += size) {
        stoppedBy = ctx.haltReason();
        if (stoppedBy) break reading;
        const to = Math.min(lines.length, from + size);
        const before = { ...progress };
        const run = inline
          ? { window: runInline(lines, from, to), stoppedBy: null }
          : await runPooled(lines, from, to);
        if (run.stoppedBy === 'stop') {
          // Nothing of this window is written; the counts go back to what the files hold.
          Object.assign(progress, before);
          stoppedBy = 'stop';
          break reading;
        }
        await results.write(run.window);
        ctx.onProgress(progress);
        if (run.stoppedBy) {
          stoppedBy = run.stoppedBy;
          break reading;
        }
        if (Date.now() - lastCheckpoint >= ctx.checkpointMs) {
          await results.checkpoint();
          lastCheckpoint = Date.now();
        }
        if (inline) await yieldToLoop();
      }
    }
    if (stoppedBy === null) stoppedBy = ctx.haltReason();
    if (stoppedBy === 'stop') {
      // A crash makes nothing more durable: the restart cuts back to the last checkpoint.
      if (!ctx.crashing()) await results.checkpoint();
      return 'stopped';
    }
    const ending: Ending =
      batch.status === 'cancelling'
        ? 'cancelled'
        : stoppedBy === 'expire' && progress.line < batch.request_counts.total
          ? 'expired'
          : 'completed';
    if (ending === 'expired' && internal.unrunOnExpiry === 'error_file' && !progress.unrunWritten) {
      await writeUnrun(ctx, internal.limits.maxLineBytes, results);
      progress.unrunWritten = true;
    }
    await results.checkpoint();
    return { ending, errorLines: progress.errLines };
  } finally {
    await results.close();
  }
}

/** Appends a `batch_expired` line for every line not run. */
async function writeUnrun(ctx: ExecuteContext, maxLineBytes: number, results: BatchResults): Promise<void> {
  const { progress } = results;
  for await (const lines of readLines(ctx.inputPath, {
    start: progress.offset,
    firstLine: progress.line + 1,
    maxLineBytes,
  })) {
    const window = results.window();
    for (const line of lines) {
      const { custom_id } = JSON.parse(line.text!) as CheckedLine;
      results.unrun(window, line, custom_id, EXPIRED_ERROR);
      window.last = line;
    }
    await results.write(window);
  }
}

function engineFailure(error: unknown): EngineAnswer {
  return {
    status: 500,
    json: JSON.stringify({
      error: {
        message: `the engine failed on this request: ${(error as Error)?.message ?? String(error)}`,
        type: 'server_error',
        param: null,
        code: 'engine_error',
      },
    }),
    usage: null,
  };
}
