import { type FileHandle, open, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep, setImmediate as yieldToLoop } from 'node:timers/promises';
import type { BatchRecord, Ending } from './batches-store.js';
import type { ServiceClock } from './clock.js';
import { AppendLog, writeFileAtomic } from './durable.js';
import type { Engine, EngineAnswer } from './engine/engine.js';
import { randomToken } from './ids.js';
import { type InputLine, readLines } from './line-reader.js';
import type { Semaphore } from './semaphore.js';

/** Why a running batch stops dispatching requests. */
export type HaltReason = 'cancel' | 'expire' | 'stop';

/** Where a batch's run stands; the last line of its progress log, made durable at checkpoints. */
export interface Progress {
  /** Input offset after the last line whose result is in the result files. */
  offset: number;
  /** Number of that line (0: none yet). */
  line: number;
  outBytes: number;
  errBytes: number;
  errLines: number;
  completed: number;
  failed: number;
  inputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  /** The lines an expiry left unrun are in the error file. */
  unrunWritten: boolean;
}

export interface ExecuteContext {
  inputPath: string;
  workDir: string;
  engine: Engine;
  clock: ServiceClock;
  pool: Semaphore;
  /** Size of the pool: windows of requests are a few times this. */
  concurrency: number;
  /** Aborted on cancel, expiry or close: stop dispatching (in-flight requests finish). */
  haltSignal: AbortSignal;
  /** Aborted on close only: in-flight work is dropped and redone after the restart. */
  stopSignal: AbortSignal;
  haltReason: () => HaltReason | null;
  checkpointMs: number;
  onProgress: (progress: Progress) => void;
}

export const OUTPUT_PART = 'output.part';
export const ERROR_PART = 'error.part';
const PROGRESS_LOG = 'progress.log';
/** Lines answered between looks at the clock and the event loop, when answers are synchronous. */
const SYNC_STEP = 1024;
/** Progress records before the log is rewritten as its last record. */
const COMPACT_EVERY = 10_000;
const EXPIRED_ERROR = {
  code: 'batch_expired',
  message: 'This request could not be executed before the completion window expired.',
};

const ZERO: Progress = {
  offset: 0,
  line: 0,
  outBytes: 0,
  errBytes: 0,
  errLines: 0,
  completed: 0,
  failed: 0,
  inputTokens: 0,
  outputTokens: 0,
  reasoningTokens: 0,
  unrunWritten: false,
};

/** Results of a run of lines, waiting to be appended to the result files. */
interface Pending {
  out: string[];
  err: string[];
  /** The last line dispatched: progress moves past it once the results are written. */
  last: InputLine | null;
  stoppedBy: HaltReason | null;
}

/**
 * Runs a validated batch's requests from where its progress log says, appending results to
 * `output.part`/`error.part` in completion order. At each checkpoint the result files are fsynced and
 * then the progress (input offset, result file sizes, counts) appended to the log; on resume the
 * result files are cut back to the checkpointed sizes and reading restarts at the checkpointed offset,
 * so every request's result is written exactly once, whatever moment a crash picked. Memory holds
 * one read chunk and its results, never the file.
 */
