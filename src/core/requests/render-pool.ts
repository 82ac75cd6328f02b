import type { Worker } from 'node:worker_threads';
import { BatchpipeError, type ErrorCode, type ErrorContext } from '../../errors.js';
import { moduleWorker } from '../../internal/module-worker.js';
import type { Rejection } from '../../types.js';
import type { CsvTransport } from '../csv/csv-row-batch.js';
import type { JsonlTransport } from '../jsonl/jsonl-row-batch.js';
import type { RenderedLines, RenderPlan } from './render-lines.js';

/** A batch of rows a render thread can take. */
export type RowsTransport = CsvTransport | JsonlTransport;

/** What a render thread made of a batch. */
export interface Rendered extends RenderedLines {
  /** Rows the parse there rejected, by entry (JSON Lines; what the source rejected the sender knows). */
  rejections: Array<[number, Rejection]>;
  /** A larger buffer the lines went into when they did not fit the one given (undefined: they did). */
  buffer: Buffer | undefined;
}

/**
 * A thread keeps little (a batch's offsets and ids at a time; the bytes are shared), so its old
 * generation is small. Its young generation is not: parsing JSON Lines makes much short-lived garbage,
 * and a 4 MB young generation spent 30% of the thread's time collecting it.
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 48 };

interface Waiting {
  resolve: (rendered: Rendered) => void;
  reject: (error: Error) => void;
}

/** A render thread's answer. */
export interface RenderReply {
  id: number;
  rendered?: RenderedLines & { rejections: Array<[number, Rejection]>; buffer: Uint8Array | undefined };
  error?: { code: ErrorCode; message: string; context: ErrorContext };
}

/** One render thread and the batches it has been sent. */
interface Thread {
  worker: Worker;
  pending: number;
}

/**
 * Threads that render request lines for the main thread (render-worker), so one reads, checks and
 * writes while the others render: the template's pieces and each row's cells, JSON-escaped, from the
 * bytes every thread sees in shared memory. Each batch goes to the thread with the least work; answers
 * come back as they are done (the caller keeps them in order). The threads do not keep the process
 * alive while they wait for work.
 */
export class RenderPool {
  readonly #threads: Thread[] = [];
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #failure: Error | undefined;

  constructor(plan: RenderPlan, threads: number) {
    for (let t = 0; t < threads; t++) this.#threads.push(this.#start(plan));
  }

  /** Threads rendering. */
  get size(): number {
    return this.#threads.length;
  }

  #start(plan: RenderPlan): Thread {
    const worker = moduleWorker(import.meta.url, 'render-worker', {
      workerData: plan,
      resourceLimits: THREAD_LIMITS,
    });
    const thread: Thread = { worker, pending: 0 };
    worker.unref();
    worker.on('message', (reply: RenderReply) => {
      const waiting = this.#waiting.get(reply.id);
      if (!waiting) return;
      this.#waiting.delete(reply.id);
      if (--thread.pending === 0) worker.unref();
      if (reply.error)
        waiting.reject(new BatchpipeError(reply.error.code, reply.error.message, reply.error.context));
      else {
        const { buffer, ...rendered } = reply.rendered!;
        const grown = buffer && Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length);
        waiting.resolve({ ...rendered, buffer: grown });
      }
    });
    const fail = (error: Error) => {
      this.#failure ??= error;
      for (const waiting of this.#waiting.values()) waiting.reject(error);
      this.#waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`a render thread stopped (exit code ${code})`)));
    return thread;
  }

  /** Renders a batch into `buffer` (shared memory), which a thread writes and hands back. */
  render(rows: RowsTransport, buffer: Buffer): Promise<Rendered> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const thread = this.#threads.reduce((least, t) => (t.pending < least.pending ? t : least));
    return new Promise<Rendered>((resolve, reject) => {
      if (thread.pending++ === 0) thread.worker.ref();
      this.#waiting.set(id, { resolve, reject });
      thread.worker.postMessage({ id, rows, buffer });
    });
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}
