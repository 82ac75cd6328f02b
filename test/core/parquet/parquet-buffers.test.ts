import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ArrowRowBatch, type ArrowTransport } from '../../../src/core/arrow/arrow-row-batch.js';
import { BatchBuffers, SharedBufferPool } from '../../../src/core/parquet/parquet-buffers.js';
import { readParquetBatches } from '../../../src/core/parquet/parquet-reader.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';

const dir = tempDir('bp-parquet-buffers-');
const ROWS = 60_000;
const file = join(dir, 'reviews.parquet');

/** The review of row i (1-based), as the file holds it: distinct text of varying length per row. */
const review = (i: number) => `review ${i} `.repeat(5 + (i % 7));

beforeAll(async () => {
  const db = await duckdb();
  try {
    await db.run(
      `COPY (SELECT i + 1 AS id, repeat('review ' || (i + 1) || ' ', 5 + ((i + 1) % 7)) AS review FROM range(${ROWS}) t(i)) TO '${file}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 20480)`,
    );
  } finally {
    db.close();
  }
}, 60_000);

/** Checks every row of a batch against the file's values. */
function expectIntact(batch: ArrowRowBatch): void {
  const id = batch.ref('id')!;
  const text = batch.ref('review')!;
  for (let i = 0; i < batch.length; i++) {
    const row = batch.index(i);
    if (batch.value(i, id) !== row || batch.value(i, text) !== review(row))
      throw new Error(`row ${row} changed: ${String(batch.value(i, id))} ${String(batch.value(i, text))}`);
  }
}

/** The bytes a transport's review column views, copied now. */
const reviewBytes = (t: ArrowTransport) => Buffer.from(t.columns[1]!.values!);

describe('page decoder buffers, used again once released', () => {
  it('a batch still held keeps its values while later ones are read into released buffers', async () => {
    const held: ArrowRowBatch[] = [];
    const released: Array<{ transport: ArrowTransport; bytes: Buffer }> = [];
    let rows = 0;
    let n = 0;
    for await (const batch of readParquetBatches(file, file)) {
      expectIntact(batch);
      rows += batch.length;
      // Every third batch is kept unreleased to the end; the others are released at once (so the
      // half of a decoded batch that is kept has a released sibling over the same buffers).
      if (n++ % 3 === 0) held.push(batch);
      else {
        const transport = batch.transport()!;
        released.push({ transport, bytes: reviewBytes(transport) });
        batch.release();
      }
    }
    expect(rows).toBe(ROWS);
    for (const batch of held) expectIntact(batch);
    // Released buffers were written again (recycled), not left to the collector.
    const rewritten = released.filter(({ transport, bytes }) => !reviewBytes(transport).equals(bytes));
    expect(rewritten.length).toBeGreaterThan(0);
    for (const batch of held) batch.release();
  });

  it('a batch whose columns were taken as they are is never written again', async () => {
    const taken: Array<{ batch: ArrowRowBatch; values: Uint8Array; bytes: Buffer }> = [];
    let n = 0;
    for await (const batch of readParquetBatches(file, file)) {
      if (n++ % 2 === 0 && taken.length < 6) {
        // What a sink that writes Arrow does: takes the column data, then releases the batch.
        const values = batch.columns[1]!.values as Uint8Array;
        taken.push({ batch, values, bytes: Buffer.from(values) });
      }
      batch.release();
    }
    expect(taken.length).toBe(6);
    for (const { batch, values, bytes } of taken) {
      // The batch may not be read after its release; the data its taker holds is unchanged.
      expect(() => batch.values(0)).toThrow(/released/);
      expect(Buffer.from(values).equals(bytes)).toBe(true);
    }
  });

  it('a batch whose columns were taken and given back (a Parquet writer copied them) is written again once released', async () => {
    const given: Array<{ values: Uint8Array; bytes: Buffer }> = [];
    const kept: Array<{ values: Uint8Array; bytes: Buffer }> = [];
    let n = 0;
    for await (const batch of readParquetBatches(file, file)) {
      expectIntact(batch);
      const values = batch.columns[1]!.values as Uint8Array;
      // Two batches in four (a decoded batch is cut in two over the same buffers) give their columns
      // back before their release; the others' stay taken.
      if (n++ % 4 < 2) {
        given.push({ values, bytes: Buffer.from(values) });
        batch.columnsReturned();
      } else kept.push({ values, bytes: Buffer.from(values) });
      batch.release();
    }
    // Buffers given back were written again; those never given back (nor their siblings) were not.
    expect(given.filter(({ values, bytes }) => !Buffer.from(values).equals(bytes)).length).toBeGreaterThan(0);
    for (const { values, bytes } of kept) expect(Buffer.from(values).equals(bytes)).toBe(true);
  });

  it('a transported batch reads the same values on the receiving side', async () => {
    for await (const batch of readParquetBatches(file, file)) {
      expectIntact(ArrowRowBatch.from(batch.transport()!));
      batch.release();
    }
  });
});

describe('BatchBuffers and SharedBufferPool', () => {
  it('takes the smallest free buffer that fits, never one far too large, and gives back the rest', () => {
    const small = new SharedArrayBuffer(1000);
    const medium = new SharedArrayBuffer(10_000);
    const large = new SharedArrayBuffer(1_000_000);
    const buffers = new BatchBuffers([large, small, medium]);
    const a = buffers.take(9000);
    expect(a.buffer).toBe(medium);
    expect(a.length).toBe(9000);
    // 100 bytes: the 1,000-byte buffer fits; a second request finds only one far too large.
    expect(buffers.take(100).buffer).toBe(small);
    const fresh = buffers.take(100);
    expect(fresh.buffer).not.toBe(large);
    expect(fresh.buffer).toBeInstanceOf(SharedArrayBuffer);
    buffers.drop(a);
    expect(buffers.unused()).toEqual([medium, large]);
    expect(buffers.unused()).toEqual([]);
  });

  it('a new buffer has room for a slightly larger batch', () => {
    const first = new BatchBuffers().take(100_000);
    expect(first.buffer.byteLength).toBeGreaterThanOrEqual(110_000);
    const again = new BatchBuffers([first.buffer as SharedArrayBuffer]).take(110_000);
    expect(again.buffer).toBe(first.buffer);
  });

  it('the pool keeps at most its bytes and hands everything out at once', () => {
    const pool = new SharedBufferPool(25_000);
    pool.give([new SharedArrayBuffer(10_000), new SharedArrayBuffer(10_000), new SharedArrayBuffer(10_000)]);
    expect(pool.bytes).toBe(20_000);
    expect(pool.takeAll()).toHaveLength(2);
    expect(pool.bytes).toBe(0);
    expect(pool.takeAll()).toEqual([]);
  });
});
