import { ChunkReader } from '../../internal/chunk-reader.js';
import type { SourceInput } from '../../internal/input.js';
import { WarningLog } from '../../internal/warnings.js';
import { readArrowBatches } from '../arrow/arrow-reader.js';
import { CsvReader, type CsvSettings } from '../csv/csv-reader.js';
import { JsonlReader, type JsonlSettings } from '../jsonl/jsonl-reader.js';
import { readParquetBatches } from '../parquet/parquet-reader.js';
import type { RowBatch } from '../rows/row-batch.js';
import { delimiterOf, formatOfPath } from './table-format.js';
import { threadReadOf } from './table-read-thread.js';

/** Turns chunks of a table's bytes into row batches. */
export interface RowParser {
  /**
   * `holdsChunk`: the batch points into the chunk, which the reader must then not read over.
   * `stopped`: whole rows are left (a batch is full): pass them again before reading more.
   */
  parse(
    chunk: Buffer,
    last: boolean,
  ): { batch: RowBatch | undefined; consumed: number; holdsChunk?: boolean; stopped?: boolean };
}

/** Longest row read by default: longer is almost surely an unclosed quote. */
export const DEFAULT_MAX_ROW_BYTES = 64 * 1024 * 1024;

/** CSV read with every default (a tab for .tsv files). */
export function defaultCsvSettings(path: string): CsvSettings {
  return {
    delimiter: delimiterOf(undefined, undefined, path),
    quote: '"',
    header: true,
    columns: undefined,
    encoding: 'utf-8',
    relaxColumnCount: false,
    badRows: 'reject',
    maxRowSize: DEFAULT_MAX_ROW_BYTES,
  };
}

/** JSON Lines read with every default. */
export const DEFAULT_JSONL_SETTINGS: JsonlSettings = {
  badRows: 'reject',
  bigIntegers: 'string',
  maxRowSize: DEFAULT_MAX_ROW_BYTES,
};

/** A table at a path, read with the defaults its extension implies: JSON Lines, or CSV/TSV. */
export function defaultRowParser(path: string): RowParser {
  return formatOfPath(path) === 'jsonl'
    ? new JsonlReader(path, DEFAULT_JSONL_SETTINGS, new WarningLog())
    : new CsvReader(path, defaultCsvSettings(path));
}

/**
 * A table at a path read with its extension's defaults: Parquet and Arrow by record batch, text
 * formats by chunk. With `columns`, a Parquet file reads only those (see RowBatch.tableColumns).
 */
export function readTableBatches(path: string, columns?: readonly string[]): AsyncGenerator<RowBatch> {
  const format = formatOfPath(path);
  if (format === 'parquet') return readParquetBatches(path, path, { columns });
  if (format === 'arrow' || format === 'arrows') return readArrowBatches(path, path);
  return readRowBatches(path, path, defaultRowParser(path));
}

/**
 * A CSV/TSV or JSON Lines file's batches read on a worker thread with its extension's defaults (as
 * readTableBatches reads it), when the file is large enough to be worth one; else undefined.
 */
export function readTableBatchesOnThread(path: string): AsyncGenerator<RowBatch> | undefined {
  const format = formatOfPath(path);
  if (format === 'parquet' || format === 'arrow' || format === 'arrows') return undefined;
  return threadReadOf(path, (file) =>
    format === 'jsonl'
      ? { format: 'jsonl', path: file, file, settings: DEFAULT_JSONL_SETTINGS }
      : { format: 'csv', path: file, file, settings: defaultCsvSettings(file) },
  )();
}

/** Reads an input's row batches, one chunk at a time, each only when asked for. */
export async function* readRowBatches(
  input: SourceInput,
  file: string,
  parser: RowParser,
  maxRowBytes = DEFAULT_MAX_ROW_BYTES,
): AsyncGenerator<RowBatch> {
  const reader = new ChunkReader(input, file, maxRowBytes);
  try {
    let consumed = 0;
    let stopped = false;
    for (;;) {
      // After an early stop the rows already read come first: reading more now would only grow the buffer.
      const { data, last } = await reader.next(consumed, !stopped);
      const parsed = parser.parse(data, last);
      consumed = parsed.consumed;
      stopped = parsed.stopped === true;
      if (parsed.holdsChunk) reader.detach();
      if (parsed.batch && parsed.batch.length > 0) yield parsed.batch;
      if (last && !stopped) return;
    }
  } finally {
    await reader.close();
  }
}
