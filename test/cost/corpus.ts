/**
 * Seeded texts in the scripts and shapes prompts come in (English, Chinese, Japanese, Russian, code,
 * JSON): what the fallback's error bound and the tokenizer bench are measured on. Made by code, never
 * typed by hand, so every run measures the same texts.
 */
import { random as rng } from '../fixtures/make-fixtures.js';

const WORDS: Record<string, string[]> = {
  english:
    'the product arrived late but works great and I would buy it again from this seller because quality matters more than speed for most people who review things online every day'.split(
      ' ',
    ),
  chinese:
    '这个 产品 质量 很好 但是 物流 太慢 了 我 会 再次 购买 客服 态度 也 不错 价格 合理 推荐 给 朋友 们 使用 体验 非常 满意'.split(
      ' ',
    ),
  japanese:
    'この 商品 は 品質 が 良い です が 配送 が 遅かった です また 購入 したい と 思います 店員 の 対応 も 丁寧 でした'.split(
      ' ',
    ),
  russian:
    'товар пришёл поздно но работает отлично и я куплю его снова у этого продавца потому что качество важнее скорости'.split(
      ' ',
    ),
  code: 'function const let return if else for while await async import export from class new this => { } ( ) ; = + - * / . , [ ] value result items index length'.split(
    ' ',
  ),
};

export const KINDS = ['english', 'chinese', 'japanese', 'russian', 'code', 'json'] as const;
export type Kind = (typeof KINDS)[number];

/** `count` texts of a kind, each `words` words long (give or take), from `seed`. */
export function corpus(kind: Kind, count: number, words: number, seed: number): string[] {
  const random = rng(seed);
  const pick = (list: string[]) => list[Math.floor(random() * list.length)]!;
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = Math.max(1, Math.round(words * (0.5 + random())));
    if (kind === 'json') {
      const fields: string[] = [];
      for (let f = 0; f < Math.max(1, n >> 2); f++)
        fields.push(
          `"${pick(WORDS.english!)}_${f}": ${random() < 0.5 ? Math.floor(random() * 1e6) : JSON.stringify(pick(WORDS.english!))}`,
        );
      texts.push(`{${fields.join(', ')}}`);
      continue;
    }
    const list = WORDS[kind]!;
    const joiner = kind === 'chinese' || kind === 'japanese' ? '' : ' ';
    const parts: string[] = [];
    for (let w = 0; w < n; w++) parts.push(pick(list));
    texts.push(parts.join(joiner));
  }
  return texts;
}
