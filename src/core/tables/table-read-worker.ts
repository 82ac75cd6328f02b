import { parentPort, workerData } from 'node:worker_threads';
import { errorData } from '../../errors.js';
import { READ_POOL } from '../../internal/buffer-pool.js';
import { RecordedWarnings } from '../../internal/warnings.js';
import { CsvReader } from '../csv/csv-reader.js';
import { CsvRowBatch } from '../csv/csv-row-batch.js';
import { JsonlReader } from '../jsonl/jsonl-reader.js';
import type { JsonlRowBatch } from '../jsonl/jsonl-row-batch.js';
import type { ThreadReadMessage, ThreadReadRequest, ThreadReadTask } from './table-read-thread.js';
import { readRowBatches } from './table-reader.js';

// The thread of readBatchesOnThread: reads one table, sending each batch as it is scanned, as far
// ahead as it is asked.
const task = workerData as ThreadReadTask;
const port = parentPort!;
let credit = 0;
let wake: (() => void) | undefined;
port.on('message', (request: ThreadReadRequest) => {
  for (const buffer of request.buffers) READ_POOL.give(Buffer.from(buffer));
  for (const arrays of request.arrays) if (freeArrays.length < MAX_FREE_ARRAYS) freeArrays.push(arrays);
  credit += request.more;
  wake?.();
});

const send = (message: ThreadReadMessage) => port.postMessage(message);

/** Shared memory for batches' index arrays, handed back by the other thread as it releases them. */
const freeArrays: SharedArrayBuffer[] = [];
/** Kept at most: the batches ahead and a few the consumer still holds. */
const MAX_FREE_ARRAYS = 16;
/** The least an index-array buffer is made with (a batch of a 1 MiB chunk needs ~100-150 KB). */
const MIN_ARRAYS_BYTES = 256 * 1024;

/**
 * The batch's index arrays (offsets, line numbers, flags) copied into one piece of shared memory,
 * used again batch after batch, and the transport made to point there. Moved to the other thread as
 * buffers of their own, they were made here and freed there when its garbage collector got to them:
 * this thread's malloc arena then held up to 60 MB of them at once in some runs of a 1M-row join
 * (peak RSS 154 -> 203 MB in 1 run of 5). The bytes are shared already.
 */
function shareArrays(transport: object): SharedArrayBuffer {
  const views = Object.entries(transport).filter(
    (entry): entry is [string, Int32Array | Uint8Array] =>
      entry[0] !== 'buffer' && (entry[1] instanceof Int32Array || entry[1] instanceof Uint8Array),
  );
  let need = 0;
  for (const [, view] of views) need += (view.byteLength + 7) & ~7;
  const at = freeArrays.findIndex((arrays) => arrays.byteLength >= need);
  const arrays =
    at === -1 ? new SharedArrayBuffer(Math.max(need, MIN_ARRAYS_BYTES)) : freeArrays.splice(at, 1)[0]!;
  const fields = transport as Record<string, unknown>;
  let offset = 0;
  for (const [name, view] of views) {
    const shared =
      view instanceof Int32Array
        ? new Int32Array(arrays, offset, view.length)
        : new Uint8Array(arrays, offset, view.length);
    shared.set(view);
    fields[name] = shared;
    offset += (view.byteLength + 7) & ~7;
  }
  return arrays;
}
const warnings = new RecordedWarnings();
const parser =
  task.format === 'csv'
    ? new CsvReader(task.file, task.settings)
    : new JsonlReader(task.file, task.settings, warnings);
try {
  for await (const batch of readRowBatches(task.path, task.file, parser, task.settings.maxRowSize)) {
    while (credit === 0)
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    credit--;
    const rows = batch as CsvRowBatch | JsonlRowBatch;
    // A CSV sink asks each row whether its bytes can be copied as they are: answered here.
    if (rows instanceof CsvRowBatch) rows.findClean();
    const transport = rows.transport();
    const rejections: Array<[number, NonNullable<ReturnType<typeof rows.rejection>>]> = [];
    for (const entry of transport.rejected) rejections.push([entry, rows.rejection(entry)!]);
    const arrays = shareArrays(transport);
    send({ type: 'batch', rows: transport, rejections, warnings: warnings.calls, arrays });
    warnings.calls = [];
    // The bytes are the other thread's now: it hands them back when it is done with them.
  }
  send({ type: 'end' });
} catch (error) {
  send({ type: 'error', error: errorData(error) });
}
port.unref();
