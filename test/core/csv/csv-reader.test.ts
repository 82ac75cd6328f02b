import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CsvReader, type CsvSettings } from '../../../src/core/csv/csv-reader.js';
import type { RowBatch } from '../../../src/core/rows/row-batch.js';
import { defaultCsvSettings, readRowBatches } from '../../../src/core/tables/table-reader.js';
import { csvSource } from '../../../src/sources/csv-source.js';
import type { SourceItem } from '../../../src/types.js';
import { csvField, writeReviewsCsv } from '../../fixtures/make-fixtures.js';
import { chunked, collect, fileWith, tempDir } from '../../helpers.js';

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

/**
 * Reads `bytes` through a CsvReader as a ChunkReader would hand them over, cut at `cuts`: each chunk
 * is what the last parse left unconsumed followed by the next piece. Items are read at once (each
 * chunk is a fresh buffer, so no later read overwrites a batch's bytes).
 */
function readInPieces(bytes: Buffer, cuts: number[], more: Partial<CsvSettings> = {}): SourceItem[] {
  const reader = new CsvReader('t.csv', settings('t.csv', more));
  const out: SourceItem[] = [];
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  points.push(bytes.length);
  let rest = Buffer.alloc(0);
  let from = 0;
  for (let k = 0; k < points.length; k++) {
    const last = k === points.length - 1;
    let chunk = Buffer.concat([rest, bytes.subarray(from, points[k])]);
    from = points[k]!;
    for (;;) {
      const parsed = reader.parse(chunk, last);
      if (parsed.batch) for (let i = 0; i < parsed.batch.length; i++) out.push(parsed.batch.item(i));
      chunk = Buffer.from(chunk.subarray(parsed.consumed));
      if (!parsed.stopped) break;
    }
    rest = chunk;
  }
  expect(rest.length).toBe(0);
  return out;
}

const EOLS = ['\n', '\r\n', '\r'] as const;
/** Cells with line ends of every kind inside (quoted), quotes, delimiters and odd text. */
const anyCell = fc.oneof(
  fc.string({ unit: fc.constantFrom('a', ' ', ',', '"', '\n', '\r', 'é', '😀'), maxLength: 8 }),
  fc.constantFrom('', '\r\n', '\n\r', '\r\r', 'a\rb', 'a\nb', 'x"y', ' spaced '),
);
/** Header names: plain, with spaces, quotes or commas, the names of Object.prototype, empty, repeated. */
const headerName = fc.oneof(
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z]{1,5}$/) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
      'col name',
      ' padded ',
      'say "hi"',
      'a,b',
      "it's",
      '{{x}}',
      '',
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
/** A table as text: every line ends with its own line end (one kind for the file, or mixed). */
const table = fc
  .integer({ min: 1, max: 4 })
  .chain((width) =>
    fc.record({
      header: fc.array(headerName, { minLength: width, maxLength: width }),
      rows: fc.array(fc.array(anyCell, { minLength: width, maxLength: width }), { maxLength: 10 }),
      eol: fc.oneof(fc.constantFrom(...EOLS), fc.constant('mixed' as const)),
      eols: fc.array(fc.constantFrom(...EOLS), { minLength: 12, maxLength: 12 }),
      finalEol: fc.boolean(),
      bom: fc.boolean(),
    }),
  )
  .map(({ header: names, rows, eol, eols, finalEol, bom }) => {
    // A header of one empty name is a blank line, skipped: the next line would be the header.
    const header = names.length === 1 && names[0] === '' ? ['x'] : names;
    // A row of one empty field is an empty line: both parsers skip those.
    const kept = rows.filter((r) => !(r.length === 1 && r[0] === ''));
    const lines = [header, ...kept].map((fields) => fields.map((f) => csvField(f)).join(','));
    let text = bom ? '\uFEFF' : '';
    lines.forEach((line, i) => {
      const end = eol === 'mixed' ? eols[i % eols.length]! : eol;
      text += line + (i < lines.length - 1 || finalEol ? end : '');
    });
    return { header, text, mixed: eol === 'mixed' };
  });

