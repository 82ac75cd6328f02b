/**
 * The one Parquet writer the sinks use. A file of flat columns is written by batchpipe's own writer
 * (parquet-file-writer.ts: values encoded from Arrow memory straight into pages, compressed natively
 * off this thread); anything else (lists, structs, maps and the other types parquet-schema-out.ts
 * leaves out), or a platform without the native compressor, by parquet-wasm. Both give the same
 * Parquet and Arrow types (docs/formats.md).
 */
import type { RecordBatch } from 'apache-arrow';
import { type ArrowModule, loadParquet, type ParquetModule } from '../arrow/arrow-lib.js';
import type { ColumnarWriter, WriteBytes } from '../arrow/columnar-writer.js';
import { pageCompressor } from './parquet-compress.js';
import { parquetFileWriter } from './parquet-file-writer.js';
import { planColumns } from './parquet-schema-out.js';
import type { ParquetWriteSettings } from './parquet-write-settings.js';

export {
  PARQUET_COMPRESSIONS,
  type ParquetCompression,
  type ParquetWriteSettings,
} from './parquet-write-settings.js';

/** Writes Arrow IPC stream bytes (one record batch each, one schema) as one Parquet file. */
export interface IpcWriter {
  write(ipc: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * Writes record batches as one Parquet file through parquet-wasm's streaming writer: batches go in as
 * they come, the writer closes a row group every `rowGroupSize` rows and hands its bytes on, so memory
 * is bounded by a row group. Each batch waits until the writer has taken the one before it.
 */
export function parquetIpcWriter(
  parquet: ParquetModule,
  settings: ParquetWriteSettings,
  write: WriteBytes,
): IpcWriter {
  const properties = new parquet.WriterPropertiesBuilder()
    .setCompression(settings.compression === 'zstd' ? parquet.Compression.ZSTD : parquet.Compression.SNAPPY)
    .setMaxRowGroupSize(settings.rowGroupSize)
    .setCreatedBy('batchpipe')
    .build();
  const { readable, writable } = new TransformStream<unknown, unknown>(
    undefined,
    { highWaterMark: 1 },
    { highWaterMark: 0 },
  );
  const input = writable.getWriter();
  let failed: unknown;
  let pump: Promise<void> | undefined;
  /** Starts the writer with its first batch: parquet-wasm reads the schema from it before it returns. */
  const start = async (first: unknown): Promise<void> => {
    const output = parquet.transformParquetStream(readable as ReadableStream, properties);
    const written = input.write(first);
    const bytes = await output;
    // Bytes out as the writer makes them, each chunk written before the next is read.
    pump = (async () => {
      for await (const chunk of bytes as unknown as AsyncIterable<Uint8Array>) {
        const pending = write(chunk);
        if (pending) await pending;
      }
    })().catch((error: unknown) => {
      failed = error;
    });
    await written;
  };
  return {
    async write(ipc: Uint8Array) {
      if (failed) throw failed;
      const wasmBatch = parquet.Table.fromIPCStream(ipc).recordBatch(0);
      if (!wasmBatch) return;
      if (!pump) await start(wasmBatch);
      else {
        await input.ready;
        await input.write(wasmBatch);
      }
      if (failed) throw failed;
    },
    async finish() {
      // No batch at all: nothing tells the columns, and the file stays empty.
      if (!pump) return;
      await input.close();
      await pump;
      if (failed) throw failed;
    },
    async abort() {
      await input.abort().catch(() => undefined);
      await pump;
    },
  };
}

/**
 * Writes record batches as one Parquet file, on this thread (an encoding thread was measured with
 * parquet-wasm, 1M rows joined into Parquet, to save no CPU and cost about 190 MB of peak RSS,
 * docs/dependencies.md). The first batch's schema chooses the writer. `spill`: the file batchpipe's
 * own writer keeps a row group's compressed pages in until the group is written (removed once open).
 */
export function parquetWriter(
  arrow: ArrowModule,
  settings: ParquetWriteSettings,
  write: WriteBytes,
  spill: string,
): ColumnarWriter {
  let writer: Promise<ColumnarWriter> | undefined;
  const open = async (batch: RecordBatch): Promise<ColumnarWriter> => {
    const columns = planColumns(batch.schema.fields);
    const compress = pageCompressor(settings.compression);
    if (columns && compress)
      return parquetFileWriter(arrow, batch.schema, columns, settings, compress, write, spill);
    return parquetWasmWriter(arrow, await loadParquet(), settings, write);
  };
  return {
    // Both writers copy a batch before `write` resolves: pages are encoded from it, or IPC bytes made.
    copies: true,
    async write(batch) {
      writer ??= open(batch);
      await (await writer).write(batch);
    },
    // No batch at all: nothing tells the columns, and the file stays empty.
    finish: async () => (await writer)?.finish(),
    abort: async () => (await writer?.catch(() => undefined))?.abort(),
  };
}

/** Writes record batches as one Parquet file through parquet-wasm (any Arrow type). */
export function parquetWasmWriter(
  arrow: ArrowModule,
  parquet: ParquetModule,
  settings: ParquetWriteSettings,
  write: WriteBytes,
): ColumnarWriter {
  const writer = parquetIpcWriter(parquet, settings, write);
  return {
    write: (batch) => writer.write(arrow.tableToIPC(new arrow.Table(batch), 'stream')),
    finish: () => writer.finish(),
    abort: () => writer.abort(),
  };
}