export async function executeBatch(
  ctx: ExecuteContext,
  record: BatchRecord,
  mayDispatch: boolean,
): Promise<{ ending: Ending; errorLines: number } | 'stopped'> {
  const { batch, internal } = record;
  const outPath = join(ctx.workDir, OUTPUT_PART);
  const errPath = join(ctx.workDir, ERROR_PART);
  const logPath = join(ctx.workDir, PROGRESS_LOG);
  const progress = await loadProgress(logPath);
  await cutTo(outPath, progress.outBytes);
  await cutTo(errPath, progress.errBytes);
  const out = await open(outPath, 'a');
  const err = await open(errPath, 'a');
  let log = new AppendLog(logPath);
  let appended = 0;
  let lastCheckpoint = Date.now();
  ctx.onProgress(progress);

  const checkpoint = async () => {
    await out.sync();
    await err.sync();
    if (++appended >= COMPACT_EVERY) {
      await log.close();
      await writeFileAtomic(logPath, `${JSON.stringify(progress)}\n`);
      log = new AppendLog(logPath);
      appended = 0;
    } else await log.append(progress);
    lastCheckpoint = Date.now();
  };

  const write = async (pending: Pending) => {
    if (pending.out.length > 0) {
      const text = pending.out.join('');
      await out.write(text);
      progress.outBytes += Buffer.byteLength(text);
    }
    if (pending.err.length > 0) {
      const text = pending.err.join('');
      await err.write(text);
      progress.errBytes += Buffer.byteLength(text);
      progress.errLines += pending.err.length;
    }
    if (pending.last) {
      progress.offset = pending.last.end;
      progress.line = pending.last.line;
    }
    ctx.onProgress(progress);
  };

  const prefix = randomToken(10);
  const lineOf = (line: InputLine, answer: EngineAnswer, customId: string): string => {
    const response = `{"status_code":${answer.status},"request_id":"req_${prefix}_${line.line}","body":${JSON.stringify(answer.body)}}`;
    return `{"id":"batch_req_${prefix}_${line.line}","custom_id":${JSON.stringify(customId)},"response":${response},"error":null}\n`;
  };
  const settle = (pending: Pending, line: InputLine, answer: EngineAnswer, customId: string) => {
    const text = lineOf(line, answer, customId);
    if (answer.status === 200) {
      pending.out.push(text);
      progress.completed++;
      if (answer.usage) {
        progress.inputTokens += answer.usage.prompt_tokens;
        progress.outputTokens += answer.usage.completion_tokens;
        progress.reasoningTokens += answer.usage.reasoning_tokens;
      }
    } else {
      pending.err.push(text);
      progress.failed++;
    }
  };
  const parse = (line: InputLine) =>
    JSON.parse(line.text!) as { custom_id: string; body: Record<string, unknown> };
  const request = (parsed: { custom_id: string; body: Record<string, unknown> }) => ({
    endpoint: batch.endpoint,
    body: parsed.body,
    key: parsed.custom_id,
    knobs: internal.knobs,
    now: ctx.clock.now(),
  });

  const runSync = (lines: InputLine[], from: number, to: number): Pending => {
    const pending: Pending = { out: [], err: [], last: null, stoppedBy: null };
    for (let i = from; i < to; i++) {
      const line = lines[i]!;
      const parsed = parse(line);
      let answer: EngineAnswer;
      try {
        answer = ctx.engine.answer(request(parsed)) as EngineAnswer;
      } catch (error) {
        answer = engineFailure(error);
      }
      settle(pending, line, answer, parsed.custom_id);
      pending.last = line;
    }
    return pending;
  };

  const runAsync = async (lines: InputLine[], from: number, to: number): Promise<Pending> => {
    const pending: Pending = { out: [], err: [], last: null, stoppedBy: null };
    const tasks: Array<Promise<void>> = [];
    const latency = internal.knobs.latencyMs;
    for (let i = from; i < to; i++) {
      const reason = ctx.haltReason();
      if (reason) {
        pending.stoppedBy = reason;
        break;
      }
      try {
        await ctx.pool.acquire(ctx.haltSignal);
      } catch {
        pending.stoppedBy = ctx.haltReason() ?? 'stop';
        break;
      }
      const line = lines[i]!;
      pending.last = line;
      tasks.push(
        (async () => {
          try {
            const parsed = parse(line);
            if (latency > 0) await sleep(latency, undefined, { signal: ctx.stopSignal });
            let answer: EngineAnswer;
            try {
              answer = await ctx.engine.answer(request(parsed));
            } catch (error) {
              answer = engineFailure(error);
            }
            if (!ctx.stopSignal.aborted) settle(pending, line, answer, parsed.custom_id);
          } finally {
            ctx.pool.release();
          }
        })(),
      );
    }
    await Promise.allSettled(tasks);
    if (ctx.stopSignal.aborted) pending.stoppedBy = 'stop';
    return pending;
  };

  const step = ctx.engine.synchronous && internal.knobs.latencyMs === 0 ? SYNC_STEP : 0;
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
      // Async runs go in windows of a few times the pool, so progress shows and checkpoints often.
      const size = step || Math.max(16, Math.min(1024, 4 * ctx.concurrency));
      for (let from = 0; from < lines.length; from += size) {
        stoppedBy = ctx.haltReason();
        if (stoppedBy) break reading;
        const to = Math.min(lines.length, from + size);
        const counts = { completed: progress.completed, failed: progress.failed };
        const pending = step ? runSync(lines, from, to) : await runAsync(lines, from, to);
        if (pending.stoppedBy === 'stop') {
          // Nothing of this window is written; the counts go back to what the files hold.
          progress.completed = counts.completed;
          progress.failed = counts.failed;
          stoppedBy = 'stop';
          break reading;
        }
        await write(pending);
        if (pending.stoppedBy) {
          stoppedBy = pending.stoppedBy;
          break reading;
        }
        if (Date.now() - lastCheckpoint >= ctx.checkpointMs) await checkpoint();
        if (step) await yieldToLoop();
      }
    }
    if (stoppedBy === null) stoppedBy = ctx.haltReason();
    if (stoppedBy === 'stop') {
      await checkpoint();
      return 'stopped';
    }
    const ending: Ending =
      batch.status === 'cancelling'
        ? 'cancelled'
        : stoppedBy === 'expire' && progress.line < batch.request_counts.total
          ? 'expired'
          : 'completed';
    if (ending === 'expired' && internal.unrunOnExpiry === 'error_file' && !progress.unrunWritten) {
      await writeUnrun(ctx, internal.limits.maxLineBytes, progress, err, prefix);
      progress.unrunWritten = true;
    }
    await checkpoint();
    return { ending, errorLines: progress.errLines };
  } finally {
    await log.close();
    await out.close();
    await err.close();
  }
}

