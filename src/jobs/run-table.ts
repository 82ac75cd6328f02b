import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHED_FILE, REUSED_REQUESTS_FILE } from '../cache/request-reuse.js';
import { CACHE_DIR_NAME } from '../cache/result-cache.js';
import { type Settled, settleReuse } from '../cache/settle-reuse.js';
import type { ParquetCompression } from '../core/parquet/parquet-writer.js';
import type { ExtraColumn } from '../core/results/result-cells.js';
import type { TableFormat } from '../core/tables/table-format.js';
import { checkCost } from '../cost/cost-guard.js';
import type { Estimate } from '../cost/estimate.js';
import type { PriceTable } from '../cost/prices.js';
import { downloadedOutputs, usageOfFiles } from '../cost/usage.js';
import { BatchpipeError } from '../errors.js';
import { makeParentDir } from '../internal/durable-write.js';
import { split } from '../internal/split.js';
import type { Connection } from '../providers/connection.js';
import type { BatchRun, RunCounts, RunState } from '../run/batch-run.js';
import { exists, hasManifest, RESULTS_FILE, RUNS_DIR, stagingDir } from '../run/run-dir.js';
import { writeResults } from '../run/run-results.js';
import { REJECTIONS_FILE, ROW_HASHES_FILE } from '../run/sharder.js';
import { createOrResumeRun, openRun, RunFields, type RunOptions } from '../run/start-run.js';
import { SyncRun } from '../run/sync/sync-run.js';
import {
  checkMaxCost,
  countingThreads,
  estimatePrepared,
  type RunUsage,
  runUsage,
} from './estimate-table.js';
import {
  checkOutput,
  type JoinTableOptions,
  type JoinTableResult,
  joinTable,
  staleRows,
} from './join-table.js';
import { nothingToSubmit, type PrepareOptions, type PrepareResult, prepare } from './prepare.js';
import { jobProfile, TableFields } from './settings.js';
import { stageRequestFile } from './stage-request-file.js';
import { TEST_SAMPLE_DEFAULT, type TestModelReport, testModelRun } from './test-model.js';

/** Rounds of re-asking `maxReasks` may ask for. */
const MAX_REASK_ROUNDS = 5;

export interface RunTableOptions
  extends Omit<PrepareOptions, 'outDir' | 'provider'>,
    Omit<RunOptions, 'runsDir'> {
  /**
   * `batch` (default): through the provider's Batch API. `sync`: each request is a call of its own to
   * the synchronous endpoint (Batch Chat, or any OpenAI-compatible chat or embeddings server), paced,
   * retried and journalled (docs/sync.md). A provider with no Batch API (dashscope-batch-chat) is sync.
   */
  mode?: 'batch' | 'sync';
  /** Sync mode: seconds a call may wait (Batch Chat: 60-3,600, default 3,600; else default 600). */
  callTimeout?: number;
  /** Sync mode: most calls in flight (Batch Chat default 10,000; else 1,000). */
  maxInFlight?: number;
  /** Sync mode: most calls started per second (Batch Chat default 1,000; else none: 429s pace it). */
  maxPerSecond?: number;
  /** The joined table to write (.csv, .tsv, .jsonl, .parquet, .arrow, .feather, .ipc or .arrows). */
  out: string;
  /** Its format; default from the extension of `out`. */
  outFormat?: TableFormat;
  /** Parquet output: compression (default snappy) and rows per row group (default 122,880). */
  compression?: ParquetCompression;
  rowGroupSize?: number;
  runsDir?: string;
  /** Prepare and check everything, submit nothing. */
  dryRun?: boolean;
  /**
   * The provider's free format check instead of the run: the first `testSample` prepared requests,
   * rewritten to its test model (`batch-test-model` on `/v1/chat/ds-test`), submitted at no inference
   * cost; the result is `testModel` (batch status, request counts, each failure joined to its row). No
   * table is written. It checks the requests' format, not the model's answers.
   */
  testModel?: boolean;
  /** Requests a test-model run sends: 1 to 200 (100 per test batch, 2 test batches at once). Default 100. */
  testSample?: number;
  /**
   * Rows of the input that changed while the run was out (after their requests were made) come out
   * `stale`; the table is written, then BP_RESULT_STALE thrown unless this is true. Default false.
   */
  allowStale?: boolean;
  /**
   * With `labels` or `schema`: rounds of re-asking the rows whose answer failed validation, each round a
   * batch of its own (the original conversation, the invalid answer, and what was wrong with it). 0-5,
   * default 0.
   */
  maxReasks?: number;
  /** More result columns in the table (as `joinTable`'s `include`): `model` shows which model answered, `cached` which answers came from the result cache. */
  include?: ExtraColumn[];
  /**
   * The result cache (docs/cache.md): rows whose request has an answer there are not sent, and the
   * run's answers are stored there. Applies where deduplication would (see `dedup`). Default true.
   */
  cache?: boolean;
  /** The cache's directory. Default `<runsDir>/.cache`, shared by the runs there. */
  cacheDir?: string;
  /** The cache's size bound in bytes: past it, the oldest answers go. Default 1 GiB. */
  cacheMaxBytes?: number;
  /**
   * Estimate tokens (and cost, with `prices`) of the prepared requests before anything is submitted
   * (`estimateTable`'s figures). Default false; on whenever `maxCost` or `onEstimate` is given.
   */
  estimate?: boolean;
  /** Prices per provider, region and model, in one currency: the estimate's and the usage's cost. */
  prices?: PriceTable;
  /** Result files whose answer lengths stand in for the estimate's output range. */
  outputSample?: string | string[];
  /**
   * Refuse to submit (BP_COST_LIMIT, nothing submitted) when the estimate's upper bound exceeds this
   * amount in the prices' currency, or cannot be bounded (no price, no output bound).
   */
  maxCost?: number;
  /** Called with the estimate before anything is submitted (and before the cost guard decides). */
  onEstimate?: (estimate: Estimate) => void;
}

