import { isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { BatchpipeError, type ErrorCode } from '../../errors.js';
import type { Rejection } from '../../types.js';
import { type CsvLayout, CsvRowBatch } from './csv-row-batch.js';
import { CsvScanner, fieldText, type ScannedRow } from './csv-scanner.js';

/** How a CSV table is read, every option resolved (csvSource's options, parsed). */
export interface CsvSettings {
  /** One ASCII character (a tab for TSV). */
  delimiter: string;
  /** One ASCII character. */
  quote: string;
  /** The first row is the header. */
  header: boolean;
  /** Column names to use instead of (or, without a header, in place of) the header row. */
  columns: string[] | undefined;
  /** A WHATWG label; anything but UTF-8 is transcoded first. */
  encoding: string;
  /** A row of another width is padded or cut instead of rejected. */
  relaxColumnCount: boolean;
  /** A malformed row is a rejection, or stops the read. */
  badRows: 'reject' | 'fail';
  /** A row longer than this stops the read (an unclosed quote, most likely). */
  maxRowSize: number;
}

/** What one chunk made: its rows as a batch (none when it held no row), and the bytes used. */
export interface CsvChunk {
  batch: CsvRowBatch | undefined;
  /** Bytes consumed from the front of the chunk; the rest comes back, followed by more input. */
  consumed: number;
  /** The batch points into the chunk itself: the caller must not read over it (ChunkReader.detach). */
  holdsChunk: boolean;
  /** Stopped at a batch's worth of rows with whole rows left: pass the rest again before reading more. */
  stopped: boolean;
}

/** Rows a batch holds at most: a chunk of short rows is cut into several batches. */
export const MAX_BATCH_ROWS = 2048;

const INITIAL_ROWS = 2048;

/**
 * Reads a CSV file chunk by chunk into CsvRowBatches: header handling, field counts, encoding checks
 * and malformed rows (each a Rejection in its place, or an error with `badRows: "fail"`). A chunk's
 * rows keep pointing into a copy of its bytes, so nothing is decoded here.
 */
export class CsvReader {
  readonly file: string;
  readonly #settings: CsvSettings;
  readonly #scanner: CsvScanner;
  readonly #transcoder: TextDecoder | undefined;
  #columns: string[] | undefined;
  /** The columns as a field-count rejection names them: one string for all of a file's rejections. */
  #preview: string | undefined;
  #layout: CsvLayout | undefined;
  #index = 0;
  #chunkIsUtf8 = true;
  /** Bytes of the input transcoded so far (for encodings other than UTF-8). */
  #rawOffset = 0;
  /** Transcoded bytes not yet scanned (only for encodings other than UTF-8). */
  #carry: Buffer | undefined;
  /** The last scan stopped early with transcoded bytes left: scan them before decoding more. */
  #carryRest = false;
  // The chunk's rows, as the scanner finds them.
  #rows = 0;
  #fields = 0;
  #lines = new Int32Array(INITIAL_ROWS);
  #fieldAt = new Int32Array(INITIAL_ROWS + 1);
  #rowStarts = new Int32Array(INITIAL_ROWS);
  #rowEnds = new Int32Array(INITIAL_ROWS);
  #starts = new Int32Array(INITIAL_ROWS * 4);
  #ends = new Int32Array(INITIAL_ROWS * 4);
  #escaped = new Uint8Array(INITIAL_ROWS * 4);
  #rejections: Map<number, Rejection> | undefined;
  #firstIndex = 1;
  /** Where the header row ended: its last line, and the input's bytes (blank lines apart) up to it. */
  #header: { line: number; end: number; blank: number } | undefined;

  constructor(file: string, settings: CsvSettings) {
    this.file = file;
    this.#settings = settings;
    this.#scanner = new CsvScanner({
      file,
      delimiter: settings.delimiter.charCodeAt(0),
      quote: settings.quote.charCodeAt(0),
      maxRowBytes: settings.maxRowSize,
    });
    if (settings.columns) this.#columns = checkColumns(settings.columns, file, undefined);
    const encoding = settings.encoding.toLowerCase().replace('_', '-');
    if (encoding !== 'utf-8' && encoding !== 'utf8') {
      try {
        // Fatal: bytes that are not valid in the encoding stop the read instead of becoming U+FFFD.
        this.#transcoder = new TextDecoder(settings.encoding, { fatal: true });
      } catch (error) {
        throw new BatchpipeError(
          'BP_INVALID_OPTION',
          `csvSource: option "encoding": unknown encoding ${JSON.stringify(settings.encoding)}`,
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

  /** Reads the complete rows of a chunk (`last` marks the end of input). The chunk is only read during the call. */
  parse(chunk: Buffer, last: boolean): CsvChunk {
    this.#rows = 0;
    this.#fields = 0;
    this.#rejections = undefined;
    this.#firstIndex = this.#index + 1;
    let bytes = chunk;
    if (this.#transcoder) {
      // Other encodings become UTF-8 first; the scanner then keeps its own unfinished row. After an
      // early stop the same raw chunk comes again (consumed 0): its text is already in the carry.
      if (!this.#carryRest) {
        let text: string;
        try {
          // Always streaming, then flushed: Node decodes "latin1" without `stream` as ISO-8859-1
          // but with it as WHATWG's windows-1252 (0x80 is "€"), so every chunk reads alike.
          text = this.#transcoder.decode(chunk, { stream: true });
          if (last) text += this.#transcoder.decode();
        } catch (error) {
          throw this.#notInEncoding(chunk, last, error);
        }
        const decoded = Buffer.from(text, 'utf8');
        this.#carry = this.#carry ? Buffer.concat([this.#carry, decoded]) : decoded;
        this.#rawOffset += chunk.length;
      }
      bytes = this.#carry!;
      this.#chunkIsUtf8 = true;
    } else {
      this.#chunkIsUtf8 = isUtf8(chunk);
    }
    const used = this.#scanner.scan(bytes, last, this.#onRow);
    const stopped = this.#rows >= MAX_BATCH_ROWS && used < bytes.length;
    if (last && !stopped && this.#index === 0) this.#checkNotSwallowed();
    let consumed = used;
    if (this.#transcoder) {
      this.#carry = bytes.subarray(used);
      this.#carryRest = stopped && this.#carry.length > 0;
      consumed = this.#carryRest ? 0 : chunk.length;
    }
    if (this.#rows === 0) return { batch: undefined, consumed, holdsChunk: false, stopped };
    // A batch cut short shares its chunk with the rows after it: it keeps a copy of its own bytes.
    const owned = stopped && !this.#transcoder;
    if (owned) bytes = Buffer.from(bytes.subarray(0, used));
    const n = this.#rows;
    const fields = this.#fields;
    const batch = new CsvRowBatch({
      layout: this.#layout!,
      buffer: bytes,
      firstIndex: this.#firstIndex,
      length: n,
      lines: this.#lines.slice(0, n),
      fieldAt: this.#fieldAt.slice(0, n + 1),
      starts: this.#starts.slice(0, fields),
      ends: this.#ends.slice(0, fields),
      escaped: this.#escaped.slice(0, fields),
      rowStarts: this.#rowStarts.slice(0, n),
      rowEnds: this.#rowEnds.slice(0, n),
      rejections: this.#rejections,
    });
    // Transcoded bytes are the reader's own; a UTF-8 chunk is the caller's buffer, now the batch's.
    return { batch, consumed, holdsChunk: !this.#transcoder && !owned, stopped };
  }

  readonly #onRow = (scanned: ScannedRow): false | undefined => {
    const { line, count } = scanned;
    // A chunk that fails the (native) UTF-8 check is re-checked row by row.
    const utf8 = this.#chunkIsUtf8 || isUtf8(scanned.buffer.subarray(scanned.rowStart, scanned.rowEnd));
    if (!this.#columns) {
      if (!utf8)
        throw new BatchpipeError(
          'BP_INPUT_ENCODING',
          `the header is not valid UTF-8${utf16Mark(scanned.buffer) ? ' (the file starts with a UTF-16 byte order mark)' : ''}; set the encoding option`,
          { file: this.file, line },
        );
      const names: string[] = [];
      const quote = this.#settings.quote;
      for (let f = 0; f < count; f++)
        names.push(this.#settings.header ? fieldText(scanned, f, quote) : `column_${f + 1}`);
      if (this.#settings.header) {
        if (scanned.malformed)
          throw new BatchpipeError('BP_INPUT_HEADER', `the header has ${scanned.malformed}`, {
            file: this.file,
            line,
          });
        this.#columns = checkColumns(names, this.file, line);
        this.#header = {
          line: line + scanned.spans,
          end: this.#scanner.offset + scanned.next,
          blank: this.#scanner.blankBytes,
        };
        return undefined;
      }
      this.#columns = names;
    } else if (this.#settings.header && !this.#header) {
      // The columns option names the columns: the header row is skipped, whatever it holds.
      this.#header = {
        line: line + scanned.spans,
        end: this.#scanner.offset + scanned.next,
        blank: this.#scanner.blankBytes,
      };
      return undefined;
    }
    this.#layout ??= {
      file: this.file,
      header: this.#columns,
      delimiter: this.#settings.delimiter,
      quote: this.#settings.quote,
    };
    const index = ++this.#index;
    const columns = this.#columns;
    let problem: [ErrorCode, string] | undefined;
    if (scanned.malformed)
      problem = ['BP_INPUT_PARSE', `malformed quotes: ${scanned.malformed}${spansOf(line, scanned.spans)}`];
    else if (!utf8)
      problem = [
        'BP_INPUT_ENCODING',
        `row is not valid UTF-8${badColumn(scanned, columns)}${spansOf(line, scanned.spans)}; set the encoding option`,
      ];
    else if (count !== columns.length && !this.#settings.relaxColumnCount) {
      this.#preview ??= preview(columns);
      problem = [
        'BP_ROW_FIELD_COUNT',
        `expected ${columns.length} fields (${this.#preview}), got ${count}${spansOf(line, scanned.spans)}`,
      ];
    }
    const entry = this.#addRow(scanned, problem === undefined ? count : 0);
    if (problem) {
      if (this.#settings.badRows === 'fail')
        throw new BatchpipeError(problem[0], `row ${index}: ${problem[1]}`, {
          file: this.file,
          line,
          row: index,
        });
      this.#rejections ??= new Map();
      this.#rejections.set(entry, {
        kind: 'rejection',
        index,
        file: this.file,
        line,
        custom_id: null,
        code: problem[0],
        message: problem[1],
      });
    }
    return this.#rows >= MAX_BATCH_ROWS ? false : undefined;
  };

  /**
   * Bytes of `chunk` are not valid in the declared encoding. Every row of the file is in one
   * encoding, so this is the file's error, not a row's: the read stops. Found again here, only on
   * this path: the first bad byte is where the longest prefix a fresh decoder accepts ends.
   */
  #notInEncoding(chunk: Buffer, last: boolean, cause: unknown): BatchpipeError {
    const encoding = this.#settings.encoding;
    const accepts = (end: number, stream: boolean): boolean => {
      try {
        new TextDecoder(encoding, { fatal: true }).decode(chunk.subarray(0, end), { stream });
        return true;
      } catch {
        return false;
      }
    };
    let good = 0;
    let what: string;
    if (accepts(chunk.length, true)) {
      // The chunk reads alone: the input ends inside a character, or the chunk's first bytes do not
      // finish the one the last chunk began.
      good = last ? chunk.length : 0;
      what = last
        ? 'the input ends inside a character'
        : 'the bytes here do not finish the character before them';
    } else {
      // The longest prefix that is valid so far (it may end inside a character) ...
      let bad = chunk.length;
      while (bad - good > 1) {
        const mid = (good + bad) >>> 1;
        if (accepts(mid, true)) good = mid;
        else bad = mid;
      }
      // ... then back to the start of that character: the bad sequence begins there.
      for (let back = 0; back < 4 && good > 0 && !accepts(good, false); back++) good--;
      what = 'the bytes here are not a character';
    }
    const before = new TextDecoder(encoding).decode(chunk.subarray(0, good));
    const pending = this.#carry ? this.#carry.toString('utf8') : '';
    const line = this.#scanner.line + lineEndsOf(pending) + lineEndsOf(before);
    return new BatchpipeError(
      'BP_INPUT_ENCODING',
      `not valid ${encoding} at byte offset ${this.#rawOffset + good}: ${what}; is the encoding option right?`,
      { file: this.file, line },
      { cause },
    );
  }

  /**
   * The input ended and no row was read: that is an empty table only when nothing but blank lines
   * follows a one-line header. A header that swallowed lines (a quote left open in it) or bytes
   * left unread would otherwise end as a silent success with 0 rows.
   */
  #checkNotSwallowed(): void {
    const header = this.#header;
    if (!header) return;
    const after = this.#scanner.offset - header.end - (this.#scanner.blankBytes - header.blank);
    if (after > 0)
      throw new BatchpipeError(
        'BP_INPUT_PARSE',
        `no row was read, but ${after} bytes follow the header; is the delimiter, quote or encoding right?`,
        { file: this.file, line: header.line + 1 },
      );
    if (header.line > 1)
      throw new BatchpipeError(
        'BP_INPUT_PARSE',
        `no row was read: the header spans lines 1-${header.line} (a quoted line break in it); is a quote left open in the header?`,
        { file: this.file, line: 1 },
      );
  }

  /** Records a scanned row (its first `fields` fields) as the next entry; returns its number. */
  #addRow(scanned: ScannedRow, fields: number): number {
    const r = this.#rows;
    if (r + 1 >= this.#lines.length) this.#growRows();
    const f = this.#fields;
    if (f + fields > this.#starts.length) this.#growFields(f + fields);
    this.#lines[r] = scanned.line;
    this.#rowStarts[r] = scanned.rowStart;
    this.#rowEnds[r] = scanned.rowEnd;
    this.#fieldAt[r] = f;
    const starts = this.#starts;
    const ends = this.#ends;
    const escaped = this.#escaped;
    for (let k = 0; k < fields; k++) {
      starts[f + k] = scanned.starts[k]!;
      ends[f + k] = scanned.ends[k]!;
      escaped[f + k] = scanned.escaped[k]!;
    }
    this.#fields = f + fields;
    this.#fieldAt[r + 1] = this.#fields;
    this.#rows = r + 1;
    return r;
  }

  #growRows(): void {
    const size = this.#lines.length * 2;
    this.#lines = grown(this.#lines, new Int32Array(size));
    this.#fieldAt = grown(this.#fieldAt, new Int32Array(size + 1));
    this.#rowStarts = grown(this.#rowStarts, new Int32Array(size));
    this.#rowEnds = grown(this.#rowEnds, new Int32Array(size));
  }

  #growFields(needed: number): void {
    const size = Math.max(needed, this.#starts.length * 2);
    this.#starts = grown(this.#starts, new Int32Array(size));
    this.#ends = grown(this.#ends, new Int32Array(size));
    this.#escaped = grown(this.#escaped, new Uint8Array(size));
  }
}

