import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { csvRowBatches, type KeyItem, readCsvKeys } from '../../../src/core/join/csv-join-reader.js';
import { customIdFor } from '../../../src/core/requests/custom-id.js';
import { CsvSourceOptions, csvSource } from '../../../src/sources/csv-source.js';
import type { Rejection, SourceItem } from '../../../src/types.js';
import { writeReviewsCsv } from '../../fixtures/make-fixtures.js';
import { collect, fileWith, tempDir } from '../../helpers.js';

const dir = tempDir('bp-csv-join-reader-');
let files = 0;
const options = (o: Parameters<typeof CsvSourceOptions.parse>[0] = {}) => CsvSourceOptions.parse(o);

async function batches(file: string, size: number, o = options()): Promise<SourceItem[][]> {
  const out: SourceItem[][] = [];
  for await (const batch of csvRowBatches(file, o, size)) out.push(batch);
  return out;
}

async function keys(file: string, idColumn: string | undefined, o = options()) {
  const items: Array<KeyItem | Rejection> = [];
  const columns = await readCsvKeys(file, o, idColumn, async (chunk) => {
    items.push(...chunk);
  });
  return { columns, items };
}

const cell = fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', 'é', '😀'), maxLength: 6 });
/** A CSV line: fields quoted or not (a bad quote or a missing field makes the row a rejection). */
const line = fc.tuple(cell, cell, fc.boolean(), fc.boolean()).map(([a, b, quoteA, drop]) => {
  const field = (v: string, quote: boolean) => (quote ? `"${v.replaceAll('"', '""')}"` : v);
  return drop ? field(a, quoteA) : `${field(a, quoteA)},${field(b, true)}`;
});

describe('csvRowBatches (the Row path reads a CSV source a few rows at a time)', () => {
  it('gives exactly the items csvSource gives, in batches of at most the size asked (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { maxLength: 40 }),
        fc.integer({ min: 1, max: 7 }),
        fc.boolean(),
        async (lines, size, relaxColumnCount) => {
          const file = fileWith(dir, `p${++files}.csv`, `key,text\n${lines.join('\n')}\n`);
          const o = options({ relaxColumnCount });
          // An unclosed quote stops both with the same error.
          const expected = await collect<SourceItem>(csvSource(file, o)).catch((e: Error) => e);
          const got = await batches(file, size, o).catch((e: Error) => e);
          if (expected instanceof Error) {
            expect(got).toEqual(expected);
            return;
          }
          expect(Array.isArray(got) && got.every((b) => b.length >= 1 && b.length <= size)).toBe(true);
          expect((got as SourceItem[][]).flat()).toEqual(expected);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('reads past the chunk boundaries of a multi-megabyte file, row for row as csvSource', async () => {
    const file = join(dir, 'reviews.csv');
    await writeReviewsCsv(file, 6000, 5); // about 3.8 MB: several 1 MiB chunks, rows cut across them
    const got = await batches(file, 64);
    expect(Math.max(...got.map((b) => b.length))).toBe(64);
    expect(got.flat()).toEqual(await collect<SourceItem>(csvSource(file)));
  });
});

describe('readCsvKeys (the first pass decodes only the id column)', () => {
  it('gives each good row its custom_id as a Row source would, and rejections in place', async () => {
    const file = fileWith(dir, 'k.csv', 'n,key,text\n1,a,x\n2,"b,1",y\n3,"bad"q,z\n4,,w\n');
    const { columns, items } = await keys(file, 'key');
    expect(columns).toEqual(['n', 'key', 'text']);
    expect(items.map((i) => (i.kind === 'key' ? [i.index, i.id] : [i.index, i.code]))).toEqual([
      [1, 'a'],
      [2, 'b,1'],
      [3, 'BP_INPUT_PARSE'],
      [4, customIdFor(4, '')],
    ]);
    expect((await keys(file, undefined)).items.filter((i) => i.kind === 'key').map((i) => i.id)).toEqual([
      'row-1',
      'row-2',
      'row-4',
    ]);
  });

  it('fails with BP_ID_COLUMN_MISSING at the first row when the header lacks the id column', async () => {
    const file = fileWith(dir, 'nokey.csv', 'a,b\n1,2\n');
    await expect(keys(file, 'id')).rejects.toMatchObject({
      code: 'BP_ID_COLUMN_MISSING',
      context: { row: 1, column: 'id' },
    });
    expect((await keys(fileWith(dir, 'header-only.csv', 'a,b\n'), 'id')).columns).toBeUndefined();
  });
});
