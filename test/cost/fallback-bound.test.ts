import { describe, expect, it } from 'vitest';
import {
  FALLBACK_ERROR,
  FALLBACK_TEXT_ERROR,
  fallbackTokens,
  PROXY_ERROR,
} from '../../src/cost/fallback-tokens.js';
import { rawCounter } from '../../src/cost/model-tokenizer.js';
import { corpus, KINDS } from './corpus.js';

// A seed the weights were not fitted on (they were fitted on seed 7).
const HELD_OUT = 99;

describe('the fallback token count', () => {
  it(`stays within ${FALLBACK_ERROR * 100}% of Qwen3 and o200k over each kind of text, ${FALLBACK_TEXT_ERROR * 100}% on any one text`, async () => {
    const qwen = await rawCounter('qwen3');
    const o200k = await rawCounter('o200k_base');
    const measured: Record<string, number[]> = {};
    for (const kind of KINDS) {
      let fallback = 0;
      let q = 0;
      let o = 0;
      for (const text of corpus(kind, 300, 120, HELD_OUT)) {
        const f = fallbackTokens(text);
        const tq = qwen(text);
        const to = o200k(text);
        fallback += f;
        q += tq;
        o += to;
        expect(Math.abs(f - tq) / tq, `${kind}: ${text.slice(0, 40)}`).toBeLessThanOrEqual(
          FALLBACK_TEXT_ERROR,
        );
        expect(Math.abs(f - to) / to, `${kind}: ${text.slice(0, 40)}`).toBeLessThanOrEqual(
          FALLBACK_TEXT_ERROR,
        );
      }
      measured[kind] = [fallback / q, fallback / o];
      expect(Math.abs(fallback - q) / q, kind).toBeLessThanOrEqual(FALLBACK_ERROR);
      expect(Math.abs(fallback - o) / o, kind).toBeLessThanOrEqual(FALLBACK_ERROR);
    }
    expect(Object.keys(measured)).toEqual([...KINDS]);
  });

  it(`puts two unrelated vocabularies (the proxy allowance) within ${PROXY_ERROR * 100}% of each other per kind`, async () => {
    const qwen = await rawCounter('qwen3');
    const o200k = await rawCounter('o200k_base');
    let widest = 0;
    for (const kind of KINDS) {
      let q = 0;
      let o = 0;
      for (const text of corpus(kind, 300, 120, HELD_OUT)) {
        q += qwen(text);
        o += o200k(text);
      }
      widest = Math.max(widest, Math.abs(q - o) / o);
    }
    expect(widest).toBeLessThanOrEqual(PROXY_ERROR);
    // The allowance is not slack for nothing: the vocabularies do differ by most of it.
    expect(widest).toBeGreaterThan(PROXY_ERROR / 2);
  });
});
