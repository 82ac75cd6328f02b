/**
 * The row hash prepare stores (hashed where the renderer wrote each cell, on the main thread and on
 * render threads) equals the one the join makes when it reads the row again (RowHasher: a CSV cell in
 * place when escaping would not change it, else its escaped text; on the join's hash thread past 16,384
 * rows), for any text: quotes, backslashes, control characters, multi-byte characters, empty cells.
 * And a join of that table marks exactly the rows edited since.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RowHash, RowHasher, rowHashText } from '../../../src/core/requests/row-hash.js';
import { defaultRowParser, readRowBatches } from '../../../src/core/tables/table-reader.js';
import { joinTable } from '../../../src/jobs/join-table.js';
import { prepare } from '../../../src/jobs/prepare.js';
import { ROW_HASHES_FILE } from '../../../src/run/index.js';
import { csvText } from '../../fixtures/make-fixtures.js';
import { tempDir } from '../../helpers.js';
import { answerLine } from '../../support/results.js';

const dir = tempDir('bp-row-hash-');
const PIECES = [
  'plain',
  ' ',
  'é',
  '日本',
  '👍🏽',
  '"',
  '""',
  '\\',
  '\t',
  '\n',
  '\r\n',
  '\u0001',
  'x'.repeat(9),
  '',
];
const text = fc.array(fc.constantFrom(...PIECES), { maxLength: 12 }).map((parts) => parts.join(''));

/** The stored hashes of a row-hashes file, by custom_id. */
function stored(file: string): Map<string, string> {
  const lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
  return new Map(
    lines.map((l) => [
      JSON.parse(l.slice(0, l.lastIndexOf('\t'))) as string,
      l.slice(l.lastIndexOf('\t') + 1),
    ]),
  );
}

/** What RowHasher makes of each row of a table, by row-<n>. */
async function rehashed(file: string, columns: string[]): Promise<Map<string, string>> {
  const hasher = new RowHasher(columns);
  const out = new Map<string, string>();
  for await (const rows of readRowBatches(file, file, defaultRowParser(file))) {
    for (let i = 0; i < rows.length; i++) out.set(`row-${rows.index(i)}`, rowHashText(hasher.hash(rows, i)));
    rows.release();
  }
  return out;
}

describe('row hashes', () => {
  it('a cell hashed in place equals its escaped text hashed (plainCell refuses what escaping changes)', () => {
    fc.assert(
      fc.property(text, (value) => {
        const bytes = Buffer.from(value);
        const escaped = Buffer.from(JSON.stringify(value).slice(1, -1));
        const inPlace = new RowHash();
        const written = new RowHash();
        written.cell(escaped, 0, escaped.length);
        if (inPlace.plainCell(bytes, 0, bytes.length)) {
          expect(escaped.equals(bytes)).toBe(true);
          expect(inPlace.value()).toBe(written.value());
        } else expect(escaped.equals(bytes)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('a CSV cell hashed from its bytes as read equals its escaped text hashed (doubled quotes read as one)', () => {
    fc.assert(
      fc.property(text, (value) => {
        const escaped = Buffer.from(JSON.stringify(value).slice(1, -1));
        const written = new RowHash();
        written.cell(escaped, 0, escaped.length);
        const doubled = value.includes('"');
        const raw = Buffer.from(doubled ? value.replaceAll('"', '""') : value);
        const read = new RowHash();
        read.csvCell(raw, 0, raw.length, doubled ? 0x22 : -1);
        expect(read.value()).toBe(written.value());
      }),
      { numRuns: 2000 },
    );
  });

  it('a CSV cell copied as its JSON text (copyCsvCell) writes that text and hashes it, or refuses a text that grows', () => {
    fc.assert(
      fc.property(text, fc.nat(7), (value, offset) => {
        const escaped = Buffer.from(JSON.stringify(value).slice(1, -1));
        const written = new RowHash();
        written.cell(escaped, 0, escaped.length);
        const doubled = value.includes('"');
        const raw = Buffer.from(doubled ? value.replaceAll('"', '""') : value);
        // Read and written at any alignment, in shared memory as the render threads do.
        const src = Buffer.from(new SharedArrayBuffer(raw.length + 8)).subarray(offset % 4);
        raw.copy(src, 0);
        const out = Buffer.from(new SharedArrayBuffer(raw.length + 16));
        const copied = new RowHash();
        const at = offset;
        if (copied.copyCsvCell(src, 0, raw.length, doubled ? 0x22 : -1, out, at)) {
          expect(out.subarray(at, at + raw.length)).toEqual(escaped);
          expect(copied.value()).toBe(written.value());
        } else {
          // Refused only where the JSON text is longer than the bytes read.
          expect(escaped.length).toBeGreaterThan(raw.length);
          // Refused: nothing was added.
          expect(copied.value()).toBe(new RowHash().value());
        }
      }),
      { numRuns: 4000 },
    );
  });

  it('prepare and the join hash every row alike, CSV and JSON Lines, across 20,000 rows (threads on both sides)', async () => {
    const values = fc.sample(fc.tuple(text, text), { numRuns: 20_000, seed: 7 });
    const csv = join(dir, 'table.csv');
    writeFileSync(
      csv,
      csvText(
        ['a', 'b'],
        values.map(([a, b]) => [a, b]),
      ),
    );
    const jsonl = join(dir, 'table.jsonl');
    writeFileSync(jsonl, `${values.map(([a, b]) => JSON.stringify({ a, b })).join('\n')}\n`);
    for (const table of [csv, jsonl]) {
      const outDir = join(dir, `prepared-${table.endsWith('.csv') ? 'csv' : 'jsonl'}`);
      await prepare(table, { outDir, template: '{{a}} and {{b}}, then {{a}}', model: 'qwen-plus' });
      const hashes = stored(join(outDir, ROW_HASHES_FILE));
      expect(hashes.size).toBe(values.length);
      const again = await rehashed(table, ['a', 'b', 'a']);
      expect(again).toEqual(hashes);
    }
  });

  it('a join over 20,000 rows marks exactly the edited rows stale (the hash thread past 16,384 rows)', async () => {
    const rows = Array.from({ length: 20_000 }, (_, i) => [
      `text ${i}`,
      i % 3 === 0 ? `with "quotes" ${i}` : `plain ${i}`,
    ]);
    const table = join(dir, 'join.csv');
    writeFileSync(table, csvText(['a', 'b'], rows));
    const outDir = join(dir, 'prepared-join');
    await prepare(table, { outDir, template: '{{a}}: {{b}}', model: 'qwen-plus' });
    const results = join(dir, 'results.jsonl');
    writeFileSync(
      results,
      `${rows.map((_, i) => answerLine({ custom_id: `row-${i + 1}`, content: `answer ${i}`, n: i })).join('\n')}\n`,
    );
    const edited = [2, 3, 17_000, 19_999];
    for (const i of edited) rows[i]![i % 2 === 0 ? 0 : 1] += ' (edited)';
    writeFileSync(table, csvText(['a', 'b'], rows));
    const joined = await joinTable({
      source: table,
      results: [results],
      rowHashes: [join(outDir, ROW_HASHES_FILE)],
      allowStale: true,
      out: join(dir, 'joined.jsonl'),
    });
    expect(joined.statuses).toMatchObject({ ok: rows.length - edited.length, stale: edited.length });
    const stale = readFileSync(join(dir, 'joined.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .flatMap((line, i) => ((JSON.parse(line) as { status: string }).status === 'stale' ? [i] : []));
    expect(stale).toEqual(edited);
  });
});
