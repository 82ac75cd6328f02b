import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { PARQUET_COMPRESSIONS } from '../core/parquet/parquet-writer.js';
import type { ResultProblems } from '../core/results/result-parser.js';
import { TABLE_FORMATS, type TableFormat, tableFormat } from '../core/tables/table-format.js';
import { BatchpipeError } from '../errors.js';
import { makeParentDir } from '../internal/durable-write.js';
import { outputError } from '../internal/output-error.js';
import { split } from '../internal/split.js';
import { WarningLog } from '../internal/warnings.js';
import { watchCount } from '../internal/watch-count.js';
import { parseOptions } from '../options.js';
import type { RunEvent } from '../run/batch-run.js';
import { arrowSink } from '../sinks/arrow-sink.js';
import { csvSink } from '../sinks/csv-sink.js';
import { jsonlSink } from '../sinks/jsonl-sink.js';
import { type ParquetSinkOptions, parquetSink } from '../sinks/parquet-sink.js';
import type { TableSinkStream } from '../sinks/table-sink.js';
import { resultSource } from '../sources/result-source.js';
import { inRowOrder } from '../streams/batch-protocol.js';
import { JoinFields, type JoinSummary, joinResults } from '../transforms/join-results.js';
import { openTable, TableFields, tableSettings } from './settings.js';

const JOIN_OPTION_NAMES = Object.keys(JoinFields) as Array<keyof typeof JoinFields>;

const JoinTableOptions = z.strictObject({
  /** The source table (the one the requests were built from). */
  source: z.string().min(1),
  /** Output and error files (JSONL). */
  results: z.array(z.string().min(1)),
  /** The joined table to write: .csv, .tsv, .jsonl, .parquet, .arrow (.feather, .ipc) or .arrows. */
  out: z.string().min(1),
  /** Output format; default from the extension of `out`. */
  outFormat: z.enum(TABLE_FORMATS).optional(),
  /** Parquet output: rows per row group (default 122,880) and compression (default snappy). */
  rowGroupSize: z.number().int().positive().optional(),
  compression: z.enum(PARQUET_COMPRESSIONS).optional(),
  /**
   * Keep going when rows are `stale` (changed since their requests were made, see `rowHashes`). By
   * default the table is written and then BP_RESULT_STALE thrown, as `batchpipe join` exits 1.
   */
  allowStale: z.boolean().default(false),
  /** Progress: `rows` events of stage `join`, a few a second (see RunEvent); `total` when known. */
  onEvent: z.custom<(event: RunEvent) => void>((v) => typeof v === 'function').optional(),
  /** The rows the source holds, when the caller knows (a run's prepared rows): the total of `rows` events. */
  expectedRows: z.number().int().min(0).optional(),
  ...TableFields,
  ...JoinFields,
});
export type JoinTableOptions = z.input<typeof JoinTableOptions>;

export interface JoinTableResult extends JoinSummary {
  out: string;
  /** The result lines that could not be used (`problems` counts them), the first ones in full. */
  problemDetails: ResultProblems;
}

/**
 * Joins result files (downloaded by hand, or by a run) back onto the source table and writes the
 * joined table: every source row once, in source order, with DESIGN section 6's result columns. The
 * function behind `batchpipe join`, and nothing more than the stages a script composes:
 * `pipeline(resultSource(files), joinResults({ source }), csvSink(out))`.
 */
export async function joinTable(options: JoinTableOptions): Promise<JoinTableResult> {
  const opts = parseOptions(JoinTableOptions, options, 'joinTable');
  const { source, results, out } = opts;
  const table = tableSettings(source, opts);
  const [join] = split(opts, JOIN_OPTION_NAMES);
  const written = tableFormat(out, opts.outFormat);
  const parsed = resultSource(results, {
    labels: opts.labels,
    schema: opts.schema,
    badLines: opts.badLines,
    onProblem: opts.onProblem,
  });
  const joined = joinResults({
    // The first pass reads only the columns it needs, where the format allows (Parquet).
    source: inRowOrder((columns?: readonly string[]) => openTable(source, table, new WarningLog(), columns)),
    ...join,
  });
  const sink = tableSinkFor(out, written, { rowGroupSize: opts.rowGroupSize, compression: opts.compression });
  const { onEvent, expectedRows: total } = opts;
  const progress = onEvent
    ? watchCount(
        () => sink.rows,
        (rows, final) =>
          onEvent({ type: 'rows', stage: 'join', rows, ...(total !== undefined && { total }), final }),
      )
    : undefined;
  try {
    await pipeline(parsed, joined, sink);
  } catch (error) {
    progress?.stop(false);
    throw error;
  }
  progress?.stop();
  const summary = joined.summary!;
  if (summary.statuses.stale > 0 && !opts.allowStale) throw staleRows(summary, out);
  return { ...summary, problems: parsed.problems.count, out, problemDetails: parsed.problems };
}

/** BP_RESULT_STALE: the table is written, and some of its rows hold answers to other prompts. */
export function staleRows(summary: JoinSummary, out: string): BatchpipeError {
  const stale = summary.statuses.stale;
  return new BatchpipeError(
    'BP_RESULT_STALE',
    `${stale.toLocaleString('en-US')} of ${summary.rows.toLocaleString('en-US')} rows changed after their requests were made (status stale in ${out}, which was written): their results answer other prompts; run again for them, or allow stale rows (--allow-stale)`,
  );
}

/** The sink that writes a table in `format`. */
export function tableSinkFor(
  out: string,
  format: TableFormat,
  parquet: ParquetSinkOptions = {},
): TableSinkStream {
  switch (format) {
    case 'jsonl':
      return jsonlSink(out);
    case 'parquet':
      return parquetSink(out, parquet);
    case 'arrow':
    case 'arrows':
      return arrowSink(out, { format: format === 'arrows' ? 'stream' : 'file' });
    default:
      return csvSink(out, { delimiter: format === 'tsv' ? '\t' : ',' });
  }
}

/**
 * Checks, before any work is paid for, that `out` can be written: its format is known (the option,
 * or the extension), and its directory exists (or can be made) and is writable.
 */
export async function checkOutput(out: string, format?: TableFormat): Promise<TableFormat> {
  const known = tableFormat(out, format);
  // BP_OUTPUT_PATH for a path that is a directory, sits under a file, or whose parent cannot be made.
  await makeParentDir(out);
  try {
    await access(dirname(out), constants.W_OK);
  } catch (error) {
    throw outputError(out, error);
  }
  return known;
}
