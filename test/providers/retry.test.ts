import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  BadRequestError,
  RateLimitError,
} from 'openai';
import { describe, expect, it } from 'vitest';
import { backoffMs, retryAfterMs, retryableCall, retryableRequest } from '../../src/providers/retry.js';

describe('retry decisions', () => {
  it("treats the SDK's connection errors and timeouts as retryable, though their name is plain Error (bug: lost create replies were not retried)", () => {
    const lost = new APIConnectionError({ message: 'Connection error.' });
    expect(lost.name).toBe('Error');
    expect(retryableCall(lost)).toBe(true);
    expect(retryableCall(new APIConnectionTimeoutError())).toBe(true);
  });

  it('retries 408, 409, 429 and 5xx, not other 4xx', () => {
    const headers = new Headers();
    expect(retryableCall(new RateLimitError(429, undefined, 'slow down', headers))).toBe(true);
    expect(retryableCall(APIError.generate(503, undefined, 'down', headers))).toBe(true);
    expect(retryableCall(new BadRequestError(400, undefined, 'bad', headers))).toBe(false);
    expect(retryableCall(APIError.generate(404, undefined, 'gone', headers))).toBe(false);
  });

  it('reads retry-after-ms and retry-after (seconds or a date)', () => {
    expect(retryAfterMs({ headers: new Headers({ 'retry-after-ms': '250' }) })).toBe(250);
    expect(retryAfterMs({ headers: new Headers({ 'retry-after': '2' }) })).toBe(2000);
    const later = new Date(Date.now() + 5000).toUTCString();
    expect(retryAfterMs({ headers: new Headers({ 'retry-after': later }) })).toBeGreaterThan(3000);
    expect(retryAfterMs({ headers: new Headers() })).toBeUndefined();
  });

  it('sends again the requests that failed with a retryable code or status, only those', () => {
    expect(retryableRequest('rate_limit_exceeded', 429)).toBe(true);
    expect(retryableRequest('server_error', null)).toBe(true);
    expect(retryableRequest(undefined, 503)).toBe(true);
    expect(retryableRequest('invalid_parameter_error', 400)).toBe(false);
    expect(retryableRequest('data_inspection_failed', 400)).toBe(false);
  });

  it('backs off exponentially with jitter, capped', () => {
    const low = () => 0;
    const high = () => 1;
    expect(backoffMs(0, 1000, 60_000, low)).toBe(500);
    expect(backoffMs(3, 1000, 60_000, high)).toBe(8000);
    expect(backoffMs(20, 1000, 60_000, high)).toBe(60_000);
  });
});
