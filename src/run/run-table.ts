import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { split } from '../internal/pick.js';
import type { Connection } from '../providers/connection.js';
import { REJECTIONS_FILE } from '../sinks/shard-requests.js';
import { CsvTableFields } from '../sources/csv-source.js';
import type { BatchRun, RunCounts, RunState } from './batch-run.js';
import { type JoinTableResult, joinTable } from './join.js';
import { nothingToSubmit, type PrepareOptions, type PrepareResult, prepare } from './prepare.js';
import { RUNS_DIR, stagingDir } from './run-dir.js';
import { writeFinalLines } from './run-results.js';
import { createOrResumeRun, RunFields, type RunOptions } from './start-run.js';

/** The results file a finished run writes: one line per request, its final result. */
export const RESULTS_FILE = 'results.jsonl';

export interface RunTableOptions
  extends Omit<PrepareOptions, 'outDir' | 'provider'>,
    Omit<RunOptions, 'runsDir'> {
  /** The joined table to write (.csv, .tsv or .jsonl). */
  out: string;
  runsDir?: string;
  /** Prepare and check everything, submit nothing. */
  dryRun?: boolean;
}

export interface RunTableResult {
  prepared: PrepareResult;
  /** Absent on a dry run. */
  run?: BatchRun;
  state: RunState | 'dry-run';
  counts?: RunCounts;
  joined?: JoinTableResult;
}

/**
 * The whole job: table -> request files -> batches -> results -> the table with result columns. The
 * run is durable: killed or detached, the same call on the same input resumes it. The function behind
 * `batchpipe run`.
 */
export async function runTable(
  input: string,
  connection: Connection,
  options: RunTableOptions,
): Promise<RunTableResult> {
  const { out, runsDir = RUNS_DIR, dryRun, ...rest } = options;
  const [runOptions, prepareOptions] = split(rest, Object.keys(RunFields) as Array<keyof typeof RunFields>);
  const staging = await stagingDir(runsDir);
  const prepared = await prepare(input, {
    ...prepareOptions,
    provider: connection.provider,
    outDir: staging,
  });
  const nothing = nothingToSubmit(prepared);
  if (nothing) throw nothing;
  if (dryRun) return { prepared, state: 'dry-run' };
  const run = await createOrResumeRun(staging, prepared, connection, { ...runOptions, runsDir }, true);
  try {
    const state = await run.wait();
    const counts = run.counts();
    if (state !== 'done') return { prepared, run, state, counts };
    const results = join(run.dir, RESULTS_FILE);
    await writeResults(run, results);
    await mkdir(dirname(out), { recursive: true });
    const [csvOptions] = split(
      prepareOptions,
      Object.keys(CsvTableFields) as Array<keyof typeof CsvTableFields>,
    );
    const joined = await joinTable({
      source: input,
      results: [results],
      rejections: [join(run.dir, REJECTIONS_FILE)],
      out,
      format: prepareOptions.format,
      idColumn: prepareOptions.idColumn,
      endpoint: prepareOptions.endpoint,
      labels: prepareOptions.labels,
      schema: prepareOptions.schema,
      ...csvOptions,
    });
    return { prepared, run, state, counts, joined };
  } finally {
    await run.close();
  }
}

/** Writes a finished run's final result line per request (rejections stay in rejections.jsonl). */
export function writeResults(run: BatchRun, path: string): Promise<number> {
  return writeFinalLines(run.dir, run.manifest, path);
}
