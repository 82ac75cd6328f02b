import { Command, Option } from 'commander';
import { loadMapper, mapperModuleUrl } from '../core/requests/mapper-module.js';
import { EXTRA_COLUMNS, type ExtraColumn } from '../core/results/result-cells.js';
import type { TestModelReport } from '../jobs/test-model.js';
import { TEST_ENGINE_NAME } from '../local/engine/test-engine.js';
import {
  addCacheOptions,
  CACHE_FLAGS,
  type CacheFlags,
  cacheOptionsFrom,
  reuseJson,
  reuseLines,
} from './cache-options.js';
import { cliWording, inCliWords } from './cli-wording.js';
import {
  addConnectionOptions,
  announceEngine,
  type ConnectionFlags,
  openConnection,
} from './connection-options.js';
import { addCostOptions, type CostFlags, pricesFrom, reportEstimate, reportUsage } from './cost-options.js';
import { CliExit, checkAnswered, detached } from './exit.js';
import { count, info, notice, type Output, plural, printJson, warningLine } from './output.js';
import { integer, list, number } from './parse-values.js';
import {
  addMaxRowSizeOption,
  addRequestOptions,
  addRuleOptions,
  addShardOptions,
  addSliceOption,
  addSourceOptions,
} from './request-options.js';
import {
  addNewRunOption,
  addRunOptions,
  addTaskOptions,
  detachOnInterrupt,
  progressOf,
  type RunFlags,
  runOptionsFrom,
} from './run-options.js';
import { reportRun, reportSync } from './run-report.js';
import { addTableOutputOptions, type TableOutputFlags } from './table-output-options.js';

interface RunCommandFlags
  extends RunFlags,
    ConnectionFlags,
    TableOutputFlags,
    CacheFlags,
    CostFlags,
    Record<string, unknown> {
  estimate?: boolean;
  out: string;
  mapper?: string;
  dryRun?: boolean;
  testModel?: boolean;
  testSample?: number;
  allowEmpty?: boolean;
  include?: string[];
  maxReasks?: number;
  allowStale?: boolean;
  json?: boolean;
  quiet?: boolean;
  mode?: 'batch' | 'sync';
  callTimeout?: number;
  maxInFlight?: number;
  maxQps?: number;
}

