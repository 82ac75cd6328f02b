import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { type Connection, redactor, splitBaseURL } from '../../providers/connection.js';
import {
  REFUSAL_STATUSES,
  RETRYABLE_REQUEST_CODES,
  RETRYABLE_STATUSES,
  retryAfterMs,
} from '../../providers/retry.js';
import type { ResultLine } from '../run-results.js';
import type { CallOutcome } from './pacer.js';

/** One request line as a sync run sends it. */
export interface SyncRequest {
  custom_id: string;
  url: string;
  body: unknown;
}

/** What one call came to: the line to keep if it is the row's last, and whether to try again. */
export interface CallResult {
  outcome: CallOutcome;
  /** A later attempt may go otherwise (refusals and timeouts always may). */
  retryable: boolean;
  line: ResultLine;
  /** How long the endpoint asked us to wait (retry-after), ms. */
  retryAfterMs?: number | undefined;
}

/** Thrown when the run's signal aborts a call: no result, the row goes again on resume. */
export class CallAborted extends Error {
  override readonly name = 'CallAborted';
}

/**
 * Calls a synchronous OpenAI-compatible endpoint (Batch Chat, or any chat or embeddings server) for
 * one request line, through the openai SDK with its own retries off (retries are the run's: a
 * 3,600 s call repeated by the SDK would wait three hours) and an explicit per-call timeout, which
 * the SDK also sends as `x-stainless-timeout` (Batch Chat takes the call's wait limit from it).
 * Every reply becomes a result line in the Batch API's output or error file shape, so the results
 * parser and the join read it as they read a batch's.
 */
export class SyncCaller {
  readonly #client: OpenAI;
  readonly #timeoutMs: number;
  readonly #redact: (text: string) => string;

  constructor(connection: Connection, timeoutMs: number) {
    const parts = splitBaseURL(connection.baseURL!);
    const basic = parts.basic && `Basic ${Buffer.from(parts.basic).toString('base64')}`;
    this.#client = new OpenAI({
      baseURL: parts.url,
      ...(Object.keys(parts.query).length > 0 && { defaultQuery: parts.query }),
      ...(basic && { defaultHeaders: { authorization: basic } }),
      apiKey: connection.apiKey ?? 'none',
      timeout: timeoutMs,
      maxRetries: 0,
    });
    this.#timeoutMs = timeoutMs;
    this.#redact = redactor(connection);
  }

  async call(request: SyncRequest, signal: AbortSignal | undefined): Promise<CallResult> {
    // Batch lines name the path from the API root (`/v1/chat/completions`); base URLs end in `/v1`.
    const path = request.url.replace(/^\/v1(?=\/)/, '');
    try {
      const { data, request_id } = await this.#client
        .post<unknown>(path, {
          body: request.body,
          timeout: this.#timeoutMs,
          maxRetries: 0,
          ...(signal && { signal }),
        })
        .withResponse();
      const id = isObject(data) && typeof data.id === 'string' ? data.id : undefined;
      return {
        outcome: 'ok',
        retryable: false,
        line: {
          ...(id !== undefined && { id }),
          custom_id: request.custom_id,
          response: { status_code: 200, request_id: request_id ?? undefined, body: data },
          error: null,
        },
      };
    } catch (error) {
      if (error instanceof APIUserAbortError || signal?.aborted) throw new CallAborted('detached');
      return this.#failure(request.custom_id, error);
    }
  }

  #failure(custom_id: string, error: unknown): CallResult {
    const seconds = Math.round(this.#timeoutMs / 1000);
    if (error instanceof APIConnectionTimeoutError)
      return {
        outcome: 'timeout',
        retryable: true,
        line: errorLine(
          custom_id,
          'request_timeout',
          `no answer within the call timeout of ${seconds} s; a request that times out is not billed: run the same command again later to send it again`,
        ),
      };
    if (error instanceof APIError && typeof error.status === 'number') {
      const status = error.status;
      const inner = isObject(error.error) ? error.error : {};
      const code =
        (typeof error.code === 'string' && error.code) ||
        (typeof inner.code === 'string' && inner.code) ||
        `http_${status}`;
      const message = this.#redact(
        (typeof inner.message === 'string' && inner.message) || error.message || `HTTP ${status}`,
      );
      const refused = REFUSAL_STATUSES.has(status);
      const timedOut = status === 408 || status === 504 || code === 'request_timeout';
      const retryable =
        refused || timedOut || RETRYABLE_STATUSES.has(status) || RETRYABLE_REQUEST_CODES.has(code);
      return {
        outcome: refused ? 'refused' : timedOut ? 'timeout' : 'failed',
        retryable,
        retryAfterMs: retryAfterMs(error),
        line: {
          custom_id,
          response: { status_code: status, request_id: error.requestID ?? undefined, body: null },
          error: { code, message },
        },
      };
    }
    const message = this.#redact(error instanceof Error ? error.message : String(error));
    // No reply at all (a reset, a refused connection): the call may have been lost before or after
    // it ran; either way it was not answered, so not billed.
    return {
      outcome: 'failed',
      retryable: error instanceof APIConnectionError || error instanceof TypeError,
      line: errorLine(custom_id, 'connection_error', message),
    };
  }
}

function errorLine(custom_id: string, code: string, message: string): ResultLine {
  return { custom_id, response: null, error: { code, message } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
