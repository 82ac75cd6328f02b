import { ArrowRowBatch } from '../arrow/arrow-row-batch.js';
import { CsvRowBatch } from '../csv/csv-row-batch.js';
import { JsonlRowBatch } from '../jsonl/jsonl-row-batch.js';
import type { RowBatch } from '../rows/row-batch.js';
import type { RowsTransport } from './render-pool.js';

/**
 * A batch read from CSV or JSON Lines, as another thread can take it; with `arrow`, also an Arrow
 * batch held in shared memory (the thread must load apache-arrow first: a render thread does).
 * Undefined for other batches.
 */
export function transportOf(rows: RowBatch, arrow = false): RowsTransport | undefined {
  if (rows instanceof CsvRowBatch) return rows.transport();
  if (rows instanceof JsonlRowBatch) return rows.transport();
  if (arrow && rows instanceof ArrowRowBatch) return rows.transport();
  return undefined;
}

/** The batch a transport carries, on the thread that received it (over the same shared bytes). */
export function rowBatchOf(rows: RowsTransport): RowBatch {
  if (rows.type === 'arrow') return ArrowRowBatch.from(rows);
  return rows.type === 'csv' ? CsvRowBatch.from(rows) : JsonlRowBatch.from(rows);
}
