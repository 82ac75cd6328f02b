import { describe, expect, it } from 'vitest';
import { cellEncoder, decodeJsonCells, jsonCellTexts } from '../../../src/core/results/result-cells.js';

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
