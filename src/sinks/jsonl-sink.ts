import type { RowValues } from '../types.js';
import { type TableSinkStream, tableSink } from './table-sink.js';

/**
 * Writes rows (or plain records) as JSON Lines, one object per row with the row's values as they are
 * (numbers stay numbers, embeddings stay arrays). The file is written under a temporary name and
 * renamed into place when complete.
 */
export function jsonlSink(path: string): TableSinkStream {
  let columns: string[] | undefined;
  return tableSink(path, {
    row(values: RowValues, _place, out) {
      columns ??= Object.keys(values);
      return out.text(`${JSON.stringify(values)}\n`);
    },
    end: () => '',
    columns: () => columns ?? [],
  });
}
