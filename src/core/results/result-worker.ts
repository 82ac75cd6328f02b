import { parentPort, workerData } from 'node:worker_threads';
import { errorData } from '../../errors.js';
import { type RangeTask, spillRange } from './parallel-results.js';

// A worker thread of scatterResults: parses its byte range of the result files, reports the index.
spillRange(workerData as RangeTask).then(
  (report) => parentPort!.postMessage({ report }),
  (error: unknown) => parentPort!.postMessage({ error: errorData(error) }),
);
