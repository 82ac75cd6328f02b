import { WaiterQueue } from '../internal/waiter-queue.js';

/** Counts free slots; waiting can be abandoned with an AbortSignal (a cancel, an expiry, a close). */
export class Semaphore {
  #free: number;
  readonly #waiters = new WaiterQueue<void>();

  constructor(size: number) {
    this.#free = size;
  }

  /** Takes a slot now if one is free (the hot path: no promise). */
  tryAcquire(): boolean {
    if (this.#free > 0 && this.#waiters.length === 0) {
      this.#free--;
      return true;
    }
    return false;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryAcquire()) return Promise.resolve();
    return this.#waiters.wait(signal);
  }

  release(): void {
    if (!this.#waiters.serve(undefined)) this.#free++;
  }
}
