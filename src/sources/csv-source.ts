import Papa from 'papaparse';
import type { Readable } from 'node:stream';
import { TextDecoder } from 'node:util';
import { z } from 'zod';
import { BatchpipeError, type ErrorCode } from '../errors.js';
import { type SourceInput, inputName } from '../internal/input.js';
import { type ChunkParser, ItemSource } from '../internal/item-source.js';
import { byteSize, parseOptions } from '../options.js';
import type { Rejection, Row, RowValues, SourceItem } from '../types.js';

const CsvSourceOptions = z.strictObject({
  /** Name used in errors when the input is a stream. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
  /** Field delimiter. Default ",", or a tab for files ending in .tsv. */
  delimiter: z.string().min(1).max(4).optional(),
  /** Quote character. Default `"`. */
  quote: z.string().length(1).default('"'),
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
  /** A row longer than this (in characters) stops the run: it is almost surely an unclosed quote. */
  maxRowSize: byteSize.default(64 * 1024 * 1024),
});
export type CsvSourceOptions = z.input<typeof CsvSourceOptions>;
type Options = z.output<typeof CsvSourceOptions>;

/**
 * Streams a CSV file (or stream) as Row objects with 1-based row numbers and the physical line each
 * row starts on. Handles headers, delimiters, quoted newlines, BOM and CRLF; memory stays at one read
 * chunk whatever the file size. A malformed row becomes a Rejection or, with `badRows: "fail"`, an error.
 */
export function csvSource(input: SourceInput, options: CsvSourceOptions = {}): Readable {
  const opts = parseOptions(CsvSourceOptions, options, 'csvSource');
  const file = inputName(input, opts.name);
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(opts.encoding, { fatal: true });
  } catch (error) {
    throw new BatchpipeError('BP_INVALID_OPTION', `csvSource: option "encoding": unknown encoding ${JSON.stringify(opts.encoding)}`, { option: 'encoding' }, { cause: error });
  }
  const delimiter = opts.delimiter ?? (file.toLowerCase().endsWith('.tsv') ? '\t' : ',');
  return new ItemSource<SourceItem>(input, file, new CsvChunkParser(file, delimiter, decoder, opts));
}

/** Parses decoded text with papaparse's core Parser, keeping the unfinished last row for the next chunk. */
class CsvChunkParser implements ChunkParser<SourceItem> {
  readonly #file: string;
  readonly #delimiter: string;
  readonly #decoder: TextDecoder;
  readonly #opts: Options;
  #parser: Papa.Parser | undefined;
  #newline: '\n' | '\r' = '\n';
  #stripCR = false;
  #partial = '';
  #columns: string[] | undefined;
  /** Line the next row starts on. */
  #line = 1;
  #index = 0;
  #bytesSeen = 0;

  constructor(file: string, delimiter: string, decoder: TextDecoder, opts: Options) {
    this.#file = file;
    this.#delimiter = delimiter;
    this.#decoder = decoder;
    this.#opts = opts;
    if (opts.columns) this.#columns = checkColumns(opts.columns, file, 0);
  }

