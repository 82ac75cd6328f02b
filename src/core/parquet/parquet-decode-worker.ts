/**
 * A Parquet decode thread (parquet-decoder.ts starts it): decodes the row groups it is given, in
 * order, one record batch per request, and hands each back as Arrow buffers or Arrow IPC bytes
 * whose memory moves to the main thread (no copy). With a page plan the page decoder reads the
 * columns (memory bounded by a page); otherwise parquet-wasm does, whose WebAssembly memory only
 * grows, so the main thread ends this thread after a few row groups and starts another: that frees it.
 */
import { openAsBlob } from 'node:fs';
import { open } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { BatchBuffers } from './parquet-buffers.js';
import type { DecodeReply, DecodeRequest, DecodeThreadData, PageBatch } from './parquet-decoder.js';
import { readFooter } from './parquet-page-plan.js';
import { ColumnCursor, type PageColumn } from './parquet-pages.js';

const data = workerData as DecodeThreadData;
const port = parentPort!;
let wasmMemory: { buffer: ArrayBuffer } | undefined;
let group = data.groups[0] ?? 0;

/** Whether the batch just yielded is the last of this thread's row groups. */
let last = false;
/** Where the batch being decoded is written: the buffers sent with its request first. */
let buffers = new BatchBuffers();

/** The page decoder's batches: each row group's column chunks read by byte range, cut into batches. */
async function* pageBatches(pages: readonly PageColumn[]): AsyncGenerator<PageBatch> {
  const metadata = await readFooter(data.path);
  const handle = await open(data.path, 'r');
  try {
    for (const g of data.groups) {
      group = g;
      const rowGroup = metadata.rowGroups[g]!;
      const cursors: ColumnCursor[] = [];
      for (const column of pages) {
        const chunk = rowGroup.columns[column.leaf]!;
        const bytes = Buffer.allocUnsafeSlow(chunk.length);
        const { bytesRead } = await handle.read(bytes, 0, chunk.length, chunk.start);
        if (bytesRead !== chunk.length) throw new Error('the file ends inside a column chunk');
        cursors.push(new ColumnCursor(column, bytes, chunk.codec));
      }
      for (let done = 0; done < rowGroup.numRows; ) {
        const rows = Math.min(data.batchRows, rowGroup.numRows - done);
        const parts = await Promise.all(cursors.map((cursor) => cursor.take(rows, buffers)));
        for (const part of parts) {
          if (part.length !== rows)
            throw new Error(`a column chunk holds ${done + part.length} rows, not ${rowGroup.numRows}`);
        }
        done += rows;
        last = g === data.groups.at(-1) && done === rowGroup.numRows;
        yield { rows, parts };
      }
    }
  } finally {
    await handle.close();
  }
}

async function* batches(): AsyncGenerator<Uint8Array> {
  const { initSync, ParquetFile } = await import('parquet-wasm/esm/parquet_wasm.js');
  wasmMemory = initSync({ module: data.code as never }).memory;
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

const decoded = data.pages ? pageBatches(data.pages) : batches();
let queue = Promise.resolve();
// One answer per request, in order: each waits for the one before. A request brings the pool's free
// buffers; the answer sends back those the batch did not use.
port.on('message', (request: DecodeRequest) => {
  queue = queue.then(async () => {
    buffers = new BatchBuffers(request.buffers);
    try {
      const next = await decoded.next();
      const unused = buffers.unused();
      if (next.done)
        port.postMessage({
          done: true,
          wasmBytes: wasmMemory?.buffer.byteLength ?? 0,
          unused,
        } satisfies DecodeReply);
      else if (next.value instanceof Uint8Array)
        port.postMessage({ group, ipc: next.value, unused } satisfies DecodeReply, [
          next.value.buffer as ArrayBuffer,
        ]);
      else {
        const moved = new Set<ArrayBuffer>();
        for (const part of next.value.parts) {
          // Shared memory is shared by posting it; only other buffers are moved.
          for (const view of [part.data, part.offsets, part.validity])
            if (view && !(view.buffer instanceof SharedArrayBuffer)) moved.add(view.buffer as ArrayBuffer);
        }
        port.postMessage({ group, batch: next.value, last, unused } satisfies DecodeReply, [...moved]);
      }
    } catch (error) {
      port.postMessage({
        group,
        error: error instanceof Error ? error.message : String(error),
      } satisfies DecodeReply);
    }
  });
});
