import { setTimeout as sleep } from 'node:timers/promises';
import type OpenAI from 'openai';
import { linkedSignal } from '../../internal/linked-signal.js';
import { redactor, splitBaseURL } from '../../providers/connection.js';
import { backoffMs, RETRYABLE_STATUSES, retryAfterMs } from '../../providers/retry.js';
import type { Engine, EngineAnswer, EngineRequest } from './engine.js';

export interface UpstreamEngineOptions {
  /** Base URL of an OpenAI-compatible API (`/chat/completions` and `/embeddings` are appended). */
  url: string;
  apiKey?: string;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** One line per retry; never given the key. */
  log: (line: string) => void;
}

const PATHS = { '/v1/chat/completions': '/chat/completions', '/v1/embeddings': '/embeddings' } as const;

/**
 * Forwards each request to an OpenAI-compatible server (Ollama, vLLM, llama.cpp server, a provider)
 * through the openai SDK, so a self-hosted model gets the batch workflow: files, lifecycle, result
 * files, durability. Calls that get 408/409/425/429/5xx or no answer are retried with exponential
 * backoff (the server's `retry-after` wins); what the upstream refuses, or what still fails after the
 * retries, becomes that request's line in the error file. Concurrency is the service's pool.
 */
export function createUpstreamEngine(options: UpstreamEngineOptions): Engine {
  let client: OpenAI | undefined;
  const where = safeOrigin(options.url);
  // An upstream may echo its key (or its URL's credentials) in an error body, or anywhere in a reply:
  // every reply is scrubbed before it reaches a result or error file, and through them a client.
  const scrub = redactor({ apiKey: options.apiKey, baseURL: options.url });
  const clean = (answer: EngineAnswer): EngineAnswer => {
    const json = scrub(answer.json);
    return json === answer.json ? answer : { ...answer, json };
  };

  const call = async (request: EngineRequest): Promise<EngineAnswer> => {
    if (request.body.stream === true)
      return refusal(
        400,
        'stream is not supported in a batch; send stream: false or omit it',
        'stream',
        null,
      );
    const path = PATHS[request.endpoint];
    // The SDK adds an abort listener to the signal it is given and never removes it: give it one
    // that lives as long as this call, linked to the caller's by a listener removed when done.
    const own = linkedSignal(request.signal);
    const signal = own.signal;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const body = await client!.post<unknown>(path, { body: request.body, signal });
          return clean(answered(body));
        } catch (error) {
          if (signal.aborted) throw error;
          const status = (error as { status?: unknown }).status;
          const retryable = typeof status === 'number' ? RETRYABLE_STATUSES.has(status) : true;
          if (!retryable || attempt >= options.retries) return clean(failed(error, where));
          // The server's retry-after wins, within the longest backoff (a batch never sleeps for an hour).
          const wait = Math.min(
            options.maxBackoffMs,
            retryAfterMs(error) ?? backoffMs(attempt, options.backoffMs, options.maxBackoffMs),
          );
          options.log(
            `upstream ${where}${path}: ${typeof status === 'number' ? status : 'no answer'}, retry ${attempt + 1} of ${options.retries} in ${Math.round(wait)} ms`,
          );
          await sleep(wait, undefined, { signal });
        }
      }
    } finally {
      own.unlink();
    }
  };

  return {
    name: 'upstream',
    synchronous: false,
    async ready() {
      if (client) return;
      const { default: OpenAIClient } = await import('openai');
      // Credentials in the URL travel apart from it: fetch refuses user info, and a query string would
      // end up before the path.
      const parts = splitBaseURL(options.url);
      client = new OpenAIClient({
        baseURL: parts.url,
        ...(Object.keys(parts.query).length > 0 && { defaultQuery: parts.query }),
        ...(parts.basic && {
          defaultHeaders: { authorization: `Basic ${Buffer.from(parts.basic).toString('base64')}` },
        }),
        // The SDK insists on a key; a server that wants none ignores the header.
        apiKey: options.apiKey ?? 'none',
        maxRetries: 0,
        timeout: options.timeoutMs,
      });
    },
    answer: call,
  };
}

/** A 2xx answer, passed on as the upstream wrote it, with its usage counted for the batch. */
function answered(body: unknown): EngineAnswer {
  if (body === null || typeof body !== 'object')
    return refusal(
      502,
      'the upstream server answered with something other than a JSON object',
      null,
      'upstream_invalid_response',
    );
  const usage = (body as { usage?: Record<string, unknown> }).usage;
  const details = usage?.completion_tokens_details as Record<string, unknown> | undefined;
  return {
    status: 200,
    json: JSON.stringify(body),
    usage: usage
      ? {
          prompt_tokens: numberOr0(usage.prompt_tokens),
          completion_tokens: numberOr0(usage.completion_tokens),
          reasoning_tokens: numberOr0(details?.reasoning_tokens),
        }
      : null,
  };
}

/** The upstream's refusal as the request's error line; a call that never got an answer as 502/504. */
function failed(error: unknown, where: string): EngineAnswer {
  const status = (error as { status?: unknown }).status;
  if (typeof status === 'number') {
    // The SDK keeps the body's `error` (an object from OpenAI-compatible servers, a string from some).
    const inner = (error as { error?: unknown }).error;
    if (inner !== null && typeof inner === 'object')
      return { status, json: JSON.stringify({ error: inner }), usage: null };
    const message = typeof inner === 'string' && inner !== '' ? inner : (error as Error).message;
    return refusal(status, message, null, null);
  }
  const timedOut = (error as Error)?.name === 'APIConnectionTimeoutError';
  return refusal(
    timedOut ? 504 : 502,
    `the upstream server ${where} ${timedOut ? 'did not answer in time' : 'could not be reached'}: ${(error as Error)?.message ?? String(error)}`,
    null,
    timedOut ? 'upstream_timeout' : 'upstream_unavailable',
  );
}

function refusal(status: number, message: string, param: string | null, code: string | null): EngineAnswer {
  return {
    status,
    json: JSON.stringify({
      error: { message, type: status >= 500 ? 'server_error' : 'invalid_request_error', param, code },
    }),
    usage: null,
  };
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

/** The upstream's origin without credentials a URL might carry (`http://user:pass@host`). */
function safeOrigin(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return 'upstream';
  }
}
