import { BatchpipeError } from '../../errors.js';

const LF = 0x0a;
const CR = 0x0d;

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
  /** Where the row after this one starts (past its line end). */
  next: number;
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
 * - outside quotes, a row ends at CRLF, LF or CR alone, whichever each line uses (a file may mix
 *   them); empty lines are skipped; inside quotes every line end is text, kept as written;
 * - a closing quote followed by anything but a delimiter or line end marks the row malformed, and the
 *   field runs to the next delimiter or line end, so the following rows are unaffected;
 * - a quote never closed is fatal: everything after it would be swallowed.
 * A leading UTF-8 byte order mark is skipped.
 */
export class CsvScanner {
  readonly #opts: CsvScannerOptions;
  #line = 1;
  #started = false;
  /** Bytes of the input consumed before the current buffer (a leading byte order mark included). */
  #offset = 0;
  /** Bytes of empty lines consumed so far. */
  #blankBytes = 0;
  // The next LF and CR at or after the last place looked from, in the current buffer (n when none):
  // counting the line ends inside quoted fields then looks at each byte of a buffer once at most.
  #lfAt = -1;
  #crAt = -1;
  readonly #row: ScannedRow = {
    buffer: Buffer.alloc(0),
    count: 0,
    starts: new Int32Array(64),
    ends: new Int32Array(64),
    escaped: new Uint8Array(64),
    rowStart: 0,
    rowEnd: 0,
    next: 0,
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

  /** Bytes of the input consumed so far (where the next scan's buffer starts in the input). */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes of the input that were empty lines (line ends alone). */
  get blankBytes(): number {
    return this.#blankBytes;
  }

  /**
   * Scans the complete rows of `buf` (`last` marks the end of input) and returns how many bytes it
   * consumed: the caller keeps the rest (an unfinished row, or rows after `onRow` returned false to
   * stop early) and passes it again, followed by more.
   */
  scan(buf: Buffer, last: boolean, onRow: (row: ScannedRow) => boolean | undefined): number {
    let p = 0;
    if (!this.#started) {
      // A chunk may end inside the byte order mark: wait for its other bytes.
      if (buf.length < 3 && !last) return 0;
      this.#started = true;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) p = 3;
    }
    const n = buf.length;
    const row = this.#row;
    row.buffer = buf;
    this.#lfAt = -1;
    this.#crAt = -1;
    let more: boolean | undefined;
    while (p < n) {
      const end = this.#scanRow(buf, p, n, last);
      if (end === -1) break;
      // A whole row in the buffer is held to the limit too, not only one that outgrows a read.
      if (end - p > this.#opts.maxRowBytes) this.#tooLarge();
      row.next = end;
      if (row.count > 0) more = onRow(row);
      else this.#blankBytes += end - p;
      this.#line += 1 + row.spans;
      p = end;
      if (more === false) break;
    }
    if (more !== false && n - p > this.#opts.maxRowBytes) this.#tooLarge();
    this.#offset += p;
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
    row.count = 0;
    row.spans = 0;
    row.malformed = undefined;
    row.rowStart = p;
    row.line = this.#line;
    // An empty line is no row.
    if (b[p] === LF || b[p] === CR) {
      row.rowEnd = p;
      return lineEnd(b, p, n, last);
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
              { file: this.#opts.file, line: this.#line + lineEndsIn(b, row.rowStart, open) },
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
        row.spans += this.#lineEnds(b, open + 1, close);
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
        if (c === LF || c === CR) {
          row.rowEnd = p;
          return lineEnd(b, p, n, last);
        }
        row.malformed ??= `a closing quote must be followed by the delimiter or the end of the line (field ${row.count})`;
        // Recover: the field runs to the next delimiter or line end.
        const stop = scanUnquoted(b, p, n, D);
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
        return lineEnd(b, stop, n, last);
      }
      const stop = scanUnquoted(b, p, n, D);
      if (stop === n) {
        if (!last) return -1;
        this.#push(p, n, 0);
        row.rowEnd = n;
        return n;
      }
      this.#push(p, stop, 0);
      if (b[stop] !== D) {
        row.rowEnd = stop;
        return lineEnd(b, stop, n, last);
      }
      p = stop + 1;
    }
  }

  /** Line ends in b[start, end) (inside a quoted field): CRLF, LF and CR alone count one each. */
  #lineEnds(b: Buffer, start: number, end: number): number {
    let count = 0;
    if (this.#lfAt < start) this.#lfAt = nextByte(b, LF, start);
    while (this.#lfAt < end) {
      count++;
      this.#lfAt = nextByte(b, LF, this.#lfAt + 1);
    }
    if (this.#crAt < start) this.#crAt = nextByte(b, CR, start);
    while (this.#crAt < end) {
      const at = this.#crAt;
      if (at + 1 === end || b[at + 1] !== LF) count++;
      this.#crAt = nextByte(b, CR, at + 1);
    }
    return count;
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

/** Where the next delimiter or line end (LF or CR) is, or n. The per-byte loop of unquoted text. */
function scanUnquoted(b: Buffer, p: number, n: number, D: number): number {
  while (p < n) {
    const c = b[p]!;
    // Most bytes are above CR: one comparison besides the delimiter's.
    if (c === D || (c <= CR && (c === LF || c === CR))) return p;
    p++;
  }
  return n;
}

/**
 * Where the row after the line end at `p` starts: past CRLF, LF or CR, or -1 when a CR ends a buffer
 * with more input to come (an LF may follow it in the next read).
 */
function lineEnd(b: Buffer, p: number, n: number, last: boolean): number {
  if (b[p] === LF) return p + 1;
  if (p + 1 === n) return last ? n : -1;
  return b[p + 1] === LF ? p + 2 : p + 1;
}

/** The first `byte` at or after `from`, or the buffer's length. */
function nextByte(b: Buffer, byte: number, from: number): number {
  const at = b.indexOf(byte, from);
  return at === -1 ? b.length : at;
}

/** Line ends in b[start, end), for a message (CRLF, LF and CR alone count one each). */
function lineEndsIn(b: Buffer, start: number, end: number): number {
  let count = 0;
  for (let k = start; k < end; k++) {
    if (b[k] === LF) count++;
    else if (b[k] === CR && (k + 1 === end || b[k + 1] !== LF)) count++;
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
