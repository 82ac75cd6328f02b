import { WorkerPool } from '../../internal/worker-pool.js';
import type { Rejection } from '../../types.js';
import type { CsvTransport } from '../csv/csv-row-batch.js';
import type { JsonlTransport } from '../jsonl/jsonl-row-batch.js';
import type { RenderedLines, RenderPlan } from './render-lines.js';

/** A batch of rows another thread can take. */
export type RowsTransport = CsvTransport | JsonlTransport;

/**
 * A thread keeps little (a batch's offsets and ids at a time; the bytes are shared), so its old
 * generation is small. Its young generation is not: parsing JSON Lines (or calling a mapper) makes
 * much short-lived garbage, and a 4 MB young generation spent 30% of the thread's time collecting it.
 */
export const THREAD_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 48 };
/**
 * Rendering CSV cells makes almost no garbage (bytes are copied from shared memory to shared
 * memory), yet a young generation left at 16 MB grows to it over a long table: 15 MB more peak RSS at
 * 1M rows than at 100k, for no time saved (3.3 CPU s either way at 1M).
 */
const LIMITS: Record<RowsTransport['type'], typeof THREAD_LIMITS> = {
  csv: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 48 },
  jsonl: THREAD_LIMITS,
};

/** A batch for a render thread: its rows, and the shared buffer to write their lines into. */
export interface RenderJob {
  rows: RowsTransport;
  buffer: Uint8Array;
}

/** What a render thread made of a batch. */
export interface Rendered extends RenderedLines {
  /** Rows the parse there rejected, by entry (JSON Lines; what the source rejected the sender knows). */
  rejections: Array<[number, Rejection]>;
  /** A larger buffer the lines went into when they did not fit the one given (undefined: they did). */
  buffer: Uint8Array | undefined;
}

/**
 * Threads that render request lines for the main thread (render-worker), so one reads, checks and
 * writes while the others render: the template's pieces and each row's cells, JSON-escaped, from the
 * bytes every thread sees in shared memory.
 */
export class RenderPool {
  readonly #pool: WorkerPool<RenderJob, Rendered>;

  /** `rows`: the kind of rows the threads will render, which sets how much garbage they make. */
  constructor(plan: RenderPlan, threads: number, rows: RowsTransport['type']) {
    this.#pool = new WorkerPool(
      import.meta.url,
      'render-worker',
      threads,
      { workerData: plan, resourceLimits: LIMITS[rows] },
      'a render',
    );
  }

  /** Threads rendering. */
  get size(): number {
    return this.#pool.size;
  }

  /** Renders a batch into `buffer` (shared memory), which a thread writes and hands back. */
  render(rows: RowsTransport, buffer: Buffer): Promise<Rendered> {
    return this.#pool.run({ rows, buffer });
  }

  /** Stops the threads. */
  close(): Promise<void> {
    return this.#pool.close();
  }
}
