/**
 * Tokens of a text where no tokenizer of the model's family is at hand: characters below U+2E80 (Latin,
 * Greek, Cyrillic, Arabic...) at 4 a token, and from U+2E80 on (CJK, kana, Hangul, each half of an
 * emoji's surrogate pair) at 0.75 a token each. A hundredth of a real tokenizer's cost.
 */
export function fallbackTokens(text: string): number {
  let narrow = 0;
  let wide = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) < 0x2e80) narrow++;
    else wide++;
  }
  return Math.ceil(narrow / NARROW_PER_TOKEN + wide * WIDE_TOKENS);
}

const NARROW_PER_TOKEN = 4;
const WIDE_TOKENS = 0.75;

/**
 * How far the fallback may be from a real tokenizer, either way, as a share of the count: measured on
 * seeded English, Chinese, Japanese, Russian, code and JSON texts against the Qwen3 and o200k
 * tokenizers (test/cost/fallback-bound.test.ts holds it). The estimate widens its range by this much.
 */
export const FALLBACK_ERROR = 0.5;

/**
 * How far a close relative's tokenizer may be from a model's own, used where the own one is not
 * shipped (Qwen3.5 and later by the Qwen3 tokenizer): not measurable offline, so the range is widened
 * by the measured distance between two unrelated vocabularies (Qwen3 and o200k on the same texts).
 */
export const PROXY_ERROR = 0.25;
