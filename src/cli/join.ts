import { Command, Option } from 'commander';
import { EXTRA_COLUMNS, type ExtraColumn } from '../core/results/result-cells.js';
import { RESULT_STATUSES } from '../core/results/result-status.js';
import type { Slice } from '../core/rows/row-slice.js';
import type { TableFormat } from '../core/tables/table-format.js';
import { BatchpipeError } from '../errors.js';
import { ENDPOINTS, type Endpoint } from '../providers/profile.js';
import { checkAnswered } from './exit.js';
import { count, info, type Output, plural, printJson } from './output.js';
import { list, slice } from './parse-values.js';
import { addSourceOptions, structuredOption } from './request-options.js';
import { addTableOutputOptions, type TableOutputFlags } from './table-output-options.js';

/** Said once when no row hashes came with the results (bare result files). */
export const UNCHECKED_NOTE =
  'note: rows were not checked against the requests their results answer (no row-hashes.tsv: results given as files rather than a prepared or run directory, or requests made by a mapper), so a row edited since shows its old answer as ok';

/** Unusable result lines printed before pointing at the count. */
const SHOWN_PROBLEMS = 10;

interface JoinFlags extends TableOutputFlags {
  source: string;
  allowEmpty?: boolean;
  results: string[];
  errors?: string[];
  rejections?: string[];
  requests?: string[];
  out: string;
  idColumn?: string;
  endpoint?: Endpoint;
  labels?: string[];
  schema?: Record<string, unknown>;
  fieldPrefix: string;
  include?: string[];
  reask?: string;
  format?: TableFormat;
  delimiter?: string;
  quote?: string;
  header?: boolean;
  columns?: string[];
  encoding?: string;
  relaxColumnCount?: boolean;
  badRows?: 'reject' | 'fail';
  allowStale?: boolean;
  slice?: Slice;
  json?: boolean;
  quiet?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function joinCommand(): Command {
  const command = new Command('join')
    .description(
      'put results back beside their source rows: every row once, in source order, with status, answer and error columns',
    )
    .requiredOption(
      '--source <table>',
      'the table the requests were built from (.csv, .tsv, .jsonl, .parquet, .arrow, .arrows)',
    )
    .requiredOption(
      '--results <path>',
      'an output or error file (JSONL), or a directory of them (a prepared or run directory); repeatable',
      collect,
    )
    .option('--errors <file>', 'an error file, beside --results; repeatable', collect)
    .option(
      '--rejections <file>',
      "prepare's rejections.jsonl (found in --results directories without this); repeatable",
      collect,
    )
    .option(
      '--id-column <name>',
      'column whose value was the custom_id, as given to prepare (default: row-<n>)',
    )
    .requiredOption(
      '--out <table>',
      'the joined table to write (.csv, .tsv, .jsonl, .parquet, .arrow, .arrows)',
    )
    .addOption(
      new Option(
        '--endpoint <path>',
        "endpoint of the requests; /v1/embeddings names the answer column embedding (default: from a prepared or run directory's shards.json or manifest, else chat)",
      ).choices(ENDPOINTS),
    )
    .addOption(structuredOption('labels'))
    .addOption(structuredOption('schema'))
    .option('--field-prefix <prefix>', 'prefix of the parsed-field columns of --labels/--schema', '')
    .option('--include <columns>', `more result columns, comma-separated: ${EXTRA_COLUMNS.join(', ')}`, list)
    .option('--reask <file>', 'write a request re-asking each invalid_output row to this file')
    .option(
      '--requests <path>',
      'request files or a prepared directory, for --reask (found in --results directories without this); repeatable',
      collect,
    );
  addSourceOptions(command);
  addTableOutputOptions(command);
  command
    .option(
      '--allow-stale',
      'exit 0 even when rows changed after their requests were made (status stale; checked when --results names a prepared or run directory)',
    )
    .option('--allow-empty', 'exit 0 even when no row got an answer (the table is written either way)')
    .option(
      '--slice <i/n>',
      'write only the rows of slice i of n (as prepared or run with --slice); without it, every row of --source',
      slice,
    )
    .option('--json', 'print the summary as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
Result columns: status (${RESULT_STATUSES.join(', ')}),
content (or the parsed fields of --labels/--schema; embedding for /v1/embeddings), error_code, error_message,
prompt_tokens, completion_tokens; a name the source already has gets the prefix result_.
Rows are checked against the requests their results answer when --results names a prepared or run
directory (its row-hashes.tsv): a row changed since comes out stale, and the command exits 1 after
writing the table unless --allow-stale.

Run directories of slices (run or prepare --slice i/n) are assembled into one table in source order:
each row once, rows of slices not given (not run yet) as missing, said in a note.

Examples:
  batchpipe join --source reviews.csv --id-column id --results downloads/ \\
      --labels positive,negative,neutral --out labeled.csv
  batchpipe join --source reviews.csv --id-column id --results runs/part-0 --results runs/part-1 \\
      --results runs/part-2 --results runs/part-3 --out labeled.csv`,
    )
    .action(async (flags: JoinFlags) => {
      const { joinTable, staleRows } = await import('../jobs/join-table.js');
      const { findResultFiles } = await import('../jobs/result-files.js');
      const { sliceCoverage, sliceList } = await import('../jobs/slice-coverage.js');
      const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
      const found = await findResultFiles([...flags.results, ...(flags.errors ?? [])]);
      const rejections = flags.rejections ?? found.rejections;
      const requests = flags.requests
        ? (await findResultFiles(flags.requests, 'requests')).requests
        : found.requests;
      if (flags.reask && requests.length === 0) {
        throw new BatchpipeError(
          'BP_USAGE',
          '--reask needs the request files: give a prepared directory in --results, or --requests',
        );
      }
      // Checked before the join: slices of two different splits are a mistake, not data.
      const coverage = flags.slice ? undefined : sliceCoverage(found.slices);
      if (found.results.length === 0)
        info(out, 'warning: no output or error files found: every row will be missing or rejected');
      const result = await joinTable({
        source: flags.source,
        results: found.results,
        out: flags.out,
        outFormat: flags.outFormat,
        compression: flags.compression,
        rowGroupSize: flags.rowGroupSize,
        format: flags.format,
        delimiter: flags.delimiter,
        quote: flags.quote,
        header: flags.header,
        columns: flags.columns,
        encoding: flags.encoding,
        relaxColumnCount: flags.relaxColumnCount,
        badRows: flags.badRows,
        idColumn: flags.idColumn,
        endpoint: flags.endpoint ?? found.endpoint,
        rejections,
        labels: flags.labels,
        schema: flags.schema,
        fieldPrefix: flags.fieldPrefix,
        include: flags.include as ExtraColumn[] | undefined,
        reask: flags.reask ? { requests, out: flags.reask } : undefined,
        rowHashes: found.rowHashes,
        slice: flags.slice,
        slices: coverage && { count: coverage.count, given: coverage.given },
        // The summary is printed first; stale rows end the command below.
        allowStale: true,
      });
      const { problemDetails, ...summary } = result;
      const stale = summary.statuses.stale > 0 && flags.allowStale !== true;
      // After the output, JSON or text: the table is written, the exit code says what went wrong.
      const settle = () => {
        if (stale) throw staleRows(summary, flags.out);
        checkAnswered(summary.statuses, summary.rows, flags.allowEmpty);
      };
      if (out.json) {
        printJson({
          ...summary,
          problemLines: problemDetails.first.map((p) => p.message),
          ...(coverage && {
            slices: {
              count: coverage.count,
              given: coverage.given,
              absent: coverage.absent,
              unfinished: coverage.unfinished.map((u) => u.dir),
            },
          }),
        });
        settle();
        return;
      }
      const counts = RESULT_STATUSES.filter((s) => summary.statuses[s] > 0)
        .map((s) => `${count(summary.statuses[s])} ${s}`)
        .join(', ');
      info(out, `joined ${plural(summary.rows, 'row')} -> ${flags.out}: ${counts || 'nothing'}`);
      info(
        out,
        `  from ${plural(found.results.length, 'result file')} (${plural(summary.results, 'result')}), ${plural(rejections.length, 'rejections file')}`,
      );
      if (problemDetails.count > 0) {
        info(out, `${plural(problemDetails.count, 'result line')} could not be used:`);
        for (const problem of problemDetails.first.slice(0, SHOWN_PROBLEMS))
          info(out, `  ${problem.code} ${problem.message}`);
        if (problemDetails.count > SHOWN_PROBLEMS)
          info(out, `  ... and ${count(problemDetails.count - SHOWN_PROBLEMS)} more`);
      }
      if (summary.duplicates > 0)
        info(
          out,
          `  ${plural(summary.duplicates, 'extra result')} for custom_ids already answered: the best status was kept`,
        );
      if (summary.orphans > 0) {
        const hint = flags.idColumn ? '' : ' (were the requests built with --id-column?)';
        info(
          out,
          `warning: results for ${plural(summary.orphans, 'custom_id')} matched no source row${hint}`,
        );
      }
      if (coverage) {
        const { count: n, given, absent, unfinished } = coverage;
        info(out, `  slices ${sliceList(given, n)} of ${n} given`);
        if (absent.length > 0)
          info(
            out,
            `note: ${plural(absent.length, 'slice')} of ${n} not among --results (not run yet, or not given): ${sliceList(absent, n)}; their rows come out missing (${count(summary.statuses.missing)} missing in all)`,
          );
        for (const u of unfinished)
          info(
            out,
            `note: slice ${u.slice.index}/${u.slice.count} (${u.dir}) has not finished: rows it has no result for yet come out missing; resume it, then join again`,
          );
      }
      if (flags.reask) info(out, `wrote ${plural(summary.reasked, 're-ask request')} -> ${flags.reask}`);
      if (!summary.checked && found.results.length > 0) info(out, UNCHECKED_NOTE);
      settle();
    });
  return command;
}
