import { rm } from 'node:fs/promises';
import { join } from 'node:path';
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
import { checkMaxCost, estimatePrepared, type RunUsage, runUsage } from './estimate-table.js';
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

/** Rounds of re-asking `maxReasks` may ask for. */
const MAX_REASK_ROUNDS = 5;

export interface RunTableOptions
  extends Omit<PrepareOptions, 'outDir' | 'provider'>,
    Omit<RunOptions, 'runsDir'> {
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
  /** More result columns in the table (as `joinTable`'s `include`): `model` shows which model answered. */
  include?: ExtraColumn[];
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
  /** Absent on a dry run. */
  run?: BatchRun;
  state: RunState | 'dry-run';
  counts?: RunCounts;
  joined?: JoinTableResult;
  /** Rounds of re-asking invalid answers (`maxReasks`), in order. */
  reasks?: ReaskRound[];
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
    maxReasks = 0,
    include,
    allowStale = false,
    estimate: wantEstimate = false,
    prices,
    outputSample,
    maxCost,
    onEstimate,
    ...rest
  } = options;
  checkMaxCost(maxCost, 'runTable');
  if (!Number.isInteger(maxReasks) || maxReasks < 0 || maxReasks > MAX_REASK_ROUNDS)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `runTable: option "maxReasks": expected a whole number from 0 to ${MAX_REASK_ROUNDS}, got ${JSON.stringify(maxReasks)}`,
    );
  const [runOptions, prepareOptions] = split(rest, Object.keys(RunFields) as Array<keyof typeof RunFields>);
  // Known before anything is read, sent or paid for: the output's format, and a path it can be written to.
  await checkOutput(out, outFormat);
  const staging = await stagingDir(runsDir);
  let prepared: PrepareResult;
  try {
    prepared = await prepare(input, {
      ...prepareOptions,
      provider: connection.provider,
      outDir: staging,
    });
    const nothing = nothingToSubmit(prepared);
    if (nothing) throw nothing;
  } catch (error) {
    // Nothing was submitted from it (a bad row, a full disk): a staging directory left here would only pile up.
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  let estimate: Estimate | undefined;
  if (wantEstimate || maxCost !== undefined || onEstimate !== undefined) {
    try {
      const profile = jobProfile({ ...prepareOptions, provider: connection.provider });
      estimate = await estimatePrepared(staging, prepared, profile, prepareOptions, { prices, outputSample });
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
  const run = await createOrResumeRun(staging, prepared, connection, { ...runOptions, runsDir }, true);
  try {
    const state = await run.wait();
    const counts = run.counts();
    if (state !== 'done') return { prepared, run, state, counts, ...(estimate && { estimate }) };
    const results = join(run.dir, RESULTS_FILE);
    await writeResults(run, results);
    await makeParentDir(out);
    const [tableOptions] = split(prepareOptions, Object.keys(TableFields) as Array<keyof typeof TableFields>);
    const resultFiles = [results];
    // The input is read again for the join: each row is checked against the request made from it.
    const rowHashes = join(run.dir, ROW_HASHES_FILE);
    const checked = (await exists(rowHashes)) ? [rowHashes] : [];
    // Round 1 asks again from the original requests; a later round goes on from the conversation the
    // round before sent (its re-ask file), with the answer that round got (the latest in file order).
    const reaskFrom = (round: number) =>
      round === 1 ? prepared.shards.map((s) => join(run.dir, s.file)) : [reaskFile(run, round - 1)];
    const joinWith = (round: number | undefined) =>
      joinTable({
        source: input,
        results: resultFiles,
        rejections: [join(run.dir, REJECTIONS_FILE)],
        rowHashes: checked,
        // Said once the rounds are done (below), not by the first join.
        allowStale: true,
        out,
        outFormat,
        compression,
        rowGroupSize,
        idColumn: prepareOptions.idColumn,
        endpoint: prepareOptions.endpoint,
        labels: prepareOptions.labels,
        schema: prepareOptions.schema,
        include,
        ...tableOptions,
        ...(round !== undefined && { reask: { requests: reaskFrom(round), out: reaskFile(run, round) } }),
      } satisfies JoinTableOptions);
    // Only answers checked against labels or a schema can be invalid.
    const rounds = prepareOptions.labels || prepareOptions.schema ? maxReasks : 0;
    const reasks: ReaskRound[] = [];
    let joined = await joinWith(rounds > 0 ? 1 : undefined);
    for (let round = 1; round <= rounds && joined.reasked > 0; round++) {
      const ran = await reaskRound(run, round, joined.reasked, connection, runOptions, prepareOptions);
      reasks.push(ran.round);
      if (ran.round.state !== 'done')
        return {
          prepared,
          run,
          state: ran.round.state,
          counts,
          joined,
          reasks,
          ...(estimate && { estimate }),
        };
      resultFiles.push(ran.results);
      joined = await joinWith(round < rounds ? round + 1 : undefined);
    }
    if (joined.statuses.stale > 0 && !allowStale) throw staleRows(joined, out);
    const totals = await usageOfFiles([
      ...downloadedOutputs(run.dir, run.manifest),
      ...reasks.map((r) => join(r.dir, RESULTS_FILE)),
    ]);
    const models = prepared.shards.map((s) => s.model);
    const usage = runUsage(totals, models, connection.provider, prices, estimate);
    return { prepared, run, state, counts, joined, reasks, ...(estimate && { estimate }), usage };
  } finally {
    await run.close();
  }
}

/** Where a round's re-ask requests are written, in the main run's directory. */
function reaskFile(run: BatchRun, round: number): string {
  return join(run.dir, `reask-${round}.requests.jsonl`);
}

/**
 * Runs one round of re-asks as a run of its own in `<run dir>/reask-<round>`: a directory fixed by the
 * round, not by the content, so the same command finds it again after a crash or Ctrl-C (a round whose
 * manifest exists is resumed as it is, never submitted again).
 */
async function reaskRound(
  run: BatchRun,
  round: number,
  requests: number,
  connection: Connection,
  runOptions: Partial<RunOptions>,
  prepareOptions: Omit<RunTableOptions, 'out' | 'runsDir' | 'dryRun' | 'maxReasks' | 'include'>,
): Promise<{ round: ReaskRound; results: string }> {
  const dir = join(run.dir, `reask-${round}`);
  const options = { ...runOptions, runDir: dir, runsDir: run.dir };
  let roundRun: BatchRun;
  if (await hasManifest(dir)) roundRun = await openRun(dir, connection, options);
  else {
    // The same rules as the first round: a model allowed by option is allowed here too.
    const profile = jobProfile({ ...prepareOptions, provider: connection.provider });
    const staged = await stageRequestFile(reaskFile(run, round), run.dir, connection, profile);
    roundRun = await createOrResumeRun(staged.dir, staged.summary, connection, options, true);
  }
  try {
    const state = await roundRun.wait();
    const results = join(dir, RESULTS_FILE);
    if (state === 'done') await writeResults(roundRun, results);
    return { round: { round, requests, dir, state }, results };
  } finally {
    await roundRun.close();
  }
}
