import type { Readable } from 'node:stream';
import { z } from 'zod';
import { CsvReader, type CsvSettings } from '../core/csv/csv-reader.js';
import type { CsvRowBatch } from '../core/csv/csv-row-batch.js';
import { delimiterOf, type TableFormat } from '../core/tables/table-format.js';
import { threadReadOf } from '../core/tables/table-read-thread.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { byteSize, parseOptions } from '../options.js';
import { kReadOnThread } from '../streams/batch-protocol.js';
import { BatchReadable } from '../streams/batch-readable.js';
import type { SourceItem } from '../types.js';

const singleByte = (what: string) =>
  z
    .string()
    .refine((s) => s.length === 1 && s.charCodeAt(0) < 0x80, `expected one ASCII character for the ${what}`);

/** How a CSV table is read: the options csvSource and the commands that read tables share. */
export const CsvTableFields = {
  /** Field delimiter, one ASCII character. Default ",", or a tab for files ending in .tsv. */
  delimiter: singleByte('delimiter').optional(),
  /** Quote character. Default `"`. */
  quote: singleByte('quote').default('"'),
  /** First row is the header. Default true. */
  header: z.boolean().default(true),
  /** Column names to use instead of (or, with `header: false`, in place of) the header row. */
  columns: z.array(z.string()).optional(),
  /** Text encoding (a WHATWG label such as "utf-8", "latin1", "utf-16le"). Default "utf-8". */
  encoding: z.string().default('utf-8'),
  /** A row with the wrong field count pads missing fields with "" and drops extras, instead of failing. */
  relaxColumnCount: z.boolean().default(false),
  /** A malformed row becomes a rejection ("reject", default) or stops the run ("fail"). */
  badRows: z.enum(['reject', 'fail']).default('reject'),
  /** A row longer than this stops the run: it is almost surely an unclosed quote. Default 64 MiB. */
  maxRowSize: byteSize.default(64 * 1024 * 1024),
};

const CsvSourceOptions = z.strictObject({
  /** Name used in errors when the input is a stream. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
  ...CsvTableFields,
});
export type CsvSourceOptions = z.input<typeof CsvSourceOptions>;
/** The CSV table options, checked and defaulted (without a resolved delimiter). */
export type CsvTableOptions = z.output<z.ZodObject<typeof CsvTableFields>>;

/**
 * How a table is read, every option resolved: the one place a delimiter defaults (a tab for TSV, by
 * the format or the file's extension).
 */
export function csvSettings(
  opts: CsvTableOptions,
  format: TableFormat | undefined,
  file: string,
): CsvSettings {
  return {
    delimiter: delimiterOf(opts.delimiter, format, file),
    quote: opts.quote,
    header: opts.header,
    columns: opts.columns,
    encoding: opts.encoding,
    relaxColumnCount: opts.relaxColumnCount,
    badRows: opts.badRows,
    maxRowSize: opts.maxRowSize,
  };
}

/**
 * Streams a CSV file (or stream) as rows with 1-based row numbers and the physical line each row
 * starts on. Handles headers, delimiters, quoted newlines, doubled quotes, BOM, CRLF and empty lines;
 * memory stays at a chunk or two whatever the file size. A malformed row (bad quoting, wrong field
 * count, invalid UTF-8) becomes a Rejection or, with `badRows: "fail"`, an error naming the line.
 * Emits one Row (or Rejection) per row; to batchpipe's own stages it hands batches of rows over the
 * bytes they were read from, so a template or a join copies text without decoding it.
 */
export function csvSource(input: SourceInput, options: CsvSourceOptions = {}): Readable {
  const opts = parseOptions(CsvSourceOptions, options, 'csvSource');
  return csvSourceOf(input, csvSettings(opts, undefined, inputName(input, opts.name)), opts.name);
}

/** csvSource over settings already resolved (the jobs resolve them once). */
export function csvSourceOf(input: SourceInput, settings: CsvSettings, name?: string): Readable {
  const file = inputName(input, name);
  const stream = new BatchReadable<SourceItem, CsvRowBatch>(
    input,
    file,
    new CsvReader(file, settings),
    settings.maxRowSize,
  );
  // A join's output pass reads a large file on a thread, with these same settings.
  const onThread = threadReadOf(input, (path) => ({ format: 'csv', path, file, settings }));
  Object.defineProperty(stream, kReadOnThread, { value: onThread });
  return stream;
}
