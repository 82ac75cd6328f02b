/**
 * When lines are rendered on a thread: past RENDER_THREAD_AFTER_ROWS rows made, or from a table's
 * first batch when its source estimates it at RENDER_THREAD_AT_ONCE_ROWS rows or more
 * (RowBatch.estimatedRows: a CSV or JSON Lines file's size over the bytes its rows so far took, a
 * Parquet file's footer; none for a stream).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { RequestBatch } from '../../../src/core/requests/request-batch.js';
import { RequestBuilder } from '../../../src/core/requests/request-builder.js';
import { RENDER_THREAD_AT_ONCE_ROWS, RequestMaker } from '../../../src/core/requests/request-maker.js';
import type { RowBatch } from '../../../src/core/rows/row-batch.js';
import { csvSource, jsonlSource, parquetSink, parquetSource } from '../../../src/index.js';
import { kEmitBatches } from '../../../src/streams/batch-protocol.js';
import { csvText, reviewRows } from '../../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../../helpers.js';

const dir = tempDir('bp-render-start-');
const ROWS = 10_000;
const reviews = reviewRows(ROWS, 3);
const csv = fileWith(
  dir,
  'reviews.csv',
  csvText(
    ['id', 'review', 'rating'],
    reviews.map((r) => [r.id, r.review, r.rating]),
  ),
);
const jsonl = fileWith(dir, 'reviews.jsonl', `${reviews.map((r) => JSON.stringify(r)).join('\n')}\n`);

/** The row batches a source hands a batchpipe stage. */
async function batchesOf(source: Readable): Promise<RowBatch[]> {
  (source as unknown as { [kEmitBatches](): void })[kEmitBatches]();
  const batches: RowBatch[] = [];
  for await (const batch of source) batches.push(batch as RowBatch);
  return batches;
}

/** The first row batch of a source, the others given back. */
async function firstBatchOf(source: Readable): Promise<RowBatch> {
  const [first, ...rest] = await batchesOf(source);
  for (const batch of rest) batch.release();
  return first!;
}

describe('RowBatch.estimatedRows', () => {
  it("is a CSV or JSON Lines file's rows, about from its first batch and exactly by its last", async () => {
    for (const batches of [await batchesOf(csvSource(csv)), await batchesOf(jsonlSource(jsonl))]) {
      expect(batches.length).toBeGreaterThan(2);
      expect(batches.reduce((n, b) => n + b.length, 0)).toBe(ROWS);
      const first = batches[0]!.estimatedRows!;
      expect(Math.abs(first - ROWS) / ROWS).toBeLessThan(0.1);
      expect(batches.at(-1)!.estimatedRows).toBe(ROWS);
      for (const batch of batches) batch.release();
    }
  });

  it("is a Parquet file's rows, from its footer", async () => {
    const parquet = join(dir, 'reviews.parquet');
    await pipeline(csvSource(csv), parquetSink(parquet));
    const batches = await batchesOf(parquetSource(parquet));
    expect(batches.reduce((n, b) => n + b.length, 0)).toBe(ROWS);
    expect(new Set(batches.map((b) => b.estimatedRows))).toEqual(new Set([ROWS]));
    for (const batch of batches) batch.release();
  });

  it('is not known for a stream', async () => {
    const batches = await batchesOf(csvSource(Readable.from([readFileSync(csv)])));
    expect(batches.length).toBeGreaterThan(2);
    expect(batches.every((b) => b.estimatedRows === undefined)).toBe(true);
    for (const batch of batches) batch.release();
  });
});

describe('the render thread', () => {
  const makers: RequestMaker[] = [];
  afterAll(() => Promise.all(makers.map((m) => m.close())));
  const maker = () => {
    const made = new RequestMaker(
      RequestBuilder.create({
        model: 'qwen-plus',
        template: 'Rate: {{review}} ({{rating}})',
        idColumn: 'id',
        onWarning: undefined,
      }),
    );
    makers.push(made);
    return made;
  };
  const lines = (batch: RequestBatch) =>
    Array.from({ length: batch.length }, (_, i) =>
      batch.data!.toString('utf8', batch.start(i), batch.end(i)),
    );

  it('takes the first batch of a table estimated large, and renders its lines as this thread does', async () => {
    const here = await firstBatchOf(csvSource(csv));
    const onThread = await firstBatchOf(csvSource(csv));
    // A 10,000-row file's own estimate keeps its first batch on this thread.
    expect(here.estimatedRows).toBeLessThan(RENDER_THREAD_AT_ONCE_ROWS);
    const madeHere = maker().make(here);
    expect(madeHere).toBeInstanceOf(RequestBatch);
    (onThread as { estimatedRows?: number }).estimatedRows = RENDER_THREAD_AT_ONCE_ROWS;
    const madeThere = maker().make(onThread);
    expect(madeThere).toBeInstanceOf(Promise);
    expect(lines(await madeThere)).toEqual(lines(madeHere as RequestBatch));
  });
});
