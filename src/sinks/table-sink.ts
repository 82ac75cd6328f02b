import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { BatchpipeError } from '../errors.js';
import { BufferedFile } from '../internal/buffered-file.js';
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
}

/** Where a row given to a sink came from, for errors: its place in the output, and its source's if it was a Row. */
export interface RowPlace {
  /** 1-based position among the rows written. */
  written: number;
  row?: number;
  file?: string;
  line?: number;
}

/**
 * Turns rows into file text: `rows` takes a batch (values in order of arrival; `place(i)` says where
 * `batch[i]` came from), `end` what closes the file.
 */
export interface TableEncoder {
  rows(batch: RowValues[], place: (i: number) => RowPlace): string;
  end(): string;
  columns(): string[];
}

/**
 * Rows gathered before they are encoded together. Few: the text of a batch is one string, and one
 * over 128 KiB goes to V8's large-object space, which only a full collection frees; rows that wait
 * are also promoted out of the young generation (1M joined rows: peak RSS 250 MB with 1024).
 */
const BATCH_ROWS = 64;

/**
 * The Writable behind csvSink and jsonlSink: takes Rows (their `values`) or plain records, encodes
 * them a batch at a time, and writes through a BufferedFile, so the file appears under its name only
 * when complete (a failed run leaves nothing half-written). Rejections are refused: a table sink
 * would have to drop them, and rows are never dropped silently (joinResults turns them into rows).
 */
export function tableSink(path: string, encoder: TableEncoder): TableSinkStream {
  const file = new BufferedFile(path);
  let batch: RowValues[] = [];
  /** The items behind `batch` (Rows or plain records), only read when an encoder reports a row. */
  let items: unknown[] = [];
  let rows = 0;
  let ready: Promise<unknown> | undefined;
  let summary: SinkSummary | undefined;
  const flush = (): Promise<void> | undefined => {
    if (batch.length === 0) return undefined;
    const first = rows - batch.length + 1;
    const from = items;
    const text = encoder.rows(batch, (i) => placeOf(from[i], first + i));
    batch = [];
    items = [];
    return file.append(text, Buffer.byteLength(text));
  };
  const stream = new Writable({
    objectMode: true,
    highWaterMark: BATCH_ROWS,
    write(item: unknown, _encoding, done) {
      const record = item as { kind?: unknown; values?: unknown; index?: unknown; message?: unknown } | null;
      if (record === null || typeof record !== 'object') {
        return done(new BatchpipeError('BP_USAGE', `a table sink takes rows or records, got ${typeof item}`));
      }
      if (record.kind === 'rejection') {
        return done(
          new BatchpipeError(
            'BP_USAGE',
            `a table sink got a rejection (row ${String(record.index)}: ${String(record.message)}); put joinResults before the sink, or filter rejections out`,
          ),
        );
      }
      batch.push(record.kind === 'row' ? (record.values as RowValues) : (record as RowValues));
      items.push(record);
      rows++;
      if (batch.length < BATCH_ROWS) return done();
      ready ??= mkdir(dirname(path), { recursive: true });
      // An encoder that refuses a row throws inside flush: the promise carries it to `done`.
      ready.then(() => flush()).then(() => done(), done);
    },
    final(done) {
      (ready ?? mkdir(dirname(path), { recursive: true }))
        .then(async () => {
          await flush();
          const tail = encoder.end();
          if (tail !== '') await file.append(tail, Buffer.byteLength(tail));
          const bytes = file.bytes;
          await file.close();
          summary = { path, rows, bytes, columns: encoder.columns() };
        })
        .then(() => done(), done);
    },
    destroy(error, done) {
      if (summary) return done(error);
      file.discard().then(
        () => done(error),
        () => done(error),
      );
    },
  }) as TableSinkStream;
  Object.defineProperty(stream, 'summary', { get: () => summary, enumerable: true });
  return stream;
}

function placeOf(item: unknown, written: number): RowPlace {
  const row = item as Partial<Row>;
  if (row.kind !== 'row') return { written };
  return { written, row: row.index, file: row.file, line: row.line };
}

/** How a value is written in a text cell: null as empty, objects and arrays as JSON. */
export function cellText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}
