import { Command } from 'commander';
import { loadMapper, mapperModuleUrl } from '../core/requests/mapper-module.js';
import { EXTRA_COLUMNS, type ExtraColumn } from '../core/results/result-cells.js';
import { TEST_ENGINE_NAME } from '../local/engine/test-engine.js';
import { cliWording, inCliWords } from './cli-wording.js';
import {
  addConnectionOptions,
  announceEngine,
  type ConnectionFlags,
  openConnection,
} from './connection-options.js';
import { addCostOptions, type CostFlags, pricesFrom, reportEstimate, reportUsage } from './cost-options.js';
import { CliExit, checkAnswered, detached } from './exit.js';
import { count, info, type Output, plural, printJson, warningLine } from './output.js';
import { integer, list } from './parse-values.js';
import {
  addMaxRowSizeOption,
  addRequestOptions,
  addRuleOptions,
  addShardOptions,
  addSourceOptions,
} from './request-options.js';
import {
  addNewRunOption,
  addRunOptions,
  detachOnInterrupt,
  type RunFlags,
  runOptionsFrom,
} from './run-options.js';
import { reportRun } from './run-report.js';
import { addTableOutputOptions, type TableOutputFlags } from './table-output-options.js';

interface RunCommandFlags
  extends RunFlags,
    ConnectionFlags,
    TableOutputFlags,
    CostFlags,
    Record<string, unknown> {
  estimate?: boolean;
  out: string;
  mapper?: string;
  dryRun?: boolean;
  allowEmpty?: boolean;
  include?: string[];
  maxReasks?: number;
  allowStale?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** Flags that belong to the connection or the run, not to prepare. */
const NOT_PREPARE = new Set([
  'out',
  'outFormat',
  'compression',
  'rowGroupSize',
  'mapper',
  'dryRun',
  'allowEmpty',
  'include',
  'maxReasks',
  'allowStale',
  'json',
  'quiet',
  'provider',
  'baseUrl',
  'apiKey',
  'runDir',
  'runsDir',
  'completionWindow',
  'pollInterval',
  'maxAttempts',
  'resubmitExpired',
  'deleteInputFiles',
  'deleteOutputFiles',
  'concurrency',
  'requestTimeout',
  'lookupDelay',
  'newRun',
  'prices',
  'maxCost',
  'outputSample',
  'estimate',
]);

export function runCommand(): Command {
  const command = new Command('run')
    .description('the whole job: a table in, batches at the provider, the table out with result columns')
    .argument('<input>', 'the table to read (.csv, .tsv, .jsonl, .parquet, .arrow, .feather, .ipc, .arrows)')
    .requiredOption(
      '--out <table>',
      'the joined table to write (.csv, .tsv, .jsonl, .parquet, .arrow, .arrows)',
    )
    .option('--dry-run', 'prepare and check everything, submit nothing')
    .option('--include <columns>', `more result columns, comma-separated: ${EXTRA_COLUMNS.join(', ')}`, list)
    .option('--allow-empty', 'exit 0 even when no row got an answer (the table is written either way)')
    .option(
      '--allow-stale',
      'exit 0 even when input rows changed while the run was out (their status is stale: the answers are to the old text)',
    )
    .option(
      '--max-reasks <rounds>',
      'with --labels or --schema: rounds of re-asking rows whose answer failed validation, each a batch of its own (0-5, default 0)',
      integer,
    );
  addRequestOptions(command);
  addSourceOptions(command);
  addMaxRowSizeOption(command);
  addConnectionOptions(command);
  addRuleOptions(command);
  addShardOptions(command);
  addRunOptions(command);
  addNewRunOption(command);
  addTableOutputOptions(command);
  addCostOptions(command);
  return command
    .option('--no-estimate', 'submit without counting tokens first (not with --max-cost)')
    .option('--json', 'print the outcome as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .addHelpText(
      'after',
      `
Every input row comes out once in --out: with its answer (status ok or truncated), its failure
(failed, expired, cancelled, invalid_output) or its rejection before upload (rejected), with
error_code and error_message. With no provider key set, the embedded local service answers (its test
engine does no inference). The run is durable: Ctrl-C detaches, and the same command resumes it.

Example:
  batchpipe run reviews.csv --template 'Classify the sentiment: {{review}}' --labels positive,negative,neutral \\
      --model qwen-plus --id-column id --out labeled.csv`,
    )
    .action((input: string, flags: RunCommandFlags) =>
      inCliWords(command, () => action(command, input, flags)),
    );
}

async function action(command: Command, input: string, flags: RunCommandFlags): Promise<void> {
  const { runTable } = await import('../jobs/run-table.js');
  const { staleRows } = await import('../jobs/join-table.js');
  const out: Output = { json: flags.json === true, quiet: flags.quiet === true };
  const interrupt = detachOnInterrupt(out);
  const { connection, close } = await openConnection(flags);
  const engine = await announceEngine(out.quiet, connection);
  try {
    // Loaded here first, so a mistake in it is found before any input is read; the stages load it again
    // (from the module cache) and, for a large table, on worker threads.
    const mapper = flags.mapper ? mapperModuleUrl(flags.mapper) : undefined;
    if (flags.mapper) await loadMapper(mapper!, flags.mapper);
    const prepareOptions = Object.fromEntries(Object.entries(flags).filter(([key]) => !NOT_PREPARE.has(key)));
    const prices = await pricesFrom(flags);
    const result = await runTable(input, connection, {
      ...prepareOptions,
      ...runOptionsFrom(flags, out, interrupt.signal),
      mapper,
      out: flags.out,
      outFormat: flags.outFormat,
      compression: flags.compression,
      rowGroupSize: flags.rowGroupSize,
      dryRun: flags.dryRun,
      maxReasks: flags.maxReasks,
      // The table and its summary first; stale rows end the command below.
      allowStale: true,
      include: flags.include as ExtraColumn[] | undefined,
      // Counted and shown before anything is submitted; the guard refuses after showing it.
      estimate: flags.estimate !== false || flags.maxCost !== undefined,
      prices,
      outputSample: flags.outputSample,
      maxCost: flags.maxCost,
      onEstimate: (e) => reportEstimate(out, e, (t) => cliWording(command, t)),
      onWarning: (w) => info(out, cliWording(command, warningLine(w))),
    });
    const { prepared } = result;
    if (result.state === 'dry-run') {
      if (out.json) return printJson({ state: 'dry-run', prepared, estimate: result.estimate });
      info(
        out,
        `dry run: ${plural(prepared.rows, 'row')}: ${count(prepared.requests)} requests in ${plural(prepared.shards.length, 'file')}, ${count(prepared.rejected)} rejected; nothing submitted`,
      );
      return;
    }
    if (!result.joined) {
      reportRun(out, result.run!, result.state);
      if (result.state === 'stuck') throw new CliExit(1);
      if (result.state === 'detached') throw detached(result.run!.dir);
      return;
    }
    const joined = result.joined;
    const reasks = result.reasks ?? [];
    if (out.json)
      printJson({
        state: result.state,
        run_dir: result.run!.dir,
        counts: result.counts,
        out: joined.out,
        statuses: joined.statuses,
        reasks,
        estimate: result.estimate,
        usage: result.usage,
        ...(engine !== undefined && { engine }),
      });
    else {
      for (const round of reasks)
        info(
          out,
          `re-ask round ${round.round}: ${plural(round.requests, 'invalid answer')} asked again: ${round.state} (run ${round.dir})`,
        );
      const statuses = Object.entries(joined.statuses)
        .filter(([, n]) => n > 0)
        .map(([status, n]) => `${count(n)} ${status}`);
      info(
        out,
        `wrote ${plural(joined.rows, 'row')} to ${joined.out}: ${statuses.join(', ')} (run ${result.run!.dir})${engine === TEST_ENGINE_NAME ? ' [test engine: no inference]' : ''}`,
      );
      if (result.usage) reportUsage(out, result.usage, engine === TEST_ENGINE_NAME);
      if (!joined.checked)
        info(
          out,
          'note: rows were not checked against their requests (requests made by a mapper have no row hashes)',
        );
      if (result.state === 'detached')
        info(out, 'a re-ask round is still running: the same command resumes it and writes the table again');
    }
    if (result.state === 'stuck') throw new CliExit(1);
    if (result.state === 'detached') throw detached(result.run!.dir);
    if (joined.statuses.stale > 0 && flags.allowStale !== true) throw staleRows(joined, joined.out);
    checkAnswered(joined.statuses, joined.rows, flags.allowEmpty);
  } finally {
    interrupt.dispose();
    await close();
  }
}
