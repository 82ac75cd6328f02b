import { TextCache } from './text-cache.js';

/** Counts the tokens of a text. */
export interface Tokenizer {
  readonly name: 'o200k' | 'estimate';
  count(text: string): number;
}

/**
 * Characters of distinct texts remembered (system prompts and templates repeat on every line of a
 * batch), bounded by size, not count: a line may be 6 MB.
 */
const CACHE_CHARS = 8 * 1024 * 1024;
/** Shorter texts are cheaper to count than to remember. */
const CACHE_MIN_LENGTH = 64;

let o200k: Promise<Tokenizer> | undefined;

/**
 * The o200k_base tokenizer (OpenAI's current models' own; for other providers' models a close proxy),
 * loaded on first use only: it costs about half a second and 100+ MB of memory.
 */
export function loadTokenizer(kind: 'o200k' | 'estimate'): Promise<Tokenizer> {
  if (kind === 'estimate') return Promise.resolve(ESTIMATE);
  o200k ??= import('gpt-tokenizer/encoding/o200k_base').then(({ countTokens }) =>
    cached('o200k', countTokens),
  );
  return o200k;
}

function cached(name: 'o200k', count: (text: string) => number): Tokenizer {
  const memo = new TextCache<number>(CACHE_CHARS);
  return {
    name,
    count(text) {
      if (text.length < CACHE_MIN_LENGTH) return count(text);
      let n = memo.get(text);
      if (n === undefined) {
        n = count(text);
        memo.set(text, n);
      }
      return n;
    },
  };
}

/**
 * Characters below U+2E80 (Latin, Greek, Cyrillic, Arabic...) at about 4.3 a token, and from U+2E80 on
 * (CJK, kana, Hangul, and each half of an emoji's surrogate pair) at 0.75 a token each. Against o200k
 * it comes within about 20% on English, Chinese, Japanese and Russian prose, at a hundredth of the cost.
 */
const NARROW_PER_TOKEN = 4.3;
const WIDE_TOKENS = 0.75;
const ESTIMATE: Tokenizer = {
  name: 'estimate',
  count(text) {
    let narrow = 0;
    let wide = 0;
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) < 0x2e80) narrow++;
      else wide++;
    }
    return Math.ceil(narrow / NARROW_PER_TOKEN + wide * WIDE_TOKENS);
  },
};
