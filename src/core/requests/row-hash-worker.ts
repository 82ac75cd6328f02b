import { workerData } from 'node:worker_threads';
import { serveJobs } from '../../internal/worker-pool.js';
import type { RowsTransport } from './render-pool.js';
import { RowHasher } from './row-hash.js';
import { rowBatchOf } from './thread-rows.js';

// A thread of RowHashPool: the row hash of each row of each batch it is sent (NaN for rejected rows).
const hasher = new RowHasher(workerData as string[]);

serveJobs(({ rows }: { rows: RowsTransport }): Float64Array => {
  const batch = rowBatchOf(rows);
  const hashes = new Float64Array(batch.length);
  for (let i = 0; i < batch.length; i++) hashes[i] = batch.rejection(i) ? Number.NaN : hasher.hash(batch, i);
  return hashes;
});
