import { isUtf8 } from 'node:buffer';
import { BatchpipeError } from '../../errors.js';
import type { WarningLog } from '../../internal/warnings.js';
import type { Rejection } from '../../types.js';
import { JsonlRowBatch } from './jsonl-row-batch.js';

/** How a JSON Lines table is read, every option resolved (jsonlSource's options, parsed). */
export interface JsonlSettings {
  /** A malformed line is a rejection, or stops the read. */
  badRows: 'reject' | 'fail';
  /** Integers beyond 2^53 as strings with every digit, or as (lossy) numbers with a warning. */
  bigIntegers: 'string' | 'number';
  /** A line longer than this stops the read. */
  maxRowSize: number;
}

/** Rows a batch holds at most: a chunk of short lines is cut into several batches. */
export const MAX_BATCH_ROWS = 2048;

const LF = 0x0a;
const CR = 0x0d;

/** What one chunk made (see CsvChunk). */
export interface JsonlChunk {
  batch: JsonlRowBatch | undefined;
  consumed: number;
  holdsChunk: boolean;
  stopped: boolean;
}

/**
 * Reads a JSON Lines file chunk by chunk into batches of rows, one per non-empty line, each a JSON
 * object. A UTF-8 byte-order mark at the start is skipped. A line that is not valid UTF-8, not valid
 * JSON or not an object is a Rejection in its place (or an error with `badRows: "fail"`). Each line is
 * checked once, from its bytes, where it is first read (see JsonlRowBatch); a batch keeps pointing into
 * its chunk.
 */
export class JsonlReader {
  readonly #file: string;
  readonly #settings: JsonlSettings;
  readonly #warnings: WarningLog;
  #index = 0;
  #line = 0;
  #started = false;

  constructor(file: string, settings: JsonlSettings, warnings: WarningLog) {
    this.#file = file;
    this.#settings = settings;
    this.#warnings = warnings;
  }

  /**
   * Reads complete lines of a chunk, at most a batch's worth (`stopped`: pass the rest again before
   * reading more); the caller keeps the unconsumed rest.
   */
  parse(chunk: Buffer, last: boolean): JsonlChunk {
    let p = 0;
    if (!this.#started) {
      // A chunk may end inside the mark: wait for its other bytes.
      if (!last && chunk.length < 3)
        return { batch: undefined, consumed: 0, holdsChunk: false, stopped: false };
      this.#started = true;
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) p = 3;
    }
    const end = last ? chunk.length : Math.max(chunk.lastIndexOf(LF) + 1, p);
    const max = this.#settings.maxRowSize;
    // The unfinished line is already too long: stop before holding more of it.
    if (chunk.length - end > max) this.#tooLong(this.#line + 1);
    const utf8 = end > p ? isUtf8(chunk.subarray(p, end)) : true;
    const firstIndex = this.#index + 1;
    const lines: number[] = [];
    const starts: number[] = [];
    const ends: number[] = [];
    const rejections: Array<[number, Rejection]> = [];
    let stopped = false;
    while (p < end) {
      if (lines.length === MAX_BATCH_ROWS) {
        stopped = true;
        break;
      }
      let stop = chunk.indexOf(LF, p);
      const next = stop === -1 || stop >= end ? end : stop + 1;
      if (stop === -1 || stop >= end) stop = end;
      const to = stop > p && chunk[stop - 1] === CR ? stop - 1 : stop;
      const line = ++this.#line;
      if (to - p > max) this.#tooLong(line);
      const from = p;
      p = next;
      if (isBlank(chunk, from, to)) continue;
      const index = ++this.#index;
      if (!utf8 && !isUtf8(chunk.subarray(from, to))) {
        const message = 'line is not valid UTF-8';
        rejections.push([
          lines.length,
          {
            kind: 'rejection',
            index,
            file: this.#file,
            line,
            custom_id: null,
            code: 'BP_INPUT_ENCODING',
            message,
          },
        ]);
      }
      lines.push(line);
      starts.push(from);
      ends.push(to);
    }
    const consumed = stopped ? p : end;
    if (lines.length === 0) return { batch: undefined, consumed, holdsChunk: false, stopped };
    // A batch cut short shares its chunk with the lines after it: it keeps a copy of its own bytes.
    const buffer = stopped ? Buffer.from(chunk.subarray(0, consumed)) : chunk;
    const batch = new JsonlRowBatch({
      file: this.#file,
      buffer,
      firstIndex,
      length: lines.length,
      lines: Int32Array.from(lines),
      starts: Int32Array.from(starts),
      ends: Int32Array.from(ends),
      rejections,
      parse: { bigIntegers: this.#settings.bigIntegers, badRows: this.#settings.badRows },
    });
    // Lines are parsed when a stage asks about them, except where reading must say something at once:
    // a line that stops the read, or one whose integers lost digits.
    if (this.#settings.badRows === 'fail' || this.#settings.bigIntegers === 'number') this.#parseNow(batch);
    return { batch, consumed, holdsChunk: !stopped, stopped };
  }

  /** Parses every line of a batch now, in order: the first bad line stops the read, lost digits warn. */
  #parseNow(batch: JsonlRowBatch): void {
    for (let i = 0; i < batch.length; i++) {
      const rejected = batch.rejection(i);
      if (rejected && this.#settings.badRows === 'fail')
        throw new BatchpipeError(rejected.code, `row ${rejected.index}: ${rejected.message}`, {
          file: this.#file,
          line: rejected.line,
          row: rejected.index,
        });
      if (!rejected && this.#settings.bigIntegers === 'number' && batch.lostDigits(i))
        this.#lostDigits(batch.index(i), batch.line(i));
    }
  }

  #tooLong(line: number): never {
    throw new BatchpipeError('BP_ROW_TOO_LARGE', `line is longer than ${this.#settings.maxRowSize} bytes`, {
      file: this.#file,
      line,
    });
  }

  #lostDigits(index: number, line: number): void {
    this.#warnings.warn(
      'BP_WARN_BIG_INTEGER',
      'integers beyond 2^53 were read as numbers and lost digits (the bigIntegers option is "number"); prompts and custom_ids show the rounded value, and a join, which reads every digit, will not find these rows by such an id',
      { file: this.#file, line, row: index },
    );
  }
}

/** True for an empty or whitespace-only line (skipped, as JSONL readers do). */
function isBlank(chunk: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = chunk[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}
