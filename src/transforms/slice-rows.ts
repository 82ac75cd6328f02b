import { z } from 'zod';
import { ObjectRowBatch } from '../core/rows/object-row-batch.js';
import { isRowBatch, type RowBatch } from '../core/rows/row-batch.js';
import { RowSlicer, type Slice, SliceSchema } from '../core/rows/row-slice.js';
import { parseOptions } from '../options.js';
import { BatchTransform } from '../streams/batch-transform.js';
import type { Rejection, Row } from '../types.js';

export { type Slice, sliceOfId } from '../core/rows/row-slice.js';

const SliceRowsOptions = z.strictObject({
  /** Which slice: `{ index, count }`, index 0 .. count-1. */
  slice: SliceSchema,
  /** The column whose value is the custom_id, as given to toRequests; default the row number. */
  idColumn: z.string().min(1).optional(),
});
export type SliceRowsOptions = z.input<typeof SliceRowsOptions>;

/**
 * Keeps the rows of one slice of a table and drops the rest, so `count` processes (on as many
 * machines) each send a disjoint part of one table and together send all of it (docs/scale.md). A
 * row's slice is a hash of its custom_id (`sliceOfId`), never of anything a machine knows alone.
 * Rows keep their numbers, so the custom_ids and the join's source order are the whole table's.
 * Goes before toRequests: `pipeline(csvSource(f), sliceRows({ slice }), toRequests(...), ...)`.
 */
export function sliceRows(options: SliceRowsOptions): BatchTransform<RowBatch, RowBatch> {
  const opts = parseOptions(SliceRowsOptions, options, 'sliceRows');
  return new SliceRows(opts.slice, opts.idColumn);
}

class SliceRows extends BatchTransform<RowBatch, RowBatch> {
  readonly #slicer: RowSlicer;

  constructor(slice: Slice, idColumn: string | undefined) {
    super();
    this.#slicer = new RowSlicer(slice, idColumn);
  }

  protected toBatch(chunk: unknown): RowBatch {
    return isRowBatch(chunk) ? chunk : new ObjectRowBatch([chunk as Row | Rejection]);
  }

  protected process(rows: RowBatch): RowBatch {
    const kept = this.#slicer.slice(rows);
    // An empty batch is not handed on: its buffers go back now.
    if (kept.length === 0) kept.release();
    return kept;
  }
}
