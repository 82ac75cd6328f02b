import { openAsBlob, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  Int64,
  Table,
  TimestampMillisecond,
  tableFromIPC,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import fc from 'fast-check';
import { ParquetFile } from 'parquet-wasm';
import { describe, expect, it } from 'vitest';
import { joinTable } from '../../src/jobs/join-table.js';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { resultSource } from '../../src/sources/result-source.js';
import { joinResults } from '../../src/transforms/join-results.js';
import { csvField } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { answerLine } from '../support/results.js';

// Joins from one format into another: the source's columns are made from the bytes they were read
// from (CSV fields, JSON Lines members, Arrow strings). Each case is checked against a reference
// that reads the same input another way (csv-parse, JSON.parse, apache-arrow, csv-stringify).

const dir = tempDir('bp-mixed-');
let files = 0;

/** A results file answering every other id. */
function results(ids: readonly string[]): string {
  const lines = ids
    .filter((_, i) => i % 2 === 0)
    .map((id) => answerLine({ custom_id: id, content: `a${id}` }));
  return fileWith(dir, `results-${++files}.jsonl`, `${lines.join('\n')}\n`);
}

/** The text columns of an Arrow IPC file (an absent one all null), and its status column. */
function arrowColumns(
  path: string,
  names: readonly string[],
): { columns: (string | null)[][]; status: string[] } {
  const table = tableFromIPC(readFileSync(path));
  const column = (name: string) =>
    Array.from({ length: table.numRows }, (_, i) => table.getChild(name)?.get(i) ?? null);
  return { columns: names.map(column) as (string | null)[][], status: column('status') as string[] };
}

/** The table written as an Arrow IPC file (named `in-<n>` unless named). */
function arrowFile(table: Table, name = `in-${++files}`): string {
  const path = join(dir, `${name}.arrow`);
  writeFileSync(path, tableToIPC(table, 'file'));
  return path;
}

async function parquetColumns(path: string, names: readonly string[]): Promise<(string | null)[][]> {
  const file = await ParquetFile.fromFile(await openAsBlob(path));
  const table = tableFromIPC((await file.read()).intoIPCStream());
  return names.map((name) =>
    Array.from({ length: table.numRows }, (_, i) => table.getChild(name)!.get(i) as string | null),
  );
}

const awkward = fc.string({
  unit: fc.constantFrom('x', ' ', ',', '"', '""', '\n', '\r\n', '\r', 'é', '😀', '中', "'", '\t'),
  maxLength: 12,
});

describe('CSV into Arrow and Parquet', () => {
  /** Writes the rows as CSV (`short[i]` fields left off row i's end), joins it, checks every cell. */
  async function check(rows: string[][], short: number[], relaxColumnCount: boolean, parquet = false) {
    const header = ['id', 'a', 'b', 'c'];
    const lines = rows.map((cells, i) =>
      [String(i + 1), ...cells]
        .slice(0, header.length - short[i]!)
        .map((f) => csvField(f))
        .join(','),
    );
    const source = fileWith(dir, `in-${++files}.csv`, `${header.join(',')}\n${lines.join('\n')}\n`);
    const ids = rows.map((_, i) => String(i + 1));
    const out = join(dir, `out-${files}.arrow`);
    await joinTable({ source, results: [results(ids)], out, idColumn: 'id', relaxColumnCount });
    // The reference: csv-parse's fields; a rejected row has no source cells.
    const parsed = (parse(readFileSync(source), { relax_column_count: true }) as string[][]).slice(1);
    const rejected = (i: number) => !relaxColumnCount && parsed[i]!.length !== header.length;
    if (rows.every((_, i) => rejected(i))) {
      // No row read: nothing tells the source's columns (as CSV output has none either).
      const names = tableFromIPC(readFileSync(out)).schema.fields.map((f) => f.name);
      expect(names).not.toContain('a');
      return;
    }
    const { columns, status } = arrowColumns(out, header);
    expect(status).toHaveLength(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const rejected = !relaxColumnCount && parsed[i]!.length !== header.length;
      expect(status[i] === 'rejected', `row ${i + 1} status ${status[i]}`).toBe(rejected);
      for (let c = 0; c < header.length; c++)
        expect(columns[c]![i], `row ${i + 1} column ${header[c]}`).toBe(
          rejected ? null : (parsed[i]![c] ?? ''),
        );
    }
    if (parquet) {
      const pq = join(dir, `out-${files}.parquet`);
      await joinTable({ source, results: [results(ids)], out: pq, idColumn: 'id', relaxColumnCount });
      expect(await parquetColumns(pq, header)).toEqual(columns);
    }
  }

  it('gives each field its text: doubled quotes, line breaks, empty fields, short rows, non-ASCII (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.tuple(awkward, awkward, awkward), fc.constantFrom(0, 0, 0, 1, 2)), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.boolean(),
        async (rows, relax) => {
          await check(
            rows.map(([cells]) => cells),
            rows.map(([, short]) => short),
            relax,
          );
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);

  it('writes the same cells into Parquet, across batches, with a rejected short row', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => [
      i % 7 === 0 ? '' : `say "hi" ${i}`,
      `line\nbreak é 😀 ${i}`,
      'x'.repeat(i % 90),
    ]);
    const short = rows.map((_, i) => (i === 4321 ? 2 : 0));
    await check(rows, short, false, true);
  }, 60_000);

  it('a row that is not UTF-8 is rejected: null source cells, the rows around it whole', async () => {
    const bytes = Buffer.concat([
      Buffer.from('id,a\n1,"q ""x"""\n2,'),
      Buffer.from([0xff, 0xfe, 0x41]),
      Buffer.from('\n3,é\n'),
    ]);
    const source = fileWith(dir, 'latin.csv', bytes);
    const out = join(dir, 'latin.arrow');
    await joinTable({ source, results: [results(['1', '2', '3'])], out, idColumn: 'id' });
    const { columns, status } = arrowColumns(out, ['id', 'a']);
    expect(status[1]).toBe('rejected');
    expect(columns).toEqual([
      ['1', null, '3'],
      ['q "x"', null, 'é'],
    ]);
  });
});

