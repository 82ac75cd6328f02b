import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArrowRowBatch } from '../core/arrow/arrow-row-batch.js';
import { type ParquetReadSettings, readParquetBatches } from '../core/parquet/parquet-reader.js';
import { parseOptions } from '../options.js';
import { BatchIteratorReadable } from '../streams/batch-iterator-readable.js';
import type { SourceItem } from '../types.js';

const ParquetSourceOptions = z.strictObject({
  /** Name used in errors. Default: the path. */
  name: z.string().min(1).optional(),
  /** Read only these columns (a template's, an id column); default every column. */
  columns: z.array(z.string().min(1)).optional(),
});
export type ParquetSourceOptions = z.input<typeof ParquetSourceOptions>;

/**
 * Streams a Parquet file (a path: Parquet is read by byte range) as rows, one row group at a time,
 * so memory is bounded by a row group, not the file; with `columns`, only those are read. Any
 * compression, V1 and V2 pages, dictionary encoding; docs/formats.md says how each type reads
 * (int64 and decimals exact, timestamps with every stored digit, lists and structs as JSON in a
 * template). Emits one Row per row; to batchpipe's own stages it hands batches over Arrow memory,
 * so a template renders cells without an object per row.
 */
export function parquetSource(path: string, options: ParquetSourceOptions = {}): Readable {
  const opts = parseOptions(ParquetSourceOptions, options, 'parquetSource');
  return parquetSourceOf(path, { columns: opts.columns }, opts.name);
}

/** parquetSource over settings already resolved (the jobs resolve them once). */
export function parquetSourceOf(path: string, settings: ParquetReadSettings, name?: string): Readable {
  const file = name ?? path;
  return new BatchIteratorReadable<SourceItem, ArrowRowBatch>(() => readParquetBatches(path, file, settings));
}