/** Flags that belong to the connection or the run, not to prepare. */
const NOT_PREPARE = new Set([
  'out',
  'outFormat',
  'compression',
  'rowGroupSize',
  'mapper',
  'dryRun',
  'testModel',
  'testSample',
  'allowEmpty',
  'include',
  'maxReasks',
  'allowStale',
  'json',
  'quiet',
  'progress',
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
  'keepFiles',
  'concurrency',
  'requestTimeout',
  'lookupDelay',
  'newRun',
  ...CACHE_FLAGS,
  'apiPath',
  'taskName',
  'taskDescription',
  'metadata',
  'mode',
  'callTimeout',
  'maxInFlight',
  'maxQps',
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
    .addOption(
      new Option(
        '--mode <mode>',
        'batch: through the Batch API; sync: each request a call of its own to the chat or embeddings endpoint, paced and journalled (default: batch; sync for --provider dashscope-batch-chat)',
      ).choices(['batch', 'sync']),
    )
    .option(
      '--call-timeout <seconds>',
      'sync mode: seconds a call may wait for its answer (Batch Chat: 60-3600, default 3600; else default 600)',
      number,
    )
    .option(
      '--max-in-flight <n>',
      'sync mode: most calls at once (default: Batch Chat 10000, its pending cap per model; else 1000)',
      integer,
    )
    .option(
      '--max-qps <n>',
      'sync mode: most calls started per second (default: Batch Chat 1000; else none, 429s slow it down)',
      number,
    )
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
  addSliceOption(command);
  addRunOptions(command);
  addNewRunOption(command);
  addCacheOptions(command);
  addTaskOptions(command);
  addTableOutputOptions(command);
  addCostOptions(command);
  return command
    .option(
      '--test-model',
      "the provider's free format check instead of the run: the first --test-sample requests rewritten to batch-test-model on /v1/chat/ds-test (DashScope), submitted at no inference cost; reports each batch's status, request counts and every failure joined to its row, and writes no table. It checks the requests' format, not the model's answers",
    )
    .option(
      '--test-sample <n>',
      'requests a --test-model run sends: 1 to 200 (100 per test batch, 2 test batches at once) (default: 100)',
      integer,
    )
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
  const progress = progressOf(flags, out);
  const { connection, close } = await openConnection(flags);
  const sync = flags.mode === 'sync' || (flags.mode === undefined && connection.profile.syncOnly === true);
  const interrupt = sync
    ? detachOnInterrupt(
        out,
        'detaching: calls in flight are dropped (not answered, not billed); answered rows are kept; the same command goes on (Ctrl-C again to quit now)',
      )
    : detachOnInterrupt(out);
  const engine = await announceEngine(out.quiet, connection, notice(out));
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
      ...cacheOptionsFrom(flags),
      mapper,
      out: flags.out,
      outFormat: flags.outFormat,
      compression: flags.compression,
      rowGroupSize: flags.rowGroupSize,
      dryRun: flags.dryRun,
      testModel: flags.testModel,
      testSample: flags.testSample,
      maxReasks: flags.maxReasks,
      mode: flags.mode,
      callTimeout: flags.callTimeout,
      maxInFlight: flags.maxInFlight,
      maxPerSecond: flags.maxQps,
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
    // Bars end before the summary, which is plain lines below them.
    progress.stop();
    const { prepared } = result;
    if (result.state === 'dry-run') {
      if (out.json) return printJson({ state: 'dry-run', prepared, estimate: result.estimate });
      info(
        out,
        `dry run: ${plural(prepared.rows, 'row')}: ${count(prepared.requests)} requests in ${plural(prepared.shards.length, 'file')}, ${count(prepared.rejected)} rejected; nothing submitted`,
      );
      for (const line of reuseLines(result)) info(out, line);
      return;
    }
    if (result.state === 'test-model') return reportTestModel(out, result.testModel!);
    if (!result.joined) {
      if (result.run) reportRun(out, result.run, result.state);
      else if (result.sync) reportSync(out, result.sync, result.state);
      if (result.state === 'stuck') throw new CliExit(1);
      if (result.state === 'detached') throw detached(result.runDir!);
      return;
    }
    const joined = result.joined;
    const reasks = result.reasks ?? [];
    if (out.json)
      printJson({
        state: result.state,
        run_dir: result.runDir ?? null,
        counts: result.counts,
        out: joined.out,
        statuses: joined.statuses,
        reasks,
        ...reuseJson(result),
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
      for (const line of reuseLines(result)) info(out, line);
      info(
        out,
        `wrote ${plural(joined.rows, 'row')} to ${joined.out}: ${statuses.join(', ') || 'nothing'} (${result.runDir ? `run ${result.runDir}` : joined.rows === 0 ? 'no row of the table is in this slice: nothing was sent' : 'every answer from the cache, nothing sent'})${engine === TEST_ENGINE_NAME ? ' [test engine: no inference]' : ''}`,
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
    if (result.state === 'detached') throw detached(result.runDir!);
    if (joined.statuses.stale > 0 && flags.allowStale !== true) throw staleRows(joined, joined.out);
    checkAnswered(joined.statuses, joined.rows, flags.allowEmpty);
  } finally {
    progress.stop();
    interrupt.dispose();
    await close();
  }
}

/** Failures a test-model report prints one by one (all are in --json). */
const SHOWN_FAILURES = 20;

/** A test-model run's findings; exit 1 when a batch or a request did not pass, 3 when detached. */
function reportTestModel(out: Output, report: TestModelReport): void {
  const passed =
    report.state === 'done' &&
    report.failures.length === 0 &&
    report.batches.every((b) => b.status === 'completed' && b.errors.length === 0);
  if (out.json) printJson({ ...report, state: 'test-model', run_state: report.state, passed });
  else {
    info(
      out,
      `test model: ${plural(report.requests, 'request')} rewritten to ${report.model} on ${report.endpoint} (run ${report.runDir})`,
    );
    for (const batch of report.batches) {
      const counts = batch.request_counts;
      info(
        out,
        `${batch.id ?? '(not created)'}: ${batch.status ?? 'unsent'}${counts ? `, ${counts.completed} completed, ${counts.failed} failed of ${counts.total}` : ''}`,
      );
      for (const e of batch.errors)
        info(
          out,
          `  ${e.line !== null ? `line ${e.line}: ` : ''}${e.code ?? ''} ${e.message ?? ''}`.trimEnd(),
        );
    }
    for (const f of report.failures.slice(0, SHOWN_FAILURES))
      info(
        out,
        `row ${f.row} (custom_id ${f.custom_id}): ${f.code ?? 'failed'}: ${f.message ?? ''}`.trimEnd(),
      );
    if (report.failures.length > SHOWN_FAILURES)
      info(out, `... and ${count(report.failures.length - SHOWN_FAILURES)} more (--json lists every one)`);
    info(out, `${passed ? 'passed' : 'did not pass'}: ${report.note}`);
  }
  if (report.state === 'detached') throw detached(report.runDir);
  if (!passed) throw new CliExit(1);
}
