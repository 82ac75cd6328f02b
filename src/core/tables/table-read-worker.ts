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
  credit += request.more;
  wake?.();
});

const send = (message: ThreadReadMessage, transfer: ArrayBuffer[] = []) =>
  port.postMessage(message, transfer);

/**
 * The batch's offset arrays, each the whole of a buffer of its own (the reader slices them per
 * batch): moved to the other thread rather than copied. The bytes are shared already.
 */
function ownArrays(transport: object): ArrayBuffer[] {
  const moved: ArrayBuffer[] = [];
  for (const [name, value] of Object.entries(transport)) {
    if (name === 'buffer' || !ArrayBuffer.isView(value)) continue;
    const whole = value.buffer;
    if (whole instanceof ArrayBuffer && value.byteOffset === 0 && value.byteLength === whole.byteLength)
      moved.push(whole);
  }
  return moved;
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
    send({ type: 'batch', rows: transport, rejections, warnings: warnings.calls }, ownArrays(transport));
    warnings.calls = [];
    // The bytes are the other thread's now: it hands them back when it is done with them.
  }
  send({ type: 'end' });
} catch (error) {
  send({ type: 'error', error: errorData(error) });
}
port.unref();
