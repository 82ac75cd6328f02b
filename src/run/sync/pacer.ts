import { WaiterQueue } from '../../internal/waiter-queue.js';

/**
 * How fast a sync run calls: a window of calls in flight and a call rate, both adapted to what the
 * endpoint says back. The window starts small and grows while calls succeed (doubling each round
 * trip until the first timeout, then by one per round trip), and halves on a timeout: calls that wait
 * past their timeout mean the queue behind the endpoint is longer than we can wait. The rate starts at
 * the documented cap (or unpaced when there is none) and, on a refusal (429 or 503: Batch Chat's code
 * for a full queue is not documented, so both are read as "too much"), drops to just under what the
 * endpoint admitted in the last second, then creeps up again by 3% a second. Both stay within the
 * caps given (Batch Chat: 1,000 calls a second, 10,000 per 10 s, 10,000 pending per model).
 */

/** What became of a call, for the pacer. */
export type CallOutcome = 'ok' | 'refused' | 'timeout' | 'failed';

export interface PacerSettings {
  /** Most calls in flight at once. */
  maxInFlight: number;
  /** Most calls started per second; Infinity when no cap is known. */
  maxPerSecond: number;
  /** The window to start with. Default 8 (or maxInFlight when smaller). */
  initialInFlight?: number;
}

/** A started call; hand it back to `release`. */
export interface Ticket {
  startedAt: number;
}

/** Share of the admitted rate the rate drops to after a refusal. */
const REFUSAL_RATE_SHARE = 0.95;
/** Rate growth per second of calls that succeed, as a share of the rate. */
const RATE_GROWTH_PER_S = 0.03;
/** The rate is cut at most once in this long (a burst of refusals is one event). */
const RATE_CUT_COOLDOWN_MS = 1000;
/** Start-time credit the rate allows a burst, ms. */
const BURST_MS = 50;
/**
 * The window stops growing while calls take more than this many times the fastest one (plus the
 * slack, for calls so fast that scheduling noise dominates): they are queueing.
 */
const QUEUEING_FACTOR = 3;
const QUEUEING_SLACK_MS = 50;
/** Lowest rate a cut reaches, calls per second. */
const MIN_RATE = 1;

export class Pacer {
  readonly #max: number;
  readonly #maxRate: number;
  #window: number;
  /** Window size past which growth slows to one per round trip (set by the first timeout). */
  #threshold = Number.POSITIVE_INFINITY;
  #inFlight = 0;
  #rate: number;
  /** When the next call may start, by the rate (ms, performance clock). */
  #nextAt = 0;
  #lastCutAt = Number.NEGATIVE_INFINITY;
  #lastWindowCutAt = Number.NEGATIVE_INFINITY;
  /** When a call last waited for the rate (it grows only while it is what limits). */
  #rateBoundAt = Number.NEGATIVE_INFINITY;
  /** The fastest call so far and a moving average of calls' times, ms. */
  #minTook = Number.POSITIVE_INFINITY;
  #took = 0;
  /** When the window was last full (it grows only from calls that saw it full). */
  #fullAt = Number.NEGATIVE_INFINITY;
  /** Start times of recent calls and of recent refusals (the last second's). */
  readonly #starts: number[] = [];
  readonly #refusals: number[] = [];
  readonly #waiters = new WaiterQueue<Ticket>();
  #timer: NodeJS.Timeout | undefined;

  constructor(settings: PacerSettings) {
    this.#max = Math.max(1, Math.floor(settings.maxInFlight));
    this.#maxRate = settings.maxPerSecond > 0 ? settings.maxPerSecond : Number.POSITIVE_INFINITY;
    this.#rate = this.#maxRate;
    this.#window = Math.min(this.#max, settings.initialInFlight ?? 8);
  }

