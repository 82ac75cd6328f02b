import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { checkCost } from '../cost/cost-guard.js';
import { type CostRange, costOf, type Estimate, estimateShards } from '../cost/estimate.js';
import { billingRule, findPrice, type PriceTable } from '../cost/prices.js';
import { type UsageTotals, usageSample } from '../cost/usage.js';
import { BatchpipeError } from '../errors.js';
import type { ProviderProfile } from '../providers/profile.js';
import type { PreparedSummary } from '../run/sharder.js';
import { type PrepareOptions, type PrepareResult, prepare } from './prepare.js';
import { jobProfile } from './settings.js';

/** What an estimate reads beside the job's own options. */
export interface CostOptions {
  /** Prices per provider, region and model (default: none, token counts only). */
  prices?: PriceTable;
  /** Result files whose answer lengths stand in for the output range (a sample run's results). */
  outputSample?: string | string[];
  /** Refuse (BP_COST_LIMIT) when the estimate's upper bound exceeds this, in the prices' currency. */
  maxCost?: number;
  /** Tokenize at most this many requests of each file and extrapolate the rest (default: all). */
  sampleRequests?: number;
}

/**
 * Threads to count `bytes` of request lines on: every core (at most 2: each thread loads its own
 * tokenizer, ~200 MB for Qwen's) once the files are large enough for the threads' start (a tokenizer
 * load each, ~0.5 s) to pay; below that none, or `atLeast` (1: the counting on a thread that ends with
 * it, so the process does not keep the tokenizer's memory).
 */
export function countingThreads(bytes: number, atLeast = 0): number {
  return Math.max(atLeast, bytes >= THREADS_FROM_BYTES ? Math.min(2, availableParallelism()) : 0);
}

/** Request bytes from which counting goes on threads (~25,000 requests of a 1.2 KB line). */
const THREADS_FROM_BYTES = 32 * 1024 * 1024;

export interface EstimateTableOptions extends Omit<PrepareOptions, 'outDir'>, CostOptions {
  /** Where the request files are made while counting (default: the system's temp directory); removed after. */
  workDir?: string;
}

export interface EstimateTableResult {
  prepared: PrepareResult;
  estimate: Estimate;
}

/**
 * What a table would cost: the request files `prepare` makes (in a temporary directory, removed after),
 * counted a line at a time. The function behind `batchpipe estimate`; `runTable` does the same before it
 * submits. Throws BP_COST_LIMIT when `maxCost` is given and the estimate may exceed it.
 */
export async function estimateTable(
  input: string | Readable,
  options: EstimateTableOptions,
): Promise<EstimateTableResult> {
  const { prices, outputSample, maxCost, sampleRequests, workDir, ...prepareOptions } = options;
  checkMaxCost(maxCost, 'estimateTable');
  const dir = await mkdtemp(join(workDir ?? tmpdir(), 'batchpipe-estimate-'));
  try {
    const prepared = await prepare(input, { ...prepareOptions, outDir: dir });
    const profile = jobProfile({ ...prepareOptions, provider: prepareOptions.provider ?? 'local' });
    // The guard counts every request: a sample's range is not a bound.
    const estimate = await estimatePrepared(dir, prepared, profile, prepareOptions, {
      prices,
      outputSample,
      sampleRequests: maxCost === undefined ? sampleRequests : undefined,
      threads: countingThreads(prepared.shards.reduce((n, s) => n + s.bytes, 0)),
    });
    if (maxCost !== undefined) checkCost(estimate, maxCost);
    return { prepared, estimate };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Estimates request files `prepare` wrote in `dir`. */
export async function estimatePrepared(
  dir: string,
  prepared: PreparedSummary,
  profile: ProviderProfile,
  job: Pick<PrepareOptions, 'labels' | 'schema'>,
  cost: CostOptions & { threads?: number },
): Promise<Estimate> {
  const samples = cost.outputSample === undefined ? [] : [cost.outputSample].flat();
  const sample = samples.length > 0 ? await usageSample(samples) : undefined;
  if (samples.length > 0 && sample === undefined)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `option "outputSample": ${samples.join(', ')} holds no successful result line with usage to take answer lengths from`,
      { option: 'outputSample' },
    );
  return estimateShards(dir, prepared.shards, {
    profile,
    labels: job.labels,
    schema: job.schema,
    prices: cost.prices,
    sample,
    sampleRequests: cost.sampleRequests,
    threads: cost.threads,
  });
}

/** BP_INVALID_OPTION unless `maxCost` is absent or a finite amount of at least 0. */
export function checkMaxCost(maxCost: unknown, where: string): void {
  if (maxCost === undefined) return;
  if (typeof maxCost !== 'number' || !Number.isFinite(maxCost) || maxCost < 0)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `${where}: option "maxCost": expected an amount of 0 or more, got ${JSON.stringify(maxCost)}`,
      { option: 'maxCost' },
    );
}

/** A run's reported usage, what it implies at the prices, and how far the estimate was from it. */
export interface RunUsage extends UsageTotals {
  /** Where the figures come from. */
  source: string;
  currency: string | null;
  /** Cost of the reported tokens at the prices and billing rule; null without a price for the model. */
  cost: CostRange | null;
  /** (reported - estimated) / estimated per request, for input and for billed output (against the middle
   *  of the estimated range), where an estimate was made. */
  error?: { input: number | null; output: number | null };
}

/** The source line every usage figure carries. */
export const USAGE_SOURCE =
  "usage of each successful result line in the downloaded output files (DashScope's batch objects carry no usage; OpenAI's Batch.usage exists only for batches created after 2025-09-07 and is not read)";

/** Usage totals with their cost (one model for the whole run, else null) and their error against an estimate. */
export function runUsage(
  totals: UsageTotals,
  models: readonly string[],
  provider: string,
  prices: PriceTable | undefined,
  estimate: Estimate | undefined,
): RunUsage {
  const distinct = [...new Set(models)];
  const price = prices && distinct.length === 1 ? findPrice(prices, provider, distinct[0]!) : undefined;
  const exact = { min: totals.input, max: totals.input };
  const cost = price
    ? costOf(
        price,
        exact,
        { min: totals.output, max: totals.output },
        totals.thinking > 0,
        billingRule(provider),
      )
    : null;
  const usage: RunUsage = { ...totals, source: USAGE_SOURCE, currency: prices?.currency ?? null, cost };
  if (estimate && totals.requests > 0 && estimate.total.requests > 0) {
    // Per request: failed requests report no usage, and a run may be read while in progress.
    const perRequest = (n: number, of: number) => n / of;
    const relative = (got: number, expected: number) => (expected > 0 ? (got - expected) / expected : null);
    const inputCounted = estimate.shards.reduce((n, s) => n + s.inputCounted, 0);
    const out = estimate.total.billedOutput;
    // Against the middle of the output range where it has an upper end, else against its lower end.
    const outMid = out.max === null ? out.min : (out.min + out.max) / 2;
    const got = (n: number) => perRequest(n, totals.requests);
    const expected = (n: number) => perRequest(n, estimate.total.requests);
    usage.error = {
      input: relative(got(totals.input), expected(inputCounted)),
      output: relative(got(totals.output), expected(outMid)),
    };
  }
  return usage;
}
