import { parentPort, workerData } from 'node:worker_threads';
import { isBatchpipeError } from '../../errors.js';
import { type RangeTask, rawMessage, spillRange } from './parallel-results.js';

// A worker thread of scatterResults: parses its byte range of the result files, reports the index.
spillRange(workerData as RangeTask).then(
  (report) => parentPort!.postMessage({ report }),
  (error: unknown) => {
    const e = isBatchpipeError(error)
      ? { code: error.code, message: rawMessage(error), context: error.context }
      : { code: 'BP_INPUT_READ', message: (error as Error)?.message ?? String(error), context: {} };
    parentPort!.postMessage({ error: e });
  },
);
