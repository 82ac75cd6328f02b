import { BatchpipeError } from '../../errors.js';

const LF = 0x0a;
const CR = 0x0d;
/** Bytes read before deciding a file without LF uses CR line ends. */
const EOL_SNIFF_BYTES = 64 * 1024;

/** One row found by the scanner. Arrays are reused: read them before the callback returns. */
export interface ScannedRow {
  /** The bytes the field ranges point into. */
  buffer: Buffer;
  /** Number of fields. */
  count: number;
  /** Field byte ranges: field f is buffer[starts[f], ends[f]). */
  starts: Int32Array;
  ends: Int32Array;
  /** 1 where a quoted field holds doubled quotes that read as one. */
  escaped: Uint8Array;
  /** Row byte range (for re-checking encoding of one row). */
  rowStart: number;
  rowEnd: number;
  /** Physical line the row starts on (1-based). */
  line: number;
  /** Newlines inside the row's quoted fields: the row spans lines line..line+spans. */
  spans: number;
  /** What is wrong with the row's quoting, if anything (the row should be rejected). */
  malformed: string | undefined;
}

export interface CsvScannerOptions {
  file: string;
  delimiter: number;
  quote: number;
  maxRowBytes: number;
}

/**
 * An RFC 4180 CSV scanner over bytes. It finds rows and field byte ranges without decoding text, so
 * a caller can copy field bytes straight into JSON (the prepare fast path) or decode only the fields
 * it needs. Why not a library: every CSV library for Node returns JS strings, and on non-ASCII text
 * the decode, JSON.stringify and re-encode round trip costs several times the parse itself
 * (docs/dependencies.md has the figures). Semantics, checked against csv-parse in the tests:
 * - a field starting with the quote is quoted; doubled quotes inside read as one; it may hold
 *   delimiters and newlines;
 * - a quote inside an unquoted field is a literal character;
 * - rows end at LF or CRLF (CR alone when the file has no LF at all); empty lines are skipped;
 * - a closing quote followed by anything but a delimiter or line end marks the row malformed, and the
 *   field runs to the next delimiter or line end, so the following rows are unaffected;
 * - a quote never closed is fatal: everything after it would be swallowed.
 * A leading UTF-8 byte order mark is skipped.
 */
