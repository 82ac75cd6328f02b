import type { Readable, Writable } from 'node:stream';
import type { RowBatch } from '../core/rows/row-batch.js';

/**
 * How batchpipe's own stages agree, when one is piped into the next, to pass batches (RowBatch,
 * RequestBatch) instead of one object per row. A stage emits single items (Row, RequestItem,
 * ResultRecord, Rejection) unless the stage it is piped into asks for more: so a user's own Transform,
 * a `for await` loop or any other consumer sees one object per row, while a pipeline of batchpipe
 * stages moves bytes in batches and never decodes what it only copies. `pipeline()` and `.pipe()`
 * both announce the pipe ('pipe' on the destination) before any data flows.
 */

/** Called on a stage that can emit batches: emit them from now on. */
export const kEmitBatches = Symbol.for('batchpipe.emitBatches');

/**
 * Called on a result stage (resultSource, batchSink) by a join that reads result files itself, on
 * worker threads: hand on the files (one `ResultFiles` item) instead of parsing them here.
 */
export const kHandOverResultFiles = Symbol.for('batchpipe.handOverResultFiles');

/**
 * Called on a join by the table sink it is piped into, with how that sink writes cells: the join can
 * then store each row's result cells ready to write.
 */
export const kPreferCells = Symbol.for('batchpipe.preferCells');

export interface BatchEmitter {
  [kEmitBatches](): void;
}

/** Makes `stream` ask each batchpipe stage piped into it to emit batches. */
export function takeBatches(stream: Writable): void {
  stream.on('pipe', (source: Readable) => {
    (source as Partial<BatchEmitter>)[kEmitBatches]?.();
  });
}

/**
 * Batches as stages pass them: a length, a way to get one entry as a stream item, and `release`,
 * which the stage that is done with a batch calls so its buffers are used again (see BufferPool).
 */
export interface ItemBatch<T> {
  readonly length: number;
  item(i: number): T;
  release?(): void;
  /**
   * About how many entries the whole input holds, where the batch says so (RowBatch.estimatedRows):
   * set by the source as it reads.
   */
  estimatedRows?: number | undefined;
}

/**
 * Called on a table source by a stage that reads it whole, in order, while its own thread is busy
 * with the rows (a join's output pass): the source's row batches, read and scanned on a worker
 * thread; undefined when the source cannot (a stream input, a small file, a columnar format). The
 * stream itself is then not read.
 */
export const kReadOnThread = Symbol.for('batchpipe.readOnThread');

/**
 * Set (to true) on a joinResults `source` function whose every stream gives one file's rows in row
 * order: a join with no id column may then place results by row number and read the source once
 * (core/join/row-ranges.ts). A path given as the source is read so already.
 */
export const kInRowOrder = Symbol.for('batchpipe.inRowOrder');

/** Marks a source function as kInRowOrder says, and returns it. */
export function inRowOrder<T extends (...args: never[]) => unknown>(open: T): T {
  Object.defineProperty(open, kInRowOrder, { value: true });
  return open;
}

export interface ThreadReadable {
  [kReadOnThread](): AsyncIterable<RowBatch> | undefined;
}
