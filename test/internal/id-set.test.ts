import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdSet, NEW_ID } from '../../src/internal/id-set.js';

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

describe('IdSet tags', () => {
  it('answers the tag of the first holder, in memory, through growth and on disk', () => {
    const set = new IdSet(10);
    for (let i = 0; i < 300_000; i++) expect(set.claim(`id-${i}`, i + 1)).toBe(NEW_ID);
    // A second claim neither adds the id nor changes its tag.
    for (const i of [0, 7, 262_143, 262_144, 299_999]) {
      expect(set.claim(`id-${i}`, 5)).toBe(i + 1);
      expect(set.claim(`id-${i}`, 9)).toBe(i + 1);
    }
    expect(set.claim('new', 2 ** 32 - 1)).toBe(NEW_ID);
    expect(set.claim('new', 1)).toBe(2 ** 32 - 1);
    expect(set.size).toBe(300_001);
    set.close();
  });
});

describe('IdSet past what it keeps in memory', () => {
  it('answers like a Set for millions of ids, on disk behind a Bloom filter, and removes its files', async () => {
    const { readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const before = readdirSync(tmpdir()).filter((d) => d.startsWith('batchpipe-ids-')).length;
    const set = new IdSet(10);
    let refused = 0;
    for (let i = 0; i < 600_000; i++) if (!set.add(`id-${i}`)) refused++;
    expect(refused).toBe(0);
    expect(readdirSync(tmpdir()).filter((d) => d.startsWith('batchpipe-ids-')).length).toBe(before + 1);
    // Every id seen before, early or late, in memory once or only on disk, is a duplicate.
    for (const i of [0, 1, 262_143, 262_144, 262_145, 400_000, 599_999])
      expect(set.add(`id-${i}`)).toBe(false);
    for (let i = 600_000; i < 700_000; i++) if (!set.add(`id-${i}`)) refused++;
    expect(refused).toBe(0);
    expect(set.size).toBe(700_000);
    set.close();
    expect(readdirSync(tmpdir()).filter((d) => d.startsWith('batchpipe-ids-')).length).toBe(before);
  });

  it('agrees with a Set across the move to disk (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 400_000 }), { minLength: 300_000, maxLength: 300_000 }),
        (keys) => {
          const set = new IdSet(1000);
          const exact = new Set<number>();
          let wrong = 0;
          for (const key of keys) {
            const fresh = !exact.has(key);
            exact.add(key);
            if (set.add(String(key)) !== fresh) wrong++;
          }
          set.close();
          expect(wrong).toBe(0);
        },
      ),
      { numRuns: 2 },
    );
  });
});
