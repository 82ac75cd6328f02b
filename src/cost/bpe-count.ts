/**
 * A token counter for gpt-tokenizer's encodings (o200k_base, cl100k_base) that reads the encoding's
 * own split pattern and vocabulary and counts exactly as its `countTokens` does, at about 1.4x its
 * speed: `countTokens` walks `matchAll`, which builds a match array and an iterator result for every
 * piece of text (most pieces are one token, found with one map lookup), and first searches the whole
 * text for special tokens. Here a sticky copy of the pattern is stepped with `test`, each piece looked up
 * in the vocabulary, and the count of a piece of several tokens remembered.
 *
 * Special-token text (`<|endoftext|>`) is counted as the plain text it is: what an API does with a
 * message's content (tiktoken's encode_ordinary), where `countTokens` at its defaults throws.
 *
 * gpt-tokenizer (pinned) keeps these parts private: they are checked when loaded, and the counter is
 * the library's own count, with special tokens as text, if they are not there or a text splits in a
 * way the stepping does not expect. test/cost/bpe-count.test.ts holds the counts equal to the library's
 * on generated multi-script texts.
 */

/** Counts the tokens of a text (model-tokenizer.ts's CountTokens, not imported: it imports this). */
type CountTokens = (text: string) => number;

/** The parts of gpt-tokenizer's BytePairEncodingCore (3.4.0) the counter reads. */
interface BpeCore {
  tokenSplitRegex: RegExp;
  /** Vocabulary entries that are valid UTF-8, by their text. */
  bytePairStringRankEncoder: Map<string, number>;
  /** The tokens of one piece of the split (the library's own merge, with its cache). */
  bytePairEncode(piece: string): number[];
}

interface Encoding {
  countTokens(text: string, options?: { disallowedSpecial?: Set<string> }): number;
}

/** Pieces of several tokens whose count is remembered, per counter (a few MB at most). */
const MERGED_PIECES = 100_000;

/** Count with the library itself, special-token text counted as text. */
const AS_TEXT = { disallowedSpecial: new Set<string>() };

/** The counter for an encoding, and whether it steps the pattern itself (false: the library's count). */
export async function bpeCounter(
  name: 'o200k_base' | 'cl100k_base',
): Promise<{ count: CountTokens; stepped: boolean }> {
  const encoding = (name === 'o200k_base'
    ? (await import('gpt-tokenizer/encoding/o200k_base')).default
    : (await import('gpt-tokenizer/encoding/cl100k_base')).default) as unknown as Encoding & {
    bytePairEncodingCoreProcessor?: unknown;
  };
  const library: CountTokens = (text) => encoding.countTokens(text, AS_TEXT);
  const core = encoding.bytePairEncodingCoreProcessor;
  if (!isBpeCore(core)) return { count: library, stepped: false };
  return { count: steppedCounter(core, library), stepped: true };
}

function isBpeCore(core: unknown): core is BpeCore {
  if (core === null || typeof core !== 'object') return false;
  const c = core as Partial<Record<keyof BpeCore, unknown>>;
  return (
    c.tokenSplitRegex instanceof RegExp &&
    c.tokenSplitRegex.flags.includes('g') &&
    c.bytePairStringRankEncoder instanceof Map &&
    typeof c.bytePairEncode === 'function'
  );
}

/**
 * countNative's loop without its allocations. The library finds each piece with a global search from
 * where the last ended; the sticky copy matches only there, so where the pattern would skip text (it
 * never does: every character starts some alternative) the stepping stops and the library counts the
 * text instead. A piece's tokens do not depend on its neighbours: the library merges each piece alone.
 */
function steppedCounter(core: BpeCore, library: CountTokens): CountTokens {
  const split = new RegExp(core.tokenSplitRegex.source, `${core.tokenSplitRegex.flags.replace('g', '')}y`);
  const vocabulary = core.bytePairStringRankEncoder;
  const merged = new Map<string, number>();
  return (text) => {
    const length = text.length;
    let tokens = 0;
    let from = 0;
    split.lastIndex = 0;
    while (from < length) {
      if (!split.test(text)) return library(text);
      const to = split.lastIndex;
      if (to <= from) return library(text);
      const piece = text.slice(from, to);
      if (vocabulary.has(piece)) tokens++;
      else {
        let n = merged.get(piece);
        if (n === undefined) {
          n = core.bytePairEncode(piece).length;
          if (merged.size >= MERGED_PIECES) merged.clear();
          merged.set(piece, n);
        }
        tokens += n;
      }
      from = to;
    }
    return tokens;
  };
}
