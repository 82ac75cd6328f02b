import { setTimeout as sleep } from 'node:timers/promises';

/** One call's signal: aborted by `abort()` or when the service stops; `release()` when the call is over. */
export interface CallSignal {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
  release(): void;
}

/**
 * Per-call abort signals that the service's stop aborts, without a listener on any long-lived signal.
 * The openai SDK adds an abort listener to the signal it is given and never removes it, and
 * `AbortSignal.any` leaks its composite on Node 20: given the service-lifetime signal, each call
 * left ~1.5 KB behind. Listeners added and removed per call would not leak, but more than ten at once
 * on one signal draw a MaxListenersExceededWarning. So the live calls sit in a set, and stopping
 * aborts each of them.
 */
export class CallSignals {
  readonly #live = new Set<AbortController>();
  #stopped: { reason: unknown } | null = null;

  /** A signal for one call, already aborted when the service has stopped. */
  open(): CallSignal {
    const controller = new AbortController();
    if (this.#stopped) controller.abort(this.#stopped.reason);
    else this.#live.add(controller);
    return {
      signal: controller.signal,
      abort: (reason) => controller.abort(reason),
      release: () => {
        this.#live.delete(controller);
      },
    };
  }

  /** Aborts every live call and every call opened from now on. */
  stop(reason: unknown): void {
    this.#stopped ??= { reason };
    for (const controller of this.#live) controller.abort(reason);
    this.#live.clear();
  }

  /** Calls not yet released (for tests of the leak: it must go back to zero). */
  get live(): number {
    return this.#live.size;
  }

  /** Waits `ms` real ms, or less when the service stops; never rejects. */
  async pause(ms: number): Promise<void> {
    const call = this.open();
    try {
      await sleep(ms, undefined, { signal: call.signal });
    } catch {
      // Stopped: the caller looks at the service's state, not at this wait.
    } finally {
      call.release();
    }
  }
}
