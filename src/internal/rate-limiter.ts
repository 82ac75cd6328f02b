/**
 * A token bucket: at most `perMinute` takes a minute, in bursts of up to a tenth of that. `take`
 * resolves when a token is free, so callers stay under a provider's documented limits instead of
 * learning them from 429s.
 */
export class RateLimiter {
  readonly #capacity: number;
  readonly #perMs: number;
  #tokens: number;
  #last = Date.now();
  #queue: Promise<void> = Promise.resolve();

  /**
   * `timeScale`: minutes of the provider's clock per real minute (a simulated provider whose clock
   * runs fast counts its limits in its own minutes). Default 1.
   */
  constructor(perMinute: number, timeScale = 1) {
    this.#capacity = Math.max(1, Math.floor(perMinute / 10));
    this.#perMs = (perMinute * timeScale) / 60_000;
    this.#tokens = this.#capacity;
  }

  take(): Promise<void> {
    const next = this.#queue.then(() => this.#wait());
    this.#queue = next;
    return next;
  }

  async #wait(): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#perMs);
      this.#last = now;
      if (this.#tokens >= 1) {
        this.#tokens -= 1;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.ceil((1 - this.#tokens) / this.#perMs)));
    }
  }
}
