import { WorkerPool } from '../internal/worker-pool.js';
import type { Counted, CountJob } from './count-requests.js';

/**
 * Threads that count request files for an estimate (count-worker): each loads the tokenizers it
 * needs, and they go, memory and all, when the pool closes.
 */
export class CountPool {
  readonly #pool: WorkerPool<CountJob, Counted>;

  constructor(threads: number) {
    this.#pool = new WorkerPool(import.meta.url, 'count-worker', threads, {}, 'a token-counting');
  }

  count(job: CountJob): Promise<Counted> {
    return this.#pool.run(job);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}
