import { BatchpipeError, type ErrorCode } from '../../errors.js';
import { LineScanner } from '../../internal/line-scanner.js';
import { parseJsonExact } from '../../internal/parse-json.js';
import type { WarningLog } from '../../internal/warnings.js';
import type { Rejection, Row, RowValues } from '../../types.js';
import { ObjectRowBatch } from '../rows/object-row-batch.js';

/** How a JSON Lines table is read, every option resolved (jsonlSource's options, parsed). */
export interface JsonlSettings {
  /** A malformed line is a rejection, or stops the read. */
  badRows: 'reject' | 'fail';
  /** Integers beyond 2^53 as strings with every digit, or as (lossy) numbers with a warning. */
  bigIntegers: 'string' | 'number';
  /** A line longer than this stops the read. */
  maxRowSize: number;
}

const SIXTEEN_DIGITS = /\d{16}/;

/** Rows a batch holds at most: a chunk of short lines is cut into several batches. */
export const MAX_BATCH_ROWS = 4096;

/**
 * Reads a JSON Lines file chunk by chunk into batches of rows, one per non-empty line, each a JSON
 * object. A UTF-8 byte-order mark at the start is skipped. A line that is not valid UTF-8, not valid
 * JSON or not an object is a Rejection in its place (or an error with `badRows: "fail"`).
 */
export class JsonlReader {
  readonly #file: string;
  readonly #settings: JsonlSettings;
  readonly #lines: LineScanner;
  readonly #warnings: WarningLog;
  #index = 0;

  constructor(file: string, settings: JsonlSettings, warnings: WarningLog) {
    this.#file = file;
    this.#settings = settings;
    this.#lines = new LineScanner(file, settings.maxRowSize);
    this.#warnings = warnings;
  }

  /**
   * Reads complete lines of a chunk (at most a batch's worth: `stopped` then says to pass the rest again
   * before reading more); the caller keeps the unconsumed rest.
   */
  parse(
    chunk: Buffer,
    last: boolean,
  ): { batch: ObjectRowBatch | undefined; consumed: number; stopped: boolean } {
    const items: Array<Row | Rejection> = [];
    const { consumed, stopped } = this.#lines.scan(chunk, last, MAX_BATCH_ROWS, ({ text, line, utf8 }) => {
      if (isBlank(text)) return;
      const index = ++this.#index;
      if (!utf8) {
        items.push(this.#reject(index, line, 'BP_INPUT_ENCODING', 'line is not valid UTF-8'));
        return;
      }
      let value: unknown;
      try {
        if (this.#settings.bigIntegers === 'string') value = parseJsonExact(text).value;
        else {
          value = JSON.parse(text);
          // Only lines with a run of 16 digits can hold one; the exact parse tells whether they do.
          if (SIXTEEN_DIGITS.test(text) && parseJsonExact(text).bigIntegers) this.#lostDigits(index, line);
        }
      } catch (error) {
        items.push(this.#reject(index, line, 'BP_INPUT_PARSE', `invalid JSON: ${(error as Error).message}`));
        return;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
        items.push(this.#reject(index, line, 'BP_ROW_NOT_OBJECT', `expected a JSON object, got ${got}`));
        return;
      }
      items.push({ kind: 'row', index, file: this.#file, line, values: value as RowValues });
    });
    return { batch: items.length > 0 ? new ObjectRowBatch(items) : undefined, consumed, stopped };
  }

  #lostDigits(index: number, line: number): void {
    this.#warnings.warn(
      'BP_WARN_BIG_INTEGER',
      'integers beyond 2^53 were read as numbers and lost digits (the bigIntegers option is "number"); prompts and custom_ids show the rounded value, and a join, which reads every digit, will not find these rows by such an id',
      { file: this.#file, line, row: index },
    );
  }

  #reject(index: number, line: number, code: ErrorCode, message: string): Rejection {
    if (this.#settings.badRows === 'fail') {
      throw new BatchpipeError(code, `row ${index}: ${message}`, { file: this.#file, line, row: index });
    }
    return { kind: 'rejection', index, file: this.#file, line, custom_id: null, code, message };
  }
}

/** True for an empty or whitespace-only line (skipped, as JSONL readers do). */
export function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}
