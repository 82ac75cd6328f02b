/**
 * A Parquet decode thread (parquet-decoder.ts starts it): decodes the row groups it is given, in
 * order, one record batch per request, and hands each back as Arrow IPC bytes whose memory moves to
 * the main thread (no copy). parquet-wasm's WebAssembly memory only grows, so the main thread ends
 * this thread after a few row groups and starts another: that frees it.
 */
import { openAsBlob } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { initSync, ParquetFile } from 'parquet-wasm/esm/parquet_wasm.js';
import type { DecodeReply, DecodeThreadData } from './parquet-decoder.js';

const data = workerData as DecodeThreadData;
const port = parentPort!;
const wasm = initSync({ module: data.code as never });
let group = data.groups[0] ?? 0;

async function* batches(): AsyncGenerator<Uint8Array> {
  const file = await ParquetFile.fromFile(await openAsBlob(data.path));
  try {
    for (const g of data.groups) {
      group = g;
      const stream = await file.stream({
        rowGroups: [g],
        batchSize: data.batchRows,
        ...(data.columns && { columns: [...data.columns] }),
      });
      const reader = (stream as ReadableStream<{ intoIPCStream(): Uint8Array }>).getReader();
      for (;;) {
        const next = await reader.read();
        if (next.done) break;
        yield next.value.intoIPCStream();
      }
    }
  } finally {
    file.free();
  }
}

const decoded = batches();
let queue = Promise.resolve();
// One answer per request, in order: each waits for the one before.
port.on('message', () => {
  queue = queue.then(async () => {
    try {
      const next = await decoded.next();
      if (next.done)
        port.postMessage({ done: true, wasmBytes: wasm.memory.buffer.byteLength } satisfies DecodeReply);
      else
        port.postMessage({ group, ipc: next.value } satisfies DecodeReply, [
          next.value.buffer as ArrayBuffer,
        ]);
    } catch (error) {
      port.postMessage({
        group,
        error: error instanceof Error ? error.message : String(error),
      } satisfies DecodeReply);
    }
  });
});
