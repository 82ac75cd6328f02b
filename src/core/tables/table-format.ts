import { extname } from 'node:path';
import { BatchpipeError } from '../../errors.js';

/** Table formats batchpipe reads and writes. */
export const TABLE_FORMATS = ['csv', 'tsv', 'jsonl', 'parquet', 'arrow', 'arrows'] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

const BY_EXTENSION: Record<string, TableFormat> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.parquet': 'parquet',
  // Arrow IPC: the file format (Feather v2 is the same), and the stream format.
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
  '.arrows': 'arrows',
};

/** The extensions, as an error names them. */
const EXTENSIONS = '.csv, .tsv, .jsonl, .ndjson, .parquet, .arrow, .feather, .ipc or .arrows';

/** True for the columnar formats (read by record batch from a path, not by chunks of text). */
export function isColumnar(format: TableFormat): format is 'parquet' | 'arrow' | 'arrows' {
  return format === 'parquet' || format === 'arrow' || format === 'arrows';
}

/** The format a path's extension names, if any. */
export function formatOfPath(path: string): TableFormat | undefined {
  return BY_EXTENSION[extname(path).toLowerCase()];
}

/** The format of a table: the `format` option, else the file extension; BP_USAGE when neither says. */
export function tableFormat(path: string, format?: TableFormat): TableFormat {
  if (format) return format;
  const found = formatOfPath(path);
  if (found) return found;
  throw new BatchpipeError(
    'BP_USAGE',
    `cannot tell the format of ${path} from its extension; name it ${EXTENSIONS}, or pass --format ${TABLE_FORMATS.join('|')}`,
  );
}

/**
 * The field delimiter of a delimited table: the one given, else a tab for TSV (by format, or by a
 * path ending in .tsv) and a comma otherwise. The one place this rule is written.
 */
export function delimiterOf(
  given: string | undefined,
  format: TableFormat | undefined,
  path?: string,
): string {
  if (given !== undefined) return given;
  const tsv =
    format === 'tsv' || (format === undefined && path !== undefined && formatOfPath(path) === 'tsv');
  return tsv ? '\t' : ',';
}
