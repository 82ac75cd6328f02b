import { z } from 'zod';
import { arrowWriter } from '../core/arrow/arrow-writer.js';
import { formatOfPath } from '../core/tables/table-format.js';
import { parseOptions } from '../options.js';
import { columnarEncoder } from './columnar-encoder.js';
import { type TableSinkStream, tableSink } from './table-sink.js';

const ArrowSinkOptions = z.strictObject({
  /** "file" (the IPC file format, Feather v2) or "stream". Default: "stream" for `.arrows`, else "file". */
  format: z.enum(['file', 'stream']).optional(),
});
export type ArrowSinkOptions = z.input<typeof ArrowSinkOptions>;

/**
 * Writes rows as Arrow IPC, a record batch per batch of rows, with the types parquetSink gives them
 * (docs/formats.md). The file appears under its name only when complete.
 */
export function arrowSink(path: string, options: ArrowSinkOptions = {}): TableSinkStream {
  const opts = parseOptions(ArrowSinkOptions, options, 'arrowSink');
  const format = opts.format ?? (formatOfPath(path) === 'arrows' ? 'stream' : 'file');
  return tableSink(
    path,
    columnarEncoder(async (arrow, write) => arrowWriter(arrow, format, write)),
  );
}
