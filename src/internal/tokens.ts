/** Counts tokens of a text, stopping once past `limit` (then returns a number above it). */
export type TokenCounter = (text: string, limit: number) => number;

let counter: Promise<TokenCounter> | undefined;

/**
 * The o200k_base tokenizer, a proxy for providers whose own tokenizer is not published on npm. Loaded
 * on first use only: it costs about half a second and 150 MB, which most runs never need.
 */
export function loadTokenCounter(): Promise<TokenCounter> {
  counter ??= import('gpt-tokenizer/encoding/o200k_base').then(({ isWithinTokenLimit }) => {
    return (text: string, limit: number) => {
      const within = isWithinTokenLimit(text, limit);
      return within === false ? limit + 1 : within;
    };
  });
  return counter;
}