  /** Calls in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The window now (calls allowed in flight). */
  get window(): number {
    return Math.floor(this.#window);
  }

  /** The rate now, calls per second (Infinity: unpaced). */
  get rate(): number {
    return this.#rate;
  }

  /** Resolves when a call may start; rejects with the signal's reason when it aborts first. */
  acquire(signal?: AbortSignal): Promise<Ticket> {
    const waiting = this.#waiters.wait(signal);
    this.#pump();
    return waiting;
  }

  /** Ends a call started with `acquire`, adapting the window and the rate to how it went. */
  release(ticket: Ticket, outcome: CallOutcome): void {
    this.#inFlight--;
    const now = performance.now();
    if (outcome === 'ok') {
      // Slow start below the threshold (one more per success: doubling per round trip), then one
      // more per round trip; only while the window is what limits (the rate, or the rows, may be):
      // a window grown unused would let a burst through later.
      const took = now - ticket.startedAt;
      this.#minTook = Math.min(this.#minTook, took);
      this.#took = this.#took === 0 ? took : this.#took * 0.9 + took * 0.1;
      // Calls that take far longer than the fastest did wait in a queue: a larger window only makes
      // the queue longer (more connections, more memory), not the answers come faster.
      if (
        this.#fullAt >= ticket.startedAt &&
        this.#took <= QUEUEING_FACTOR * this.#minTook + QUEUEING_SLACK_MS
      )
        this.#window = Math.min(
          this.#max,
          this.#window < this.#threshold ? this.#window + 1 : this.#window + 1 / this.#window,
        );
      // About `rate` successes a second, each adding this much: the rate grows by that share a second,
      // while it is what holds calls back.
      if (Number.isFinite(this.#rate) && now - this.#rateBoundAt < 1000)
        this.#rate = Math.min(this.#maxRate, this.#rate + RATE_GROWTH_PER_S);
    } else if (outcome === 'refused') {
      this.#refusals.push(now);
      if (now - this.#lastCutAt >= RATE_CUT_COOLDOWN_MS) {
        this.#lastCutAt = now;
        this.#trim(now);
        const admitted = Math.max(0, this.#starts.length - this.#refusals.length);
        this.#rate = Math.max(MIN_RATE, Math.min(this.#rate, admitted * REFUSAL_RATE_SHARE));
      }
    } else if (outcome === 'timeout' && ticket.startedAt >= this.#lastWindowCutAt) {
      // Once per round of calls: the calls that started before a cut time out with it.
      this.#lastWindowCutAt = now;
      this.#window = Math.max(1, this.#window / 2);
      this.#threshold = this.#window;
    }
    this.#pump();
  }

  /** Rejects every waiter (the run is ending). */
  close(reason: unknown): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiters.rejectAll(reason);
  }

  #trim(now: number): void {
    while (this.#starts.length > 0 && now - this.#starts[0]! > 1000) this.#starts.shift();
    while (this.#refusals.length > 0 && now - this.#refusals[0]! > 1000) this.#refusals.shift();
  }

  #pump(): void {
    if (this.#waiters.length > 0 && this.#inFlight >= Math.floor(this.#window))
      this.#fullAt = performance.now();
    while (this.#waiters.length > 0 && this.#inFlight < Math.floor(this.#window)) {
      const now = performance.now();
      if (Number.isFinite(this.#rate)) {
        if (this.#nextAt > now) {
          this.#rateBoundAt = now;
          if (!this.#timer)
            this.#timer = setTimeout(
              () => {
                this.#timer = undefined;
                this.#pump();
              },
              Math.max(1, Math.ceil(this.#nextAt - now)),
            );
          return;
        }
        this.#nextAt = Math.max(this.#nextAt, now - BURST_MS) + 1000 / this.#rate;
      }
      this.#inFlight++;
      if (this.#inFlight >= Math.floor(this.#window)) this.#fullAt = now;
      this.#starts.push(now);
      if (this.#starts.length > 4096) this.#trim(now);
      this.#waiters.serve({ startedAt: now });
    }
  }
}
