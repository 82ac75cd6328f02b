import { z } from 'zod';
import { PARQUET_COMPRESSIONS, parquetWriter } from '../core/parquet/parquet-writer.js';
import { parseOptions } from '../options.js';
import { columnarEncoder } from './columnar-encoder.js';
import { type TableSinkStream, tableSink } from './table-sink.js';

const ParquetSinkOptions = z.strictObject({
  /** Rows per row group. Default 122,880 (DuckDB's). */
  rowGroupSize: z.number().int().positive().default(122_880),
  /** "snappy" (default) or "zstd". */
  compression: z.enum(PARQUET_COMPRESSIONS).default('snappy'),
});
export type ParquetSinkOptions = z.input<typeof ParquetSinkOptions>;

/**
 * Writes rows as a Parquet file as they stream, a row group at a time (memory bounded by a few
 * pages a column: a row group's compressed pages wait in a file beside the output, `<path>.pages`,
 * removed from the directory once open). From joinResults, a source read from Parquet or Arrow keeps
 * its columns and their types, and the result columns are typed (docs/formats.md): `status` and
 * texts as strings, token counts as int64, a schema's fields by their JSON Schema, embeddings as
 * list<float>. Other rows' columns take their types from the first batch. The file appears under its
 * name only when complete.
 */
export function parquetSink(path: string, options: ParquetSinkOptions = {}): TableSinkStream {
  const opts = parseOptions(ParquetSinkOptions, options, 'parquetSink');
  return tableSink(
    path,
    // A row group's pages wait beside the output, not in memory (parquet-page-hold.ts).
    columnarEncoder(async (arrow, write) => parquetWriter(arrow, opts, write, `${path}.pages`)),
  );
}
