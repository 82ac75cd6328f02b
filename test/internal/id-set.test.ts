import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdSet } from '../../src/internal/id-set.js';

describe('IdSet', () => {
  it('answers like a Set, through growth, for any strings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 8 }), { maxLength: 3000 }),
        fc.integer({ min: 1, max: 5000 }),
        (ids, expected) => {
          const set = new IdSet(expected);
          const exact = new Set<string>();
          for (const id of ids) expect(set.add(id)).toBe(!exact.has(id) && Boolean(exact.add(id)));
          expect(set.size).toBe(exact.size);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('holds a million distinct ids with no false duplicate', () => {
    const set = new IdSet(10);
    let duplicates = 0;
    for (let i = 0; i < 1_000_000; i++) if (!set.add(`id-${i}`)) duplicates++;
    expect(duplicates).toBe(0);
    expect(set.add('id-999999')).toBe(false);
  });
});