/** One round of re-asking invalid answers. */
export interface ReaskRound {
  round: number;
  /** Requests re-asked in this round. */
  requests: number;
  /** The round's own run directory (inside the main run's). */
  dir: string;
  state: RunState;
}

export interface RunTableResult {
  prepared: PrepareResult;
  /** The batch run; absent on a dry run, in sync mode, and when nothing was sent (an empty slice, every answer cached). */
  run?: BatchRun;
  /** The run's directory (batch or sync); absent on a dry run and when nothing was sent. */
  runDir?: string;
  /** In sync mode: the sync run (its directory, record and counts). */
  sync?: SyncRun;
  state: RunState | 'dry-run' | 'test-model';
  counts?: RunCounts;
  joined?: JoinTableResult;
  /** Rounds of re-asking invalid answers (`maxReasks`), in order. */
  reasks?: ReaskRound[];
  /** After the run: answers stored in the cache, and results copied to duplicate rows. */
  settled?: Settled;
  /**
   * Requests sent more than once because deduplication did not apply to them (no `temperature: 0` or
   * `seed`, and `dedup` not true): what `dedup: true` would have saved.
   */
  repeats?: number;
  /** What a test-model run found (`testModel`). */
  testModel?: TestModelReport;
  /** The estimate made before submitting, when asked for. */
  estimate?: Estimate;
  /** Tokens the result lines reported, with their cost and the estimate's error (once the run is done). */
  usage?: RunUsage;
}

/**
 * The whole job: table -> request files -> batches -> results -> the table with result columns. The
 * run is durable: killed or detached, the same call on the same input resumes it, re-ask rounds
 * included. The function behind `batchpipe run`.
 */
