interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * Callers waiting their turn, first come first served. A caller whose signal aborts first leaves the
 * queue, rejected with the signal's reason; one served or rejected leaves no listener on its signal.
 */
export class WaiterQueue<T> {
  readonly #waiters: Waiter<T>[] = [];

  get length(): number {
    return this.#waiters.length;
  }

  /** A place at the back: resolves with what `serve` hands it; rejects when `signal` aborts first. */
  wait(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const at = this.#waiters.indexOf(waiter);
          if (at !== -1) this.#waiters.splice(at, 1);
          reject(signal!.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Hands `value` to the first in the queue; false when nobody waits. */
  serve(value: T): boolean {
    const waiter = this.#waiters.shift();
    if (!waiter) return false;
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve(value);
    return true;
  }

  /** Rejects everyone waiting with `reason`. */
  rejectAll(reason: unknown): void {
    for (const waiter of this.#waiters.splice(0)) {
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(reason);
    }
  }
}
