/**
 * Calls admitted in a sliding window of real time, exactly: the times of the last `limit` admitted
 * calls in a ring, so a call is admitted when the oldest of them left the window. Memory is fixed
 * (8 bytes per allowed call) and each call is O(1).
 */
export class RateWindow {
  readonly limit: number;
  readonly windowMs: number;
  readonly #times: Float64Array;
  #head = 0;
  #count = 0;

  constructor(limit: number, windowMs: number) {
    this.limit = limit;
    this.windowMs = windowMs;
    this.#times = new Float64Array(limit);
  }

  /** The ms a call at `now` would wait (0: it would be admitted), admitting nothing. */
  wait(now: number): number {
    if (this.#count < this.limit) return 0;
    return Math.max(0, this.#times[this.#head]! + this.windowMs - now);
  }

  /** Admits a call at `now` (ms) and returns 0, or returns the ms to wait and admits nothing. */
  take(now: number): number {
    if (this.#count < this.limit) {
      this.#times[(this.#head + this.#count++) % this.limit] = now;
      return 0;
    }
    const oldest = this.#times[this.#head]!;
    const wait = oldest + this.windowMs - now;
    if (wait > 0) return wait;
    this.#times[this.#head] = now;
    this.#head = (this.#head + 1) % this.limit;
    return 0;
  }
}
