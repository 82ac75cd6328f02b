import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { MAX_RANGE_ROWS, rangeRowsFor, rowNumberAt, rowNumberOf } from '../../../src/core/join/row-ranges.js';
import { prepare } from '../../../src/jobs/prepare.js';
import { csvSource } from '../../../src/sources/csv-source.js';
import { jsonlSource } from '../../../src/sources/jsonl-source.js';
import { resultSource } from '../../../src/sources/result-source.js';
import { inRowOrder } from '../../../src/streams/batch-protocol.js';
import { joinResults } from '../../../src/transforms/join-results.js';
import type { Row } from '../../../src/types.js';
import { tempDir } from '../../helpers.js';
import { answerLine, errorLine, seeded, shuffle } from '../../support/results.js';

const dir = tempDir('bp-row-ranges-');

/** The joined rows (index, values) and the summary of a join of `results` onto `source`. */
async function joined(
  results: string[],
  source: Parameters<typeof joinResults>[0]['source'],
  rejections: string[],
  rowHashes: string[] = [],
) {
  const stage = joinResults({ source, rejections, rowHashes, tempDir: dir, partitions: 8 });
  const rows: Array<[number, Record<string, unknown>]> = [];
  await pipeline(resultSource(results), stage, async (out: AsyncIterable<Row>) => {
    for await (const row of out) rows.push([row.index, row.values]);
  });
  return { rows, summary: stage.summary! };
}

/**
 * Results for a table of `rows` rows: most rows answered once (shuffled), some never, some retried
 * after an error, some answered twice (the later of a tie wins); rows past the table (in its last
 * range and in ranges beyond it), and ids no row has (`row-0`, `row-01`, `x`, a 14-digit row).
 */
function resultLines(rows: number, seed: number): string[] {
  const random = seeded(seed);
  const lines: string[] = [];
  for (let n = 1; n <= rows; n++) {
    const draw = random();
    const id = `row-${n}`;
    if (draw < 0.05) continue;
    if (draw < 0.08)
      lines.push(errorLine(id, 'http', n), answerLine({ custom_id: id, content: `retried ${n}`, n }));
    else if (draw < 0.1)
      lines.push(
        answerLine({ custom_id: id, content: `first ${n}`, n }),
        answerLine({ custom_id: id, content: `second ${n}`, n }),
      );
    else if (draw < 0.12) lines.push(errorLine(id, 'expired', n));
    else lines.push(answerLine({ custom_id: id, content: `answer ${n}`, n, prompt_tokens: n % 300 }));
  }
  for (const n of [rows + 1, rows + 2, rows + 2, rows + MAX_RANGE_ROWS * 2 + 7])
    lines.push(answerLine({ custom_id: `row-${n}`, content: 'no such row' }));
  for (const id of ['row-0', 'row-01', 'x', 'row-12345678901234', 'row-+5', 'x'])
    lines.push(answerLine({ custom_id: id, content: 'no such id' }));
  return shuffle(lines, random);
}

