import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CsvReader } from '../../../src/core/csv/csv-reader.js';
import { CsvRowBatch } from '../../../src/core/csv/csv-row-batch.js';
import { JsonlReader } from '../../../src/core/jsonl/jsonl-reader.js';
import type { RowBatch } from '../../../src/core/rows/row-batch.js';
import { readBatchesOnThread, THREAD_READ_MIN_BYTES } from '../../../src/core/tables/table-read-thread.js';
import {
  DEFAULT_JSONL_SETTINGS,
  defaultCsvSettings,
  readRowBatches,
  readTableBatchesOnThread,
} from '../../../src/core/tables/table-reader.js';
import { WarningLog } from '../../../src/internal/warnings.js';
import { csvSource } from '../../../src/sources/csv-source.js';
import { jsonlSource } from '../../../src/sources/jsonl-source.js';
import { kReadOnThread, type ThreadReadable } from '../../../src/streams/batch-protocol.js';
import { fileWith, tempDir } from '../../helpers.js';
import { bigCsv, bigJsonl } from '../../support/big-table.js';

const dir = tempDir('bp-read-thread-');

/** Every entry of the batches, in order, as plain data (the batches released as they are read). */
async function entries(batches: AsyncIterable<RowBatch>) {
  const out: Array<Record<string, unknown>> = [];
  for await (const rows of batches) {
    for (let i = 0; i < rows.length; i++) {
      const rejection = rows.rejection(i);
      const entry: Record<string, unknown> = { index: rows.index(i), line: rows.line(i) };
      if (rejection)
        entry.rejection = { code: rejection.code, message: rejection.message, line: rejection.line };
      else {
        entry.values = rows.values(i);
        if (rows instanceof CsvRowBatch) {
          entry.bytes = rows.buffer.toString('utf8', rows.rowStart(i), rows.rowEnd(i));
          entry.clean = rows.copiesCleanly(i);
        }
      }
      out.push(entry);
    }
    rows.release();
  }
  return out;
}

