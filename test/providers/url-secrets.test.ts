/** Base URLs with credentials: taken apart for calls, redacted wherever written, scrubbed from texts. */
import { describe, expect, it } from 'vitest';
import { hasURLSecrets, redact, redactor, redactURL, splitBaseURL } from '../../src/providers/connection.js';

describe('base URL credentials', () => {
  it('leaves a URL without credentials exactly as given (run ids hash it)', () => {
    for (const url of ['https://API.example.com/v1/', 'http://127.0.0.1:8787/v1', 'not a url'])
      expect(redactURL(url)).toBe(url);
    expect(redactURL(null)).toBeNull();
    expect(hasURLSecrets('https://api.example.com/v1')).toBe(false);
  });

  it('redacts user, password and every query value', () => {
    expect(redactURL('https://u%40x:p%2Fw@host.example/compatible-mode/v1?api-key=k1&region=sg')).toBe(
      'https://***:***@host.example/compatible-mode/v1?api-key=***&region=***',
    );
    expect(redactURL('https://tok-only@host/v1')).toBe('https://***@host/v1');
    expect(hasURLSecrets('https://host/v1?key=abc')).toBe(true);
  });

  it('takes a URL apart: the URL alone, its query, its user info decoded', () => {
    expect(splitBaseURL('https://u%40x:p%2Fw@host.example/v1/?api-key=k1')).toEqual({
      url: 'https://host.example/v1',
      query: { 'api-key': 'k1' },
      basic: 'u@x:p/w',
    });
    expect(splitBaseURL('http://127.0.0.1:8787/v1')).toEqual({
      url: 'http://127.0.0.1:8787/v1',
      query: {},
      basic: undefined,
    });
  });

  it('scrubs the key and the credentials from a text, in every form they travel in', () => {
    const baseURL = 'https://alice-x:pa%22ss%2Fword@host/v1?api-key=query-key-1';
    const connection = { apiKey: 'sk-key-123456', baseURL };
    const basic = Buffer.from('alice-x:pa"ss/word').toString('base64');
    const text = [
      baseURL,
      'sk-key-123456',
      'pa"ss/word',
      encodeURIComponent('pa"ss/word'),
      JSON.stringify('pa"ss/word'),
      'query-key-1',
      `Basic ${basic}`,
    ].join(' | ');
    const scrubbed = redact(text, connection);
    for (const secret of ['sk-key-123456', 'pa"ss', 'pa%22ss', 'pa\\"ss', 'query-key-1', basic, 'alice-x'])
      expect(scrubbed).not.toContain(secret);
    expect(scrubbed.startsWith('https://***:***@host/v1?api-key=*** | *** | ***')).toBe(true);
    // Nothing to scrub: the text comes back as it was.
    expect(redactor({ apiKey: undefined, baseURL: 'https://host/v1' })('https://host/v1 ok')).toBe(
      'https://host/v1 ok',
    );
  });
});