  parse(chunk: Buffer, last: boolean): SourceItem[] {
    const text = this.#decode(chunk, last);
    const input = this.#partial + text;
    if (!this.#parser) {
      if (!input && !last) return [];
      this.#startParser(input);
    }
    const result: Papa.ParseResult<string[]> = this.#parser!.parse(input, 0, !last);
    const rows = result.data;
    const items: SourceItem[] = [];
    let errorAt = 0;
    const errors = result.errors;
    for (let r = 0; r < rows.length; r++) {
      const fields = rows[r]!;
      let problem: string | undefined;
      while (errorAt < errors.length && errors[errorAt]!.row! <= r) {
        if (errors[errorAt]!.row === r) {
          if (errors[errorAt]!.code === 'MissingQuotes') this.#fail('BP_INPUT_PARSE', 'a quoted field that starts in this row is never closed; everything after it would be swallowed');
          problem ??= `malformed quotes: ${errors[errorAt]!.message.toLowerCase()}`;
        }
        errorAt++;
      }
      const line = this.#line;
      const spans = this.#countNewlines(fields);
      this.#line += 1 + spans;
      if (this.#stripCR) {
        const lastField = fields[fields.length - 1]!;
        if (lastField.endsWith('\r')) fields[fields.length - 1] = lastField.slice(0, -1);
      }
      if (fields.length === 1 && fields[0] === '' && !problem) continue; // empty line
      if (!this.#columns) {
        this.#columns = checkColumns(this.#opts.header ? fields : fields.map((_, i) => `column_${i + 1}`), this.#file, line);
        if (this.#opts.header) continue;
      }
      const index = ++this.#index;
      if (problem) {
        const where = spans > 0 ? ` (the row spans lines ${line}-${line + spans})` : '';
        items.push(this.#reject(index, line, 'BP_INPUT_PARSE', problem + where));
        continue;
      }
      const columns = this.#columns;
      if (fields.length !== columns.length && !this.#opts.relaxColumnCount) {
        items.push(
          this.#reject(index, line, 'BP_ROW_FIELD_COUNT', `expected ${columns.length} fields (${preview(columns)}), got ${fields.length}`),
        );
        continue;
      }
      const values: RowValues = {};
      for (let c = 0; c < columns.length; c++) values[columns[c]!] = fields[c] ?? '';
      items.push({ kind: 'row', index, file: this.#file, line, values } satisfies Row);
    }
    this.#partial = last ? '' : input.slice(result.meta.cursor);
    if (this.#partial.length > this.#opts.maxRowSize) {
      this.#fail('BP_ROW_TOO_LARGE', `row is longer than ${this.#opts.maxRowSize} characters (maxRowSize); is a quote left open?`);
    }
    return items;
  }

  #decode(chunk: Buffer, last: boolean): string {
    try {
      const text = this.#decoder.decode(chunk, { stream: !last });
      this.#bytesSeen += chunk.length;
      return text;
    } catch (error) {
      throw new BatchpipeError(
        'BP_INPUT_ENCODING',
        `not valid ${this.#opts.encoding} (within bytes ${this.#bytesSeen}..${this.#bytesSeen + chunk.length}); convert the file or set the encoding option`,
        { file: this.#file, line: this.#line },
        { cause: error },
      );
    }
  }

  #startParser(sample: string): void {
    const lf = sample.indexOf('\n');
    if (lf === -1 && sample.includes('\r')) this.#newline = '\r';
    // CRLF files parse with "\n" and drop the "\r" left on each row's last field, which also copes
    // with files that mix CRLF and LF rows.
    this.#stripCR = lf > 0 ? sample[lf - 1] === '\r' : false;
    this.#parser = new Papa.Parser({ delimiter: this.#delimiter, newline: this.#newline, quoteChar: this.#opts.quote });
  }

  #countNewlines(fields: string[]): number {
    let count = 0;
    const nl = this.#newline;
    for (let f = 0; f < fields.length; f++) {
      const field = fields[f]!;
      let at = field.indexOf(nl);
      while (at !== -1) {
        count++;
        at = field.indexOf(nl, at + 1);
      }
    }
    return count;
  }

  #reject(index: number, line: number, code: ErrorCode, message: string): Rejection {
    if (this.#opts.badRows === 'fail') this.#fail(code, `row ${index}: ${message}`, line);
    return { kind: 'rejection', index, file: this.#file, line, custom_id: null, code, message };
  }

  #fail(code: ErrorCode, message: string, line = this.#line): never {
    throw new BatchpipeError(code, message, { file: this.#file, line, row: this.#index + 1 });
  }
}

function checkColumns(columns: string[], file: string, line: number): string[] {
  const named = columns.map((name, i) => (name === '' ? `column_${i + 1}` : name));
  const seen = new Set<string>();
  for (const name of named) {
    if (seen.has(name)) {
      throw new BatchpipeError('BP_INPUT_HEADER', `column "${name}" appears twice in the header; rename one`, { file, line });
    }
    seen.add(name);
  }
  return named;
}

function preview(columns: string[]): string {
  return columns.length <= 6 ? columns.join(', ') : `${columns.slice(0, 6).join(', ')}, ...`;
}
