import { isUtf8 } from 'node:buffer';
import type { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { z } from 'zod';
import { CsvScanner, type CsvScannerOptions, fieldText, type ScannedRow } from '../core/csv/csv-scanner.js';
import { BatchpipeError, type ErrorCode } from '../errors.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { type ChunkParser, ItemSource, type Parsed } from '../internal/item-source.js';
import { byteSize, parseOptions } from '../options.js';
import type { Rejection, Row, RowValues, SourceItem } from '../types.js';

const singleByte = (what: string) =>
  z
    .string()
    .refine((s) => s.length === 1 && s.charCodeAt(0) < 0x80, `expected one ASCII character for the ${what}`);

export const CsvSourceOptions = z.strictObject({
  /** Name used in errors when the input is a stream. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
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
});
export type CsvSourceOptions = z.input<typeof CsvSourceOptions>;

const { name: _name, ...tableFields } = CsvSourceOptions.shape;
/** How a CSV table is read: the options commands that read tables share (all but `name`). */
export const CsvTableFields = tableFields;
type CsvTableOptions = Omit<z.output<typeof CsvSourceOptions>, 'name'>;

/** The CSV reading options among a command's options; `tsv` sets a tab delimiter unless one is given. */
export function tableCsvOptions(opts: CsvTableOptions, format?: string): Omit<CsvSourceOptions, 'name'> {
  return {
    delimiter: opts.delimiter ?? (format === 'tsv' ? '\t' : undefined),
    quote: opts.quote,
    header: opts.header,
    columns: opts.columns,
    encoding: opts.encoding,
    relaxColumnCount: opts.relaxColumnCount,
    badRows: opts.badRows,
    maxRowSize: opts.maxRowSize,
  };
}
export type CsvOptions = z.output<typeof CsvSourceOptions>;

/**
 * Streams a CSV file (or stream) as Row objects with 1-based row numbers and the physical line each
 * row starts on. Handles headers, delimiters, quoted newlines, doubled quotes, BOM, CRLF and empty
 * lines; memory stays at one read chunk whatever the file size. A malformed row (bad quoting, wrong
 * field count, invalid UTF-8) becomes a Rejection or, with `badRows: "fail"`, an error naming the line.
 */
export function csvSource(input: SourceInput, options: CsvSourceOptions = {}): Readable {
  const opts = parseOptions(CsvSourceOptions, options, 'csvSource');
  const file = inputName(input, opts.name);
  const quote = opts.quote;
  const parser: CsvRowParser<Row> = new CsvRowParser(file, opts, (index, line, scanned) =>
    scannedRow(file, parser.columns!, quote, index, line, scanned),
  );
  return new ItemSource<SourceItem>(input, file, parser, opts.maxRowSize);
}

/** The Row of a scanned line: its fields under the header's names, fields it lacks as empty text. */
export function scannedRow(
  file: string,
  columns: readonly string[],
  quote: string,
  index: number,
  line: number,
  scanned: ScannedRow,
): Row {
  const values: RowValues = {};
  const n = Math.min(scanned.count, columns.length);
  for (let f = 0; f < n; f++) values[columns[f]!] = fieldText(scanned, f, quote);
  for (let f = n; f < columns.length; f++) values[columns[f]!] = '';
  return { kind: 'row', index, file, line, values };
}

/** Resolves a file's delimiter: the option, or a tab for .tsv files. */
export function csvDelimiter(file: string, opts: CsvOptions): string {
  return opts.delimiter ?? (file.toLowerCase().endsWith('.tsv') ? '\t' : ',');
}

/** Builds what a source emits for a good row (field counts and encoding already checked); undefined emits nothing. */
export type MakeRow<T> = (index: number, line: number, scanned: ScannedRow) => T | Rejection | undefined;

/**
 * Turns scanned rows into items or Rejections: header handling, field counts, encoding checks. The
 * `make` hook builds the item: a Row for csvSource, a request line in bytes for the prepare fast path.
 */
export class CsvRowParser<T> implements ChunkParser<T | Rejection> {
  readonly file: string;
  readonly #opts: CsvOptions;
  readonly #scanner: CsvScanner;
  readonly #transcoder: TextDecoder | undefined;
  readonly #make: MakeRow<T>;
  readonly #quote: string;
  #columns: string[] | undefined;
  #index = 0;
  #items: Array<T | Rejection> = [];
  #chunkIsUtf8 = true;
  /** Transcoded bytes not yet scanned (only for encodings other than UTF-8). */
  #carry: Buffer | undefined;
  /** The last scan stopped early with transcoded bytes left: scan them before decoding more. */
  #carryRest = false;
  /** Takes each item at once instead of collecting them; a promise means "wait before the next row". */
  #sink: ((item: T | Rejection) => Promise<void> | undefined) | undefined;
  #waiting: Promise<void> | undefined;

  constructor(
    file: string,
    opts: CsvOptions,
    make: MakeRow<T>,
    sink?: (item: T | Rejection) => Promise<void> | undefined,
  ) {
    this.#sink = sink;
    this.file = file;
    this.#opts = opts;
    this.#make = make;
    this.#quote = opts.quote;
    const scannerOptions: CsvScannerOptions = {
      file,
      delimiter: csvDelimiter(file, opts).charCodeAt(0),
      quote: opts.quote.charCodeAt(0),
      maxRowBytes: opts.maxRowSize,
    };
    this.#scanner = new CsvScanner(scannerOptions);
    if (opts.columns) this.#columns = checkColumns(opts.columns, file, 0);
    const encoding = opts.encoding.toLowerCase().replace('_', '-');
    if (encoding !== 'utf-8' && encoding !== 'utf8') {
      try {
        this.#transcoder = new TextDecoder(opts.encoding);
      } catch (error) {
        throw new BatchpipeError(
          'BP_INVALID_OPTION',
          `csvSource: option "encoding": unknown encoding ${JSON.stringify(opts.encoding)}`,
          { option: 'encoding' },
          { cause: error },
        );
      }
    }
  }

  /** The header, once read. */
  get columns(): string[] | undefined {
    return this.#columns;
  }

  parse(chunk: Buffer, last: boolean): Parsed<T | Rejection> {
    this.#items = [];
    this.#waiting = undefined;
    if (this.#transcoder) {
      // Other encodings become UTF-8 first; the scanner then keeps its own unfinished row.
      if (!this.#carryRest) {
        const text = this.#transcoder.decode(chunk, { stream: !last });
        const bytes = Buffer.from(text, 'utf8');
        this.#carry = this.#carry ? Buffer.concat([this.#carry, bytes]) : bytes;
      }
      this.#chunkIsUtf8 = true;
      const used = this.#scanner.scan(this.#carry!, last, this.#onRow);
      this.#carry = this.#carry!.subarray(used);
      // Stopped early: the transcoded rest is scanned before more input is decoded.
      this.#carryRest = this.#waiting !== undefined && this.#carry.length > 0;
      return { items: this.#items, consumed: this.#carryRest ? 0 : chunk.length, waiting: this.#waiting };
    }
    this.#chunkIsUtf8 = isUtf8(chunk);
    const consumed = this.#scanner.scan(chunk, last, this.#onRow);
    return { items: this.#items, consumed, waiting: this.#waiting };
  }

  readonly #onRow = (scanned: ScannedRow): boolean | undefined => {
    const { line, count } = scanned;
    // A chunk that fails the (native) UTF-8 check is re-checked row by row; carried-over bytes are
    // checked with the row that holds them.
    const utf8 = this.#chunkIsUtf8 || isUtf8(scanned.buffer.subarray(scanned.rowStart, scanned.rowEnd));
    if (!this.#columns) {
      if (!utf8)
        throw new BatchpipeError(
          'BP_INPUT_ENCODING',
          'the header is not valid UTF-8; set the encoding option',
          { file: this.file, line },
        );
      const names: string[] = [];
      for (let f = 0; f < count; f++)
        names.push(this.#opts.header ? fieldText(scanned, f, this.#quote) : `column_${f + 1}`);
      this.#columns = checkColumns(names, this.file, line);
      if (this.#opts.header) return;
    }
    const index = ++this.#index;
    const columns = this.#columns;
    let problem: [ErrorCode, string] | undefined;
    if (scanned.malformed)
      problem = ['BP_INPUT_PARSE', `malformed quotes: ${scanned.malformed}${spansOf(line, scanned.spans)}`];
    else if (!utf8)
      problem = [
        'BP_INPUT_ENCODING',
        `row is not valid UTF-8${spansOf(line, scanned.spans)}; set the encoding option`,
      ];
    else if (count !== columns.length && !this.#opts.relaxColumnCount) {
      problem = [
        'BP_ROW_FIELD_COUNT',
        `expected ${columns.length} fields (${preview(columns)}), got ${count}${spansOf(line, scanned.spans)}`,
      ];
    }
    if (problem) {
      return this.#reject(index, line, problem[0], problem[1]);
    }
    return this.#emit(this.#make(index, line, scanned));
  };

  /** Hands an item to the direct sink (stopping the scan while it waits), or keeps it. */
  #emit(item: T | Rejection | undefined): boolean | undefined {
    if (item === undefined) return undefined;
    if (!this.#sink) {
      this.#items.push(item);
      return undefined;
    }
    const waiting = this.#sink(item);
    if (!waiting) return undefined;
    this.#waiting = waiting;
    return false;
  }

  #reject(index: number, line: number, code: ErrorCode, message: string): boolean | undefined {
    if (this.#opts.badRows === 'fail')
      throw new BatchpipeError(code, `row ${index}: ${message}`, { file: this.file, line, row: index });
    return this.#emit({ kind: 'rejection', index, file: this.file, line, custom_id: null, code, message });
  }
}

/** Where a multi-line row sits, for messages (made only when a row is rejected). */
function spansOf(line: number, spans: number): string {
  return spans > 0 ? ` (the row spans lines ${line}-${line + spans})` : '';
}

function checkColumns(columns: string[], file: string, line: number): string[] {
  const named = columns.map((name, i) => (name === '' ? `column_${i + 1}` : name));
  const seen = new Set<string>();
  for (const name of named) {
    if (seen.has(name)) {
      throw new BatchpipeError(
        'BP_INPUT_HEADER',
        `column "${name}" appears twice in the header; rename one`,
        { file, line },
      );
    }
    seen.add(name);
  }
  return named;
}

function preview(columns: string[]): string {
  return columns.length <= 6 ? columns.join(', ') : `${columns.slice(0, 6).join(', ')}, ...`;
}
