import { Writable } from 'node:stream';
import { isRowBatch, type RowBatch } from '../core/rows/row-batch.js';
import { BatchpipeError } from '../errors.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { makeParentDir } from '../internal/durable-write.js';
import { takeBatches } from '../streams/batch-protocol.js';
import type { Row, RowValues } from '../types.js';

/** What a table sink has written, set once it has finished. */
export interface SinkSummary {
  /** The file written. */
  path: string;
  /** Rows written. */
  rows: number;
  /** Bytes written. */
  bytes: number;
  /** The columns, in order (CSV: the header). */
  columns: string[];
}

/** The Writable a table sink returns; `summary` is set once it has finished. */
export interface TableSinkStream extends Writable {
  readonly summary: SinkSummary | undefined;
  /** Rows taken so far, as they are written: for progress. */
  readonly rows: number;
}

/** Where a row given to a sink came from, for errors: its place in the output, and its source's if it was a Row. */
export interface RowPlace {
  /** 1-based position among the rows written. */
  written: number;
  row?: number;
  file?: string;
  line?: number;
}

/** Where the encoded text goes: append, and wait only when a promise comes back. */
export interface TableOut {
  text(text: string): Promise<void> | undefined;
  bytes(data: Buffer, start: number, end: number): Promise<void> | undefined;
}

/** Turns rows into file text. */
export interface TableEncoder {
  /** Writes one row's values (`place` says where it came from). */
  row(values: RowValues, place: RowPlace, out: TableOut): Promise<void> | undefined;
  /**
   * Writes a batch of rows (`written` rows came before); without it, each row goes through `row`. It
   * may hand the batch back to that (`eachRow`) when it has no better way.
   */
  batch?(
    rows: RowBatch,
    written: number,
    out: TableOut,
    eachRow: () => Promise<void>,
  ): Promise<void> | undefined;
  /** Writes what is still held (a columnar file's last row group and footer), before `end`. */
  finish?(out: TableOut): Promise<void>;
  /** Stops without finishing, when the sink is destroyed (a columnar writer's thread ends). */
  abort?(): Promise<void>;
  /** What closes the file. */
  end(): string;
  columns(): string[];
}

/**
 * The Writable behind csvSink and jsonlSink: takes Rows (their `values`), plain records, or batches of
 * rows from batchpipe's own stages, and writes through a BufferedFile, so the file appears under its
 * name only when complete (a failed run leaves nothing half-written). Rejections are refused: a table
 * sink would have to drop them, and rows are never dropped silently (joinResults turns them into rows).
 */
export function tableSink(path: string, encoder: TableEncoder): TableSinkStream {
  // A table is most of what a job writes: three writes may be in flight (3 MiB), so a disk thread
  // slow to be scheduled on a busy machine does not hold the rows up.
  const file = new BufferedFile(path, { writesAhead: 3 });
  const out: TableOut = {
    text: (text) => file.append(text, Buffer.byteLength(text)),
    bytes: (data, start, end) => file.appendBytes(data, start, end),
  };
  let rows = 0;
  let ready: Promise<unknown> | undefined;
  let summary: SinkSummary | undefined;
  const whenReady = (next: () => Promise<void> | undefined, done: (error?: Error | null) => void) => {
    ready ??= makeParentDir(path);
    // A sink destroyed meanwhile has discarded its file: nothing more goes to it.
    ready.then(() => (stream.destroyed ? undefined : next())).then(() => done(), done);
  };

  const writeBatch = async (batch: RowBatch): Promise<void> => {
    for (let i = 0; i < batch.length; i++) {
      const rejected = batch.rejection(i);
      if (rejected) throw rejection(rejected.index, rejected.message);
    }
    const written = rows;
    rows += batch.length;
    const eachRow = async (): Promise<void> => {
      for (let i = 0; i < batch.length; i++) {
        const place = {
          written: written + i + 1,
          row: batch.index(i),
          file: batch.file(i),
          line: batch.line(i),
        };
        const waiting = encoder.row(batch.values(i), place, out);
        if (waiting) await waiting;
      }
    };
    if (encoder.batch) await encoder.batch(batch, written, out, eachRow);
    else await eachRow();
    // Written (copied into the file's buffers): the batch's own buffers are used again.
    batch.release();
  };

  const stream = new Writable({
    objectMode: true,
    highWaterMark: 4,
    write(item: unknown, _encoding, done) {
      if (isRowBatch(item)) return whenReady(() => writeBatch(item), done);
      const record = item as { kind?: unknown; values?: unknown; index?: unknown; message?: unknown } | null;
      if (record === null || typeof record !== 'object') {
        return done(new BatchpipeError('BP_USAGE', `a table sink takes rows or records, got ${typeof item}`));
      }
      if (record.kind === 'rejection') return done(rejection(record.index, record.message));
      const values = record.kind === 'row' ? (record.values as RowValues) : (record as RowValues);
      const place = placeOf(record, ++rows);
      // An encoder that refuses a row throws: the promise carries it to `done`.
      whenReady(() => encoder.row(values, place, out), done);
    },
    final(done) {
      (ready ?? makeParentDir(path))
        .then(async () => {
          if (encoder.finish) await encoder.finish(out);
          const tail = encoder.end();
          if (tail !== '') await out.text(tail);
          const bytes = file.bytes;
          await file.close();
          summary = { path, rows, bytes, columns: encoder.columns() };
        })
        .then(() => done(), done);
    },
    destroy(error, done) {
      if (summary) return done(error);
      Promise.resolve(encoder.abort?.())
        .catch(() => undefined)
        .then(() => file.discard())
        .then(
          () => done(error),
          () => done(error),
        );
    },
  }) as TableSinkStream;
  takeBatches(stream);
  Object.defineProperty(stream, 'summary', { get: () => summary, enumerable: true });
  Object.defineProperty(stream, 'rows', { get: () => rows, enumerable: true });
  return stream;
}

function rejection(index: unknown, message: unknown): BatchpipeError {
  return new BatchpipeError(
    'BP_USAGE',
    `a table sink got a rejection (row ${String(index)}: ${String(message)}); put joinResults before the sink, or filter rejections out`,
  );
}

function placeOf(item: unknown, written: number): RowPlace {
  const row = item as Partial<Row>;
  if (row.kind !== 'row') return { written };
  return { written, row: row.index, file: row.file, line: row.line };
}
