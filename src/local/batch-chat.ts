import type { IncomingMessage } from 'node:http';
import { ApiError } from './api-error.js';
import type { ServiceConfig } from './options.js';
import { rateLimited } from './quotas.js';
import { RateWindow } from './rate-window.js';

// ref/modelstudio-batch-chat.txt: "Custom timeout range: 60–3600 seconds", "Default timeout is 3600 seconds".
const MIN_TIMEOUT_S = 60;
const MAX_TIMEOUT_S = 3600;
/** The header the openai SDKs send with their timeout, in whole seconds (`timeout` of the client). */
const TIMEOUT_HEADER = 'x-stainless-timeout';

/**
 * Batch Chat's admission (ref/modelstudio-batch-chat.txt): "Maximum 10,000 pending requests per model
 * per account. Exceeding requests rejected with error code"; "Maximum 1000 QPS per account, or 10,000
 * calls per 10 seconds". A call is admitted or refused at once; admitted, it is pending (queued or
 * running) until it answers, times out or its caller goes away.
 */
export class BatchChatGate {
  readonly #max: number;
  readonly #pending = new Map<string, number>();
  readonly #second: RateWindow;
  readonly #tenSeconds: RateWindow;
  readonly #now: () => number;
  readonly #scale: number;

  /** `now`: service time in ms; the caps' windows run on the service clock. */
  constructor(config: ServiceConfig, now: () => number) {
    const options = config.batchChat;
    this.#max = options.maxPendingPerModel;
    this.#second = new RateWindow(options.maxPerSecond, 1000);
    this.#tenSeconds = new RateWindow(options.maxPer10s, 10_000);
    this.#now = now;
    this.#scale = config.timeScale;
  }

  /** Counts a call against the rate caps, or throws the 429. Refused calls count against neither. */
  admitCall(): void {
    const now = this.#now();
    const second = this.#second.wait(now);
    if (second > 0) throw rateLimited(this.#second, 'calls', second, this.#scale);
    const ten = this.#tenSeconds.wait(now);
    if (ten > 0) throw rateLimited(this.#tenSeconds, 'calls', ten, this.#scale);
    this.#second.take(now);
    this.#tenSeconds.take(now);
  }

  /** Makes a call of `model` pending, or throws the 429 when the model has too many; returns the release. */
  enter(model: string): () => void {
    const pending = this.#pending.get(model) ?? 0;
    if (pending >= this.#max)
      throw new ApiError(
        429,
        `Too many pending requests for model ${model}: at most ${this.#max} may wait or run at once. Retry after some finish.`,
        'too_many_pending_requests',
      );
    this.#pending.set(model, pending + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const left = (this.#pending.get(model) ?? 1) - 1;
      if (left === 0) this.#pending.delete(model);
      else this.#pending.set(model, left);
    };
  }
}

/**
 * The call's wait limit in service seconds: the client's timeout as the openai SDKs send it
 * (`x-stainless-timeout`, sent for a request's own `timeout` option), within 60-3600, else the
 * default 3600. The documents set the timeout through the SDK's `timeout` or curl's `--max-time`; a
 * client-wide timeout or curl's is enforced by the client alone, and the server frees the call's
 * place when the client hangs up.
 */
export function waitLimitSeconds(req: IncomingMessage): number {
  const raw = Number(req.headers[TIMEOUT_HEADER]);
  if (!Number.isFinite(raw) || raw <= 0) return MAX_TIMEOUT_S;
  return Math.min(MAX_TIMEOUT_S, Math.max(MIN_TIMEOUT_S, Math.floor(raw)));
}
