import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { HashJoin, type JoinSummary } from '../core/join/hash-join.js';
import { scatterResults } from '../core/results/parallel-results.js';
import { type CellEncoding, CellLayout, type CellSpec, payloadColumn } from '../core/results/result-cells.js';
import { isZodSchema } from '../core/structured/structured-output.js';
import { BatchpipeError } from '../errors.js';
import { readBatches } from '../internal/read-batches.js';
import { parseOptions } from '../options.js';
import { csvSink } from '../sinks/csv-sink.js';
import { jsonlSink } from '../sinks/jsonl-sink.js';
import { CsvSourceOptions, CsvTableFields, tableCsvOptions } from '../sources/csv-source.js';
import { jsonlSource } from '../sources/jsonl-source.js';
import { JoinFields, joinCsvFile, joinResults } from '../transforms/join-results.js';
import { ResultParser, type ResultProblems, resultSource } from '../transforms/parse-results.js';
import { INPUT_FORMATS, inputFormat } from './input-format.js';
import { joinCsvBytes } from './join-csv-bytes.js';

/** What `--out` may be, by extension. */
const OUTPUT_FORMATS = ['csv', 'tsv', 'jsonl'] as const;

const JoinTableOptions = z.strictObject({
  /** The source table (the one the requests were built from). */
  source: z.string().min(1),
  /** Output and error files (JSONL). */
  results: z.array(z.string().min(1)),
  /** The joined table to write: .csv, .tsv or .jsonl. */
  out: z.string().min(1),
  /** Source format; default from the extension. */
  format: z.enum(INPUT_FORMATS).optional(),
  /** Output format; default from the extension of `out`. */
  outFormat: z.enum(OUTPUT_FORMATS).optional(),
  ...CsvTableFields,
  ...JoinFields,
  /** "auto" (default) copies CSV rows as bytes when source and output are CSV alike; "rows" always goes
   *  through Row objects (joinResults -> csvSink/jsonlSink), which the byte engine must read back equal to. */
  engine: z.enum(['auto', 'rows']).default('auto'),
});
export type JoinTableOptions = z.input<typeof JoinTableOptions>;

export interface JoinTableResult extends JoinSummary {
  out: string;
  /** Which engine ran: "bytes" (CSV rows copied as bytes) or "rows". */
  engine: 'bytes' | 'rows';
  /** The result lines that could not be used (`problems` counts them), the first ones in full. */
  problemDetails: ResultProblems;
}

/**
 * Joins result files (downloaded by hand, or by a run) back onto the source table and writes the
 * joined table: every source row once, in source order, with DESIGN section 6's result columns. The
 * function behind `batchpipe join`; the same stages compose by hand with `pipeline()`
 * (resultSource -> joinResults -> csvSink).
 */
export async function joinTable(options: JoinTableOptions): Promise<JoinTableResult> {
  const opts = parseOptions(JoinTableOptions, options, 'joinTable');
  const format = inputFormat(opts.source, opts.format);
  const outFormat = opts.outFormat ?? outputFormat(opts.out);
  const csvOptions = tableCsvOptions(opts, format);
  const sourceDelimiter = csvOptions.delimiter ?? (opts.source.toLowerCase().endsWith('.tsv') ? '\t' : ',');
  const outDelimiter = outFormat === 'tsv' ? '\t' : ',';
  const structured = {
    labels: opts.labels,
    schema: opts.schema,
    badLines: opts.badLines,
    onProblem: opts.onProblem,
  };
  const bytes =
    opts.engine === 'auto' &&
    format !== 'jsonl' &&
    outFormat !== 'jsonl' &&
    sourceDelimiter === outDelimiter &&
    opts.quote === '"';

  if (bytes) {
    const parser = new ResultParser(structured);
    const cells: CellSpec = {
      fields: parser.structured?.fields ?? [],
      include: opts.include,
      payload: payloadColumn(opts.endpoint),
    };
    const encoding: CellEncoding = { kind: 'csv', delimiter: sourceDelimiter };
    const join = new HashJoin({
      parser,
      layout: new CellLayout(cells),
      encoding,
      partitions: opts.partitions,
      tempDir: opts.tempDir,
      rejections: opts.rejections,
      reask: opts.reask,
    });
    const problems: ResultProblems = { count: 0, first: [] };
    // Threads cannot take a zod schema or call back: those runs parse results on this thread.
    const threads = !isZodSchema(opts.schema) && opts.onProblem === undefined;
    const loadResults = async (keyPass: () => Promise<void>): Promise<void> => {
      const schema = opts.schema as Record<string, unknown> | undefined;
      const options = {
        cells,
        encoding,
        labels: opts.labels,
        schema,
        badLines: opts.badLines,
        problems,
        meanwhile: keyPass,
      };
      if (threads && (await scatterResults(join, opts.results, options))) return;
      const results = resultSource(opts.results, structured);
      for await (const batch of readBatches<unknown>(results)) {
        for (const record of batch) {
          const waiting = join.add(record);
          if (waiting) await waiting;
        }
      }
      Object.assign(problems, results.problems);
      await keyPass();
    };
    try {
      const summary = await joinCsvBytes({
        file: opts.source,
        csv: parseOptions(CsvSourceOptions, csvOptions, 'csvSource'),
        idColumn: opts.idColumn,
        join,
        fieldPrefix: opts.fieldPrefix,
        out: opts.out,
        loadResults,
      });
      return {
        ...summary,
        problems: problems.count,
        out: opts.out,
        engine: 'bytes',
        problemDetails: problems,
      };
    } finally {
      await join.close();
    }
  }

  const results = resultSource(opts.results, structured);
  const joinOptions = {
    idColumn: opts.idColumn,
    rejections: opts.rejections,
    labels: opts.labels,
    schema: opts.schema,
    fieldPrefix: opts.fieldPrefix,
    include: opts.include,
    endpoint: opts.endpoint,
    reask: opts.reask,
    tempDir: opts.tempDir,
    partitions: opts.partitions,
  };
  const join =
    format === 'jsonl'
      ? joinResults({
          source: () => jsonlSource(opts.source, { badRows: opts.badRows, maxRowSize: opts.maxRowSize }),
          ...joinOptions,
        })
      : joinCsvFile(
          { file: opts.source, options: parseOptions(CsvSourceOptions, csvOptions, 'csvSource') },
          joinOptions,
        );
  const sink = outFormat === 'jsonl' ? jsonlSink(opts.out) : csvSink(opts.out, { delimiter: outDelimiter });
  await pipeline(results, join, sink);
  const summary = join.summary!;
  return {
    ...summary,
    problems: results.problems.count,
    out: opts.out,
    engine: 'rows',
    problemDetails: results.problems,
  };
}

function outputFormat(path: string): (typeof OUTPUT_FORMATS)[number] {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.tsv')) return 'tsv';
  if (lower.endsWith('.csv')) return 'csv';
  throw new BatchpipeError(
    'BP_USAGE',
    `cannot tell the format of ${path} from its extension; name it .csv, .tsv or .jsonl`,
  );
}
