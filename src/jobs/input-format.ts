import { extname } from 'node:path';
import { BatchpipeError } from '../errors.js';

export const INPUT_FORMATS = ['csv', 'tsv', 'jsonl'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

const BY_EXTENSION: Record<string, InputFormat> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
};

/** The format of an input: the `format` option, else the file extension. */
export function inputFormat(file: string, format?: InputFormat): InputFormat {
  if (format) return format;
  const found = BY_EXTENSION[extname(file).toLowerCase()];
  if (found) return found;
  throw new BatchpipeError(
    'BP_USAGE',
    `cannot tell the format of ${file} from its extension; name it .csv, .tsv or .jsonl, or pass --format csv|tsv|jsonl`,
  );
}
