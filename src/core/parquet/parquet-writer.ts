import type { ArrowModule, ParquetModule } from '../arrow/arrow-lib.js';
import type { ColumnarWriter, WriteBytes } from '../arrow/columnar-writer.js';

/** Parquet compressions batchpipe writes. */
export const PARQUET_COMPRESSIONS = ['snappy', 'zstd'] as const;
export type ParquetCompression = (typeof PARQUET_COMPRESSIONS)[number];

/** How a Parquet file is written. */
export interface ParquetWriteSettings {
  /** Rows per row group (the writer holds one row group's pages at most). */
  rowGroupSize: number;
  compression: ParquetCompression;
}

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
 * Writes record batches as one Parquet file, on this thread: an encoding thread was measured (1M rows
 * joined into Parquet) to save no CPU and to cost about 190 MB of peak RSS, its WebAssembly memory
 * beside the reader's (docs/dependencies.md).
 */
export function parquetWriter(
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
