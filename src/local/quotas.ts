import { ApiError } from './api-error.js';
import type { ServiceConfig } from './options.js';
import { RateWindow } from './rate-window.js';

/** Which rate a route's calls count against. */
const RATE_OF: Record<string, 'create' | 'query' | 'list' | 'cancel'> = {
  'batches.create': 'create',
  'gateway.batches.create': 'create',
  'batches.retrieve': 'query',
  'batches.list': 'list',
  'batches.cancel': 'cancel',
};

const WHAT = {
  create: 'batch creates',
  query: 'batch queries',
  list: 'batch lists',
  cancel: 'batch cancels',
};

/** The account limits of a service, when they are on (see QuotaOptions). */
export interface QuotaLimits {
  maxUnfinishedBatches: number;
  maxFiles: number;
  maxStorageBytes: number;
}

/**
 * The provider's account limits: call rates per route family, answered with 429
 * `rate_limit_exceeded` and `retry-after` when over; and the caps on unfinished batches and storage,
 * which the routes check with the numbers kept here.
 */
export class Quotas {
  readonly limits: QuotaLimits | null;
  readonly #rates: Map<string, RateWindow>;
  readonly #now: () => number;
  readonly #scale: number;

  /** `now`: service time in ms (windows follow the service clock, as every documented duration does). */
  constructor(config: ServiceConfig, now: () => number) {
    this.#now = now;
    this.#scale = config.timeScale;
    const q = config.quotas;
    const on = q.enabled ?? config.profile === 'dashscope';
    this.limits = on
      ? {
          maxUnfinishedBatches: q.maxUnfinishedBatches,
          maxFiles: q.maxFiles,
          maxStorageBytes: q.maxStorageBytes,
        }
      : null;
    this.#rates = new Map(
      on
        ? [
            ['create', new RateWindow(q.createRate, q.rateWindowMs)],
            ['query', new RateWindow(q.queryRate, q.rateWindowMs)],
            ['list', new RateWindow(q.listRate, q.rateWindowMs)],
            ['cancel', new RateWindow(q.cancelRate, q.rateWindowMs)],
          ]
        : [],
    );
  }

  /** Counts a call of `route` against its rate, or throws the 429 the API answers. */
  admit(route: string): void {
    if (this.#rates.size === 0) return;
    const family = RATE_OF[route];
    if (family === undefined) return;
    const window = this.#rates.get(family)!;
    const wait = window.take(this.#now());
    if (wait > 0) throw rateLimited(window, WHAT[family], wait, this.#scale);
  }
}

/**
 * Refuses an upload of `bytes` that would take the account over its storage (10,000 files / 100 GB,
 * result files counted): a 400, since waiting frees nothing; deleting files does.
 */
export function checkStorage(
  limits: QuotaLimits | null,
  usage: { files: number; bytes: number },
  bytes: number,
): void {
  if (!limits) return;
  if (usage.files + 1 > limits.maxFiles)
    throw new ApiError(
      400,
      `File storage quota exceeded: the account holds ${usage.files} files, at most ${limits.maxFiles} are allowed (result files count too). Delete files to free space.`,
      'storage_quota_exceeded',
      'file',
    );
  if (usage.bytes + bytes > limits.maxStorageBytes)
    throw new ApiError(
      400,
      `File storage quota exceeded: the account holds ${usage.bytes} bytes and this file is ${bytes}; at most ${limits.maxStorageBytes} bytes are allowed (result files count too). Delete files to free space.`,
      'storage_quota_exceeded',
      'file',
    );
}

/** Refuses a batch create while the account has as many unfinished batches as allowed (429: they finish). */
export function checkUnfinished(limits: QuotaLimits | null, unfinished: number): void {
  if (!limits || unfinished < limits.maxUnfinishedBatches) return;
  throw new ApiError(
    429,
    `Too many unfinished batches: ${unfinished} are not finished, at most ${limits.maxUnfinishedBatches} are allowed at once. Wait for some to finish, or cancel them.`,
    'concurrent_batch_limit_exceeded',
  );
}

/**
 * A 429 that says which limit and when to come back (`retry-after-ms` and `retry-after`, in real
 * time: `waitMs` is service time, divided by `scale`).
 */
export function rateLimited(window: RateWindow, what: string, waitMs: number, scale = 1): ApiError {
  const seconds =
    window.windowMs % 60_000 === 0 ? `${window.windowMs / 60_000} min` : `${window.windowMs / 1000} s`;
  return new ApiError(
    429,
    `Rate limit reached: at most ${window.limit} ${what} per ${seconds}. Please try again in ${Math.ceil(waitMs / scale)} ms.`,
    'rate_limit_exceeded',
    null,
    retryHeaders(waitMs / scale),
  );
}

/** `retry-after-ms` (what the openai SDK reads first) and `retry-after` in whole seconds. */
export function retryHeaders(waitMs: number): Record<string, string> {
  const ms = Math.max(0, Math.ceil(waitMs));
  return { 'retry-after-ms': String(ms), 'retry-after': String(Math.ceil(ms / 1000)) };
}
