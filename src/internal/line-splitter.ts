import { LineScanner, type ScannedLine } from './line-scanner.js';

/** One line of a line-delimited file. */
export type TextLine = ScannedLine;

/**
 * Splits byte chunks into lines (LineScanner's lines), keeping the unfinished last line for the next
 * chunk: for callers that read whole chunks and want every line of each at once.
 */
export class LineSplitter {
  readonly #scanner: LineScanner;
  #partial: Buffer | undefined;

  constructor(file: string, maxLineBytes: number) {
    this.#scanner = new LineScanner(file, maxLineBytes);
  }

  /** True when the input began with a UTF-8 byte-order mark (left out of line 1). */
  get byteOrderMark(): boolean {
    return this.#scanner.byteOrderMark;
  }

  split(chunk: Buffer, last: boolean): TextLine[] {
    const data = this.#partial ? Buffer.concat([this.#partial, chunk]) : chunk;
    const lines: TextLine[] = [];
    const { consumed } = this.#scanner.scan(data, last, Number.POSITIVE_INFINITY, (line) => lines.push(line));
    // Copied, so the kept rest does not pin the whole chunk in memory.
    this.#partial = consumed < data.length ? Buffer.from(data.subarray(consumed)) : undefined;
    return lines;
  }
}
