import type { Readable } from 'node:stream';
import { ObjectRowBatch } from '../core/rows/object-row-batch.js';
import { isRowBatch, type RowBatch } from '../core/rows/row-batch.js';
import { readBatches } from '../internal/read-batches.js';
import type { Rejection, Row } from '../types.js';
import { type BatchEmitter, kEmitBatches } from './batch-protocol.js';

/**
 * A stream of rows read as row batches: a batchpipe source is asked for its batches; single Rows and
 * Rejections (from any other stream) are gathered into batches of what the stream had buffered.
 */
export async function* rowBatchesOf(stream: Readable): AsyncGenerator<RowBatch> {
  (stream as Partial<BatchEmitter>)[kEmitBatches]?.();
  for await (const chunk of readBatches<unknown>(stream)) {
    let items: Array<Row | Rejection> = [];
    for (const item of chunk) {
      if (isRowBatch(item)) {
        if (items.length > 0) {
          yield new ObjectRowBatch(items);
          items = [];
        }
        yield item;
      } else items.push(item as Row | Rejection);
    }
    if (items.length > 0) yield new ObjectRowBatch(items);
  }
}
