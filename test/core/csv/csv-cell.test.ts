import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvCell } from '../../../src/core/csv/csv-cell.js';

describe('csvCell', () => {
  it('quotes exactly as csv-stringify does by default, for "," and tab delimiters (property)', () => {
    const text = fc.string({
      unit: fc.constantFrom('a', ' ', ',', '"', '\n', '\r', '\t', ';', 'é', '😀', "'", '='),
      maxLength: 12,
    });
    fc.assert(
      fc.property(
        fc.oneof(text, fc.integer(), fc.constant(null)),
        fc.constantFrom(',', '\t'),
        (value, delimiter) => {
          const expected = stringify([[value]], { delimiter, eof: false });
          expect(csvCell(value, delimiter)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
