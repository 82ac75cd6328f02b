/**
 * The estimate's counter for OpenAI's encodings steps gpt-tokenizer's split pattern itself: its counts
 * must be the library's, on every kind of text.
 */
import cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import o200k from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { bpeCounter } from '../../src/cost/bpe-count.js';
import { loadCounter } from '../../src/cost/model-tokenizer.js';
import { random as rng } from '../fixtures/make-fixtures.js';
import { corpus, KINDS } from './corpus.js';

const LIBRARIES = [
  ['o200k_base', o200k],
  ['cl100k_base', cl100k],
] as const;

/** Texts where splitting is delicate: whitespace runs before words and line ends, contractions, marks. */
const ODD = [
  '',
  ' ',
  '   ',
  '\n',
  '\r\n\r\n  \n',
  'a  b   c    d',
  'end   ',
  '   \n   x',
  '\t\tindented\n\t\tcode();',
  "don't I'm we'll they've she'd it's YOU'RE O'NEIL's",
  '12345678901 3.14159 1,000,000 ٣٤٥ ½',
  'e\u0301 a\u0308 n\u0303o Å ﬁ ＡＢＣ',
  '👍🏽 🤦‍♀️ 👨‍👩‍👧‍👦 🇯🇵 ❤️',
  '\ud83d lone \ude00 surrogates \ud83d',
  'مرحبا بالعالم हिन्दी पाठ ภาษาไทย 한국어 텍스트 ελληνικά',
  'CamelCaseWords XMLHttpRequest iPhone McDonald',
  '...!!!??? --- *** /// \\\\ ""\'\'',
  '  leading and trailing  ',
  'a\u00a0b\u2003c\u3000d',
  '\u0000\u0001\u001f\u007f',
];

/** Random strings of characters from many blocks, whitespace and punctuation among them. */
function randomTexts(count: number, seed: number): string[] {
  const random = rng(seed);
  const ranges = [
    [0x20, 0x7e],
    [0x09, 0x0d],
    [0xa0, 0x24f],
    [0x300, 0x36f],
    [0x400, 0x4ff],
    [0x600, 0x6ff],
    [0x900, 0x97f],
    [0x3040, 0x30ff],
    [0x4e00, 0x4fff],
    [0xac00, 0xad00],
    [0x1f300, 0x1f64f],
    [0x2000, 0x206f],
  ] as const;
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    let s = '';
    const n = Math.floor(random() * 80);
    for (let c = 0; c < n; c++) {
      const [from, to] = ranges[Math.floor(random() * ranges.length)]!;
      s += String.fromCodePoint(from + Math.floor(random() * (to - from + 1)));
      if (random() < 0.15) s += ' ';
    }
    texts.push(s);
  }
  return texts;
}

describe('bpeCounter', () => {
  for (const [name, library] of LIBRARIES)
    it(`counts what ${name}'s countTokens counts, on texts of every script, odd texts and random ones`, async () => {
      const { count, stepped } = await bpeCounter(name);
      // The fast path, not the fallback, is what is tested here.
      expect(stepped).toBe(true);
      const texts = [
        ...KINDS.flatMap((kind) => corpus(kind, 150, 80, 11)),
        ...ODD,
        ...randomTexts(1500, 3),
        // Twice: the second time the pieces of several tokens come from the counter's memory.
        ...randomTexts(300, 3),
      ];
      let mismatches = 0;
      for (const text of texts) if (count(text) !== library.countTokens(text)) mismatches++;
      expect(mismatches).toBe(0);
      // And on long texts: the corpus joined.
      const long = KINDS.map((kind) => corpus(kind, 40, 200, 5).join('\n\n'));
      expect(long.map(count)).toEqual(long.map((t) => library.countTokens(t)));
    });

  it('counts special-token text as text (as an API reads message content), where countTokens throws', async () => {
    const { count } = await bpeCounter('o200k_base');
    const asText = { disallowedSpecial: new Set<string>() };
    for (const text of ['<|endoftext|>', 'before <|endoftext|> after', 'x<|im_start|>user\nhi<|im_end|>']) {
      expect(() => o200k.countTokens(text)).toThrow(/special token/);
      expect(count(text)).toBe(o200k.countTokens(text, asText));
      expect(count(text)).toBe(o200k.encode(text, asText).length);
      // More than one token: the special token's text is spelled out.
      expect(count('<|endoftext|>')).toBeGreaterThan(1);
    }
  });

  it('is the counter the estimate loads for o200k_base and cl100k_base', async () => {
    const text = 'Title: 很好 👍🏽\nReview: отлично "premium" naïve';
    for (const [name, library] of LIBRARIES)
      expect((await loadCounter(name))(text)).toBe(library.countTokens(text));
  });
});
