import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchpipeError } from '../../src/errors.js';
import { csvSource } from '../../src/sources/csv-source.js';
import type { Rejection, Row, SourceItem } from '../../src/types.js';
import { csvText, reviewRows } from '../fixtures/make-fixtures.js';
import { chunked, collect, fileWith, tempDir } from '../helpers.js';

const dir = tempDir();
const rowsOf = (items: SourceItem[]) => items.filter((i): i is Row => i.kind === 'row');
const rejectionsOf = (items: SourceItem[]) => items.filter((i): i is Rejection => i.kind === 'rejection');

describe('csvSource', () => {
  it('reads headers, quoted newlines, doubled quotes, unicode and numbers rows from 1', async () => {
    const path = fileWith(dir, 'a.csv', 'id,text\n1,"hello\nworld"\n2,"say ""hi"" 😀, ok"\n3,naïve\n');
    const items = await collect<SourceItem>(csvSource(path));
    expect(items).toEqual([
      { kind: 'row', index: 1, file: path, line: 2, values: { id: '1', text: 'hello\nworld' } },
      { kind: 'row', index: 2, file: path, line: 4, values: { id: '2', text: 'say "hi" 😀, ok' } },
      { kind: 'row', index: 3, file: path, line: 5, values: { id: '3', text: 'naïve' } },
    ]);
  });

  it('strips a BOM and reads CRLF line ends, keeping CRLF inside quoted fields', async () => {
    const path = fileWith(dir, 'crlf.csv', '\uFEFFid,text\r\n1,"a\r\nb"\r\n2,plain\r\n');
    const rows = rowsOf(await collect(csvSource(path)));
    expect(rows.map((r) => r.values)).toEqual([
      { id: '1', text: 'a\r\nb' },
      { id: '2', text: 'plain' },
    ]);
    expect(Object.keys(rows[0]!.values)).toEqual(['id', 'text']);
    expect(rows.map((r) => r.line)).toEqual([2, 4]);
  });

  it('skips empty lines but counts them in line numbers', async () => {
    const path = fileWith(dir, 'empty.csv', 'id,text\n\n1,a\r\n\r\n\n2,b\n\n');
    const rows = rowsOf(await collect(csvSource(path)));
    expect(rows.map((r) => [r.index, r.line, r.values.id])).toEqual([
      [1, 3, '1'],
      [2, 6, '2'],
    ]);
  });

  it('reads CR-only line ends (old spreadsheets)', async () => {
    const path = fileWith(dir, 'cr.csv', 'id,text\r1,a\r2,"b\rc"\r');
    const rows = rowsOf(await collect(csvSource(path)));
    expect(rows.map((r) => [r.line, r.values.text])).toEqual([
      [2, 'a'],
      [3, 'b\rc'],
    ]);
  });

  it('takes tabs for .tsv files and any one-character delimiter', async () => {
    const tsv = fileWith(dir, 'a.tsv', 'id\ttext\n1\ta,b\n');
    expect(rowsOf(await collect(csvSource(tsv)))[0]!.values).toEqual({ id: '1', text: 'a,b' });
    const semi = fileWith(dir, 'semi.csv', 'id;text\n1;"a;b"\n');
    expect(rowsOf(await collect(csvSource(semi, { delimiter: ';' })))[0]!.values).toEqual({
      id: '1',
      text: 'a;b',
    });
  });

  it('names columns when there is no header; the columns option names them instead of the header', async () => {
    const path = fileWith(dir, 'nohead.csv', 'x,y\n');
    expect(rowsOf(await collect(csvSource(path, { header: false })))[0]!.values).toEqual({
      column_1: 'x',
      column_2: 'y',
    });
    const given = await collect<SourceItem>(csvSource(path, { header: false, columns: ['a', 'b'] }));
    expect(rowsOf(given)[0]!.values).toEqual({ a: 'x', b: 'y' });
    // With a header, the columns option replaces it: the header row is not read as data.
    const blank = fileWith(dir, 'blank-header.csv', ',id\n0,1\n');
    const named = await collect<SourceItem>(csvSource(blank, { columns: ['n', 'id'] }));
    expect(named).toEqual([{ kind: 'row', index: 1, file: blank, line: 2, values: { n: '0', id: '1' } }]);
  });

  it('refuses an empty or repeated column name, giving its position and the file (never a rename)', async () => {
    const blank = fileWith(dir, 'blank-name.csv', 'id,,text\n0,1,2\n');
    await expect(collect(csvSource(blank))).rejects.toMatchObject({
      code: 'BP_INPUT_HEADER',
      context: { file: blank, line: 1 },
      message: `${blank}:1: column 2 of the header has no name; name the columns with the columns option`,
    });
    const tsv = fileWith(dir, 'dup-name.tsv', 'id\ttext\tid\n1\t2\t3\n');
    await expect(collect(csvSource(tsv))).rejects.toMatchObject({
      code: 'BP_INPUT_HEADER',
      context: { file: tsv, line: 1, column: 'id' },
      message: expect.stringContaining('column 3 of the header, "id", repeats column 1'),
    });
    // A columns option with the same fault is refused when the source is made.
    expect(() => csvSource(tsv, { columns: ['a', 'b', 'a'] })).toThrow(
      /column 3 of the columns option, "a", repeats column 1/,
    );
    expect(() => csvSource(tsv, { columns: ['a', '', 'b'] })).toThrow(
      expect.objectContaining({ code: 'BP_INVALID_OPTION' }),
    );
    const fixed = await collect<SourceItem>(csvSource(tsv, { columns: ['id', 'text', 'id2'] }));
    expect(rowsOf(fixed)[0]!.values).toEqual({ id: '1', text: '2', id2: '3' });
  });

  it('refuses a header with malformed quotes', async () => {
    const path = fileWith(dir, 'bad-header.csv', 'id,"text"x\n1,2\n');
    await expect(collect(csvSource(path))).rejects.toMatchObject({
      code: 'BP_INPUT_HEADER',
      context: { line: 1 },
    });
  });

  it('rejects a row with the wrong field count and keeps going', async () => {
    const path = fileWith(dir, 'count.csv', 'id,text\n1,a\n2\n3,c,extra\n4,d\n');
    const items = await collect<SourceItem>(csvSource(path));
    expect(rowsOf(items).map((r) => r.values.id)).toEqual(['1', '4']);
    expect(rejectionsOf(items).map((r) => [r.index, r.line, r.code])).toEqual([
      [2, 3, 'BP_ROW_FIELD_COUNT'],
      [3, 4, 'BP_ROW_FIELD_COUNT'],
    ]);
    expect(rejectionsOf(items)[0]!.message).toBe('expected 2 fields (id, text), got 1');
  });

  it('pads and trims rows with relaxColumnCount', async () => {
    const path = fileWith(dir, 'relax.csv', 'id,text\n1\n2,b,c\n');
    const rows = rowsOf(await collect(csvSource(path, { relaxColumnCount: true })));
    expect(rows.map((r) => r.values)).toEqual([
      { id: '1', text: '' },
      { id: '2', text: 'b' },
    ]);
  });

  it('rejects a row with garbage after a closing quote without swallowing the next rows', async () => {
    const path = fileWith(dir, 'quotes.csv', 'id,text\n1,"a"b\n2,"ok"\n3,c\n');
    const items = await collect<SourceItem>(csvSource(path));
    expect(rejectionsOf(items).map((r) => [r.index, r.line, r.code])).toEqual([[1, 2, 'BP_INPUT_PARSE']]);
    expect(rowsOf(items).map((r) => r.values)).toEqual([
      { id: '2', text: 'ok' },
      { id: '3', text: 'c' },
    ]);
  });

  it('reads a quote inside an unquoted field as a character', async () => {
    const path = fileWith(dir, 'inch.csv', 'id,height\n1,5\'10"\n');
    expect(rowsOf(await collect(csvSource(path)))[0]!.values.height).toBe('5\'10"');
  });

  it('fails on a quote that is never closed, naming the line where it opened', async () => {
    const path = fileWith(dir, 'open.csv', 'id,text\n1,a\n2,"never\nclosed\n3,c\n');
    const error = await collect(csvSource(path)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchpipeError);
    expect(error).toMatchObject({ code: 'BP_INPUT_PARSE', context: { file: path, line: 3 } });
    expect(String((error as Error).message)).toContain(`${path}:3:`);
  });

  it('stops at a row longer than maxRowSize', async () => {
    const path = fileWith(dir, 'huge.csv', `id,text\n1,"${'x'.repeat(5000)}\n`);
    await expect(collect(csvSource(path, { maxRowSize: 1000 }))).rejects.toMatchObject({
      code: 'BP_ROW_TOO_LARGE',
      context: { line: 2 },
    });
  });

  it('with badRows "fail", stops at the first malformed row', async () => {
    const path = fileWith(dir, 'fail.csv', 'id,text\n1,a\n2\n');
    await expect(collect(csvSource(path, { badRows: 'fail' }))).rejects.toMatchObject({
      code: 'BP_ROW_FIELD_COUNT',
      context: { file: path, line: 3, row: 2 },
    });
  });

  it('rejects a row that is not valid UTF-8 and reads other encodings when told', async () => {
    const bad = Buffer.concat([
      Buffer.from('id,text\n1,ok\n2,'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\n3,fine\n'),
    ]);
    const items = await collect<SourceItem>(csvSource(fileWith(dir, 'bad-utf8.csv', bad)));
    expect(rejectionsOf(items).map((r) => [r.index, r.line, r.code, r.message])).toEqual([
      [2, 3, 'BP_INPUT_ENCODING', 'row is not valid UTF-8 (column "text", field 2); set the encoding option'],
    ]);
    expect(rowsOf(items).map((r) => r.values.text)).toEqual(['ok', 'fine']);
    const latin1 = fileWith(dir, 'latin1.csv', Buffer.from('id,text\n1,caf\xe9\n', 'latin1'));
    expect(rowsOf(await collect(csvSource(latin1, { encoding: 'latin1' })))[0]!.values.text).toBe('café');
  });

  it('checks options once, at call time', () => {
    expect(() => csvSource('x.csv', { delimiter: ';;' })).toThrow(/csvSource: option "delimiter"/);
    expect(() => csvSource('x.csv', { encoding: 'klingon' })).toThrow(BatchpipeError);
  });

  it('names a missing file', async () => {
    await expect(collect(csvSource(`${dir}/nope.csv`))).rejects.toMatchObject({ code: 'BP_INPUT_NOT_FOUND' });
  });

  it('reads a stream as it reads a file, whatever the chunk boundaries', async () => {
    const rows = reviewRows(40, 7);
    const text = csvText(
      ['id', 'review', 'rating', 'product'],
      rows.map((r) => [r.id, r.review, r.rating, r.product]),
      { eol: '\r\n', bom: true },
    );
    const fromFile = await collect<SourceItem>(csvSource(fileWith(dir, 'reviews.csv', text)));
    for (const size of [1, 2, 3, 7, 64, 4096]) {
      const fromStream = await collect<SourceItem>(
        csvSource(chunked(text, size), { name: fromFile[0]!.file }),
      );
      expect(fromStream).toEqual(fromFile);
    }
    expect(rowsOf(fromFile).map((r) => r.values.review)).toEqual(rows.map((r) => r.review));
  });

  it('stops reading when the consumer stops (destroy closes the file)', async () => {
    const rows = reviewRows(2000, 3);
    const path = fileWith(
      dir,
      'big.csv',
      csvText(
        ['id', 'review', 'rating', 'product'],
        rows.map((r) => [r.id, r.review, r.rating, r.product]),
      ),
    );
    const source = csvSource(path);
    let seen = 0;
    for await (const _ of source) if (++seen === 5) break;
    expect(seen).toBe(5);
    expect(source.destroyed).toBe(true);
  });

  it('agrees with csv-parse on any well-formed table (property)', async () => {
    const cell = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.constantFrom('', '"', '""', ',', '\n', '\r\n', ' a ', 'x"y', '😀,\n"'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 5 })
          .chain((width) =>
            fc.tuple(
              fc.uniqueArray(fc.stringMatching(/^[a-z]{1,6}$/), { minLength: width, maxLength: width }),
              fc.array(fc.array(cell, { minLength: width, maxLength: width }), { maxLength: 12 }),
            ),
          ),
        fc.constantFrom('\n', '\r\n', '\r'),
        fc.integer({ min: 1, max: 50 }),
        async ([header, rows], eol, chunk) => {
          // A row of one empty field is an empty line: both parsers skip those.
          const table = rows.filter((r) => !(r.length === 1 && r[0] === ''));
          const text = csvText(header, table, { eol });
          const expected = parse(text, {
            columns: true,
            skip_empty_lines: true,
            relax_quotes: true,
          }) as Record<string, string>[];
          const got = rowsOf(await collect(csvSource(chunked(text, chunk))));
          expect(got.map((r) => r.values)).toEqual(expected);
          expect(got.map((r) => r.index)).toEqual(expected.map((_, i) => i + 1));
        },
      ),
      { numRuns: 200 },
    );
  });
});
