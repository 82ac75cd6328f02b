import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import type { ResultRecord } from '../../src/core/results/result-parser.js';
import { joinTable } from '../../src/jobs/join-table.js';
import { resultSource } from '../../src/sources/result-source.js';
import { collect, fileWith, tempDir } from '../helpers.js';
import { answerLine } from '../support/results.js';

const dir = tempDir('bp-result-encoding-');
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
/** An answer whose text holds a byte that is never valid UTF-8 (a file changed or cut by hand). */
const badLine = (id: string) =>
  // Written one byte a character: "ÿ" becomes the byte 0xff.
  Buffer.from(answerLine({ custom_id: id, content: 'caf\u00ff' }), 'latin1');
const read = (path: string) =>
  parse(readFileSync(path, 'utf8'), { columns: true }) as Record<string, string>[];

describe('result files: a BOM is accepted, bytes that are not UTF-8 fail their row (never U+FFFD in silence)', () => {
  it('reads a results file that starts with a BOM and fails the row whose line is not UTF-8', async () => {
    const results = fileWith(
      dir,
      'out.jsonl',
      Buffer.concat([
        BOM,
        Buffer.from(`${answerLine({ custom_id: 'row-1', content: 'first' })}\n`),
        badLine('row-2'),
        Buffer.from(`\n${answerLine({ custom_id: 'row-3', content: 'thé' })}\n`),
      ]),
    );
    const source = fileWith(dir, 'src.csv', 't\na\nb\nc\n');
    const joined = await joinTable({ source, results: [results], out: join(dir, 'joined.csv') });
    const table = read(joined.out);
    expect(table.map((r) => [r.status, r.content, r.error_code])).toEqual([
      ['ok', 'first', ''],
      ['failed', '', 'BP_INPUT_ENCODING'],
      ['ok', 'thé', ''],
    ]);
    expect(table[1]!.error_message).toBe(
      `${results}:2: result line is not valid UTF-8 (the Batch API writes UTF-8: the file was changed or cut)`,
    );
    expect(table.some((r) => Object.values(r).some((v) => v.includes('\ufffd')))).toBe(false);

    // The stream face: the same records, and the problem counted with its code.
    const stream = resultSource([results]);
    const records = await collect<ResultRecord>(stream);
    expect(records.map((r) => [r.custom_id, r.status, r.error_code])).toEqual([
      ['row-1', 'ok', null],
      ['row-2', 'failed', 'BP_INPUT_ENCODING'],
      ['row-3', 'ok', null],
    ]);
  });

  it('does the same on the join threads that read large result files in byte ranges', async () => {
    const rows = 70_000;
    const results = join(dir, 'large.jsonl');
    const out = createWriteStream(results);
    out.write(BOM);
    const filler = 'x'.repeat(420);
    const bad = new Set([35_001, 69_999]);
    for (let i = 1; i <= rows; i++) {
      const id = `row-${i}`;
      out.write(
        bad.has(i)
          ? Buffer.concat([badLine(id), Buffer.from('\n')])
          : `${answerLine({ custom_id: id, content: `${filler}${i}` })}\n`,
      );
    }
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
    expect(readFileSync(results).length).toBeGreaterThan(32 * 1024 * 1024); // two threads' worth at least
    const source = fileWith(
      dir,
      'large.csv',
      `n\n${Array.from({ length: rows }, (_, i) => i + 1).join('\n')}\n`,
    );
    const joined = await joinTable({ source, results: [results], out: join(dir, 'large-joined.csv') });
    const table = read(joined.out);
    expect(table).toHaveLength(rows);
    expect(table[0]).toMatchObject({ n: '1', status: 'ok', content: `${filler}1` });
    for (const i of bad)
      expect(table[i - 1]).toMatchObject({ status: 'failed', error_code: 'BP_INPUT_ENCODING' });
    expect(table.filter((r) => r.status === 'ok')).toHaveLength(rows - bad.size);
  }, 60_000);
});
