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
type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const JoinTableOptions = z.strictObject({
  /** The source table (the one the requests were built from). */
  source: z.string().min(1),
  /** Output and error files (JSONL). */
  results: z.array(z.string().min(1)),
  /** The joined table to write: .csv, .tsv or .jsonl. */
  out: z.string().min(1),
  /** Output format; default from the extension of `out`. */
  outFormat: z.enum(OUTPUT_FORMATS).optional(),
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
  return { ...joined.summary!, problems: parsed.problems.count, out, problemDetails: parsed.problems };
}

function outputFormat(path: string): OutputFormat {
  const format = formatOfPath(path);
  if (format && (OUTPUT_FORMATS as readonly string[]).includes(format)) return format as OutputFormat;
  throw new BatchpipeError(
    'BP_USAGE',
    `cannot tell the format of ${path} from its extension; name it .csv, .tsv or .jsonl`,
  );
}