describe('readBatchesOnThread', () => {
  it('reads a CSV file (BOM, CRLF, quoted newlines across chunk boundaries, bad rows) into the same entries, in order, each once, as this thread does', async () => {
    const { path, meant, lines } = bigCsv(dir);
    const onThread = await entries(
      readBatchesOnThread({ format: 'csv', path, file: path, settings: defaultCsvSettings(path) }),
    );
    const here = await entries(readRowBatches(path, path, new CsvReader(path, defaultCsvSettings(path))));
    // Every entry once, in order, as the generator meant it.
    expect(onThread.map((e) => e.index)).toEqual(meant.map((_, i) => i + 1));
    expect(onThread.map((e) => e.line)).toEqual(lines);
    meant.forEach((m, i) => {
      if ('rejected' in m) expect(onThread[i]!.rejection).toMatchObject({ code: 'BP_ROW_FIELD_COUNT' });
      else expect(onThread[i]!.values).toEqual(m.values);
    });
    expect(meant.some((m) => 'rejected' in m)).toBe(true);
    // The rows that straddle a read chunk are there, whole.
    expect(meant.some((m) => 'values' in m && m.values.text!.length > 200_000)).toBe(true);
    // Rejections come whole (code, message, line), bytes and copy checks as this thread makes them.
    expect(onThread).toEqual(here);
  });

  it("holds each batch's index arrays in shared memory used again once released, never while held", async () => {
    // Released as read (~150 batches of 2,048 rows): a few pieces of memory go round.
    const lines = Array.from({ length: 300_000 }, (_, i) => `${i},text ${i} ${'x'.repeat(i % 120)},${i % 7}`);
    const long = fileWith(dir, 'long.csv', `id,text,n\n${lines.join('\n')}\n`);
    // Each batch's memory is marked (in its last word, past what a batch uses) as it is released: a
    // batch that comes with a mark is in memory used again (a SharedArrayBuffer is a new object on
    // each crossing, so its identity says nothing).
    let batches = 0;
    let again = 0;
    for await (const rows of readBatchesOnThread({
      format: 'csv',
      path: long,
      file: long,
      settings: defaultCsvSettings(long),
    })) {
      const memory = (rows as unknown as { lines: Int32Array }).lines.buffer;
      expect(memory).toBeInstanceOf(SharedArrayBuffer);
      const words = new Int32Array(memory);
      if (words[words.length - 1] === 7) again++;
      words[words.length - 1] = 7;
      batches++;
      rows.release();
    }
    expect(batches).toBeGreaterThan(100);
    expect(again).toBeGreaterThan(batches - 10);
    // Held to the end: none is written over, every entry reads as this thread reads it.
    const { path } = bigCsv(dir);
    const task = { format: 'csv', path, file: path, settings: defaultCsvSettings(path) } as const;
    const here = await entries(readRowBatches(path, path, new CsvReader(path, defaultCsvSettings(path))));
    const held: RowBatch[] = [];
    for await (const rows of readBatchesOnThread(task)) held.push(rows);
    expect(
      await entries(
        (async function* () {
          yield* held;
        })(),
      ),
    ).toEqual(here);
  });

  it('reads a Latin-1 file (transcoded there, its batches then in bytes of their own) into the same entries as this thread does', async () => {
    const rows = ['id,text'];
    for (let i = 1; rows.length * 60 < THREAD_READ_MIN_BYTES * 1.2; i++)
      rows.push(
        `${i},"caf\u00e9 ""${i}"" na\u00efve${i % 7 === 0 ? '\nsecond line' : ''} ${'x'.repeat(30)}"`,
      );
    const path = fileWith(dir, 'latin1.csv', Buffer.from(`${rows.join('\n')}\n`, 'latin1'));
    const settings = { ...defaultCsvSettings(path), encoding: 'latin1' };
    const onThread = await entries(readBatchesOnThread({ format: 'csv', path, file: path, settings }));
    const here = await entries(readRowBatches(path, path, new CsvReader(path, settings)));
    expect(onThread.length).toBe(rows.length - 1);
    expect(onThread[6]!.values).toEqual({
      id: '7',
      text: `caf\u00e9 "7" na\u00efve\nsecond line ${'x'.repeat(30)}`,
    });
    expect(onThread).toEqual(here);
  });

  it('reads a JSON Lines file into the same entries, in order, each once, with its bad lines rejected as this thread does', async () => {
    const { path, meant } = bigJsonl(dir);
    const onThread = await readTableBatchesOnThread(path);
    expect(onThread).toBeDefined();
    const got = await entries(onThread!);
    expect(got.map((e) => e.index)).toEqual(meant.map((_, i) => i + 1));
    meant.forEach((m, i) => {
      if ('rejected' in m) expect(got[i]!.rejection).toMatchObject({ code: 'BP_INPUT_PARSE' });
      else expect(got[i]!.values).toEqual(m.values);
    });
    const here = await entries(
      readRowBatches(path, path, new JsonlReader(path, DEFAULT_JSONL_SETTINGS, new WarningLog())),
    );
    expect(got).toEqual(here);
  });

  it('stops with the error this thread would raise, naming the file and line (badRows "fail")', async () => {
    const { path, lines, meant } = bigCsv(dir);
    const settings = { ...defaultCsvSettings(path), badRows: 'fail' as const };
    const bad = meant.findIndex((m) => 'rejected' in m);
    const read = async (batches: AsyncIterable<RowBatch>) => {
      for await (const rows of batches) rows.release();
    };
    const onThread = await read(readBatchesOnThread({ format: 'csv', path, file: path, settings })).catch(
      (error: unknown) => error,
    );
    const here = await read(readRowBatches(path, path, new CsvReader(path, settings))).catch(
      (error: unknown) => error,
    );
    expect(onThread).toMatchObject({ code: 'BP_ROW_FIELD_COUNT', context: { file: path, line: lines[bad] } });
    expect((onThread as Error).message).toBe((here as Error).message);
  });

  it('is offered by csvSource and jsonlSource for a file worth a thread, not for a small file or a stream', () => {
    const { path } = bigCsv(dir);
    const offer = (stream: unknown) => (stream as ThreadReadable)[kReadOnThread]();
    const big = offer(csvSource(path));
    expect(big).toBeDefined();
    void (big as AsyncGenerator<RowBatch>).return(undefined);
    expect(offer(csvSource(fileWith(dir, 'small.csv', 'a\n1\n')))).toBeUndefined();
    expect(offer(csvSource(Readable.from(['a\n1\n'])))).toBeUndefined();
    expect(offer(jsonlSource(fileWith(dir, 'small.jsonl', '{"a":1}\n')))).toBeUndefined();
  });
});
