import { ArrowBatchBuilder, arrowSourceOf } from '../core/arrow/arrow-batch-builder.js';
import { type ArrowModule, loadArrow } from '../core/arrow/arrow-lib.js';
import type { ColumnarWriter, WriteBytes } from '../core/arrow/columnar-writer.js';
import { ColumnMemory } from '../core/rows/column-buffers.js';
import { ObjectRowBatch } from '../core/rows/object-row-batch.js';
import type { RowBatch } from '../core/rows/row-batch.js';
import type { Row, RowValues } from '../types.js';
import type { TableEncoder, TableOut } from './table-sink.js';

/** Records written one at a time are gathered into batches of this many rows. */
const RECORD_BATCH_ROWS = 2048;

/**
 * The TableEncoder of Parquet and Arrow sinks: each batch of rows becomes an Arrow record batch
 * (ArrowBatchBuilder fixes the types from the first) handed to the format's writer, which is opened
 * (and its library loaded) with the first rows.
 */
export function columnarEncoder(
  open: (arrow: ArrowModule, write: WriteBytes) => Promise<ColumnarWriter>,
): TableEncoder {
  let builder: ArrowBatchBuilder | undefined;
  let writer: ColumnarWriter | undefined;
  let records: Row[] = [];
  let written = 0;
  /** A writer that copies each batch lets the next one's columns go into the same buffers. */
  const memory = new ColumnMemory();

  const start = async (out: TableOut): Promise<ColumnarWriter> => {
    if (writer) return writer;
    const arrow = await loadArrow();
    builder = new ArrowBatchBuilder(arrow);
    writer = await open(arrow, (chunk) =>
      out.bytes(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), 0, chunk.byteLength),
    );
    return writer;
  };
  const writeRows = async (rows: RowBatch, out: TableOut): Promise<void> => {
    const w = await start(out);
    await w.write(builder!.fromRows(rows, w.copies ? memory : undefined));
    // Copied by the writer: the source's buffers may be written again once the batch is released,
    // and the columns made here hold the next batch's.
    if (w.copies) {
      arrowSourceOf(rows)?.columnsReturned();
      memory.reuse();
    }
  };
  const flushRecords = async (out: TableOut): Promise<void> => {
    if (records.length === 0) return;
    const rows = new ObjectRowBatch(records);
    records = [];
    await writeRows(rows, out);
  };

  return {
    row(values: RowValues, place, out) {
      records.push({
        kind: 'row',
        index: place.row ?? ++written,
        file: place.file ?? '',
        line: place.line ?? 0,
        values,
      });
      return records.length >= RECORD_BATCH_ROWS ? flushRecords(out) : undefined;
    },
    async batch(rows, _written, out) {
      await flushRecords(out);
      await writeRows(rows, out);
    },
    async finish(out) {
      await flushRecords(out);
      // No rows at all: nothing tells the columns, so the file holds none.
      if (!writer && builder === undefined) await start(out);
      await writer!.finish();
    },
    abort: async () => {
      await writer?.abort();
    },
    end: () => '',
    columns: () => builder?.names ?? [],
  };
}