/** What the rows' columns hold as text: textOf of JSON.parse's value; null for null, absent, or a line that is not an object. */
function expected(lines: readonly string[], names: readonly string[]): (string | null)[][] {
  const objects = lines.map((line) => {
    try {
      const value = JSON.parse(line) as unknown;
      return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  });
  return names.map((name) =>
    objects.map((object) => {
      const value = object && Object.hasOwn(object, name) ? object[name] : undefined;
      if (value === null || value === undefined) return null;
      return typeof value === 'string'
        ? value
        : typeof value === 'object'
          ? JSON.stringify(value)
          : String(value);
    }),
  );
}

describe('JSON Lines into Arrow', () => {
  async function check(lines: string[], names: string[]): Promise<void> {
    const source = fileWith(dir, `in-${++files}.jsonl`, `${lines.join('\n')}\n`);
    const ids = lines.map((_, i) => String(i + 1));
    const out = join(dir, `out-${files}.arrow`);
    await joinTable({ source, results: [results(ids)], out, idColumn: 'id' });
    const { columns } = arrowColumns(out, names);
    const want = expected(lines, names);
    for (let c = 0; c < names.length; c++) expect(columns[c], names[c]).toEqual(want[c]);
  }

  it('gives strings with escapes, numbers, literals, nested values, absent members their text', async () => {
    const lines = [
      '{"id":1,"t":"plain é 😀","n":42,"b":true,"o":{"x":[1,"a"]}}',
      '{"id":2,"t":"say \\"hi\\"\\n\\ttab \\\\ back","n":1.50,"b":false,"o":null}',
      '{"id":3,"t":"\\u00e9 \\/ \\u2028 \\ud83d\\ude00","n":-0,"o":[]}',
      '{ "id" : 4 , "t" : "spaced" , "n" : 1e3 , "t" : "the last one" }',
      '{"id":5,"t":"","n":-17,"a.b":"dotted"}',
      '{"id":6,"a":{"b":"nested, not the dotted column"},"n":123456789012345}',
      '{"id":7,"t":"\\u0001\\b\\f\\r"}',
      '{"id":8,',
      '[1,2]',
      '{"id":10}',
    ];
    await check(lines, ['id', 't', 'n', 'b', 'o', 'a.b']);
  });

  it('gives any string its text (property)', async () => {
    const text = fc.string({
      unit: fc.constantFrom('x', ' ', '"', '\\', '/', '\n', '\t', '\u0001', '\u2028', 'é', '😀', '中'),
      maxLength: 16,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(text, fc.option(text), fc.integer({ min: -1e6, max: 1e6 })), {
          minLength: 1,
          maxLength: 30,
        }),
        async (rows) => {
          const lines = rows.map(([t, u, n], i) => {
            const row: Record<string, unknown> = { id: i + 1, t, n };
            if (u !== null) row.u = u;
            return JSON.stringify(row);
          });
          await check(lines, ['id', 't', 'u', 'n']);
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);
});

describe('JSON Lines into CSV', () => {
  /** Joins `lines` into CSV (a TSV with `tsv`) and checks each column's cells against JSON.parse's text (null: empty). */
  async function check(lines: string[], names: string[], tsv = false): Promise<void> {
    const source = fileWith(dir, `in-${++files}.jsonl`, `${lines.join('\n')}\n`);
    const ids = lines.map((_, i) => String(i + 1));
    const out = join(dir, `out-${files}.${tsv ? 'tsv' : 'csv'}`);
    await joinTable({ source, results: [results(ids)], out, idColumn: 'id' });
    const records = parse(readFileSync(out), {
      columns: true,
      delimiter: tsv ? '\t' : ',',
      relax_column_count: true,
    }) as Record<string, string>[];
    expect(records).toHaveLength(lines.length);
    const want = expected(lines, names);
    for (let c = 0; c < names.length; c++)
      expect(
        records.map((record) => record[names[c]!] ?? ''),
        names[c],
      ).toEqual(want[c]!.map((text) => text ?? ''));
  }

  it('gives strings with escapes, numbers, literals, nested values, absent members their text', async () => {
    const lines = [
      '{"id":1,"t":"plain é 😀, a comma","n":42,"b":true,"o":{"x":[1,"a,b"]}}',
      '{"id":2,"t":"say \\"hi\\"\\n\\ttab \\\\ back\\r\\n","n":1.50,"b":false,"o":null}',
      '{"id":3,"t":"\\u00e9 \\/ \\u2028 \\ud83d\\ude00 \\u0022","n":-0,"o":[]}',
      '{ "id" : 4 , "t" : "spaced" , "n" : 1e3 , "t" : "the last one" }',
      '{"id":5,"t":"","n":-17,"a.b":"dotted"}',
      '{"id":6,"a":{"b":"nested, not the dotted column"},"n":123456789012345}',
      '{"id":7,"t":"\\u0001\\b\\f\\r"}',
      '{"id":8,',
      '[1,2]',
      '{"id":10,"constructor":"own","toString":"x"}',
    ];
    await check(lines, ['id', 't', 'n', 'b', 'o', 'a.b', 'constructor', 'toString']);
  });

  it('gives any string its field, in CSV and TSV (property)', async () => {
    const text = fc.string({
      unit: fc.constantFrom('x', ' ', ',', '"', '\\', '/', '\n', '\r', '\t', '\u0001', '\u2028', 'é', '😀'),
      maxLength: 16,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(text, fc.option(text), fc.integer({ min: -1e6, max: 1e6 })), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.boolean(),
        async (rows, tsv) => {
          const lines = rows.map(([t, u, n], i) => {
            const row: Record<string, unknown> = { id: i + 1, t, n };
            if (u !== null) row.u = u;
            return JSON.stringify(row);
          });
          await check(lines, ['id', 't', 'u', 'n'], tsv);
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);
});

describe('Arrow into CSV', () => {
  it('writes string and timestamp cells as csv-stringify would, text by the type rules (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.option(awkward),
            fc.integer({ min: -1e14, max: 3e14 }),
            fc.constantFrom('', '', 'k', 'k,"v"'),
          ),
          { minLength: 1, maxLength: 30 },
        ),
        async (rows) => {
          const ids = rows.map((_, i) => String(i + 1));
          const table = new Table({
            id: vectorFromArray(ids, new Utf8()),
            s: vectorFromArray(
              rows.map(([s]) => s),
              new Utf8(),
            ),
            ts: vectorFromArray(
              rows.map(([, ms]) => ms),
              new TimestampMillisecond(),
            ),
            // Dictionary-encoded strings: written from their text.
            d: vectorFromArray(rows.map(([, , d]) => d)),
          });
          const source = arrowFile(table);
          const out = join(dir, `out-${files}.csv`);
          await joinTable({ source, results: [results(ids)], out, idColumn: 'id' });
          const text = readFileSync(out, 'utf8');
          const records = parse(text) as string[][];
          // Quoted exactly where csv-stringify quotes.
          expect(stringify(records)).toBe(text);
          expect(records[0]!.slice(0, 4)).toEqual(['id', 's', 'ts', 'd']);
          expect(records.slice(1).map((r) => r.slice(0, 4))).toEqual(
            rows.map(([s, ms, d], i) => [String(i + 1), s ?? '', new Date(ms).toISOString().slice(0, -1), d]),
          );
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);

  it('writes a column named __proto__ as its cells', async () => {
    const table = new Table({
      id: vectorFromArray(['1', '2'], new Utf8()),
      ['__proto__']: vectorFromArray(['p, 1', null], new Utf8()),
    });
    const source = arrowFile(table, 'proto');
    const out = join(dir, 'proto.csv');
    await joinTable({ source, results: [results(['1', '2'])], out, idColumn: 'id' });
    const records = parse(readFileSync(out)) as string[][];
    expect(records.map((r) => r.slice(0, 2))).toEqual([
      ['id', '__proto__'],
      ['1', 'p, 1'],
      ['2', ''],
    ]);
  });

  it('quotes integers and timestamps that hold the delimiter ("-", ":")', async () => {
    const table = new Table({
      id: vectorFromArray(['1', '2', '3'], new Utf8()),
      n: vectorFromArray([-5n, 7n, -(2n ** 60n)], new Int64()),
      ts: vectorFromArray([0, -86_400_001, 1_700_000_000_123], new TimestampMillisecond()),
      s: vectorFromArray(['a-b', 'c:d', null], new Utf8()),
    });
    const source = arrowFile(table, 'delimited');
    const answers = results(['1', '2', '3']);
    for (const delimiter of ['-', ':', ';']) {
      const out = join(dir, `delimited-${delimiter === ':' ? 'colon' : delimiter}.csv`);
      await pipeline(
        resultSource([answers]),
        joinResults({ source, idColumn: 'id' }),
        csvSink(out, { delimiter }),
      );
      const text = readFileSync(out, 'utf8');
      const records = parse(text, { delimiter }) as string[][];
      expect(stringify(records, { delimiter })).toBe(text);
      expect(records.slice(1).map((r) => r.slice(0, 4))).toEqual([
        ['1', '-5', '1970-01-01T00:00:00.000', 'a-b'],
        ['2', '7', '1969-12-30T23:59:59.999', 'c:d'],
        ['3', String(-(2n ** 60n)), '2023-11-14T22:13:20.123', ''],
      ]);
    }
  });
});

describe('Arrow into JSON Lines', () => {
  const text = fc.string({
    unit: fc.constantFrom(
      'x',
      ' ',
      '"',
      '\\',
      '/',
      '\n',
      '\t',
      '\u0001',
      '\u007f',
      '\u2028',
      'é',
      '😀',
      '中',
    ),
    maxLength: 40,
  });

  it('writes each row as JSON.stringify writes its values: strings escaped from their bytes, int64 exact, timestamps as text (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.option(text), fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }), fc.integer()), {
          minLength: 1,
          maxLength: 30,
        }),
        async (rows) => {
          const ids = rows.map((_, i) => String(i + 1));
          const table = new Table({
            id: vectorFromArray(ids, new Utf8()),
            s: vectorFromArray(
              rows.map(([s]) => s),
              new Utf8(),
            ),
            n: vectorFromArray(
              rows.map(([, n]) => n),
              new Int64(),
            ),
            ts: vectorFromArray(
              rows.map(([, , ms]) => ms),
              new TimestampMillisecond(),
            ),
          });
          const source = arrowFile(table);
          const out = join(dir, `out-${files}.jsonl`);
          await joinTable({ source, results: [results(ids)], out, idColumn: 'id' });
          const lines = readFileSync(out, 'utf8').split('\n').slice(0, -1);
          expect(lines).toHaveLength(rows.length);
          for (let i = 0; i < rows.length; i++) {
            const [s, n, ms] = rows[i]!;
            const row = JSON.parse(lines[i]!) as Record<string, unknown>;
            // The line is JSON.stringify's own text of what it holds, member order included.
            expect(lines[i]).toBe(JSON.stringify(row));
            expect(Object.keys(row).slice(0, 4)).toEqual(['id', 's', 'n', 'ts']);
            expect(row.id).toBe(String(i + 1));
            expect(row.s).toBe(s);
            expect(row.n).toEqual(Number.isSafeInteger(Number(n)) ? Number(n) : String(n));
            expect(row.ts).toBe(new Date(ms).toISOString().slice(0, -1));
            expect(row.status).toBe(i % 2 === 0 ? 'ok' : 'missing');
          }
        },
      ),
      { numRuns: 12 },
    );
  }, 120_000);

  it('writes rows with a column named 0 (an object lists it first) as JSON.stringify does', async () => {
    const table = new Table({
      id: vectorFromArray(['1', '2'], new Utf8()),
      '0': vectorFromArray(['zero', null], new Utf8()),
      s: vectorFromArray(['a "b"', 'c\nd'], new Utf8()),
    });
    const source = arrowFile(table, 'index-name');
    const out = join(dir, 'index-name.jsonl');
    await joinTable({ source, results: [results(['1', '2'])], out, idColumn: 'id' });
    const lines = readFileSync(out, 'utf8').split('\n').slice(0, -1);
    const rows = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toEqual(rows.map((row) => JSON.stringify(row)));
    expect(rows.map((row) => [row['0'], row.id, row.s])).toEqual([
      ['zero', '1', 'a "b"'],
      [null, '2', 'c\nd'],
    ]);
  });
});

describe('Result cells into JSON Lines', () => {
  const text = fc.string({
    unit: fc.constantFrom('x', ' ', '"', '\\', '\n', '\t', '\u0001', '\u2028', 'é', '😀', '中'),
    maxLength: 24,
  });

  it('writes any answer text as JSON.stringify does, from CSV, JSON Lines and Arrow sources, a rejected row included (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(text, { minLength: 1, maxLength: 20 }), async (answers) => {
        const ids = answers.map((_, i) => String(i + 1));
        const lines = answers.map((content, i) => answerLine({ custom_id: ids[i]!, content }));
        const resultsFile = fileWith(dir, `answers-${++files}.jsonl`, `${lines.join('\n')}\n`);
        // Row 1 of the CSV is not UTF-8: rejected, its source column empty, its answer still joined.
        const rest = ids
          .slice(1)
          .map((id) => `${id},v${id}\n`)
          .join('');
        const csv = fileWith(
          dir,
          `in-${files}.csv`,
          Buffer.concat([Buffer.from('id,a\n1,'), Buffer.from([0xff, 0xfe]), Buffer.from(`\n${rest}`)]),
        );
        const jsonl = fileWith(
          dir,
          `in-${files}.jsonl`,
          `${ids.map((id) => JSON.stringify({ id, a: `v${id}` })).join('\n')}\n`,
        );
        const arrow = arrowFile(
          new Table({
            id: vectorFromArray(ids, new Utf8()),
            a: vectorFromArray(
              ids.map((id) => `v${id}`),
              new Utf8(),
            ),
          }),
        );
        for (const source of [csv, jsonl, arrow]) {
          const out = join(dir, `out-${++files}.jsonl`);
          await joinTable({ source, results: [resultsFile], out, idColumn: 'id' });
          const written = readFileSync(out, 'utf8').split('\n').slice(0, -1);
          expect(written).toHaveLength(answers.length);
          for (let i = 0; i < answers.length; i++) {
            const row = JSON.parse(written[i]!) as Record<string, unknown>;
            expect(written[i]).toBe(JSON.stringify(row));
            const rejected = source === csv && i === 0;
            expect(row.status, `${source} row ${i + 1}`).toBe(rejected ? 'rejected' : 'ok');
            // With no row read, nothing tells the source's columns (as in CSV output).
            if (rejected) expect(row.a).toBe(answers.length === 1 ? undefined : '');
            else {
              expect(row.a).toBe(`v${ids[i]}`);
              expect(row.content).toBe(answers[i]);
            }
          }
        }
      }),
      { numRuns: 12 },
    );
  }, 120_000);
});

