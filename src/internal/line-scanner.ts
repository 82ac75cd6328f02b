import { isUtf8 } from 'node:buffer';
import { BatchpipeError } from '../errors.js';

const LF = 0x0a;
const CR = 0x0d;

/** One line found by a LineScanner. */
export interface ScannedLine {
  /** The line without its "\n" (and without a trailing "\r"). */
  text: string;
  /** 1-based physical line number. */
  line: number;
  /** UTF-8 bytes of the line as stored (without the newline). */
  bytes: number;
  /** False when the stored bytes were not valid UTF-8 (`text` then has replacement characters). */
  utf8: boolean;
}

/** What a scan of one chunk did. */
export interface LinesScanned {
  /** Bytes used from the front of the chunk (whole lines); the caller passes the rest again. */
  consumed: number;
  /** Stopped at `max` lines with whole lines left: pass the rest again before reading more. */
  stopped: boolean;
}

/**
 * Finds the complete lines of chunks of a line-delimited file, at most `max` a call, so a batch of lines
 * stays small however short the lines are. The caller keeps what was not consumed (an unfinished line,
 * or lines past `max`) and passes it again: with a ChunkReader, whose row limit then bounds a line's
 * length. UTF-8 is checked per chunk and, only when a chunk fails, per line. A UTF-8 byte-order mark at
 * the very start is not part of line 1 (`byteOrderMark` says there was one).
 */
export class LineScanner {
  readonly #file: string;
  readonly #maxLineBytes: number;
  #line = 0;
  #started = false;
  #bom = false;

  /** `maxLineBytes`: a longer line stops the read (BP_ROW_TOO_LARGE). */
  constructor(file: string, maxLineBytes: number) {
    this.#file = file;
    this.#maxLineBytes = maxLineBytes;
  }

  /** True when the input began with a UTF-8 byte-order mark (left out of line 1). */
  get byteOrderMark(): boolean {
    return this.#bom;
  }

  scan(chunk: Buffer, last: boolean, max: number, onLine: (line: ScannedLine) => void): LinesScanned {
    let p = 0;
    if (!this.#started) {
      // A chunk may end inside the mark: wait for its other bytes.
      if (!last && chunk.length < 3) return { consumed: 0, stopped: false };
      this.#started = true;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
        p = 3;
        this.#bom = true;
      }
    }
    const end = last ? chunk.length : Math.max(chunk.lastIndexOf(LF) + 1, p);
    // The unfinished line is already too long: stop before holding more of it.
    if (chunk.length - end > this.#maxLineBytes) this.#tooLong(this.#line + 1);
    const utf8 = end > p ? isUtf8(chunk.subarray(p, end)) : true;
    let lines = 0;
    while (p < end) {
      if (lines === max) return { consumed: p, stopped: true };
      let stop = chunk.indexOf(LF, p);
      const next = stop === -1 || stop >= end ? end : stop + 1;
      if (stop === -1 || stop >= end) stop = end;
      const to = stop > p && chunk[stop - 1] === CR ? stop - 1 : stop;
      if (to - p > this.#maxLineBytes) this.#tooLong(this.#line + 1);
      const lineUtf8 = utf8 || isUtf8(chunk.subarray(p, to));
      onLine({ text: chunk.toString('utf8', p, to), line: ++this.#line, bytes: to - p, utf8: lineUtf8 });
      lines++;
      p = next;
    }
    return { consumed: end, stopped: false };
  }

  #tooLong(line: number): never {
    throw new BatchpipeError('BP_ROW_TOO_LARGE', `line is longer than ${this.#maxLineBytes} bytes`, {
      file: this.#file,
      line,
    });
  }
}

/**
 * Said after a line's JSON error when the line looks like several lines that end in CR alone: JSON
 * Lines end lines in LF (or CRLF), so such a file reads as one line. Only on the error path.
 */
export function crOnlyHint(line: string): string {
  return /\r[ \t]*[{[]/.test(line) ? '; its lines seem to end in CR alone, JSON Lines end them in LF' : '';
}
