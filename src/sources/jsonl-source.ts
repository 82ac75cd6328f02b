import type { Readable } from 'node:stream';
import { z } from 'zod';
import { JsonlReader, type JsonlSettings } from '../core/jsonl/jsonl-reader.js';
import type { JsonlRowBatch } from '../core/jsonl/jsonl-row-batch.js';
import { threadReadOf } from '../core/tables/table-read-thread.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { type WarningHandler, WarningLog } from '../internal/warnings.js';
import { byteSize, parseOptions } from '../options.js';
import { kReadOnThread } from '../streams/batch-protocol.js';
import { BatchReadable } from '../streams/batch-readable.js';
import type { SourceItem } from '../types.js';

/** How a JSON Lines table is read: the options jsonlSource and the commands that read tables share. */
export const JsonlTableFields = {
  /** A malformed line becomes a rejection ("reject", default) or stops the run ("fail"). */
  badRows: z.enum(['reject', 'fail']).default('reject'),
  /** Integers beyond 2^53 arrive as strings with every digit ("string", default) or as lossy numbers
   *  ("number", with a BP_WARN_BIG_INTEGER warning for each line that lost digits). */
  bigIntegers: z.enum(['string', 'number']).default('string'),
  /** A line longer than this stops the run. Default 64 MiB. */
  maxRowSize: byteSize.default(64 * 1024 * 1024),
};

const JsonlSourceOptions = z.strictObject({
  /** Name used in errors when the input is a stream. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
  ...JsonlTableFields,
  /** Called once per distinct warning. */
  onWarning: z.custom<WarningHandler>((value) => typeof value === 'function').optional(),
});
export type JsonlSourceOptions = z.input<typeof JsonlSourceOptions>;

/** The Readable `jsonlSource` returns, with its warnings. */
export interface JsonlSourceStream extends Readable {
  readonly warnings: WarningLog;
}

/**
 * Streams a JSON Lines file (or stream) as Row objects, one per non-empty line, each a JSON object.
 * A UTF-8 byte-order mark at the start is skipped. A line that is not valid UTF-8, not valid JSON or
 * not an object becomes a Rejection (or, with `badRows: "fail"`, an error naming the file and line).
 * To batchpipe's own stages it hands batches of rows.
 */
export function jsonlSource(input: SourceInput, options: JsonlSourceOptions = {}): JsonlSourceStream {
  const { name, onWarning, ...settings } = parseOptions(JsonlSourceOptions, options, 'jsonlSource');
  return jsonlSourceOf(input, settings, name, new WarningLog(onWarning));
}

/** jsonlSource over settings already resolved (the jobs resolve them once). */
export function jsonlSourceOf(
  input: SourceInput,
  settings: JsonlSettings,
  name: string | undefined,
  warnings: WarningLog,
): JsonlSourceStream {
  const file = inputName(input, name);
  const stream = new BatchReadable<SourceItem, JsonlRowBatch>(
    input,
    file,
    new JsonlReader(file, settings, warnings),
    settings.maxRowSize,
  ) as unknown as JsonlSourceStream;
  Object.defineProperty(stream, 'warnings', { value: warnings, enumerable: true });
  // A join's output pass reads a large file on a thread, with these same settings and warnings.
  const onThread = threadReadOf(input, (path) => ({ format: 'jsonl', path, file, settings }), warnings);
  Object.defineProperty(stream, kReadOnThread, { value: onThread });
  return stream;
}