/** Appends a `batch_expired` line for every line not run (OpenAI's guide: they go to the error file). */
async function writeUnrun(
  ctx: ExecuteContext,
  maxLineBytes: number,
  progress: Progress,
  err: FileHandle,
  prefix: string,
): Promise<void> {
  for await (const lines of readLines(ctx.inputPath, {
    start: progress.offset,
    firstLine: progress.line + 1,
    maxLineBytes,
  })) {
    let text = '';
    for (const line of lines) {
      const { custom_id } = JSON.parse(line.text!) as { custom_id: string };
      text += `{"id":"batch_req_${prefix}_${line.line}","custom_id":${JSON.stringify(custom_id)},"response":null,"error":${JSON.stringify(EXPIRED_ERROR)}}\n`;
      progress.errLines++;
      progress.offset = line.end;
      progress.line = line.line;
    }
    await err.write(text);
    progress.errBytes += Buffer.byteLength(text);
  }
}

function engineFailure(error: unknown): EngineAnswer {
  return {
    status: 500,
    body: {
      error: {
        message: `the engine failed on this request: ${(error as Error)?.message ?? String(error)}`,
        type: 'server_error',
        param: null,
        code: 'engine_error',
      },
    },
    usage: null,
  };
}

async function loadProgress(path: string): Promise<Progress> {
  const records = await AppendLog.read(path);
  const last = records[records.length - 1];
  return last ? { ...ZERO, ...(last as Partial<Progress>) } : { ...ZERO };
}

/** Cuts a result file back to its checkpointed size (creating it when missing). */
async function cutTo(path: string, size: number): Promise<void> {
  try {
    const current = (await stat(path)).size;
    if (current > size) await truncate(path, size);
    else if (current < size)
      throw new Error(`${path} is shorter (${current} bytes) than its checkpoint (${size} bytes)`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (size > 0) throw new Error(`${path} is missing but its checkpoint says ${size} bytes`);
    await (await open(path, 'w')).close();
  }
}