function grown<T extends Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Which cell of a row that is not UTF-8 holds the bad bytes (looked for only in such a row). */
function badColumn(row: ScannedRow, columns: readonly string[]): string {
  for (let f = 0; f < row.count; f++) {
    if (!isUtf8(row.buffer.subarray(row.starts[f]!, row.ends[f]!))) {
      const name = columns[f];
      return name === undefined ? ` (field ${f + 1})` : ` (column ${JSON.stringify(name)}, field ${f + 1})`;
    }
  }
  return '';
}

/** Where a multi-line row sits, for messages (made only when a row is rejected). */
function spansOf(line: number, spans: number): string {
  return spans > 0 ? ` (the row spans lines ${line}-${line + spans})` : '';
}

/**
 * Column names are data: an empty or repeated one stops the read (renaming it would make a column
 * no template or id column names). `line` is the header's; undefined for the columns option.
 */
function checkColumns(columns: string[], file: string, line: number | undefined): string[] {
  const where = line === undefined ? 'the columns option' : 'the header';
  const fix =
    line === undefined ? 'give every column a name once' : 'name the columns with the columns option';
  const seen = new Map<string, number>();
  for (let i = 0; i < columns.length; i++) {
    const name = columns[i]!;
    const context = line === undefined ? { option: 'columns' } : { file, line, column: name };
    if (name === '')
      throw new BatchpipeError(
        line === undefined ? 'BP_INVALID_OPTION' : 'BP_INPUT_HEADER',
        `column ${i + 1} of ${where} has no name; ${fix}`,
        context,
      );
    const first = seen.get(name);
    if (first !== undefined)
      throw new BatchpipeError(
        line === undefined ? 'BP_INVALID_OPTION' : 'BP_INPUT_HEADER',
        `column ${i + 1} of ${where}, ${JSON.stringify(name)}, repeats column ${first}; ${fix}`,
        context,
      );
    seen.set(name, i + 1);
  }
  return columns;
}

function preview(columns: string[]): string {
  return columns.length <= 6 ? columns.join(', ') : `${columns.slice(0, 6).join(', ')}, ...`;
}

/** Line ends in a text: CRLF, LF and CR alone count one each, as the scanner counts them. */
function lineEndsOf(text: string): number {
  return text.match(/\r\n|\r|\n/g)?.length ?? 0;
}

/** A UTF-16 byte order mark (FF FE or FE FF) at the start of the input. */
function utf16Mark(bytes: Buffer): boolean {
  return (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
}