export class CsvScanner {
  readonly #opts: CsvScannerOptions;
  #line = 1;
  #started = false;
  /** The line-ending byte: LF, or CR for files with CR-only line ends. */
  #eol = LF;
  readonly #row: ScannedRow = {
    buffer: Buffer.alloc(0),
    count: 0,
    starts: new Int32Array(64),
    ends: new Int32Array(64),
    escaped: new Uint8Array(64),
    rowStart: 0,
    rowEnd: 0,
    line: 1,
    spans: 0,
    malformed: undefined,
  };

  constructor(opts: CsvScannerOptions) {
    this.#opts = opts;
  }

  /** Line the next row starts on. */
  get line(): number {
    return this.#line;
  }

  /**
   * Scans the complete rows of `buf` (`last` marks the end of input) and returns how many bytes it
   * consumed: the caller keeps the rest (an unfinished row, or rows after `onRow` returned false to
   * stop early) and passes it again, followed by more.
   */
  scan(buf: Buffer, last: boolean, onRow: (row: ScannedRow) => boolean | undefined): number {
    let p = 0;
    if (!this.#started) {
      // The line end is LF (CRLF files included) once an LF shows up; CR alone only when a good
      // stretch of the file (or all of it) has CRs and no LF.
      const hasLf = buf.indexOf(LF) !== -1;
      if ((!hasLf && !last && buf.length < EOL_SNIFF_BYTES) || (buf.length < 3 && !last)) return 0;
      this.#started = true;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) p = 3;
      if (!hasLf && buf.indexOf(CR) !== -1) this.#eol = CR;
    }
    const n = buf.length;
    const row = this.#row;
    row.buffer = buf;
    while (p < n) {
      const end = this.#scanRow(buf, p, n, last);
      if (end === -1) break;
      // A whole row in the buffer is held to the limit too, not only one that outgrows a read.
      if (end - p > this.#opts.maxRowBytes) this.#tooLarge();
      const more = row.count > 0 ? onRow(row) : undefined;
      this.#line += 1 + row.spans;
      p = end;
      if (more === false) return p;
    }
    if (n - p > this.#opts.maxRowBytes) this.#tooLarge();
    return p;
  }

  #tooLarge(): never {
    throw new BatchpipeError(
      'BP_ROW_TOO_LARGE',
      `row is longer than ${this.#opts.maxRowBytes} bytes (the maxRowSize option); is a quote left open?`,
      { file: this.#opts.file, line: this.#line },
    );
  }

  /** Scans one row from `p`; returns where the next row starts, or -1 when the row is unfinished. */
  #scanRow(b: Buffer, p: number, n: number, last: boolean): number {
    const row = this.#row;
    const D = this.#opts.delimiter;
    const Q = this.#opts.quote;
    const EOL = this.#eol;
    row.count = 0;
    row.spans = 0;
    row.malformed = undefined;
    row.rowStart = p;
    row.line = this.#line;
    // An empty line is no row.
    if (b[p] === EOL) {
      row.rowEnd = p;
      return p + 1;
    }
    if (EOL === LF && b[p] === CR && p + 1 < n && b[p + 1] === LF) {
      row.rowEnd = p;
      return p + 2;
    }
    for (;;) {
      if (p < n && b[p] === Q) {
        const open = p;
        let k = p + 1;
        let escaped = 0;
        let close: number;
        for (;;) {
          const j = b.indexOf(Q, k);
          if (j === -1 || (j + 1 === n && !last)) {
            if (!last) return -1;
            throw new BatchpipeError(
              'BP_INPUT_PARSE',
              'a quoted field that starts in this row is never closed; everything after it would be swallowed',
              {
                file: this.#opts.file,
                line: this.#line + countByte(b, EOL, row.rowStart, open),
              },
            );
          }
          if (b[j + 1] === Q) {
            escaped = 1;
            k = j + 2;
            continue;
          }
          close = j;
          break;
        }
        row.spans += countByte(b, EOL, open + 1, close);
        this.#push(open + 1, close, escaped);
        p = close + 1;
        if (p === n) {
          if (!last) return -1;
          row.rowEnd = p;
          return p;
        }
        const c = b[p];
        if (c === D) {
          p++;
          continue;
        }
        if (c === EOL) {
          row.rowEnd = p;
          return p + 1;
        }
        if (c === CR && EOL === LF) {
          if (p + 1 === n && !last) return -1;
          if (b[p + 1] === LF) {
            row.rowEnd = p;
            return p + 2;
          }
        }
        row.malformed ??= `a closing quote must be followed by the delimiter or the end of the line (field ${row.count})`;
        // Recover: the field runs to the next delimiter or line end.
        const stop = scanUnquoted(b, p, n, D, EOL);
        if (stop === n && !last) return -1;
        row.ends[row.count - 1] = stop;
        if (stop === n) {
          row.rowEnd = n;
          return n;
        }
        if (b[stop] === D) {
          p = stop + 1;
          continue;
        }
        row.rowEnd = stop;
        return stop + 1;
      }
      const stop = scanUnquoted(b, p, n, D, EOL);
      if (stop === n && !last) return -1;
      if (stop === n || b[stop] !== D) {
        // The row ends here; drop the CR of a CRLF line end.
        const end = EOL === LF && stop > p && b[stop - 1] === CR && stop < n ? stop - 1 : stop;
        this.#push(p, end, 0);
        row.rowEnd = end;
        return stop === n ? n : stop + 1;
      }
      this.#push(p, stop, 0);
      p = stop + 1;
    }
  }

  #push(start: number, end: number, escaped: number): void {
    const row = this.#row;
    if (row.count === row.starts.length) {
      const size = row.count * 2;
      row.starts = grow(row.starts, new Int32Array(size));
      row.ends = grow(row.ends, new Int32Array(size));
      row.escaped = grow(row.escaped, new Uint8Array(size));
    }
    row.starts[row.count] = start;
    row.ends[row.count] = end;
    row.escaped[row.count] = escaped;
    row.count++;
  }
}

function scanUnquoted(b: Buffer, p: number, n: number, D: number, EOL: number): number {
  while (p < n) {
    const c = b[p]!;
    if (c === D || c === EOL) return p;
    p++;
  }
  return n;
}

function countByte(b: Buffer, byte: number, start: number, end: number): number {
  let count = 0;
  let at = b.indexOf(byte, start);
  while (at !== -1 && at < end) {
    count++;
    at = b.indexOf(byte, at + 1);
  }
  return count;
}

function grow<T extends Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** The text of field `f`, with doubled quotes read as one. */
export function fieldText(row: ScannedRow, f: number, quote: string): string {
  const text = row.buffer.toString('utf8', row.starts[f]!, row.ends[f]!);
  return row.escaped[f] ? text.replaceAll(quote + quote, quote) : text;
}
