import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { ResultProblems } from '../core/results/result-parser.js';
import { formatOfPath } from '../core/tables/table-format.js';
import { BatchpipeError } from '../errors.js';
import { split } from '../internal/split.js';
import { WarningLog } from '../internal/warnings.js';
import { parseOptions } from '../options.js';
import { csvSink } from '../sinks/csv-sink.js';
import { jsonlSink } from '../sinks/jsonl-sink.js';
import { resultSource } from '../sources/result-source.js';
import { JoinFields, type JoinSummary, joinResults } from '../transforms/join-results.js';
import { openTable, TableFields, tableSettings } from './settings.js';

const JOIN_OPTION_NAMES = Object.keys(JoinFields) as Array<keyof typeof JoinFields>;

/** What `--out` may be, by extension. */
const OUTPUT_FORMATS = ['csv', 'tsv', 'jsonl'] as const;

const JoinTableOptions = z.strictObject({
  /** The source table (the one the requests were built from). */
  source: z.string().min(1),
  /** Output and error files (JSONL). */
  results: z.array(z.string().min(1)),
  /** The joined table to write: .csv, .tsv or .jsonl. */
  out: z.string().min(1),
  /** Output format; default from the extension of `out`. */
  outFormat: z.enum(OUTPUT_FORMATS).optional(),
  /**
   * Keep going when rows are `stale` (changed since their requests were made, see `rowHashes`). By
   * default the table is written and then BP_RESULT_STALE thrown, as `batchpipe join` exits 1.
   */
  allowStale: z.boolean().default(false),
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
  const written = opts.outFormat ?? outputFormat(out);
  const parsed = resultSource(results, {
    labels: opts.labels,
    schema: opts.schema,
    badLines: opts.badLines,
    onProblem: opts.onProblem,
  });
  const joined = joinResults({ source: () => openTable(source, table, new WarningLog()), ...join });
  const sink =
    written === 'jsonl' ? jsonlSink(out) : csvSink(out, { delimiter: written === 'tsv' ? '\t' : ',' });
  await pipeline(parsed, joined, sink);
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

function outputFormat(path: string): (typeof OUTPUT_FORMATS)[number] {
  const format = formatOfPath(path);
  if (format) return format;
  throw new BatchpipeError(
    'BP_USAGE',
    `cannot tell the format of ${path} from its extension; name it .csv, .tsv or .jsonl`,
  );
}
