import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cellEncoder, decodeJsonCells, jsonCellTexts } from '../../../src/core/results/result-cells.js';

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

describe('decodeJsonCells', () => {
  it('decodes stored JSON cells to the values JSON.parse gives, row after row', () => {
    const rows: unknown[][] = [
      ['ok', 'positive', null, null, 120, 1],
      ['failed', '', 'rate_limit', 'quoted "text"\\ with\nbreaks\ttabs', null, null],
      ['ok', 'é日本語🙂 \u2028 \u0001', null, null, -5, 0.25],
      ['ok', 'lone \ud800 surrogate', null, null, 1e21, -1.5e-7],
      ['ok', { nested: [1, 'two', null, true] }, [3, 4], false, true, 9007199254740991],
      ['ok', '123', 'null', 'true', '-1', '"'],
    ];
    const encode = cellEncoder({ kind: 'json' });
    const stored = rows.map(encode);
    const out: unknown[] = [];
    decodeJsonCells(stored, out);
    const parsed = stored.flatMap((s) => jsonCellTexts(s).map((t) => JSON.parse(t) as unknown));
    expect(out).toEqual(parsed);
    expect(out).toEqual(rows.flat());
  });
});
