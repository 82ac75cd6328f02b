import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { cellText, type TableSinkStream, tableSink } from '../internal/table-sink.js';
import { parseOptions } from '../options.js';
import type { RowValues } from '../types.js';

export type { SinkSummary, TableSinkStream } from '../internal/table-sink.js';

const CsvSinkOptions = z.strictObject({
  /** Columns, in order. Default: the first row's keys (later rows are written under that header). */
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
 * empty. The file is written under a temporary name and renamed into place when complete.
 */
export function csvSink(path: string, options: CsvSinkOptions = {}): TableSinkStream {
  const opts = parseOptions(CsvSinkOptions, options, 'csvSink');
  const delimiter = opts.delimiter ?? (path.toLowerCase().endsWith('.tsv') ? '\t' : ',');
  let columns = opts.columns;
  let started = false;
  const settings = { delimiter, eof: true };
  const header = (): string =>
    (opts.bom ? '\ufeff' : '') + (opts.header ? stringify([columns!], settings) : '');
  return tableSink(path, {
    rows(batch: RowValues[]) {
      columns ??= Object.keys(batch[0]!);
      const records: string[][] = new Array(batch.length);
      const n = columns.length;
      for (let r = 0; r < batch.length; r++) {
        const values = batch[r]!;
        const record: string[] = new Array(n);
        for (let c = 0; c < n; c++) record[c] = cellText(values[columns[c]!]);
        records[r] = record;
      }
      const text = stringify(records, settings);
      if (started) return text;
      started = true;
      return header() + text;
    },
    end() {
      // No rows: the header alone when the columns are known.
      if (started) return '';
      started = true;
      return columns === undefined ? (opts.bom ? '\ufeff' : '') : header();
    },
    columns: () => columns ?? [],
  });
}
