import { type Command, Option } from 'commander';
import { PARQUET_COMPRESSIONS, type ParquetCompression } from '../core/parquet/parquet-writer.js';
import { TABLE_FORMATS, type TableFormat } from '../core/tables/table-format.js';
import { integer } from './parse-values.js';

/** The flags of the joined table a command writes. */
export interface TableOutputFlags {
  outFormat?: TableFormat;
  compression?: ParquetCompression;
  rowGroupSize?: number;
}

/** Options of the joined table `join` and `run` write: its format, and a Parquet file's layout. */
export function addTableOutputOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--out-format <format>', 'output format (default: from the extension of --out)').choices(
        TABLE_FORMATS,
      ),
    )
    .addOption(
      new Option('--compression <codec>', 'Parquet output compression (default snappy)').choices(
        PARQUET_COMPRESSIONS,
      ),
    )
    .option('--row-group-size <rows>', 'Parquet output rows per row group (default 122880)', integer);
}
