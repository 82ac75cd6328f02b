import { csvCell } from '../core/csv/csv-cell.js';
import type { ScannedRow } from '../core/csv/csv-scanner.js';
import { fieldText } from '../core/csv/csv-scanner.js';
import { csvRowId, type KeyItem, readCsv, readCsvKeys } from '../core/join/csv-join-reader.js';
import { type HashJoin, type JoinSummary, missingMessage } from '../core/join/hash-join.js';
import { csvTail, csvTailOf } from '../core/results/result-cells.js';
import { BufferedFile } from '../internal/buffered-file.js';
import type { CsvOptions } from '../sources/csv-source.js';
import { CsvRowParser } from '../sources/csv-source.js';
import type { Rejection } from '../types.js';

/** A source row in the second pass: its bytes (or, when they cannot be copied, its fields re-encoded). */
interface RowBytes {
  kind: 'bytes';
  index: number;
  line: number;
  id: string;
  buffer: Buffer;
  start: number;
  end: number;
  /** The source fields as CSV text, when the raw bytes would not read back as the same fields. */
  text: string | undefined;
}

export interface CsvBytesJoin {
  file: string;
  csv: CsvOptions;
  idColumn: string | undefined;
  /** Its cells stored as CSV text (`{kind: 'csv'}` with this delimiter). */
  join: HashJoin;
  fieldPrefix: string;
  out: string;
  /** Loads the results into `join`, running the key pass it is given at some point (it may overlap). */
  loadResults: (keyPass: () => Promise<void>) => Promise<void>;
}

const LF = '\n';

/**
 * The join for CSV in and CSV out with the same delimiter and `"` quotes: each source row's bytes
 * are copied to the output as they are, followed by the result columns, so the source text is never
 * decoded into strings (the Row path decodes every field, and csv-stringify encodes it again, which
 * dominates at a million rows). Both passes read only the id column as text. What it writes reads
 * back (csv-parse) as exactly the table the Row path writes; only quoting a field did not need may
 * differ, as the source had it. Rows that would not copy cleanly (a quote inside an unquoted field, a
 * field count off the header's with relaxColumnCount) are written field by field instead.
 */
export async function joinCsvBytes(settings: CsvBytesJoin): Promise<JoinSummary> {
  const { file, csv, join } = settings;
  const quote = csv.quote;
  const quoteByte = quote.charCodeAt(0);
  const delimiter = csv.delimiter ?? (file.toLowerCase().endsWith('.tsv') ? '\t' : ',');
  let columns: string[] | undefined;

  // Step 2: ids only.
  const addKeys = async (items: Array<KeyItem | Rejection>): Promise<void> => {
    for (const item of items) {
      if (item.kind !== 'key') continue;
      let rejected = join.rejection(item.index);
      if (rejected instanceof Promise) rejected = await rejected;
      if (rejected) continue;
      const waiting = join.key(item.id);
      if (waiting) await waiting;
    }
  };
  await settings.loadResults(async () => {
    await join.beginKeys();
    columns = await readCsvKeys(file, csv, settings.idColumn, addKeys);
  });
  // The key pass checked the id column is in the header.
  const goodRows = columns !== undefined;
  const idColumn = goodRows && settings.idColumn !== undefined ? columns!.indexOf(settings.idColumn) : -1;

  await join.join();

  // Step 4: bytes out.
  const sourceColumns = goodRows ? columns! : [];
  const names = join.layout.names(sourceColumns, settings.fieldPrefix);
  const width = columns?.length ?? 0;
  const emptySource = width > 1 ? delimiter.repeat(width - 1) : '';
  const out = new BufferedFile(settings.out);
  let wroteHeader = false;
  const write = (text: string): Promise<void> | undefined => out.append(text, Buffer.byteLength(text));

  const noResult = (...args: Parameters<HashJoin['layout']['none']>): string =>
    csvTail(join.layout.none(...args), delimiter) + LF;

  const rows: CsvRowParser<RowBytes> = new CsvRowParser(file, csv, (index, line, scanned) => ({
    kind: 'bytes',
    index,
    line,
    id: csvRowId(index, scanned, idColumn, quote),
    buffer: scanned.buffer,
    start: scanned.rowStart,
    end: scanned.rowEnd,
    text: copiesCleanly(scanned, quoteByte, width) ? undefined : fieldsText(scanned, width, quote, delimiter),
  }));

  const emit = async (items: Array<RowBytes | Rejection>): Promise<void> => {
    if (!wroteHeader && items.length > 0) {
      wroteHeader = true;
      const header = [...sourceColumns, ...names];
      const waiting = write(header.map((n) => csvCell(n, delimiter)).join(delimiter) + LF);
      if (waiting) await waiting;
    }
    for (const item of items) {
      let waiting: Promise<void> | undefined;
      if (item.kind !== 'bytes') {
        // A row the source could not read: empty source fields.
        join.rejected();
        const text = noResult(item.custom_id, 'rejected', item.code, item.message);
        // With no readable row at all there are no source columns, as on the Row path.
        waiting = write(goodRows ? emptySource + text : text.slice(delimiter.length));
        if (waiting) await waiting;
        continue;
      }
      let rejected = join.rejection(item.index);
      if (rejected instanceof Promise) rejected = await rejected;
      let tail: string;
      if (rejected) {
        join.rejected();
        tail = noResult(rejected.custom_id, 'rejected', rejected.code, rejected.message);
      } else {
        let line = join.next(item.id);
        while (line === undefined) {
          await join.load(item.id, { index: item.index, file, line: item.line });
          line = join.next(item.id);
        }
        const stored = join.cells(item.id, line, { index: item.index, file, line: item.line });
        tail =
          stored === null
            ? noResult(item.id, 'missing', 'BP_RESULT_MISSING', missingMessage(item.id))
            : csvTailOf(stored) + LF;
      }
      if (item.text === undefined) {
        waiting = out.appendBytes(item.buffer, item.start, item.end);
        if (waiting) await waiting;
        waiting = write(tail);
      } else waiting = write(item.text + tail);
      if (waiting) await waiting;
    }
  };

  try {
    // Row bytes point into the reader's buffer: `emit` copies them out before the next read.
    await readCsv(file, csv.maxRowSize, rows, emit);
    const summary = await join.finish(names);
    await out.close();
    return summary;
  } catch (error) {
    await out.discard();
    throw error;
  }
}

/**
 * True when the row's bytes read back as the same fields under the header: as many fields as
 * columns, and no quote inside an unquoted field (which the scanner takes literally but a strict
 * reader refuses). Most rows have no quote at all, answered by one search.
 */
function copiesCleanly(row: ScannedRow, quote: number, width: number): boolean {
  if (row.count !== width) return false;
  const b = row.buffer;
  const first = b.indexOf(quote, row.rowStart);
  if (first === -1 || first >= row.rowEnd) return true;
  for (let f = 0; f < row.count; f++) {
    const start = row.starts[f]!;
    const end = row.ends[f]!;
    const quoted = start > row.rowStart && b[start - 1] === quote;
    if (!quoted) {
      const at = b.indexOf(quote, start);
      if (at !== -1 && at < end) return false;
    }
  }
  return true;
}

/** The row's fields, padded or cut to the header's width, as CSV text. */
function fieldsText(row: ScannedRow, width: number, quote: string, delimiter: string): string {
  let text = '';
  for (let f = 0; f < width; f++) {
    if (f > 0) text += delimiter;
    if (f < row.count) text += csvCell(fieldText(row, f, quote), delimiter);
  }
  return text;
}
