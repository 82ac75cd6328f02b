import type { Readable } from 'node:stream';
import { z } from 'zod';
import { BatchpipeError, type ErrorCode } from '../errors.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { type ChunkParser, ItemSource, type Parsed } from '../internal/item-source.js';
import { LineSplitter } from '../internal/line-splitter.js';
import { parseJsonExact } from '../internal/parse-json.js';
import { byteSize, parseOptions } from '../options.js';
import type { Rejection, RowValues, SourceItem } from '../types.js';

const JsonlSourceOptions = z.strictObject({
  /** Name used in errors when the input is a stream. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
  /** A malformed line becomes a rejection ("reject", default) or stops the run ("fail"). */
  badRows: z.enum(['reject', 'fail']).default('reject'),
  /** Integers beyond 2^53 arrive as strings with every digit ("string", default) or as lossy numbers. */
  bigIntegers: z.enum(['string', 'number']).default('string'),
  /** A line longer than this stops the run. */
  maxRowSize: byteSize.default(64 * 1024 * 1024),
});
export type JsonlSourceOptions = z.input<typeof JsonlSourceOptions>;
type Options = z.output<typeof JsonlSourceOptions>;

/**
 * Streams a JSON Lines file (or stream) as Row objects, one per non-empty line, each a JSON object.
 * A line that is not valid UTF-8, not valid JSON or not an object becomes a Rejection (or, with
 * `badRows: "fail"`, an error naming the file and line).
 */
export function jsonlSource(input: SourceInput, options: JsonlSourceOptions = {}): Readable {
  const opts = parseOptions(JsonlSourceOptions, options, 'jsonlSource');
  const file = inputName(input, opts.name);
  return new ItemSource<SourceItem>(input, file, new JsonlChunkParser(file, opts), Number.MAX_SAFE_INTEGER);
}

class JsonlChunkParser implements ChunkParser<SourceItem> {
  readonly #file: string;
  readonly #opts: Options;
  readonly #lines: LineSplitter;
  #index = 0;

  constructor(file: string, opts: Options) {
    this.#file = file;
    this.#opts = opts;
    this.#lines = new LineSplitter(file, opts.maxRowSize);
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
        value = this.#opts.bigIntegers === 'string' ? parseJsonExact(text).value : JSON.parse(text);
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
