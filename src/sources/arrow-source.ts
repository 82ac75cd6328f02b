import type { Readable } from 'node:stream';
import { z } from 'zod';
import { readArrowBatches } from '../core/arrow/arrow-reader.js';
import type { ArrowRowBatch } from '../core/arrow/arrow-row-batch.js';
import { parseOptions } from '../options.js';
import { BatchIteratorReadable } from '../streams/batch-iterator-readable.js';
import type { SourceItem } from '../types.js';

const ArrowSourceOptions = z.strictObject({
  /** Name used in errors. Default: the path, or "<stream>". */
  name: z.string().min(1).optional(),
});
export type ArrowSourceOptions = z.input<typeof ArrowSourceOptions>;

/**
 * Streams an Arrow IPC table as rows, one record batch at a time: the file format (`.arrow`,
 * `.feather` v2, `.ipc`) from a path, or the stream format (`.arrows`) from a path or a byte stream.
 * Types read as from Parquet (docs/formats.md). Emits one Row per row; to batchpipe's own stages it
 * hands batches over Arrow memory.
 */
export function arrowSource(input: string | Readable, options: ArrowSourceOptions = {}): Readable {
  const opts = parseOptions(ArrowSourceOptions, options, 'arrowSource');
  return arrowSourceOf(input, opts.name ?? (typeof input === 'string' ? input : '<stream>'));
}

/** arrowSource with its name resolved (the jobs resolve it once). */
export function arrowSourceOf(input: string | Readable, file: string): Readable {
  return new BatchIteratorReadable<SourceItem, ArrowRowBatch>(() => readArrowBatches(input, file));
}
