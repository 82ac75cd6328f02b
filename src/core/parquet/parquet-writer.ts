import type { Worker } from 'node:worker_threads';
import { moduleWorker } from '../../internal/module-worker.js';
import type { ArrowModule, ParquetModule, WasmCode } from '../arrow/arrow-lib.js';
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

/** What a Parquet write thread is started with. */
export interface WriteThreadData {
  code: WasmCode;
  settings: ParquetWriteSettings;
}

/** The main thread's messages to a write thread. */
export type WriteRequest = { ipc: Uint8Array } | { finish: true } | { abort: true };

/** A write thread's messages: bytes of the file, a batch taken, the end, or why it failed. */
export type WriteReply = { bytes: Uint8Array } | { taken: true } | { finished: true } | { error: string };

let liveThreads = 0;

/** Write threads started and not yet ended (for tests: a sink that stops ends its thread). */
export function liveWriteThreads(): number {
  return liveThreads;
}

/** Batches sent to the write thread and not yet taken by its writer. */
const IN_FLIGHT = 2;

/**
 * A Parquet writer whose encoding and compression run on a worker thread (parquet-write-worker), so
 * the thread that makes the batches goes on while the last ones are encoded: each batch goes over as
 * Arrow IPC bytes (moved, not copied), the file's bytes come back the same way and are written here,
 * in order. At most two batches wait for the thread's writer, which holds a row group at most.
 */
export function parquetWriter(
  arrow: ArrowModule,
  code: WasmCode,
  settings: ParquetWriteSettings,
  write: WriteBytes,
): ColumnarWriter {
  let worker: Worker | undefined;
  let failed: Error | undefined;
  let inFlight = 0;
  let writing: Promise<void> = Promise.resolve();
  let taken: (() => void) | undefined;
  let finished: { resolve: () => void; reject: (error: Error) => void } | undefined;
  const fail = (error: Error) => {
    failed ??= error;
    taken?.();
    finished?.reject(failed);
  };
  const open = (): Worker => {
    const thread = moduleWorker(import.meta.url, 'parquet-write-worker', {
      workerData: { code, settings } satisfies WriteThreadData,
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
    });
    liveThreads++;
    thread.once('exit', () => liveThreads--);
    // Held only while it has work: a sink dropped on an error does not keep the process.
    thread.unref();
    thread.on('message', (reply: WriteReply) => {
      if ('bytes' in reply) {
        writing = writing.then(() => write(reply.bytes)).catch((error: Error) => fail(error));
      } else if ('taken' in reply) {
        if (--inFlight === 0 && !finished) thread.unref();
        taken?.();
      } else if ('finished' in reply) {
        void writing.then(() => (failed ? finished?.reject(failed) : finished?.resolve()));
      } else fail(new Error(reply.error));
    });
    thread.on('error', (error: Error) => fail(error));
    thread.on('exit', (exitCode) =>
      fail(new Error(`the Parquet write thread stopped (exit code ${exitCode})`)),
    );
    return thread;
  };
  return {
    async write(batch) {
      if (failed) throw failed;
      worker ??= open();
      while (inFlight >= IN_FLIGHT && !failed) await new Promise<void>((resolve) => (taken = resolve));
      // The file's bytes keep up with the batches: memory stays bounded when the disk is slow.
      await writing;
      if (failed) throw failed;
      const ipc = arrow.tableToIPC(new arrow.Table(batch), 'stream');
      if (inFlight++ === 0) worker.ref();
      worker.postMessage({ ipc } satisfies WriteRequest, [ipc.buffer as ArrayBuffer]);
    },
    async finish() {
      if (failed) throw failed;
      // No batch at all: nothing tells the columns, and the file stays empty.
      if (!worker) return;
      const thread = worker;
      try {
        await new Promise<void>((resolve, reject) => {
          finished = { resolve, reject };
          thread.ref();
          thread.postMessage({ finish: true } satisfies WriteRequest);
        });
      } finally {
        finished = undefined;
        failed ??= new Error('the Parquet writer was used after it finished');
        await thread.terminate();
      }
    },
    async abort() {
      failed ??= new Error('the Parquet writer was aborted');
      await worker?.terminate();
    },
  };
}
