/**
 * What is worth trying again, decided in one place from status and code, never from message text.
 * Error codes are data: the providers' documents defer them to pages we cannot read, so the lists
 * hold the codes OpenAI documents and those DashScope's OpenAI-compatible mode is known to return.
 */

/** HTTP statuses of API calls that a retry can fix. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

/**
 * Statuses of a synchronous call that mean "too much, slow down": 429, and 503, since Batch Chat's code
 * for a full queue is not documented ("Exceeding requests rejected with error code",
 * ref/modelstudio-batch-chat.txt), both are read alike. The request was not run and is not billed.
 */
export const REFUSAL_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/** Per-request error codes (in a batch's error file) worth sending again in a new batch. */
export const RETRYABLE_REQUEST_CODES: ReadonlySet<string> = new Set([
  'rate_limit_exceeded',
  'server_error',
  'internal_error',
  'service_unavailable',
  'timeout',
  'request_timeout',
  'Throttling',
  'Throttling.RateQuota',
  'Throttling.AllocationQuota',
  'InternalError',
  'InternalError.Algo',
  'ServiceUnavailable',
  'RequestTimeOut',
  'ModelServiceFailed',
  'SystemError',
]);

/**
 * Error-file codes of requests a batch never ran: the batch's ending, not the request's failure.
 * OpenAI's Batch guide writes requests not run before the window ends to the error file with
 * `batch_expired` (the spec in ref/ holds no such wording; DashScope leaves them out of both files);
 * `batch_cancelled` is its cancel counterpart (the code batchpipe itself gives requests a cancel left
 * unrun), settled alike should a provider write it.
 */
export const UNRUN_REQUEST_CODES: ReadonlyMap<string, 'expired' | 'cancelled'> = new Map([
  ['batch_expired', 'expired'],
  ['batch_cancelled', 'cancelled'],
]);

/** Why a request in an error file never ran (its batch expired or was cancelled), if that is what its code says. */
export function unrunReason(code: string | null | undefined): 'expired' | 'cancelled' | undefined {
  return code ? UNRUN_REQUEST_CODES.get(code) : undefined;
}

/** HTTP status codes of a request (inside an error file) worth sending again. */
export function retryableRequest(
  code: string | null | undefined,
  statusCode: number | null | undefined,
): boolean {
  if (code && RETRYABLE_REQUEST_CODES.has(code)) return true;
  return statusCode !== null && statusCode !== undefined && RETRYABLE_STATUSES.has(statusCode);
}

/** An API call's failure (an SDK error, or a connection error) that a retry can fix. */
export function retryableCall(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number') return RETRYABLE_STATUSES.has(status);
  // No status: the connection failed, timed out or was reset; the call may or may not have landed.
  return CONNECTION_FAILURES.some((name) => errorNames(error).has(name));
}

/** Failures before any reply: the SDK's connection errors, fetch's, and node's own. */
const CONNECTION_FAILURES = ['APIConnectionError', 'APIConnectionTimeoutError', 'AbortError', 'TypeError'];

/** The names an error answers to: its `name` and its classes' names (the SDK leaves `name` as "Error"). */
function errorNames(error: unknown): Set<string> {
  const names = new Set<string>();
  if (error === null || typeof error !== 'object') return names;
  names.add(String((error as Error).name));
  for (
    let proto = Object.getPrototypeOf(error);
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    names.add(proto.constructor.name);
  }
  return names;
}

/** How long a server asked us to wait (retry-after-ms / retry-after), in ms, if it said. */
export function retryAfterMs(error: unknown): number | undefined {
  const headers = (error as { headers?: Headers | Record<string, string> }).headers;
  if (!headers) return undefined;
  const get = (name: string) =>
    (headers instanceof Headers ? headers.get(name) : (headers as Record<string, string>)[name]) ?? undefined;
  const ms = Number(get('retry-after-ms'));
  if (Number.isFinite(ms) && ms >= 0 && get('retry-after-ms') !== undefined) return ms;
  const after = get('retry-after');
  if (after === undefined) return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

/** Exponential backoff with full jitter, capped: attempt 0 -> up to base ms. */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
