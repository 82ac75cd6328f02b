import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { CsvSettings } from '../core/csv/csv-reader.js';
import type { JsonlSettings } from '../core/jsonl/jsonl-reader.js';
import {
  REQUEST_OPTION_NAMES,
  type RequestSettings,
  ToRequestsFields,
  type ToRequestsOptions,
} from '../core/requests/request-options.js';
import type { RuleOptions } from '../core/requests/request-rules.js';
import { SliceField } from '../core/rows/row-slice.js';
import { isColumnar, TABLE_FORMATS, type TableFormat, tableFormat } from '../core/tables/table-format.js';
import { BatchpipeError } from '../errors.js';
import { inputName } from '../internal/input.js';
import { split } from '../internal/split.js';
import type { WarningLog } from '../internal/warnings.js';
import { PROVIDER_NAMES, type ProviderProfile } from '../providers/profile.js';
import { resolveProfile } from '../providers/resolve-profile.js';
import { arrowSourceOf } from '../sources/arrow-source.js';
import { CsvTableFields, type CsvTableOptions, csvSettings, csvSourceOf } from '../sources/csv-source.js';
import { JsonlTableFields, jsonlSourceOf } from '../sources/jsonl-source.js';
import { parquetSourceOf } from '../sources/parquet-source.js';

/**
 * The one place a job's options become what its stages take: how the table is read (its format, and
 * a delimiter from `.tsv` included), how requests are built, which provider profile and rules apply.
 * Every job and command goes through here.
 */

/** How a table is read: the options every job that reads one takes. */
export const TableFields = {
  /** Input format; default from the file extension. */
  format: z.enum(TABLE_FORMATS).optional(),
  /** Name used in errors when the input is a stream. */
  name: z.string().min(1).optional(),
  ...CsvTableFields,
  /** JSONL input: integers beyond 2^53 arrive as strings with every digit ("string", default) or as
   *  lossy numbers ("number", with a warning). */
  bigIntegers: JsonlTableFields.bigIntegers,
};
type TableOptions = z.output<z.ZodObject<typeof TableFields>>;

/** A table to read, resolved. */
export interface TableSettings {
  file: string;
  format: TableFormat;
  csv: CsvSettings;
  jsonl: JsonlSettings;
}

/** How `input` is read, from a job's table options. */
export function tableSettings(input: string | Readable, opts: TableOptions): TableSettings {
  const file = inputName(input, opts.name);
  const format = tableFormat(file, opts.format);
  // JSON Lines are UTF-8 (RFC 8259): an encoding said for one would be ignored without a word.
  if (format === 'jsonl' && !/^utf-?8$/i.test(opts.encoding))
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `JSON Lines are read as UTF-8, the only encoding JSON has: the encoding option (${JSON.stringify(opts.encoding)}) is for CSV and TSV`,
      { option: 'encoding' },
    );
  return {
    file,
    format,
    csv: csvSettings(opts as CsvTableOptions, format, file),
    jsonl: { badRows: opts.badRows, bigIntegers: opts.bigIntegers, maxRowSize: opts.maxRowSize },
  };
}

/**
 * The exported source stage that reads a table: csvSource, jsonlSource, parquetSource or arrowSource.
 * `columns`: the columns the job reads (a template's, an id column), when it knows them; a columnar
 * source then reads only those.
 */
export function openTable(
  input: string | Readable,
  table: TableSettings,
  warnings: WarningLog,
  columns?: readonly string[],
): Readable {
  if (isColumnar(table.format)) {
    if (table.format === 'parquet') {
      if (typeof input !== 'string')
        throw new BatchpipeError('BP_USAGE', `${table.file}: Parquet is read from a file path, not a stream`);
      return parquetSourceOf(input, { columns }, table.file);
    }
    return arrowSourceOf(input, table.file);
  }
  return table.format === 'jsonl'
    ? jsonlSourceOf(input, table.jsonl, table.file, warnings)
    : csvSourceOf(input, table.csv, table.file);
}

/** Which provider's rules apply, and the user's changes to them. */
export const ProfileFields = {
  provider: z.enum(PROVIDER_NAMES).default('local'),
  models: z.array(z.string().min(1)).optional(),
  anyModel: z.boolean().optional(),
  contextWindows: z.record(z.string(), z.number().int().positive()).optional(),
  maxLinesPerFile: z.number().int().positive().optional(),
  maxBytesPerFile: z.number().int().positive().optional(),
  maxLineBytes: z.number().int().positive().optional(),
};
type ProfileOptions = z.output<z.ZodObject<typeof ProfileFields>>;

/** The provider profile a job's options make. */
export function jobProfile(opts: ProfileOptions): ProviderProfile {
  return resolveProfile({
    provider: opts.provider,
    models: opts.models,
    anyModel: opts.anyModel,
    contextWindows: opts.contextWindows,
    maxLinesPerFile: opts.maxLinesPerFile,
    maxBytesPerFile: opts.maxBytesPerFile,
    maxLineBytes: opts.maxLineBytes,
  });
}

/** Everything that turns a table into request lines: the fields of prepare's options. */
export const RequestJobFields = {
  ...TableFields,
  ...ToRequestsFields,
  ...ProfileFields,
  /** Reject prompts that plainly exceed a known context window. Default true. */
  checkContext: z.boolean().default(true),
  /**
   * Only this slice of the table (`{ index, count }`, index 0 .. count-1): the rows whose custom_id
   * hashes to it (docs/scale.md). Each slice is a run of its own; `count` of them make the whole table.
   */
  slice: SliceField,
};
export type RequestJobOptions = z.output<z.ZodObject<typeof RequestJobFields>>;

/** A request job's options, resolved once for its stages. */
export interface RequestJob {
  table: TableSettings;
  profile: ProviderProfile;
  /** toRequests' options (the profile resolved). */
  requests: ToRequestsOptions & Pick<RequestSettings, 'endpoint'>;
  /** validateRequests' rules. */
  rules: RuleOptions;
}

/** Resolves a request job's options (already checked) for its stages. */
export function requestJob(input: string | Readable, opts: RequestJobOptions): RequestJob {
  const profile = jobProfile(opts);
  const [requests] = split(opts, REQUEST_OPTION_NAMES);
  return {
    table: tableSettings(input, opts),
    profile,
    requests: { ...(requests as ToRequestsOptions), endpoint: opts.endpoint, provider: profile },
    rules: {
      endpoint: opts.endpoint,
      singleModel: false,
      checkContext: opts.checkContext,
      warnThinkingDefault: false,
    },
  };
}
