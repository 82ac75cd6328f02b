import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { BatchpipeError, type ErrorCode, type ErrorContext } from '../../errors.js';
import { READ_POOL } from '../../internal/buffer-pool.js';
import type { SourceInput } from '../../internal/input.js';
import { moduleWorker } from '../../internal/module-worker.js';
import type { WarningCall, WarningLog } from '../../internal/warnings.js';
import type { Rejection } from '../../types.js';
import type { CsvSettings } from '../csv/csv-reader.js';
import { CsvRowBatch, type CsvTransport } from '../csv/csv-row-batch.js';
import type { JsonlSettings } from '../jsonl/jsonl-reader.js';
import { JsonlRowBatch, type JsonlTransport } from '../jsonl/jsonl-row-batch.js';

/** A text table a thread reads: its path, the name errors give it, and how it is parsed. */
export type ThreadReadTask = { path: string; file: string } & (
  | { format: 'csv'; settings: CsvSettings }
  | { format: 'jsonl'; settings: JsonlSettings }
);

/** What the reading thread sends: a batch (with its rejections and warnings whole), the end, or its error. */
export type ThreadReadMessage =
  | {
      type: 'batch';
      rows: CsvTransport | JsonlTransport;
      rejections: Array<[number, Rejection]>;
      warnings: WarningCall[];
      /** The shared memory the batch's index arrays are in (see table-read-worker's shareArrays). */
      arrays: SharedArrayBuffer;
    }
  | { type: 'end' }
  | { type: 'error'; error: { code: ErrorCode; message: string; context: ErrorContext } };

/**
 * What this thread sends it: read `more` batches ahead; `buffers` are free to read into again, and
 * `arrays` to hold index arrays again.
 */
export interface ThreadReadRequest {
  more: number;
  buffers: SharedArrayBuffer[];
  arrays: SharedArrayBuffer[];
}

/**
 * Below this many bytes a table is read on the consumer's thread: scanning a few MiB takes it a few
 * milliseconds, about what starting a thread and taking its messages costs it (the thread's own
 * start-up, some 30 ms, runs on another core).
 */
export const THREAD_READ_MIN_BYTES = 4 * 1024 * 1024;
/** Batches the thread reads ahead of the consumer: enough to keep it busy, a few MiB of memory. */
const AHEAD = 4;
/** The reading thread holds a chunk or two: small generations keep its garbage from growing the process. */
const WORKER_YOUNG_MB = 4;
const WORKER_OLD_MB = 32;

/** Whether a table at `path` is worth a thread: a file of at least THREAD_READ_MIN_BYTES. */
export function worthAThread(path: string | URL): boolean {
  try {
    return statSync(path).size >= THREAD_READ_MIN_BYTES;
  } catch {
    // Unreadable: the read on this thread says why, with the error a reader gives.
    return false;
  }
}

/**
 * A CSV or JSON Lines file's row batches, read and scanned on a worker thread (finding row and field
 * boundaries, checking UTF-8, making rejections), handed over with their bytes in shared memory: the
 * consumer's thread only uses the rows. For a pass that reads a whole table in order while this thread
 * is busy with the rows (a join's output pass). Batches come in file order, each exactly as the reader
 * on this thread would make it; each batch's buffer goes back to the thread when released. Warnings
 * the reader raises are made again in `warnings`.
 */
export async function* readBatchesOnThread(
  task: ThreadReadTask,
  warnings?: WarningLog,
): AsyncGenerator<CsvRowBatch | JsonlRowBatch> {
  const worker: Worker = moduleWorker(import.meta.url, 'table-read-worker', {
    workerData: task,
    resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB, maxOldGenerationSizeMb: WORKER_OLD_MB },
  });
  const queue: ThreadReadMessage[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  worker.on('message', (message: ThreadReadMessage) => {
    queue.push(message);
    wake?.();
  });
  worker.on('error', (error) => {
    failure ??= error;
    wake?.();
  });
  worker.on('exit', (code) => {
    failure ??= new Error(`the thread reading ${task.file} stopped (exit code ${code})`);
    wake?.();
  });
  // A released batch's buffer is read into again there (sent with the next request: one message a
  // batch); one copied across (not pooled) is left alone.
  let released: SharedArrayBuffer[] = [];
  let releasedArrays: SharedArrayBuffer[] = [];
  const giveBack = (buffer: Buffer) => {
    const bytes = buffer.buffer;
    if (bytes instanceof SharedArrayBuffer && bytes.byteLength === READ_POOL.size) released.push(bytes);
  };
  try {
    worker.postMessage({ more: AHEAD, buffers: [], arrays: [] } satisfies ThreadReadRequest);
    for (;;) {
      while (queue.length === 0 && failure === undefined)
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      wake = undefined;
      const message = queue.shift();
      if (message === undefined) throw failure;
      if (message.type === 'end') return;
      if (message.type === 'error')
        throw new BatchpipeError(message.error.code, message.error.message, message.error.context);
      worker.postMessage({ more: 1, buffers: released, arrays: releasedArrays } satisfies ThreadReadRequest);
      released = [];
      releasedArrays = [];
      for (const [code, text, first] of message.warnings) warnings?.warn(code, text, first);
      const rows =
        message.rows.type === 'csv'
          ? CsvRowBatch.from(message.rows, message.rejections)
          : JsonlRowBatch.from(message.rows, message.rejections);
      const arrays = message.arrays;
      rows.giveBackTo((buffer) => {
        giveBack(buffer);
        releasedArrays.push(arrays);
      });
      yield rows;
    }
  } finally {
    await worker.terminate();
  }
}

/**
 * A source's offer to be read on a thread (kReadOnThread): a file path's batches read by
 * readBatchesOnThread when the file is worth a thread; undefined for a stream or a small file.
 */
export function threadReadOf(
  input: SourceInput,
  task: (path: string) => ThreadReadTask,
  warnings?: WarningLog,
): () => AsyncGenerator<CsvRowBatch | JsonlRowBatch> | undefined {
  return () => {
    if (typeof input !== 'string' && !(input instanceof URL)) return undefined;
    const path = typeof input === 'string' ? input : fileURLToPath(input);
    return worthAThread(path) ? readBatchesOnThread(task(path), warnings) : undefined;
  };
}
