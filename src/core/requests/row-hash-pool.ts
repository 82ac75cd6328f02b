import { WorkerPool } from '../../internal/worker-pool.js';
import type { RowsTransport } from './render-pool.js';

/** The thread makes little garbage (a batch object per batch; hashing allocates nothing): a small heap. */
const LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 };

/**
 * A thread that hashes rows for the join (RowHasher over the shared bytes of CSV and JSON Lines
 * batches), so the main thread only reads ids while the cells of a large table are hashed beside it.
 */
export class RowHashPool {
  readonly #pool: WorkerPool<{ rows: RowsTransport }, Float64Array>;

  constructor(columns: readonly string[]) {
    this.#pool = new WorkerPool(
      import.meta.url,
      'row-hash-worker',
      1,
      { workerData: [...columns], resourceLimits: LIMITS },
      'a row hash',
    );
  }

  /** Each row's hash (NaN for rows the source rejected). */
  hash(rows: RowsTransport): Promise<Float64Array> {
    return this.#pool.run({ rows });
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
