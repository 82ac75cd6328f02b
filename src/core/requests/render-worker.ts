import { parentPort, workerData } from 'node:worker_threads';
import { errorData } from '../../errors.js';
import { ByteWriter } from '../../internal/byte-writer.js';
import type { Rejection } from '../../types.js';
import { CsvRowBatch } from '../csv/csv-row-batch.js';
import { JsonlRowBatch } from '../jsonl/jsonl-row-batch.js';
import { LineRenderer, type RenderPlan } from './render-lines.js';
import type { RenderReply, RowsTransport } from './render-pool.js';

// A render thread of RenderPool: renders each batch it is sent into the buffer sent with it.
const renderer = new LineRenderer(workerData as RenderPlan);

parentPort!.on('message', ({ id, rows, buffer }: { id: number; rows: RowsTransport; buffer: Uint8Array }) => {
  let reply: RenderReply;
  try {
    const batch = rows.type === 'csv' ? CsvRowBatch.from(rows) : JsonlRowBatch.from(rows);
    const given = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length);
    const writer = new ByteWriter(0, undefined, given);
    const lines = renderer.render(batch, writer);
    // Shared memory comes back as a new object: say whether it is the buffer given.
    const grown = writer.buffer !== given;
    // Rejections the sender does not know: lines of JSON the parse here refused.
    const known = new Set(rows.rejected);
    const rejections: Array<[number, Rejection]> = [];
    for (let i = 0; i < batch.length; i++) {
      const rejected = lines.starts[i] === -1 && !known.has(i) ? batch.rejection(i) : undefined;
      if (rejected) rejections.push([i, rejected]);
    }
    reply = { id, rendered: { ...lines, rejections, buffer: grown ? writer.buffer : undefined } };
  } catch (error) {
    reply = { id, error: errorData(error) };
  }
  parentPort!.postMessage(reply);
});