export async function runTable(
  input: string,
  connection: Connection,
  options: RunTableOptions,
): Promise<RunTableResult> {
  const {
    out,
    outFormat,
    compression,
    rowGroupSize,
    runsDir = RUNS_DIR,
    dryRun,
    testModel,
    testSample = TEST_SAMPLE_DEFAULT,
    maxReasks = 0,
    include,
    allowStale = false,
    cache = true,
    cacheDir,
    cacheMaxBytes,
    dedup = 'auto',
    mode: givenMode,
    callTimeout,
    maxInFlight,
    maxPerSecond,
    estimate: wantEstimate = false,
    prices,
    outputSample,
    maxCost,
    onEstimate,
    ...rest
  } = options;
  checkMaxCost(maxCost, 'runTable');
  const mode = givenMode ?? (connection.profile.syncOnly ? 'sync' : 'batch');
  if (mode !== 'batch' && mode !== 'sync')
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `runTable: option "mode": expected "batch" or "sync", got ${JSON.stringify(givenMode)}`,
      { option: 'mode' },
    );
  if (mode === 'batch' && connection.profile.syncOnly)
    throw new BatchpipeError(
      'BP_USAGE',
      `runTable: option "mode": provider ${connection.provider} has no Batch API (files and batches), only synchronous calls: give "sync", or leave the option out`,
      { option: 'mode' },
    );
  if (!Number.isInteger(maxReasks) || maxReasks < 0 || maxReasks > MAX_REASK_ROUNDS)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `runTable: option "maxReasks": expected a whole number from 0 to ${MAX_REASK_ROUNDS}, got ${JSON.stringify(maxReasks)}`,
    );
  const [runOptions, prepareOptions] = split(rest, Object.keys(RunFields) as Array<keyof typeof RunFields>);
  // Known before anything is read, sent or paid for: the output's format, and a path it can be written to.
  await checkOutput(out, outFormat);
  const staging = await stagingDir(runsDir);
  // A test-model sample checks the file's format: every sampled request is sent, none is answered from
  // the cache. A sync run keeps no request keys: identical requests and the cache are for batch runs.
  const reuseOff = testModel || mode === 'sync';
  const usedCache = cache && !reuseOff ? (cacheDir ?? join(runsDir, CACHE_DIR_NAME)) : undefined;
  let prepared: PrepareResult;
  try {
    prepared = await prepare(input, {
      ...prepareOptions,
      dedup: reuseOff ? false : dedup,
      ...(usedCache !== undefined && { cacheDir: usedCache }),
      onEvent: runOptions.onEvent,
      provider: connection.provider,
      outDir: staging,
    });
    const nothing = nothingToSubmit(prepared);
    if (nothing) throw nothing;
    if (prepared.rows === 0 && prepareOptions.slice && !dryRun) {
      // A slice no row of a small table hashes to: its part of the table is empty, and nothing is sent.
      await rm(staging, { recursive: true, force: true });
      const joined = await joinTable({
        source: input,
        results: [],
        ...joinedTable(options, prepareOptions),
      });
      return { prepared, state: 'done', joined };
    }
  } catch (error) {
    // Nothing was submitted from it (a bad row, a full disk): a staging directory left here would only pile up.
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  let estimate: Estimate | undefined;
  if (wantEstimate || maxCost !== undefined || onEstimate !== undefined) {
    try {
      const profile = jobProfile({ ...prepareOptions, provider: connection.provider });
      // The figure shown before a run is a sample's (a JS tokenizer counts ~4,000 requests a second: a
      // 1M-row table would wait minutes); the cost guard and a dry run count every request.
      const sampleRequests = maxCost === undefined && !dryRun ? RUN_ESTIMATE_SAMPLE : undefined;
      estimate = await estimatePrepared(staging, prepared, profile, prepareOptions, {
        prices,
        outputSample,
        sampleRequests,
        // On threads that end with the estimate: the run does not keep the tokenizers' memory (a
        // 100,000-row run peaked at 521 MB with Qwen's vocabulary kept, against 315 MB without it).
        threads:
          sampleRequests === undefined
            ? countingThreads(
                prepared.shards.reduce((n, s) => n + s.bytes, 0),
                1,
              )
            : 1,
      });
      onEstimate?.(estimate);
      // Before a run is created: a refused run leaves nothing behind and nothing at the provider.
      if (maxCost !== undefined) checkCost(estimate, maxCost);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }
  if (dryRun) {
    await rm(staging, { recursive: true, force: true });
    return { prepared, state: 'dry-run', ...(estimate && { estimate }) };
  }
  if (testModel) {
    try {
      const [tableOptions] = split(
        prepareOptions,
        Object.keys(TableFields) as Array<keyof typeof TableFields>,
      );
      const report = await testModelRun(
        input,
        { dir: staging, summary: prepared },
        connection,
        testSample,
        { ...runOptions, runsDir },
        { ...tableOptions, idColumn: prepareOptions.idColumn },
      );
      return { prepared, state: 'test-model', testModel: report };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
  if (prepared.requests === 0 && (prepared.reuse?.cached ?? 0) > 0)
    return await answeredFromCache(input, staging, prepared, options, prepareOptions);
  const syncOptions = {
    runsDir,
    runDir: runOptions.runDir,
    newRun: runOptions.newRun,
    maxAttempts: runOptions.maxAttempts,
    callTimeout,
    maxInFlight,
    maxPerSecond,
    onEvent: runOptions.onEvent,
    signal: runOptions.signal,
  };
  const started: TableRun =
    mode === 'sync'
      ? syncTableRun(await SyncRun.createOrResume(staging, prepared, connection, syncOptions, true))
      : batchTableRun(
          await createOrResumeRun(staging, prepared, connection, { ...runOptions, runsDir }, true),
        );
  const { batch: run, sync } = started;
  const ran = {
    prepared,
    runDir: started.dir,
    ...(run && { run }),
    ...(sync && { sync }),
    ...(estimate && { estimate }),
  };
  try {
    const state = await started.wait();
    const counts = started.counts();
    if (state !== 'done') return { ...ran, state, counts };
    const results = join(started.dir, RESULTS_FILE);
    await started.writeResults(results);
    await makeParentDir(out);
    const runDir = started.dir;
    const settled = await settleReuse(runDir, results, { cacheDir: usedCache, cacheMaxBytes });
    const resultFiles = [results, ...(await reusedResults(runDir, settled))];
    // The input is read again for the join: each row is checked against the request made from it.
    const rowHashes = join(runDir, ROW_HASHES_FILE);
    const checked = (await exists(rowHashes)) ? [rowHashes] : [];
    // Round 1 asks again from the original requests; a later round goes on from the conversation the
    // round before sent (its re-ask file), with the answer that round got (the latest in file order).
    // Rows not sent (duplicates, cached answers) are asked again from their own request lines.
    const reused = join(runDir, REUSED_REQUESTS_FILE);
    const firstRequests = [
      ...prepared.shards.map((s) => join(runDir, s.file)),
      ...((await exists(reused)) ? [reused] : []),
    ];
    const reaskFrom = (round: number) => (round === 1 ? firstRequests : [reaskFile(runDir, round - 1)]);
    const joinWith = (round: number | undefined) =>
      joinTable({
        source: input,
        results: resultFiles,
        rejections: [join(runDir, REJECTIONS_FILE)],
        rowHashes: checked,
        // Said once the rounds are done (below), not by the first join.
        allowStale: true,
        ...joinedTable(options, prepareOptions),
        onEvent: runOptions.onEvent,
        expectedRows: prepared.rows,
        ...(round !== undefined && { reask: { requests: reaskFrom(round), out: reaskFile(runDir, round) } }),
      } satisfies JoinTableOptions);
    // Only answers checked against labels or a schema can be invalid.
    const rounds = prepareOptions.labels || prepareOptions.schema ? maxReasks : 0;
    const reasks: ReaskRound[] = [];
    let joined = await joinWith(rounds > 0 ? 1 : undefined);
    for (let round = 1; round <= rounds && joined.reasked > 0; round++) {
      const done = await reaskRound(
        runDir,
        mode,
        round,
        joined.reasked,
        connection,
        runOptions,
        syncOptions,
        prepareOptions,
      );
      reasks.push(done.round);
      if (done.round.state !== 'done') return { ...ran, state: done.round.state, counts, joined, reasks };
      resultFiles.push(done.results);
      joined = await joinWith(round < rounds ? round + 1 : undefined);
    }
    if (joined.statuses.stale > 0 && !allowStale) throw staleRows(joined, out);
    const repeats = run
      ? (run.manifest.content_hashes ?? []).reduce((n, c) => n + (c.repeats ?? 0), 0)
      : undefined;
    // Billed answers: every attempt's output file of a batch run (a retried request was billed once
    // per answer it got), the journalled answers of a sync run; then the re-ask rounds'.
    const totals = await usageOfFiles([
      ...(run ? downloadedOutputs(run.dir, run.manifest) : [results]),
      ...reasks.map((r) => join(r.dir, RESULTS_FILE)),
    ]);
    const models = prepared.shards.map((s) => s.model);
    const usage = runUsage(totals, models, connection.provider, prices, estimate);
    return {
      ...ran,
      state,
      counts,
      joined,
      reasks,
      settled,
      ...(repeats !== undefined && { repeats }),
      usage,
    };
  } finally {
    await started.close();
  }
}

/** Requests of each file tokenized for the estimate a run shows before it submits (no cost guard). */
const RUN_ESTIMATE_SAMPLE = 500;

/** A batch run or a sync run, as the table job drives it. */
interface TableRun {
  dir: string;
  batch?: BatchRun;
  sync?: SyncRun;
  wait(): Promise<RunState>;
  counts(): RunCounts;
  writeResults(path: string): Promise<unknown>;
  close(): Promise<void>;
}

function batchTableRun(run: BatchRun): TableRun {
  return {
    dir: run.dir,
    batch: run,
    wait: () => run.wait(),
    counts: () => run.counts(),
    writeResults: (path) => writeResults(run, path),
    close: () => run.close(),
  };
}

function syncTableRun(run: SyncRun): TableRun {
  return {
    dir: run.dir,
    sync: run,
    wait: () => run.wait(),
    counts: () => run.counts(),
    writeResults: (path) => run.writeResults(path),
    close: () => run.close(),
  };
}

/** Where a round's re-ask requests are written, in the main run's directory. */
function reaskFile(runDir: string, round: number): string {
  return join(runDir, `reask-${round}.requests.jsonl`);
}

/**
 * Runs one round of re-asks as a run of its own in `<run dir>/reask-<round>`: a directory fixed by the
 * round, not by the content, so the same command finds it again after a crash or Ctrl-C (a round whose
 * manifest exists is resumed as it is, never submitted again).
 */
async function reaskRound(
  runDir: string,
  mode: 'batch' | 'sync',
  round: number,
  requests: number,
  connection: Connection,
  runOptions: Partial<RunOptions>,
  syncOptions: Parameters<typeof SyncRun.createOrResume>[3],
  prepareOptions: PrepareFields,
): Promise<{ round: ReaskRound; results: string }> {
  const dir = join(runDir, `reask-${round}`);
  const options = { ...runOptions, runDir: dir, runsDir: runDir };
  let roundRun: TableRun;
  // The same rules as the first round: a model allowed by option is allowed here too.
  const stage = async () => {
    const profile = jobProfile({ ...prepareOptions, provider: connection.provider });
    const staged = await stageRequestFile(reaskFile(runDir, round), runDir, connection, profile);
    // A slice's rounds carry its tag in their names too.
    const summary = { ...staged.summary, ...(prepareOptions.slice && { slice: prepareOptions.slice }) };
    return { dir: staged.dir, summary };
  };
  if (mode === 'sync') {
    // A sync round finds its run again by its record; the staged file is the same each time.
    const staged = await stage();
    roundRun = syncTableRun(
      await SyncRun.createOrResume(
        staged.dir,
        staged.summary,
        connection,
        { ...syncOptions, runDir: dir, runsDir: runDir },
        true,
      ),
    );
  } else if (await hasManifest(dir)) roundRun = batchTableRun(await openRun(dir, connection, options));
  else {
    const staged = await stage();
    roundRun = batchTableRun(await createOrResumeRun(staged.dir, staged.summary, connection, options, true));
  }
  try {
    const state = await roundRun.wait();
    const results = join(dir, RESULTS_FILE);
    if (state === 'done') await roundRun.writeResults(results);
    return { round: { round, requests, dir, state }, results };
  } finally {
    await roundRun.close();
  }
}

/** The cached answers and the duplicates' copies of a run, as result files. */
async function reusedResults(dir: string, settled: Settled): Promise<string[]> {
  const files: string[] = [];
  if (await exists(join(dir, CACHED_FILE))) files.push(join(dir, CACHED_FILE));
  if (settled.fanout) files.push(settled.fanout);
  return files;
}

/**
 * Every request had an answer in the cache: no run, the table is joined from the staged files (the
 * cached answers, the rejections, the row hashes), which then go.
 */
/**
 * What every join of a run shares: the table it writes, the requests' shape (id column, endpoint,
 * labels, schema), the slice, and how the source is read. One place, so no path forgets one (the
 * path for a run answered wholly from the cache once left out the slice).
 */
function joinedTable(options: RunTableOptions, prepareOptions: PrepareFields) {
  const [tableOptions] = split(prepareOptions, Object.keys(TableFields) as Array<keyof typeof TableFields>);
  return {
    out: options.out,
    outFormat: options.outFormat,
    compression: options.compression,
    rowGroupSize: options.rowGroupSize,
    idColumn: prepareOptions.idColumn,
    endpoint: prepareOptions.endpoint,
    labels: prepareOptions.labels,
    schema: prepareOptions.schema,
    include: options.include,
    slice: prepareOptions.slice,
    ...tableOptions,
  } satisfies Partial<JoinTableOptions>;
}

/** The options runTable hands on to prepare. */
type PrepareFields = Omit<RunTableOptions, 'out' | 'runsDir' | 'dryRun' | 'maxReasks' | 'include'>;

async function answeredFromCache(
  input: string,
  staging: string,
  prepared: PrepareResult,
  options: RunTableOptions,
  prepareOptions: PrepareFields,
): Promise<RunTableResult> {
  try {
    const rowHashes = join(staging, ROW_HASHES_FILE);
    const joined = await joinTable({
      source: input,
      results: [join(staging, CACHED_FILE)],
      rejections: [join(staging, REJECTIONS_FILE)],
      rowHashes: (await exists(rowHashes)) ? [rowHashes] : [],
      allowStale: true,
      ...joinedTable(options, prepareOptions),
    } satisfies JoinTableOptions);
    if (joined.statuses.stale > 0 && !options.allowStale) throw staleRows(joined, options.out);
    return {
      prepared,
      state: 'done',
      joined,
      settled: { stored: 0, fannedOut: 0, fanout: undefined },
      repeats: 0,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
