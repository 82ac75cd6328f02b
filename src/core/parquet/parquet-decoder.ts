import type { Worker } from 'node:worker_threads';
import { moduleWorker } from '../../internal/module-worker.js';
import type { WasmCode } from '../arrow/arrow-lib.js';
import type { SharedBufferPool } from './parquet-buffers.js';
import type { ColumnPart, PageColumn } from './parquet-pages.js';

/** What a decode thread is started with. */
export interface DecodeThreadData {
  /** parquet-wasm's compiled WebAssembly (arrow-lib's parquetWasmCode); not needed with `pages`. */
  code: WasmCode | undefined;
  path: string;
  /** The columns to read; undefined for all. */
  columns: readonly string[] | undefined;
  /** The row groups it decodes, in this order (0-based). */
  groups: readonly number[];
  /** Rows per record batch. */
  batchRows: number;
  /**
   * The columns' decoding by the page decoder (parquet-page-plan.ts), in the order of `columns`;
   * undefined to decode with parquet-wasm.
   */
  pages?: readonly PageColumn[] | undefined;
}

/** A batch decoded by the page decoder: each column's Arrow buffers, moved from the thread. */
export interface PageBatch {
  rows: number;
  parts: ColumnPart[];
}

/** A request for a decode thread's next batch, with free buffers to write it into. */
export interface DecodeRequest {
  buffers: SharedArrayBuffer[];
}

/**
 * A decode thread's answer to one request: the next batch, the end, or why it could not; with the
 * buffers of the request it did not use.
 */
export type DecodeReply =
  | { group: number; ipc: Uint8Array; unused: SharedArrayBuffer[] }
  | { group: number; batch: PageBatch; last: boolean; unused: SharedArrayBuffer[] }
  | { done: true; wasmBytes: number; unused: SharedArrayBuffer[] }
  | { group: number; error: string };

/** How a file's row groups are decoded off the main thread. */
export interface DecodePlan extends Omit<DecodeThreadData, 'groups'> {
  /** Row groups in the file. */
  groups: number;
  /**
   * Row groups a thread decodes before it is ended (default 1). parquet-wasm's WebAssembly memory
   * grows to the largest row group it decoded and never shrinks, then creeps with fragmentation;
   * a new thread starts from nothing (its code is shared: it starts in milliseconds).
   */
  groupsPerThread?: number;
  /** The error to throw for a failure in row group `group` (0-based). */
  fail: (error: unknown, group: number) => Error;
  /** Told, as each thread finishes its row groups, how large its WebAssembly memory grew (bytes). */
  threadEnded?: (wasmBytes: number) => void;
  /** Free buffers the page decoder writes batches into (released batches give theirs back to it). */
  pool?: SharedBufferPool | undefined;
}

/** Batches decoded ahead of the consumer: enough to keep the thread busy while the main thread works. */
const AHEAD = 2;

/** Bounds for a decode thread's JS heap (its WebAssembly memory is outside them). */
const DECODE_THREAD_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 };

/**
 * Decodes a Parquet file's row groups on a worker thread, in file order, and yields each record
 * batch as Arrow IPC stream bytes (moved from the thread, not copied). The thread decodes the next
 * batches while the caller works on this one; every `groupsPerThread` row groups it is replaced by a
 * fresh one, so memory stays that of one row group however many the file has. Stopping early ends
 * the thread.
 */
export async function* decodeRowGroups(plan: DecodePlan): AsyncGenerator<Uint8Array | PageBatch> {
  const perThread = plan.groupsPerThread ?? 1;
  const ready: Array<Uint8Array | PageBatch> = [];
  let finished = false;
  let failure: unknown;
  let stopped = false;
  let current: DecodeThread | undefined;
  let wake: (() => void) | undefined;
  let room: (() => void) | undefined;
  const signal = (waiting: (() => void) | undefined) => waiting?.();

  const produce = async () => {
    for (let first = 0; first < plan.groups && !stopped; first += perThread) {
      const groups: number[] = [];
      for (let g = first; g < Math.min(first + perThread, plan.groups); g++) groups.push(g);
      const thread = new DecodeThread({
        code: plan.code,
        path: plan.path,
        columns: plan.columns,
        groups,
        batchRows: plan.batchRows,
        pages: plan.pages,
      });
      current = thread;
      let group = first;
      // A thread's first batch is asked for at once, beyond the batches ahead: the first page of a
      // row group is decompressed whole, and the batches ahead would not cover that wait.
      let asked = 0;
      try {
        for (;;) {
          while (asked++ > 0 && ready.length >= AHEAD && !stopped)
            await new Promise<void>((resolve) => (room = resolve));
          if (stopped) return;
          let reply: DecodeReply;
          try {
            reply = await thread.next(plan.pool?.takeAll() ?? []);
          } catch (error) {
            throw plan.fail(error, group);
          }
          if ('unused' in reply) plan.pool?.give(reply.unused);
          if ('done' in reply) {
            plan.threadEnded?.(reply.wasmBytes);
            break;
          }
          group = reply.group;
          if ('error' in reply) throw plan.fail(new Error(reply.error), reply.group);
          ready.push('batch' in reply ? reply.batch : reply.ipc);
          signal(wake);
          // The page decoder says which batch is its thread's last: the thread (and its page) is
          // ended and the next one started without waiting for the batches ahead to be taken.
          if ('batch' in reply && reply.last) break;
        }
      } finally {
        await thread.close();
      }
    }
  };
  const producing = produce().then(
    () => {
      finished = true;
    },
    (error: unknown) => {
      failure = error;
      finished = true;
    },
  );
  void producing.finally(() => signal(wake));

  try {
    for (;;) {
      const ipc = ready.shift();
      if (ipc) {
        signal(room);
        yield ipc;
        continue;
      }
      // Batches decoded before a failure are handed out first: rows stay in order up to it.
      if (failure) throw failure;
      if (finished) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stopped = true;
    signal(room);
    await current?.close();
    await producing;
  }
}

let liveThreads = 0;

/** Decode threads started and not yet ended (for tests: a reader that stops ends its thread). */
export function liveDecodeThreads(): number {
  return liveThreads;
}

/** One decode thread: answers each `next()` with its next batch, in order. */
class DecodeThread {
  readonly #worker: Worker;
  #waiting: { resolve: (reply: DecodeReply) => void; reject: (error: Error) => void } | undefined;
  #failure: Error | undefined;
  #closed: Promise<number> | undefined;

  constructor(data: DecodeThreadData) {
    this.#worker = moduleWorker(import.meta.url, 'parquet-decode-worker', {
      workerData: data,
      resourceLimits: DECODE_THREAD_LIMITS,
    });
    liveThreads++;
    this.#worker.once('exit', () => liveThreads--);
    // Held only while it decodes: a reader dropped without being closed does not keep the process.
    this.#worker.unref();
    this.#worker.on('message', (reply: DecodeReply) => {
      this.#worker.unref();
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.resolve(reply);
    });
    this.#worker.on('error', (error: Error) => this.#fail(error));
    this.#worker.on('exit', (code) => this.#fail(new Error(`the decode thread stopped (exit code ${code})`)));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(this.#failure);
  }

  /** The thread's next batch (or its end), written into `buffers` where they fit. */
  next(buffers: SharedArrayBuffer[]): Promise<DecodeReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#worker.ref();
      this.#worker.postMessage({ buffers } satisfies DecodeRequest);
    });
  }

  /** Ends the thread (its WebAssembly memory with it). */
  async close(): Promise<void> {
    this.#closed ??= this.#worker.terminate();
    await this.#closed;
  }
}
