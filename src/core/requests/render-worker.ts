import { workerData } from 'node:worker_threads';
import { ByteWriter } from '../../internal/byte-writer.js';
import { serveJobs } from '../../internal/worker-pool.js';
import type { Rejection } from '../../types.js';
import { loadArrow } from '../arrow/arrow-lib.js';
import { useLinesMemory } from './key-module.js';
import { KeySet } from './key-set.js';
import { LineRenderer } from './render-lines.js';
import type { Rendered, RenderJob, RenderThreadData } from './render-pool.js';
import { rowBatchOf } from './thread-rows.js';

// A render thread of RenderPool: renders each batch it is sent into the buffer sent with it.
const { plan, memory, repeats: table } = workerData as RenderThreadData;
const renderer = new LineRenderer(plan);
// With marked repeats: the key table, as the main thread left it (the batches come in order).
const repeats = table && KeySet.attach(table);
// Keys are made in the lines memory the main thread made (handed to this thread with keyed plans).
if (memory) useLinesMemory(memory);

// apache-arrow is loaded only for Arrow batches (a CSV job does not pay for it).
serveJobs((job: RenderJob): Rendered | Promise<Rendered> =>
  job.rows.type === 'arrow' ? loadArrow().then(() => render(job)) : render(job),
);

function render({ rows, buffer, inMemory }: RenderJob): Rendered {
  const batch = rowBatchOf(rows);
  const given = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.length);
  const writer = new ByteWriter(0, undefined, given);
  const lines = renderer.render(batch, writer, inMemory === true, repeats);
  // Rejections the sender does not know: lines of JSON the parse here refused.
  const known = new Set(rows.rejected);
  const rejections: Array<[number, Rejection]> = [];
  for (let i = 0; i < batch.length; i++) {
    const rejected = lines.starts[i] === -1 && !known.has(i) ? batch.rejection(i) : undefined;
    if (rejected) rejections.push([i, rejected]);
  }
  // Shared memory comes back as a new object: say whether it is the buffer given.
  return { ...lines, rejections, buffer: writer.buffer !== given ? writer.buffer : undefined };
}