describe('Columns made batch after batch in the same memory', () => {
  // Parquet's writer copies each batch, so the next batch's text columns reuse its buffers; a CSV
  // sink writes a batch before the next. Texts long in some batches and short in the next, with
  // nulls, so a buffer reused for less holds stale bytes past what is written.
  const lines = Array.from({ length: 12_000 }, (_, i) => {
    const long = Math.floor(i / 1500) % 2 === 0;
    const t = i % 13 === 0 ? null : long ? `${'long é '.repeat(40)}${i}` : `s${i}`;
    const u = i % 17 === 0 ? undefined : `say "hi" ${long ? 'x'.repeat(i % 200) : ''}\n${i}`;
    return JSON.stringify({ id: i + 1, t, ...(u === undefined ? {} : { u }) });
  });
  const names = ['t', 'u'];

  it('JSON Lines into Parquet and CSV: every cell as JSON.parse reads it', async () => {
    const source = fileWith(dir, `in-${++files}.jsonl`, `${lines.join('\n')}\n`);
    const ids = lines.map((_, i) => String(i + 1));
    const answered = results(ids);
    const want = expected(lines, names);
    const parquet = join(dir, `out-${++files}.parquet`);
    await joinTable({ source, results: [answered], out: parquet, idColumn: 'id' });
    expect(await parquetColumns(parquet, names)).toEqual(want);
    const csv = join(dir, `out-${++files}.csv`);
    await joinTable({ source, results: [answered], out: csv, idColumn: 'id' });
    const records = parse(readFileSync(csv), { columns: true }) as Record<string, string>[];
    for (let c = 0; c < names.length; c++)
      expect(records.map((record) => record[names[c]!]!)).toEqual(want[c]!.map((text) => text ?? ''));
  }, 60_000);

  it('CSV into Parquet: every field as csv-parse reads it', async () => {
    const rows = lines.map((line) => JSON.parse(line) as { id: number; t: string | null; u?: string });
    const text = stringify([['id', 't', 'u'], ...rows.map((r) => [r.id, r.t ?? '', r.u ?? ''])]);
    const source = fileWith(dir, `in-${++files}.csv`, text);
    const out = join(dir, `out-${++files}.parquet`);
    await joinTable({ source, results: [results(rows.map((r) => String(r.id)))], out, idColumn: 'id' });
    expect(await parquetColumns(out, names)).toEqual([
      rows.map((r) => r.t ?? ''),
      rows.map((r) => r.u ?? ''),
    ]);
  }, 60_000);
});
