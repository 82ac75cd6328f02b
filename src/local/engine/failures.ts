import type { EngineAnswer } from './engine.js';
import type { Knobs } from './knobs.js';
import { hashString, unitOf } from './random.js';

/**
 * Requests that fail for reasons of the service, not the model: what a provider writes to the error
 * file when it throttles or falls over mid-batch. The default mix holds retryable codes (the client
 * sends those again: `rate_limit_exceeded`, `server_error`, see src/providers/retry.ts) and one that
 * is not (`invalid_parameter_error`, DashScope compatible mode's code for a refused parameter).
 */
export const DEFAULT_FAIL_CODES: readonly string[] = [
  'rate_limit_exceeded',
  'server_error',
  'invalid_parameter_error',
];

// Status and message of the codes providers use; any other code is a 400 unless given as code:status.
const KNOWN: Record<string, { status: number; message: string; type: string }> = {
  rate_limit_exceeded: {
    status: 429,
    message: 'Rate limit reached for requests. Please try again later.',
    type: 'rate_limit_error',
  },
  server_error: {
    status: 500,
    message: 'The server had an error while processing your request.',
    type: 'server_error',
  },
  internal_error: { status: 500, message: 'An internal error has occurred.', type: 'server_error' },
  service_unavailable: {
    status: 503,
    message: 'The server is overloaded or not ready yet.',
    type: 'server_error',
  },
  timeout: { status: 504, message: 'The request timed out.', type: 'server_error' },
  request_timeout: { status: 408, message: 'The request timed out.', type: 'server_error' },
  invalid_parameter_error: {
    status: 400,
    message: 'The request has an invalid parameter.',
    type: 'invalid_request_error',
  },
  context_length_exceeded: {
    status: 400,
    message: "This model's maximum context length was exceeded.",
    type: 'invalid_request_error',
  },
};

const answers = new Map<string, EngineAnswer>();

/** The error answer for a fail code (made once per code). */
export function failureAnswer(spec: string): EngineAnswer {
  let answer = answers.get(spec);
  if (answer === undefined) {
    const [code, given] = spec.split(':') as [string, string | undefined];
    const known = KNOWN[code];
    const status = given !== undefined ? Number(given) : (known?.status ?? 400);
    answer = {
      status,
      json: JSON.stringify({
        error: {
          message: `${known?.message ?? `The request failed with ${code}.`} [fault injected by the local service]`,
          type: known?.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
          param: null,
          code,
        },
      }),
      usage: null,
    };
    if (answers.size > 256) answers.clear();
    answers.set(spec, answer);
  }
  return answer;
}

/**
 * The failure of the request keyed `key` in attempt `salt` (a batch's sequence number, a call's
 * count), or null. The draw hangs on the salt too, so a request sent again in a new batch gets a new
 * draw, as a transient failure should; the same calls in the same order fail the same way.
 */
export function failureOf(key: string, salt: number, knobs: Knobs): EngineAnswer | null {
  const rate = knobs.failRate;
  if (!(rate > 0)) return null;
  const h = hashString(key, (knobs.seed ^ Math.imul(salt + 1, 0x9e3779b1)) >>> 0);
  if (unitOf(h) >= rate) return null;
  const codes = knobs.failCodes.length > 0 ? knobs.failCodes : DEFAULT_FAIL_CODES;
  return failureAnswer(codes[hashString(key, h) % codes.length]!);
}
