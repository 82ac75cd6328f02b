import { extname } from 'node:path';
import { BatchpipeError } from '../../errors.js';

/** Table formats batchpipe reads and writes. */
export const TABLE_FORMATS = ['csv', 'tsv', 'jsonl'] as const;
export type TableFormat = (typeof TABLE_FORMATS)[number];

const BY_EXTENSION: Record<string, TableFormat> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

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
    `cannot tell the format of ${path} from its extension; name it .csv, .tsv or .jsonl, or pass --format csv|tsv|jsonl`,
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
