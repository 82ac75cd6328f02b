import { isUtf8 } from 'node:buffer';
import { BatchpipeError } from '../errors.js';

/** One line of a line-delimited file. */
export interface TextLine {
  /** The line without its "\n" (and without a trailing "\r"). */
  text: string;
  /** 1-based physical line number. */
  line: number;
  /** UTF-8 bytes of the line as stored (without the newline). */
  bytes: number;
  /** False when the stored bytes were not valid UTF-8 (`text` then has replacement characters). */
  utf8: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
/** The UTF-8 byte-order mark some editors (and Excel's "UTF-8" export) put at the start of a file. */
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Splits byte chunks into lines, checking UTF-8 per line only when a whole chunk fails the (native)
 * check, so valid files pay one pass. Keeps the unfinished last line for the next chunk. A UTF-8
 * byte-order mark at the very start is not part of line 1 (JSON.parse would fail on it); `byteOrderMark`
 * says whether there was one.
 */
export class LineSplitter {
  readonly #file: string;
  readonly #maxLineBytes: number;
  #partial: Buffer | undefined;
  #line = 0;
  /** Nothing has been split yet: a byte-order mark may still come. */
  #atStart = true;
  #bom = false;

  constructor(file: string, maxLineBytes: number) {
    this.#file = file;
    this.#maxLineBytes = maxLineBytes;
  }

  /** True when the input began with a UTF-8 byte-order mark (left out of line 1). */
  get byteOrderMark(): boolean {
    return this.#bom;
  }

  split(chunk: Buffer, last: boolean): TextLine[] {
    let data = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    this.#partial = undefined;
    if (this.#atStart) {
      // A chunk may end inside the mark: wait for its other bytes.
      if (!last && data.length < BOM.length && BOM.subarray(0, data.length).equals(data)) {
        this.#partial = Buffer.from(data);
        return [];
      }
      this.#atStart = false;
      if (data.length >= BOM.length && data[0] === BOM[0] && data[1] === BOM[1] && data[2] === BOM[2]) {
        data = data.subarray(BOM.length);
        this.#bom = true;
      }
    }
    let tail: Buffer | undefined;
    if (!last) {
      const end = data.lastIndexOf(LF) + 1;
      if (end < data.length) tail = data.subarray(end);
      data = data.subarray(0, end);
    }
    const lines = data.length === 0 ? [] : isUtf8(data) ? this.#splitText(data) : this.#splitBytes(data);
    if (tail) {
      // The unfinished line is already too long: stop before holding more of it.
      if (tail.length > this.#maxLineBytes) this.#tooLong(this.#line + 1);
      // Copy so the kept tail does not pin the whole chunk in memory.
      this.#partial = Buffer.from(tail);
    }
    return lines;
  }

  #tooLong(line: number): never {
    throw new BatchpipeError('BP_ROW_TOO_LARGE', `line is longer than ${this.#maxLineBytes} bytes`, {
      file: this.#file,
      line,
    });
  }

  #splitText(data: Buffer): TextLine[] {
    const text = data.toString('utf8');
    const lines: TextLine[] = [];
    let start = 0;
    while (start < text.length) {
      let stop = text.indexOf('\n', start);
      const next = stop === -1 ? text.length : stop + 1;
      if (stop === -1) stop = text.length;
      if (stop > start && text.charCodeAt(stop - 1) === CR) stop--;
      const line = text.slice(start, stop);
      // Buffer.byteLength only for lines that may hold multi-byte characters would be faster still,
      // but the line limit must be exact.
      const bytes = Buffer.byteLength(line);
      if (bytes > this.#maxLineBytes) this.#tooLong(this.#line + 1);
      lines.push({ text: line, line: ++this.#line, bytes, utf8: true });
      start = next;
    }
    return lines;
  }

  #splitBytes(data: Buffer): TextLine[] {
    const lines: TextLine[] = [];
    let start = 0;
    while (start < data.length) {
      let stop = data.indexOf(LF, start);
      const next = stop === -1 ? data.length : stop + 1;
      if (stop === -1) stop = data.length;
      if (stop > start && data[stop - 1] === CR) stop--;
      const bytes = data.subarray(start, stop);
      if (bytes.length > this.#maxLineBytes) this.#tooLong(this.#line + 1);
      lines.push({
        text: bytes.toString('utf8'),
        line: ++this.#line,
        bytes: bytes.length,
        utf8: isUtf8(bytes),
      });
      start = next;
    }
    return lines;
  }
}
