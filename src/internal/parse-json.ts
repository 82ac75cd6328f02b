import { BatchpipeError } from '../errors.js';
import { MAX_JSON_DEPTH, tooDeepMessage } from './json-depth.js';

/**
 * JSON.parse that keeps integers beyond 2^53 exact by reading them as strings (ids such as
 * 12345678901234567890 would otherwise come back as 12345678901234567000). Text whose parse holds no
 * integer beyond 2^53, nearly all of it, is parsed once; a regular expression looking for long runs of
 * digits first cost more than the parse on review text.
 */
export function parseJsonExact(text: string): { value: unknown; bigIntegers: boolean } {
  const value = JSON.parse(text) as unknown;
  if (!hasUnsafeInteger(value)) return { value, bigIntegers: false };
  const quoted = quoteBigIntegers(text);
  return { value: JSON.parse(quoted), bigIntegers: quoted !== text };
}

/**
 * Whether parsed JSON holds a number that is an integer beyond 2^53 (its digits may have been lost).
 * Throws BP_INPUT_PARSE for a value nested deeper than MAX_JSON_DEPTH: this walk is the one every
 * JSON row gets, so it is where such a row is stopped, before anything else recurses into it.
 */
export function hasUnsafeInteger(value: unknown, depth = 1): boolean {
  if (typeof value === 'number') return Number.isInteger(value) && !Number.isSafeInteger(value);
  if (value === null || typeof value !== 'object') return false;
  if (depth > MAX_JSON_DEPTH) throw new BatchpipeError('BP_INPUT_PARSE', tooDeepMessage('the value'));
  if (Array.isArray(value)) {
    for (const item of value) if (hasUnsafeInteger(item, depth + 1)) return true;
    return false;
  }
  for (const key in value)
    if (hasUnsafeInteger((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

function quoteBigIntegers(text: string): string {
  let out = '';
  let copied = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      i++;
      let integer = true;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d >= 0x30 && d <= 0x39) i++;
        else if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
          integer = false;
          i++;
        } else break;
      }
      const token = text.slice(start, i);
      if (integer && token.length >= 16 && !Number.isSafeInteger(Number(token))) {
        out += `${text.slice(copied, start)}"${token}"`;
        copied = i;
      }
      continue;
    }
    i++;
  }
  return copied === 0 ? text : out + text.slice(copied);
}
