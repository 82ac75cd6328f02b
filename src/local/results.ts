import { type FileHandle, open, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { AppendLog, writeAll, writeFileAtomic } from './durable.js';
import type { EngineAnswer } from './engine/engine.js';
import { hashString, rng } from './engine/random.js';
import { randomToken } from './ids.js';
import { LineBuffer } from './line-buffer.js';
import type { InputLine } from './line-reader.js';

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

export const OUTPUT_PART = 'output.part';
export const ERROR_PART = 'error.part';
const PROGRESS_LOG = 'progress.log';
/** Progress records before the log is rewritten as its last record. */
const COMPACT_EVERY = 10_000;

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

/** Result lines of a window of requests, waiting to be appended. */
export interface Pending {
  out: LineBuffer;
  err: LineBuffer;
  /** The last line dispatched: progress moves past it once the results are written. */
  last: InputLine | null;
}

/**
 * A batch's result files while it runs: `output.part`, `error.part` and the progress log in its work
 * dir. Results are appended a window at a time, each window's lines in a seeded random order: the
 * providers say output order is not input order, and a client that assumes it must fail here too
 * (answered inline, completion order would be input order). Memory holds one window, never the file.
 * A checkpoint fsyncs both files, then appends the progress (input offset, file sizes, counts).
 * Opening cuts the files back to the last checkpoint, so a crash anywhere loses only work that is
 * redone, and never writes a result twice.
 */
export class BatchResults {
  readonly progress: Progress;
  readonly #dir: string;
  readonly #out: FileHandle;
  readonly #err: FileHandle;
  #log: AppendLog;
  #appended = 0;
  /** Distinguishes this run's request ids from an earlier run's (ids are per attempt). */
  readonly #prefix = randomToken(10);
  // One window is filled and written at a time, so its buffers are reused rather than reallocated.
  readonly #window: Pending = { out: new LineBuffer(), err: new LineBuffer(1024), last: null };
  /** Seed of the order of each window's lines. */
  readonly #seed: number;

  private constructor(dir: string, progress: Progress, out: FileHandle, err: FileHandle, seed: number) {
    this.#dir = dir;
    this.#seed = seed;
    this.progress = progress;
    this.#out = out;
    this.#err = err;
    this.#log = new AppendLog(join(dir, PROGRESS_LOG));
  }

  /** The last checkpoint of the batch whose work dir is `dir` (zero when there is none). */
  static async lastCheckpoint(dir: string): Promise<Progress> {
    const records = await AppendLog.read(join(dir, PROGRESS_LOG));
    return { ...ZERO, ...(records[records.length - 1] as Partial<Progress> | undefined) };
  }

  /**
   * Opens the result files at the last checkpoint, or empty when `fresh` (a new attempt). `seed`
   * decides the order of lines within each window (the same seed, the same order).
   */
  static async open(dir: string, fresh: boolean, seed: number): Promise<BatchResults> {
    if (fresh) await rm(join(dir, PROGRESS_LOG), { force: true });
    const progress = await BatchResults.lastCheckpoint(dir);
    await cutTo(join(dir, OUTPUT_PART), progress.outBytes);
    await cutTo(join(dir, ERROR_PART), progress.errBytes);
    const out = await open(join(dir, OUTPUT_PART), 'a');
    const err = await open(join(dir, ERROR_PART), 'a');
    return new BatchResults(dir, progress, out, err, seed);
  }

  /** An empty window for the next run of requests (the previous one must have been written). */
  window(): Pending {
    this.#window.out.clear();
    this.#window.err.clear();
    this.#window.last = null;
    return this.#window;
  }

  /** One request's result line, into the output file (2xx) or the error file. */
  settle(into: Pending, line: InputLine, answer: EngineAnswer, customId: string): void {
    const id = `${this.#prefix}_${line.line}`;
    const ok = answer.status >= 200 && answer.status < 300;
    (ok ? into.out : into.err)
      .ascii(`{"id":"batch_req_${id}","custom_id":`)
      .utf8(JSON.stringify(customId))
      .ascii(`,"response":{"status_code":${answer.status},"request_id":"req_${id}","body":`)
      .utf8(answer.json)
      .ascii('},"error":null}\n')
      .endLine();
    const progress = this.progress;
    if (ok) {
      progress.completed++;
      if (answer.usage) {
        progress.inputTokens += answer.usage.prompt_tokens;
        progress.outputTokens += answer.usage.completion_tokens;
        progress.reasoningTokens += answer.usage.reasoning_tokens;
      }
    } else progress.failed++;
  }

  /** A line that never ran, with a non-HTTP error (`response: null`), into the error file. */
  unrun(into: Pending, line: InputLine, customId: string, error: { code: string; message: string }): void {
    const id = `${this.#prefix}_${line.line}`;
    into.err
      .ascii(`{"id":"batch_req_${id}","custom_id":`)
      .utf8(JSON.stringify(customId))
      .ascii(',"response":null,"error":')
      .utf8(JSON.stringify(error))
      .ascii('}\n')
      .endLine();
  }

  /** Appends a window's results, each file's lines shuffled, and moves progress past its last line. */
  async write(window: Pending): Promise<void> {
    const progress = this.progress;
    // Salted with the line before the window, so each window draws its own order.
    const random = rng(hashString(String(progress.line), this.#seed));
    if (window.out.byteLength > 0) {
      await appendOrCut(this.#out, window.out.shuffled(random), progress.outBytes);
      progress.outBytes += window.out.byteLength;
    }
    if (window.err.byteLength > 0) {
      await appendOrCut(this.#err, window.err.shuffled(random), progress.errBytes);
      progress.errBytes += window.err.byteLength;
      progress.errLines += window.err.lines;
    }
    if (window.last) {
      progress.offset = window.last.end;
      progress.line = window.last.line;
    }
  }

  /** Makes everything written so far durable, then records it as the point to resume from. */
  async checkpoint(): Promise<void> {
    await this.#out.sync();
    await this.#err.sync();
    if (++this.#appended >= COMPACT_EVERY) {
      await this.#log.close();
      await writeFileAtomic(join(this.#dir, PROGRESS_LOG), `${JSON.stringify(this.progress)}\n`);
      this.#log = new AppendLog(join(this.#dir, PROGRESS_LOG));
      this.#appended = 0;
    } else await this.#log.append(this.progress);
  }

  /** Empties the result files and forgets progress: a validation that failed after answering ahead. */
  async discard(): Promise<void> {
    await this.#out.truncate(0);
    await this.#err.truncate(0);
    await this.#log.close();
    await rm(join(this.#dir, PROGRESS_LOG), { force: true });
    Object.assign(this.progress, ZERO);
  }

  async close(): Promise<void> {
    await this.#log.close();
    await this.#out.close();
    await this.#err.close();
  }
}

/**
 * Appends a window's bytes to a result file at `size`, or, when the disk refuses part of them, cuts
 * the file back to `size` and throws: a window is in the file whole or not at all.
 */
async function appendOrCut(handle: FileHandle, bytes: Buffer, size: number): Promise<void> {
  try {
    await writeAll(handle, bytes);
  } catch (error) {
    await handle.truncate(size).catch(() => {});
    throw error;
  }
}

/** Cuts a result file back to its checkpointed size (creating it when missing). */
async function cutTo(path: string, size: number): Promise<void> {
  let current: number;
  try {
    current = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    if (size > 0) throw new Error(`${path} is missing but its checkpoint says ${size} bytes`);
    await (await open(path, 'w')).close();
    return;
  }
  if (current > size) await truncate(path, size);
  else if (current < size)
    throw new Error(`${path} is shorter (${current} bytes) than its checkpoint (${size} bytes)`);
}