describe('CsvReader and csv-parse, whatever the line ends and the header (property)', () => {
  it('reads every row csv-parse reads (columns: true) for every header it accepts, cut anywhere', () => {
    fc.assert(
      fc.property(
        table,
        fc.array(fc.nat({ max: 400 }), { maxLength: 6 }),
        ({ header, text, mixed }, cuts) => {
          const bytes = Buffer.from(text);
          // Cuts after every CR too: a chunk may end between the CR and the LF of a CRLF.
          const crCuts = [...text.matchAll(/\r/g)].map((m) => Buffer.byteLength(text.slice(0, m.index + 1)));
          const got = (() => {
            try {
              return readInPieces(bytes, [...cuts, ...crCuts.filter((_, i) => i % 2 === 0)]);
            } catch (error) {
              return error as Error;
            }
          })();
          const firstBad = header.findIndex((name, i) => name === '' || header.indexOf(name) !== i);
          if (firstBad !== -1) {
            // Refused: an empty or repeated name stops the read, naming its position.
            expect(got).toMatchObject({ code: 'BP_INPUT_HEADER' });
            expect((got as Error).message).toContain(`column ${firstBad + 1} of the header`);
            return;
          }
          if (got instanceof Error) throw got;
          const expected = parse(bytes, {
            bom: true,
            columns: true,
            skip_empty_lines: true,
            relax_quotes: true,
            // One kind of line end: csv-parse finds it itself. Mixed: it is told every kind.
            ...(mixed ? { record_delimiter: ['\r\n', '\n', '\r'] } : {}),
          }) as Record<string, string>[];
          expect(got.filter((i) => i.kind === 'rejection')).toEqual([]);
          const values = got.map((i) => (i.kind === 'row' ? i.values : undefined));
          expect(values).toEqual(expected);
          // Names of Object.prototype are the row's own keys (in header order, but for the names JS
          // objects put first: integers).
          for (const row of values) expect(Object.keys(row!).sort()).toEqual([...header].sort());
          expect(got.map((i) => i.index)).toEqual(expected.map((_, i) => i + 1));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('numbers lines by CRLF, LF and CR alike, inside quotes too, across any cut', async () => {
    const text = 'id,text\r1,"a\nb"\r2,"c\r\nd\re"\r\n3,f\n\r\n4,g\r';
    const rows = readInPieces(Buffer.from(text), [9, 10, 17, 27, 28]);
    expect(rows.map((r) => [r.index, r.line, r.kind === 'row' ? r.values.text : r])).toEqual([
      [1, 2, 'a\nb'],
      [2, 4, 'c\r\nd\re'],
      [3, 7, 'f'],
      [4, 9, 'g'],
    ]);
    const streamed = await collect<SourceItem>(csvSource(chunked(text, 3), { name: 't.csv' }));
    expect(streamed).toEqual(rows);
  });

  it('reads every row of a CR-only file with newlines in quoted cells (it once read 0 rows)', async () => {
    const rows = Array.from({ length: 300 }, (_, i) => `${i},"line one\nline two ${i}"`);
    const file = fileWith(dir, `cr-${++files}.csv`, `id,text\r${rows.join('\r')}\r`);
    const got = (await collect<SourceItem>(csvSource(file))).filter((i) => i.kind === 'row');
    expect(got).toHaveLength(300);
    expect(got[299]).toMatchObject({ line: 600, values: { id: '299', text: 'line one\nline two 299' } });
  });

  it('never ends with 0 rows read in silence: a header that swallowed the file is an error', async () => {
    const file = fileWith(dir, `swallowed-${++files}.csv`, 'id,"text\n1,a\n2,b"\n');
    await expect(collect(csvSource(file))).rejects.toMatchObject({
      code: 'BP_INPUT_PARSE',
      context: { file, line: 1 },
      message: expect.stringContaining('no row was read: the header spans lines 1-3'),
    });
    // A header alone, or followed by blank lines only, is an empty table.
    const empty = fileWith(dir, `empty-${++files}.csv`, 'id,text\r\n\r\n\n\r');
    expect(await collect(csvSource(empty))).toEqual([]);
  });
});
