/**
 * batchpipe's own Parquet writer for flat columns: record batches in, a Parquet file's bytes out, a
 * row group at a time. Each column's values are encoded straight from Arrow memory into PLAIN V1
 * pages (parquet-column-writer.ts), compressed off this thread as they fill and kept in the spill
 * file `spill` (parquet-page-hold.ts); when a row group is full its column chunks are copied from
 * there one after another and only their offsets and sizes are kept for the footer. Memory is a few
 * pages per column, whatever the row group size. The schema is the one parquet-wasm writes for the same Arrow types (parquet-schema-out.ts), with the
 * Arrow schema in the footer's `ARROW:schema` as arrow-rs stores it, so Arrow readers get the types
 * back exactly.
 */
import type { RecordBatch, Schema } from 'apache-arrow';
import type { ArrowModule } from '../arrow/arrow-lib.js';
import type { ColumnarWriter, WriteBytes } from '../arrow/columnar-writer.js';
import { type ArrowData, ColumnChunkWriter, PageBuffers } from './parquet-column-writer.js';
import { CODEC, type Compress } from './parquet-compress.js';
import { FilePageHold } from './parquet-page-hold.js';
import { type ColumnOut, rootElement } from './parquet-schema-out.js';
import { fileMetadata, type RowGroupOut } from './parquet-thrift-writer.js';
import type { ParquetWriteSettings } from './parquet-write-settings.js';

const MAGIC = Buffer.from('PAR1', 'latin1');
/** Pages compressing at once before the writer waits (libuv's pool has 4 threads). */
const MAX_COMPRESSING = 4;

/** Writes batches of `schema` (planned as `columns`) as one Parquet file. */
export function parquetFileWriter(
  arrow: ArrowModule,
  schema: Schema,
  columns: readonly ColumnOut[],
  settings: ParquetWriteSettings,
  compress: Compress,
  write: WriteBytes,
  spill: string,
): ColumnarWriter {
  const buffers = new PageBuffers(columns.length + MAX_COMPRESSING);
  const hold = new FilePageHold(spill);
  const writers = columns.map((column) => new ColumnChunkWriter(column, compress, buffers, hold));
  const codec = CODEC[settings.compression];
  const rowGroups: RowGroupOut[] = [];
  let position = 0;
  let groupRows = 0;
  let totalRows = 0;
  let failed: unknown;

  const out = async (bytes: Uint8Array): Promise<void> => {
    position += bytes.length;
    const pending = write(bytes);
    if (pending) await pending;
  };

  /** Writes the row group's column chunks, one after another, and keeps their places for the footer. */
  const writeGroup = async (): Promise<void> => {
    const fileOffset = position;
    const group: RowGroupOut = {
      columns: [],
      totalByteSize: 0,
      numRows: groupRows,
      fileOffset,
      compressedSize: 0,
      ordinal: rowGroups.length,
    };
    for (const writer of writers) {
      const chunk = await writer.finish();
      const dataPageOffset = position;
      await hold.writeOut(chunk.pages, out);
      group.columns.push({
        type: writer.column.element.type!,
        // PLAIN values; RLE levels (arrow-rs lists both for every column).
        encodings: [0, 3],
        path: [writer.column.name],
        codec,
        numValues: chunk.numValues,
        uncompressedSize: chunk.uncompressedSize,
        compressedSize: chunk.compressedSize,
        dataPageOffset,
      });
      group.totalByteSize += chunk.uncompressedSize;
      group.compressedSize += chunk.compressedSize;
    }
    hold.clear();
    rowGroups.push(group);
    totalRows += groupRows;
    groupRows = 0;
  };

  const guarded = async (work: () => Promise<void>): Promise<void> => {
    if (failed) throw failed;
    try {
      await work();
    } catch (error) {
      failed = error;
      throw error;
    }
  };

  return {
    write: (batch: RecordBatch) =>
      guarded(async () => {
        if (position === 0) await out(MAGIC);
        const children = batch.data.children as unknown as ArrowData[];
        let start = 0;
        while (start < batch.numRows) {
          const take = Math.min(batch.numRows - start, settings.rowGroupSize - groupRows);
          for (let c = 0; c < writers.length; c++) writers[c]!.append(children[c]!, start, take);
          start += take;
          groupRows += take;
          if (groupRows === settings.rowGroupSize) await writeGroup();
        }
        // The compressor's threads fall behind: wait, rather than hold more pages uncompressed.
        await buffers.room(MAX_COMPRESSING);
      }),
    finish: () =>
      guarded(async () => {
        if (position === 0) await out(MAGIC);
        if (groupRows > 0) await writeGroup();
        const footer = fileMetadata({
          schema: [rootElement(columns.length), ...columns.map((c) => c.element)],
          numRows: totalRows,
          rowGroups,
          keyValues: [['ARROW:schema', arrowSchemaText(arrow, schema)]],
          createdBy: 'batchpipe',
          leaves: columns.length,
        });
        const length = Buffer.alloc(4);
        length.writeUInt32LE(footer.length, 0);
        await out(footer);
        await out(length);
        await out(MAGIC);
        await hold.close();
      }),
    abort: async () => {
      failed ??= new Error('the Parquet writer was stopped');
      // Pages still compressing are let finish, so nothing is left running.
      await Promise.allSettled(writers.map((w) => w.settle()));
      await hold.close();
    },
  };
}

/**
 * The Arrow schema as arrow-rs stores it in a Parquet footer: the IPC schema message (continuation
 * marker, length, flatbuffer) in base64.
 */
function arrowSchemaText(arrow: ArrowModule, schema: Schema): string {
  const ipc = arrow.tableToIPC(new arrow.Table(schema), 'stream');
  const length = Buffer.from(ipc.buffer, ipc.byteOffset, ipc.byteLength).readInt32LE(4);
  return Buffer.from(ipc.buffer, ipc.byteOffset, 8 + length).toString('base64');
}
