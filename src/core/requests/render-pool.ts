import { linesMemory, type WasmMemory } from '../../internal/lines-memory.js';
import { WorkerPool } from '../../internal/worker-pool.js';
import type { Rejection } from '../../types.js';
import type { ArrowTransport } from '../arrow/arrow-row-batch.js';
import type { CsvTransport } from '../csv/csv-row-batch.js';
import type { JsonlTransport } from '../jsonl/jsonl-row-batch.js';
import type { KeySetState } from './key-set.js';
import type { RenderedLines, RenderPlan } from './render-lines.js';

/** A batch of rows another thread can take. */
export type RowsTransport = CsvTransport | JsonlTransport | ArrowTransport;

/**
 * A mapper thread keeps little (a batch's offsets at a time; the bytes are shared), so its old
 * generation is small. Its young generation is not: calling a mapper makes much short-lived garbage,
 * and a 4 MB young generation spent 30% of the thread's time collecting it.
 */
export const THREAD_LIMITS = { maxYoungGenerationSizeMb: 16, maxOldGenerationSizeMb: 48 };
/**
 * A render thread copies cells from shared memory to shared memory (JSON Lines cells too, since
 * they are scanned as bytes) and makes almost no garbage, yet a 16 MB young generation grew to its
 * size over a long table. Measured at 1M rows, the composed stages: peak RSS 166 -> 148 MB from CSV
 * and 186 -> 170 MB from JSON Lines, CPU unchanged (3.3 and 4.1 CPU s either way).
 */
const RENDER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 48 };

/** A batch for a render thread: its rows, and the shared buffer to write their lines into. */
export interface RenderJob {
  rows: RowsTransport;
  buffer: Uint8Array;
  /** The buffer is in the lines memory (a render thread keys lines there in place). */
  inMemory?: boolean;
}

/** What a render thread is started with. */
export interface RenderThreadData {
  plan: RenderPlan;
  /** The lines memory (lines-memory.ts), with keyed plans. */
  memory: WasmMemory | undefined;
  /** With `markRepeats`: the table of the keys rendered so far (KeySet.state), for the one thread. */
  repeats?: KeySetState | undefined;
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

  /**
   * `repeats`: the key table (KeySet.state) the thread marks repeats in (one thread then: a line's
   * mark depends on every line before it).
   */
  constructor(plan: RenderPlan, threads: number, repeats?: KeySetState) {
    this.#pool = new WorkerPool(
      import.meta.url,
      'render-worker',
      repeats ? 1 : threads,
      {
        workerData: {
          plan,
          memory: plan.requestKeys === undefined ? undefined : linesMemory(),
          repeats,
        } satisfies RenderThreadData,
        resourceLimits: RENDER_LIMITS,
      },
      'a render',
    );
  }

  /** Threads rendering. */
  get size(): number {
    return this.#pool.size;
  }

  /**
   * Renders a batch into `buffer` (shared memory), which a thread writes and hands back. `inMemory`:
   * the buffer is in the lines memory.
   */
  render(rows: RowsTransport, buffer: Buffer, inMemory: boolean): Promise<Rendered> {
    return this.#pool.run({ rows, buffer, inMemory });
  }

  /** Stops the threads. */
  close(): Promise<void> {
    return this.#pool.close();
  }
}
