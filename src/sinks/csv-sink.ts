import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { BatchpipeError } from '../errors.js';
import { parseOptions } from '../options.js';
import type { RowValues } from '../types.js';
import { cellText, type RowPlace, type TableSinkStream, tableSink } from './table-sink.js';

export type { SinkSummary, TableSinkStream } from './table-sink.js';

const CsvSinkOptions = z.strictObject({
  /** Columns, in order; keys of a row not among them are left out. Default: the first row's keys (then a later row with a key the header lacks is an error). */
  columns: z.array(z.string()).min(1).optional(),
  /** Field delimiter, one character. Default ",", or a tab for paths ending in .tsv. */
  delimiter: z.string().length(1).optional(),
  /** Write the header row. Default true. */
  header: z.boolean().default(true),
  /** Start the file with a UTF-8 byte order mark (for spreadsheet programs). Default false. */
  bom: z.boolean().default(false),
});
export type CsvSinkOptions = z.input<typeof CsvSinkOptions>;

/**
 * Writes rows (or plain records) as CSV with csv-stringify: fields holding the delimiter, quotes or
 * line breaks are quoted, quotes doubled; null and undefined are empty, objects and arrays JSON. The
 * header is the first row's columns (or `columns`); later rows are written under it, missing values
 * empty. Without `columns`, a later row with a key the header lacks fails the stream with BP_USAGE
 * naming the row and the column (its value would be lost; joinResults gives every row every column).
 * The file is written under a temporary name and renamed into place when complete.
 */
export function csvSink(path: string, options: CsvSinkOptions = {}): TableSinkStream {
  const opts = parseOptions(CsvSinkOptions, options, 'csvSink');
  const delimiter = opts.delimiter ?? (path.toLowerCase().endsWith('.tsv') ? '\t' : ',');
  let columns = opts.columns;
  /** The header's names, to catch keys it lacks; none when the caller chose the columns. */
  let header: Set<string> | undefined;
  let started = false;
  const settings = { delimiter, eof: true };
  const headerText = (): string =>
    (opts.bom ? '\ufeff' : '') + (opts.header ? stringify([columns!], settings) : '');
  return tableSink(path, {
    rows(batch: RowValues[], place) {
      if (columns === undefined) {
        columns = Object.keys(batch[0]!);
        header = new Set(columns);
      }
      const records: string[][] = new Array(batch.length);
      const n = columns.length;
      for (let r = 0; r < batch.length; r++) {
        const values = batch[r]!;
        if (header) {
          for (const key in values) if (!header.has(key)) throw notInHeader(key, place(r), columns);
        }
        const record: string[] = new Array(n);
        for (let c = 0; c < n; c++) record[c] = cellText(values[columns[c]!]);
        records[r] = record;
      }
      const text = stringify(records, settings);
      if (started) return text;
      started = true;
      return headerText() + text;
    },
    end() {
      // No rows: the header alone when the columns are known.
      if (started) return '';
      started = true;
      return columns === undefined ? (opts.bom ? '\ufeff' : '') : headerText();
    },
    columns: () => columns ?? [],
  });
}

function notInHeader(column: string, at: RowPlace, columns: string[]): BatchpipeError {
  const source = at.row === undefined ? '' : ` (source row ${at.row})`;
  const listed = `${columns.slice(0, 20).join(', ')}${columns.length > 20 ? ', ...' : ''}`;
  return new BatchpipeError(
    'BP_USAGE',
    `csvSink: row ${at.written}${source} has a column "${column}" that the header, taken from the first row, lacks (${listed}); its value would be lost. Pass "columns" to choose the columns, or give every row the same keys`,
    { file: at.file, line: at.line, row: at.row ?? at.written, column },
  );
}
