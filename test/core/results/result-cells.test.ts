import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cellEncoder, jsonCellTexts } from '../../../src/core/results/result-cells.js';

const encode = cellEncoder({ kind: 'json' });

describe('result cells stored as JSON', () => {
  it('hold each cell as JSON.stringify writes it (null for undefined): edge strings and numbers', () => {
    const cells: unknown[] = [
      'ok',
      '',
      'quote " and backslash \\',
      'line\nbreak\ttab\u0001\u001f',
      'emoji 😀 pair',
      'lone \ud800 surrogate \udfff',
      'ünïcode отлично 很好',
      '\u2028\u2029',
      0,
      -0,
      1.5,
      1e21,
      -1e-7,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      null,
      undefined,
      true,
      false,
      [1, 'a'],
      { a: { b: null } },
    ];
    expect(jsonCellTexts(encode(cells))).toEqual(cells.map((c) => JSON.stringify(c ?? null)));
  });

  it('hold any string, number or JSON value as JSON.stringify writes it (property)', () => {
    const cell = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.double(),
      fc.integer(),
      fc.constantFrom(null, undefined, true, false),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(fc.array(cell, { minLength: 1, maxLength: 8 }), (cells) => {
        expect(jsonCellTexts(encode(cells))).toEqual(cells.map((c) => JSON.stringify(c ?? null)));
      }),
      { numRuns: 3000 },
    );
  });
});
