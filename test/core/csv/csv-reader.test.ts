import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvReader, type CsvSettings } from '../../../src/core/csv/csv-reader.js';
import type { RowBatch } from '../../../src/core/rows/row-batch.js';
import { defaultCsvSettings, readRowBatches } from '../../../src/core/tables/table-reader.js';
import { csvSource } from '../../../src/sources/csv-source.js';
import type { SourceItem } from '../../../src/types.js';
import { writeReviewsCsv } from '../../fixtures/make-fixtures.js';
import { collect, fileWith, tempDir } from '../../helpers.js';

const dir = tempDir('bp-csv-reader-');
let files = 0;
const settings = (file: string, more: Partial<CsvSettings> = {}): CsvSettings => ({
  ...defaultCsvSettings(file),
  ...more,
});

/**
 * Every entry of every batch, as stream items, read once the whole file has been read: a batch points
 * into the bytes it was read from, which later reads must not overwrite.
 */
async function items(
  file: string,
  more: Partial<CsvSettings> = {},
): Promise<{ batches: number; items: SourceItem[] }> {
  const batches: RowBatch[] = [];
  for await (const batch of readRowBatches(file, file, new CsvReader(file, settings(file, more))))
    batches.push(batch);
  const out: SourceItem[] = [];
  for (const batch of batches) for (let i = 0; i < batch.length; i++) out.push(batch.item(i));
  return { batches: batches.length, items: out };
}

const cell = fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', 'é', '😀'), maxLength: 6 });
/** A CSV line: fields quoted or not (a bad quote or a missing field makes the row a rejection). */
const line = fc.tuple(cell, cell, fc.boolean(), fc.boolean()).map(([a, b, quoteA, drop]) => {
  const field = (v: string, quote: boolean) => (quote ? `"${v.replaceAll('"', '""')}"` : v);
  return drop ? field(a, quoteA) : `${field(a, quoteA)},${field(b, true)}`;
});

describe('CsvReader (the engine under csvSource: chunks of bytes in, batches of rows out)', () => {
  it('gives, batch by batch, exactly the items csvSource gives one by one (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 40 }), fc.boolean(), async (lines, relaxColumnCount) => {
        const file = fileWith(dir, `p${++files}.csv`, `key,text\n${lines.join('\n')}\n`);
        // An unclosed quote stops both with the same error.
        const expected = await collect<SourceItem>(csvSource(file, { relaxColumnCount })).catch(
          (e: Error) => e,
        );
        const got = await items(file, { relaxColumnCount }).catch((e: Error) => e);
        if (expected instanceof Error) {
          expect(got).toEqual(expected);
          return;
        }
        expect((got as { items: SourceItem[] }).items).toEqual(expected);
      }),
      { numRuns: 80 },
    );
  });

  it('reads a multi-megabyte file across chunk boundaries (each batch keeps its own bytes) as csv-parse does', async () => {
    const file = join(dir, 'reviews.csv');
    await writeReviewsCsv(file, 6000, 5); // about 3.8 MB: several 1 MiB chunks, rows cut across them
    const { batches, items: got } = await items(file);
    expect(batches).toBeGreaterThan(3);
    const reference = parse(await import('node:fs').then((fs) => fs.readFileSync(file)), {
      columns: true,
    }) as Array<Record<string, string>>;
    expect(got.map((item) => (item.kind === 'row' ? item.values : item))).toEqual(reference);
  });
});
