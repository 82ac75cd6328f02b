/**
 * Tokens of a text where no tokenizer of the model's family is at hand, from the kinds of characters in
 * it: 4 letters a token, 3 digits a token (o200k groups digits by three, Qwen splits each: between the
 * two), a token per punctuation mark, whitespace free, and 0.55 a token for each character from U+2E80
 * on (CJK, kana, Hangul; each half of an emoji's surrogate pair). Weights fitted on the seeded corpus of
 * test/cost/corpus.ts against the Qwen3 and o200k tokenizers; a hundredth of a real tokenizer's cost.
 */
export function fallbackTokens(text: string): number {
  let letters = 0;
  let digits = 0;
  let marks = 0;
  let wide = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x2e80) wide++;
    else if (c >= 48 && c <= 57) digits++;
    else if (c === 32 || c === 10 || c === 9 || c === 13) continue;
    else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c >= 0xc0) letters++;
    else marks++;
  }
  return Math.ceil(letters / LETTERS_PER_TOKEN + digits / DIGITS_PER_TOKEN + marks + wide * WIDE_TOKENS);
}

const LETTERS_PER_TOKEN = 4;
const DIGITS_PER_TOKEN = 3;
const WIDE_TOKENS = 0.55;

/**
 * How far the fallback's total over many texts may be from a real tokenizer's, either way, as a share:
 * on a held-out seed of the corpus (English, Chinese, Japanese, Russian, code, JSON) the worst kind is
 * 22% off Qwen3 or o200k (a single text up to 35%). test/cost/fallback-bound.test.ts holds both bounds.
 * The estimate widens its input range by this much.
 */
export const FALLBACK_ERROR = 0.25;

/** The most a single text's fallback count was off on the same corpus (the bound per request). */
export const FALLBACK_TEXT_ERROR = 0.4;

/**
 * How far a close relative's tokenizer may be from a model's own, used where the own one is not
 * shipped (Qwen3.5 and later, counted by the Qwen3 tokenizer): not measurable offline, so the range is
 * widened by the distance between two unrelated vocabularies on the same corpus (Qwen3 against o200k:
 * 30% on JSON with numbers, 25% on Russian, nearly 0 on English), a generous allowance for a relative.
 */
export const PROXY_ERROR = 0.31;
