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

/**
 * Splits byte chunks into lines, checking UTF-8 per line only when a whole chunk fails the (native)
 * check, so valid files pay one pass. Keeps the unfinished last line for the next chunk.
 */
export class LineSplitter {
  readonly #file: string;
  readonly #maxLineBytes: number;
  #partial: Buffer | undefined;
  #line = 0;

  constructor(file: string, maxLineBytes: number) {
    this.#file = file;
    this.#maxLineBytes = maxLineBytes;
  }

  split(chunk: Buffer, last: boolean): TextLine[] {
    let data = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    this.#partial = undefined;
    let end = data.length;
    if (!last) {
      end = data.lastIndexOf(LF) + 1;
      if (end < data.length) {
        this.#partial = data.subarray(end);
        if (this.#partial.length > this.#maxLineBytes) {
          throw new BatchpipeError('BP_ROW_TOO_LARGE', `line is longer than ${this.#maxLineBytes} bytes`, {
            file: this.#file,
            line: this.#line + 1,
          });
        }
        // Copy so the kept tail does not pin the whole chunk in memory.
        this.#partial = Buffer.from(this.#partial);
      }
      data = data.subarray(0, end);
    }
    if (data.length === 0) return [];
    return isUtf8(data) ? this.#splitText(data) : this.#splitBytes(data);
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
      lines.push({ text: line, line: ++this.#line, bytes: Buffer.byteLength(line), utf8: true });
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
