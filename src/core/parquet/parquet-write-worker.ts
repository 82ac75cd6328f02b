/**
 * A Parquet write thread (parquet-writer.ts starts it): encodes and compresses the record batches it
 * is sent (Arrow IPC bytes) as one Parquet file, and sends the file's bytes back as they are made.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as parquet from 'parquet-wasm/esm';
import { errorData } from '../../errors.js';
import {
  parquetIpcWriter,
  type WriteReply,
  type WriteRequest,
  type WriteThreadData,
} from './parquet-writer.js';

const data = workerData as WriteThreadData;
const port = parentPort!;
parquet.initSync({ module: data.code as never });
const writer = parquetIpcWriter(parquet, data.settings, (chunk) => {
  // The chunk is the writer's own copy: its memory moves to the main thread.
  port.postMessage({ bytes: chunk } satisfies WriteReply, [chunk.buffer as ArrayBuffer]);
  return undefined;
});

let queue = Promise.resolve();
port.on('message', (request: WriteRequest) => {
  queue = queue.then(async () => {
    try {
      if ('ipc' in request) {
        await writer.write(request.ipc);
        port.postMessage({ taken: true } satisfies WriteReply);
      } else if ('finish' in request) {
        await writer.finish();
        port.postMessage({ finished: true } satisfies WriteReply);
      } else await writer.abort();
    } catch (error) {
      port.postMessage({ error: errorData(error).message } satisfies WriteReply);
    }
  });
});
