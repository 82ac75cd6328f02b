import type { Readable } from 'node:stream';
import { z } from 'zod';
import { BatchpipeError, type ErrorCode } from '../errors.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { type ChunkParser, ItemSource, type Parsed } from '../internal/item-source.js';
import { LineSplitter } from '../internal/line-splitter.js';
import { parseJsonExact } from '../internal/parse-json.js';
import { type WarningHandler, WarningLog } from '../internal/warnings.js';
import { byteSize, parseOptions } from '../options.js';
import type { Rejection, RowValues, SourceItem } from '../types.js';

const JsonlSourceOptions = z.strictObject({
  /** Name used in errors when the input is a stream. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
  /** A malformed line becomes a rejection ("reject", default) or stops the run ("fail"). */
  badRows: z.enum(['reject', 'fail']).default('reject'),
  /** Integers beyond 2^53 arrive as strings with every digit ("string", default) or as lossy numbers
   *  ("number", with a BP_WARN_BIG_INTEGER warning for each line that lost digits). */
  bigIntegers: z.enum(['string', 'number']).default('string'),
  /** A line longer than this stops the run. Default 64 MiB. */
  maxRowSize: byteSize.default(64 * 1024 * 1024),
  /** Called once per distinct warning. */
  onWarning: z.custom<WarningHandler>((value) => typeof value === 'function').optional(),
});
export type JsonlSourceOptions = z.input<typeof JsonlSourceOptions>;
type Options = z.output<typeof JsonlSourceOptions>;

/** The Readable `jsonlSource` returns, with its warnings. */
export interface JsonlSourceStream extends Readable {
  readonly warnings: WarningLog;
}

const SIXTEEN_DIGITS = /\d{16}/;

/**
 * Streams a JSON Lines file (or stream) as Row objects, one per non-empty line, each a JSON object.
 * A UTF-8 byte-order mark at the start is skipped. A line that is not valid UTF-8, not valid JSON or
 * not an object becomes a Rejection (or, with `badRows: "fail"`, an error naming the file and line).
 */
export function jsonlSource(input: SourceInput, options: JsonlSourceOptions = {}): JsonlSourceStream {
  const opts = parseOptions(JsonlSourceOptions, options, 'jsonlSource');
  const file = inputName(input, opts.name);
  const warnings = new WarningLog(opts.onWarning);
  const stream = new ItemSource<SourceItem>(
    input,
    file,
    new JsonlChunkParser(file, opts, warnings),
    Number.MAX_SAFE_INTEGER,
  ) as unknown as JsonlSourceStream;
  Object.defineProperty(stream, 'warnings', { value: warnings, enumerable: true });
  return stream;
}

class JsonlChunkParser implements ChunkParser<SourceItem> {
  readonly #file: string;
  readonly #opts: Options;
  readonly #lines: LineSplitter;
  readonly #warnings: WarningLog;
  #index = 0;

  constructor(file: string, opts: Options, warnings: WarningLog) {
    this.#file = file;
    this.#opts = opts;
    this.#lines = new LineSplitter(file, opts.maxRowSize);
    this.#warnings = warnings;
  }

  parse(chunk: Buffer, last: boolean): Parsed<SourceItem> {
    const items: SourceItem[] = [];
    for (const { text, line, utf8 } of this.#lines.split(chunk, last)) {
      if (isBlank(text)) continue;
      const index = ++this.#index;
      if (!utf8) {
        items.push(this.#reject(index, line, 'BP_INPUT_ENCODING', 'line is not valid UTF-8'));
        continue;
      }
      let value: unknown;
      try {
        if (this.#opts.bigIntegers === 'string') value = parseJsonExact(text).value;
        else {
          value = JSON.parse(text);
          // Only lines with a run of 16 digits can hold one; the exact parse tells whether they do.
          if (SIXTEEN_DIGITS.test(text) && parseJsonExact(text).bigIntegers) this.#lostDigits(index, line);
        }
      } catch (error) {
        items.push(this.#reject(index, line, 'BP_INPUT_PARSE', `invalid JSON: ${(error as Error).message}`));
        continue;
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
        items.push(this.#reject(index, line, 'BP_ROW_NOT_OBJECT', `expected a JSON object, got ${got}`));
        continue;
      }
      items.push({ kind: 'row', index, file: this.#file, line, values: value as RowValues });
    }
    // The splitter keeps its own copy of an unfinished line.
    return { items, consumed: chunk.length };
  }

  #lostDigits(index: number, line: number): void {
    this.#warnings.warn(
      'BP_WARN_BIG_INTEGER',
      'integers beyond 2^53 were read as numbers and lost digits (the bigIntegers option is "number"); prompts and custom_ids show the rounded value, and a join, which reads every digit, will not find these rows by such an id',
      { file: this.#file, line, row: index },
    );
  }

  #reject(index: number, line: number, code: ErrorCode, message: string): Rejection {
    if (this.#opts.badRows === 'fail') {
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