describe('a join by row ranges', () => {
  it('reads row numbers only from ids customIdFor makes', () => {
    for (const [id, n] of [
      ['row-1', 1],
      ['row-65536', 65536],
      ['row-4294967296', 4294967296],
      ['row-4294967297', 0],
      ['row-1234567890123', 0],
      ['row-0', 0],
      ['row-01', 0],
      ['row-', 0],
      ['row-1a', 0],
      ['row-+5', 0],
      ['Row-5', 0],
      ['row-12345678901234', 0],
      ['x', 0],
    ] as const) {
      expect(rowNumberOf(id)).toBe(n);
      const bytes = Buffer.from(`"${id}"`);
      expect(rowNumberAt(bytes, 1, bytes.length - 1)).toBe(n);
    }
  });

  it('sizes ranges by the result lines: long answers make short ranges', async () => {
    const file = (name: string, line: string, count: number) => {
      const path = join(dir, name);
      writeFileSync(path, `${line}\n`.repeat(count));
      return path;
    };
    expect(await rangeRowsFor([file('short.jsonl', 'x'.repeat(100), 5000)])).toBe(MAX_RANGE_ROWS);
    expect(await rangeRowsFor([file('long.jsonl', 'x'.repeat(4000), 500)])).toBe(4096);
    expect(await rangeRowsFor([file('huge.jsonl', 'x'.repeat(3_000_000), 1)])).toBe(1024);
  });

  it('joins as the hash join does, over several ranges: results, duplicates, missing, orphans, rejected rows', async () => {
    const rows = MAX_RANGE_ROWS * 2 + 1000;
    const source = join(dir, 'table.csv');
    writeFileSync(
      source,
      `text,n\n${Array.from({ length: rows }, (_, i) => `"row ""${i + 1}""",${i + 1}\n`).join('')}`,
    );
    const lines = resultLines(rows, 11);
    // Two result files, so lines of one id may come from either (the later file wins a tie).
    const results = [join(dir, 'a.jsonl'), join(dir, 'b.jsonl')];
    writeFileSync(results[0]!, `${lines.slice(0, lines.length >> 1).join('\n')}\n`);
    writeFileSync(results[1]!, `${lines.slice(lines.length >> 1).join('\n')}\n`);
    // Rows rejected before upload, one in each range, one of them with a result (an orphan).
    const rejections = join(dir, 'rejections.jsonl');
    writeFileSync(
      rejections,
      [5, MAX_RANGE_ROWS + 3, rows]
        .map(
          (row) =>
            `${JSON.stringify({ row, file: source, line: row + 1, custom_id: `row-${row}`, code: 'BP_CONTEXT_EXCEEDED', message: 'too long' })}\n`,
        )
        .join(''),
    );
    const ranged = await joined(results, source, [rejections]);
    // A source function not known to read in row order: the hash join.
    const hashed = await joined(results, () => csvSource(source), [rejections]);
    expect(ranged.summary).toEqual(hashed.summary);
    expect(ranged.rows).toEqual(hashed.rows);
    expect(ranged.rows.map(([index]) => index)).toEqual(Array.from({ length: rows }, (_, i) => i + 1));
    const { statuses, orphans, duplicates } = ranged.summary;
    expect(statuses.rejected).toBe(3);
    expect(statuses.missing).toBeGreaterThan(1000);
    expect(statuses.ok).toBeGreaterThan(rows * 0.8);
    // Past the table: rows + 1, rows + 2 and one two ranges on; six lines of ids no row has (x twice);
    // the rejected rows' results.
    expect(orphans).toBeGreaterThanOrEqual(3 + 5);
    expect(duplicates).toBeGreaterThan(1000);
    // The path and a function marked as reading in row order go by ranges alike.
    const marked = await joined(
      results,
      inRowOrder(() => csvSource(source)),
      [rejections],
    );
    expect(marked.rows).toEqual(ranged.rows);
    expect(marked.summary).toEqual(ranged.summary);
  });

  it('reads JSON rows once more for their columns, and gives rows the source could not read their status', async () => {
    const rows = MAX_RANGE_ROWS + 500;
    const source = join(dir, 'table.jsonl');
    writeFileSync(
      source,
      Array.from({ length: rows }, (_, i) =>
        i === 10 || i === MAX_RANGE_ROWS + 9
          ? '{"text": broken\n'
          : `${JSON.stringify(i % 7 === 0 ? { text: `t${i}`, extra: i } : { text: `t${i}` })}\n`,
      ).join(''),
    );
    const lines = resultLines(rows, 5);
    const results = [join(dir, 'j.jsonl')];
    writeFileSync(results[0]!, `${lines.join('\n')}\n`);
    const ranged = await joined(results, source, []);
    const hashed = await joined(results, () => jsonlSource(source), []);
    expect(ranged.summary).toEqual(hashed.summary);
    expect(ranged.rows).toEqual(hashed.rows);
    expect(ranged.summary.statuses.rejected).toBe(2);
    expect(ranged.rows[10]![1].status).toBe('rejected');
    expect(Object.keys(ranged.rows[0]![1]).slice(0, 2)).toEqual(['text', 'extra']);
  });

  it('checks rows against the hashes prepare stored, as the hash join does: edited rows are stale', async () => {
    const rows = MAX_RANGE_ROWS + 3000;
    const source = join(dir, 'checked.csv');
    const text = (n: number) => `review "${n}", with a quote`;
    writeFileSync(
      source,
      `text\n${Array.from({ length: rows }, (_, i) => `"${text(i + 1).replaceAll('"', '""')}"\n`).join('')}`,
    );
    const prepared = join(dir, 'checked-prepared');
    await prepare(source, {
      outDir: prepared,
      model: 'qwen-plus',
      template: 'Say: {{text}}',
      provider: 'local',
    });
    const stored = join(prepared, 'row-hashes.tsv');
    // One stored hash lost (its row, answered, cannot be checked: stale), one written twice.
    const hashLines = readFileSync(stored, 'utf8').split('\n');
    const hashes = join(dir, 'checked-hashes.tsv');
    writeFileSync(
      hashes,
      [
        ...hashLines.slice(0, 100),
        ...hashLines.slice(101, 200),
        hashLines[300],
        ...hashLines.slice(200),
      ].join('\n'),
    );
    // Rows edited since prepare, in both ranges; then the results of every row.
    const edited = new Set([7, 5000, MAX_RANGE_ROWS + 5, rows]);
    writeFileSync(
      source,
      `text\n${Array.from({ length: rows }, (_, i) => `"${(edited.has(i + 1) ? `${text(i + 1)} (edited)` : text(i + 1)).replaceAll('"', '""')}"\n`).join('')}`,
    );
    const results = [join(dir, 'checked.jsonl')];
    writeFileSync(results[0]!, `${resultLines(rows, 3).join('\n')}\n`);
    const ranged = await joined(results, source, [], [hashes]);
    const hashed = await joined(results, () => csvSource(source), [], [hashes]);
    expect(ranged.summary).toEqual(hashed.summary);
    expect(ranged.rows).toEqual(hashed.rows);
    expect(ranged.summary.checked).toBe(true);
    expect(ranged.summary.statuses.stale).toBeGreaterThanOrEqual(2);
    const stale = ranged.rows.filter(([, values]) => values.status === 'stale').map(([index]) => index);
    for (const index of stale) expect(edited.has(index) || index === 100).toBe(true);
  });

  it('names the line of a row-hashes file that is not an id, a tab and a hash', async () => {
    const source = join(dir, 'small.csv');
    writeFileSync(source, 'text\na\nb\n');
    const hashes = join(dir, 'bad-hashes.tsv');
    writeFileSync(
      hashes,
      '{"row_hashes":1,"columns":["text"]}\n"row-1"\tAAAAAAAAA\n"other"\tBBBBBBBBB\nrow-2 CCCCCCCCC\n',
    );
    const results = [join(dir, 'small.jsonl')];
    writeFileSync(results[0]!, `${answerLine({ custom_id: 'row-1', content: 'A' })}\n`);
    await expect(joined(results, source, [], [hashes])).rejects.toMatchObject({
      code: 'BP_INPUT_PARSE',
      message: expect.stringContaining('row hashes line 4'),
    });
  });
});
