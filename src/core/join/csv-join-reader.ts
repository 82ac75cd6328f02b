import { BatchpipeError } from '../../errors.js';
import { ChunkReader } from '../../internal/chunk-reader.js';
import { type CsvOptions, CsvRowParser, scannedRow } from '../../sources/csv-source.js';
import type { Rejection, Row, SourceItem } from '../../types.js';
import { fieldText, type ScannedRow } from '../csv/csv-scanner.js';
import { customIdFor } from '../requests/custom-id.js';

/** How a join reads a CSV file: ids only for its first pass, rows a few at a time for its second. */

/** A source row in a join's first pass: its number and its custom_id. */
export interface KeyItem {
  kind: 'key';
  index: number;
  line: number;
  id: string;
}

/**
 * The custom_ids of a CSV file in row order, for a join's first pass: only the id column is decoded
 * (decoding every field, as a Row source does, made a million rows of garbage that outlived young
 * collections). `use` gets each chunk's items before the next read; rows the reader rejects come as
 * Rejections, to skip. Returns the header once a good row was read (undefined when none was), and
 * throws BP_ID_COLUMN_MISSING at the first good row when the header lacks `idColumn`.
 */
export async function readCsvKeys(
  file: string,
  csv: CsvOptions,
  idColumn: string | undefined,
  use: (items: Array<KeyItem | Rejection>) => Promise<void>,
): Promise<string[] | undefined> {
  let columns: string[] | undefined;
  let id = -1;
  const parser: CsvRowParser<KeyItem> = new CsvRowParser(file, csv, (index, line, scanned) => {
    if (columns === undefined) {
      columns = parser.columns!;
      id = idColumnIndex(idColumn, columns, { file, line, index });
    }
    return { kind: 'key', index, line, id: csvRowId(index, scanned, id, csv.quote) };
  });
  await readCsv(file, csv.maxRowSize, parser, use);
  return columns;
}

/** Stops the scan after a full batch (an already settled promise: the generator hands the batch on first). */
const BATCH_FULL = Promise.resolve();

/**
 * A CSV file's items (Rows as csvSource makes them, and Rejections) in batches of at most `size`,
 * each row parsed only when its batch is asked for. A Row source parses a whole 1 MiB chunk at once
 * and queues what it parsed: at a million rows those thousands of waiting rows outlived
 * young-generation collections, and the old generation filled with them until a full collection.
 */
export async function* csvRowBatches(
  file: string,
  csv: CsvOptions,
  size: number,
): AsyncGenerator<SourceItem[]> {
  const quote = csv.quote;
  let batch: SourceItem[] = [];
  const parser: CsvRowParser<Row> = new CsvRowParser(
    file,
    csv,
    (index, line, scanned) => scannedRow(file, parser.columns!, quote, index, line, scanned),
    (item) => {
      batch.push(item);
      return batch.length >= size ? BATCH_FULL : undefined;
    },
  );
  const reader = new ChunkReader(file, file, csv.maxRowSize);
  try {
    let consumed = 0;
    let stopped = false;
    for (;;) {
      // After an early stop the rest of the chunk comes first: reading more now would only grow the buffer.
      const { data, last } = await reader.next(consumed, !stopped);
      const parsed = parser.parse(data, last);
      consumed = parsed.consumed;
      stopped = parsed.waiting !== undefined;
      if (batch.length > 0) {
        const full = batch;
        batch = [];
        yield full;
      }
      if (!stopped && last) return;
    }
  } finally {
    await reader.close();
  }
}

/** Where the id column is in a header (-1 for `row-<n>` ids); BP_ID_COLUMN_MISSING when it is not there. */
export function idColumnIndex(
  idColumn: string | undefined,
  columns: string[],
  at: { file: string; line: number; index: number },
): number {
  if (idColumn === undefined) return -1;
  const at_ = columns.indexOf(idColumn);
  if (at_ === -1) throw idColumnMissing(idColumn, at, columns);
  return at_;
}

/** A scanned row's custom_id, as csvSource's Row would give it: a missing field (relaxColumnCount) is "". */
export function csvRowId(index: number, scanned: ScannedRow, idColumn: number, quote: string): string {
  if (idColumn === -1) return customIdFor(index);
  return customIdFor(index, idColumn < scanned.count ? fieldText(scanned, idColumn, quote) : '');
}

/** Reads a file through a CSV parser, handing each chunk's items to `use` before the next read. */
export async function readCsv<T>(
  file: string,
  maxRowBytes: number,
  parser: CsvRowParser<T>,
  use: (items: Array<T | Rejection>) => Promise<void>,
): Promise<void> {
  const reader = new ChunkReader(file, file, maxRowBytes);
  try {
    let consumed = 0;
    for (;;) {
      const { data, last } = await reader.next(consumed);
      const parsed = parser.parse(data, last);
      consumed = parsed.consumed;
      await use(parsed.items);
      if (last) return;
    }
  } finally {
    await reader.close();
  }
}

/** BP_ID_COLUMN_MISSING, as prepare says it. */
export function idColumnMissing(
  name: string,
  at: { file: string; line: number; index: number },
  columns: string[],
): BatchpipeError {
  const listed = `${columns.slice(0, 20).join(', ')}${columns.length > 20 ? ', ...' : ''}`;
  return new BatchpipeError(
    'BP_ID_COLUMN_MISSING',
    `idColumn is "${name}" but row ${at.index} has no such column (columns: ${listed})`,
    { file: at.file, line: at.line, row: at.index, column: name },
  );
}
