import { join } from 'node:path';
import { type AnswerSchema, compileStructuredOutput } from '../core/structured/structured-output.js';
import type { ProviderProfile } from '../providers/profile.js';
import { thinksByDefault } from '../providers/resolve-profile.js';
import type { ShardSummary } from '../run/sharder.js';
import { CountPool } from './count-pool.js';
import { addCounted, type Counted, type CountJob, countRequests } from './count-requests.js';
import { modelTokenRule, type TokenizerName } from './model-tokenizer.js';
import { type BillingRule, billingRule, findPrice, type PriceEntry, type PriceTable } from './prices.js';
import { plus, type TokenRange } from './request-tokens.js';
import type { UsageSample } from './usage.js';

/** A cost range in the price table's currency; `max` null when no bound is known. */
export interface CostRange {
  min: number;
  max: number | null;
}

/** What one request file is expected to cost. */
export interface ShardEstimate {
  file: string;
  model: string;
  endpoint: string;
  requests: number;
  /** True when only the first `sampleRequests` requests were tokenized and the rest extrapolated. */
  sampled: boolean;
  tokenizer: TokenizerName;
  /** `exact`: the family's own tokenizer; `proxy`: a relative's; `fallback`: a character estimate. */
  fidelity: 'exact' | 'proxy' | 'fallback';
  /** Input tokens as counted (messages and template), and the range the tokenizer's error and a
   *  `json_schema` format's schema text (the upper end only) allow. */
  inputCounted: number;
  input: TokenRange;
  /** Image parts of prompts, not in the input count. */
  images: number;
  /** Answer tokens. */
  output: TokenRange;
  /** Thinking tokens; null when thinking is off. */
  thinking: TokenRange | null;
  /** Output as billed: answer plus thinking (thinking bills as output), never counted twice. */
  billedOutput: TokenRange;
  price: PriceEntry | null;
  cost: CostRange | null;
}

export interface Estimate {
  shards: ShardEstimate[];
  total: {
    requests: number;
    input: TokenRange;
    output: TokenRange;
    thinking: TokenRange | null;
    billedOutput: TokenRange;
    /** Null when a shard's model has no price. */
    cost: CostRange | null;
  };
  /** The price table's currency and date; null without one. */
  currency: string | null;
  pricesAsOf: string | null;
  billing: BillingRule;
  /** What the figures rest on, to show beside them. */
  notes: string[];
}

export interface EstimateOptions {
  profile: ProviderProfile;
  /** The job's labels or schema: what an answer may hold. */
  labels?: readonly string[] | undefined;
  schema?: AnswerSchema | undefined;
  /** Prices (default none: tokens only). */
  prices?: PriceTable | undefined;
  /** Answer and thinking lengths seen in earlier results, instead of the bounds the requests set. */
  sample?: UsageSample | undefined;
  /**
   * Tokenize at most this many requests of each file and extrapolate the rest (input by bytes, output
   * by requests), the input range widened by SAMPLE_ERROR: a quick figure where counting every request
   * would take long (a tokenizer in JS counts about 4,000 requests a second). Default: every request.
   */
  sampleRequests?: number | undefined;
  /**
   * Count on this many threads (each file cut into as many parts by bytes; a sample is one part), which
   * end with the estimate, taking the tokenizers' memory with them (the Qwen vocabulary is ~200 MB
   * once loaded). Default 0: in this thread, the tokenizers kept for the next estimate.
   */
  threads?: number | undefined;
}

/**
 * Added either way to a sampled input range. The requests of one file come from one template, so
 * their tokens per byte vary little; the margin covers rows whose text differs in kind (script,
 * code) from the sampled ones.
 */
export const SAMPLE_ERROR = 0.1;

/**
 * Estimates the tokens and cost of prepared request files, a line at a time (memory is a read buffer
 * and the tokenizers' caches): input counted with each model family's tokenizer and chat template,
 * output as a range from what bounds it (max_tokens, the labels or schema, a sample), thinking as a
 * range where thinking is on. With `threads`, the counting runs on that many threads, each file cut
 * into as many parts, and the threads (and the tokenizers' memory) go when it ends.
 */
export async function estimateShards(
  dir: string,
  shards: readonly ShardSummary[],
  options: EstimateOptions,
): Promise<Estimate> {
  const structured =
    options.labels !== undefined || options.schema !== undefined
      ? compileStructuredOutput({ labels: options.labels, schema: options.schema })
      : undefined;
  const threads = Math.max(0, Math.floor(options.threads ?? 0));
  const pool = threads > 0 ? new CountPool(threads) : undefined;
  const estimateOne = async (shard: ShardSummary) => {
    const job: CountJob = {
      path: join(dir, shard.file),
      from: 0,
      to: Number.POSITIVE_INFINITY,
      limit: options.sampleRequests,
      model: shard.model,
      endpoint: shard.endpoint,
      answerSchema: structured?.jsonSchema,
      sample: options.sample,
      thinksUnlessOff: thinksByDefault(options.profile, shard.model),
    };
    // A sample is the file's first lines: one part. Otherwise a part a thread, cut by bytes.
    const parts = pool && options.sampleRequests === undefined ? splitJob(job, shard.bytes, threads) : [job];
    const counted = await Promise.all(parts.map((part) => (pool ? pool.count(part) : countRequests(part))));
    return shardEstimate(shard, counted.reduce(addCounted), options);
  };
  try {
    // Threads take every part of every file at once; in this thread, a file at a time.
    const results: ShardEstimate[] = [];
    if (pool) results.push(...(await Promise.all(shards.map(estimateOne))));
    else for (const shard of shards) results.push(await estimateOne(shard));
    return summarize(results, options);
  } finally {
    await pool?.close();
  }
}

/** A whole-file job cut into `parts` byte ranges (lines are given to the part they start in). */
function splitJob(job: CountJob, bytes: number, parts: number): CountJob[] {
  // Small files are not worth a thread's start-up.
  const n = Math.max(1, Math.min(parts, Math.floor(bytes / MIN_PART_BYTES)));
  return Array.from({ length: n }, (_, i) => ({
    ...job,
    from: Math.floor((bytes * i) / n),
    to: i === n - 1 ? Number.POSITIVE_INFINITY : Math.floor((bytes * (i + 1)) / n),
  }));
}

/** Bytes of request lines below which a part is not cut again. */
const MIN_PART_BYTES = 256 * 1024;

function shardEstimate(shard: ShardSummary, counted: Counted, options: EstimateOptions): ShardEstimate {
  const rule = modelTokenRule(shard.model, shard.endpoint);
  let { requests, input, schemaTokens, images, output, thinking, billed } = counted;
  const price = options.prices
    ? (findPrice(options.prices, options.profile.name, shard.model) ?? null)
    : null;
  // A sample stands for the whole file: input in proportion to bytes, the rest to requests.
  const sampled = requests < shard.lines && requests > 0;
  const byBytes = sampled ? shard.bytes / counted.bytesRead : 1;
  const byRequests = sampled ? shard.lines / requests : 1;
  if (sampled) {
    input = Math.round(input * byBytes);
    schemaTokens = Math.round(schemaTokens * byRequests);
    images = Math.round(images * byRequests);
    output = scaled(output, byRequests);
    thinking = thinking && scaled(thinking, byRequests);
    billed = scaled(billed, byRequests);
    requests = shard.lines;
  }
  const error = rule.error + (sampled ? SAMPLE_ERROR : 0);
  const inputRange = {
    min: Math.floor(input * (1 - error)),
    max: Math.ceil((input + schemaTokens) * (1 + error)),
  };
  return {
    file: shard.file,
    model: shard.model,
    endpoint: shard.endpoint,
    sampled,
    requests,
    tokenizer: rule.tokenizer,
    fidelity: rule.fidelity,
    inputCounted: input,
    input: inputRange,
    images,
    output,
    thinking,
    billedOutput: billed,
    price,
    cost: price
      ? costOf(price, inputRange, billed, thinking !== null, billingRule(options.profile.name))
      : null,
  };
}

/** A range times a factor, widened outward to whole tokens. */
function scaled(range: TokenRange, factor: number): TokenRange {
  return {
    min: Math.floor(range.min * factor),
    max: range.max === null ? null : Math.ceil(range.max * factor),
  };
}

/** Cost of token ranges at a price, by the billing rule. */
export function costOf(
  price: PriceEntry,
  input: TokenRange,
  output: TokenRange,
  thinking: boolean,
  rule: BillingRule,
): CostRange {
  const perOutput = thinking
    ? (price.thinking_output_per_million ?? price.output_per_million)
    : price.output_per_million;
  const min = ((input.min * price.input_per_million + output.min * perOutput) / 1e6) * rule.share.min;
  const max =
    input.max === null || output.max === null
      ? null
      : ((input.max * price.input_per_million + output.max * perOutput) / 1e6) * rule.share.max;
  return { min, max };
}

function summarize(shards: ShardEstimate[], options: EstimateOptions): Estimate {
  let requests = 0;
  let input: TokenRange = { min: 0, max: 0 };
  let output: TokenRange = { min: 0, max: 0 };
  let thinking: TokenRange | null = null;
  let billed: TokenRange = { min: 0, max: 0 };
  let cost: CostRange | null = { min: 0, max: 0 };
  for (const s of shards) {
    requests += s.requests;
    input = plus(input, s.input);
    output = plus(output, s.output);
    if (s.thinking) thinking = plus(thinking ?? { min: 0, max: 0 }, s.thinking);
    billed = plus(billed, s.billedOutput);
    cost = cost && s.cost ? plus(cost, s.cost) : null;
  }
  const billing = billingRule(options.profile.name);
  return {
    shards,
    total: { requests, input, output, thinking, billedOutput: billed, cost },
    currency: options.prices?.currency ?? null,
    pricesAsOf: options.prices?.as_of ?? null,
    billing,
    notes: notes(shards, options, billing),
  };
}

function notes(shards: ShardEstimate[], options: EstimateOptions, billing: BillingRule): string[] {
  const said: string[] = [];
  const fidelity = new Set(shards.map((s) => `${s.model}: ${s.tokenizer} (${s.fidelity})`));
  said.push(`tokenizers: ${[...fidelity].join(', ')}`);
  if (shards.some((s) => s.sampled))
    said.push(
      `sampled: the first ${options.sampleRequests} requests of each file were tokenized and the rest extrapolated (input by bytes, widened ${SAMPLE_ERROR * 100}% either way); \`batchpipe estimate\` (or option "maxCost") counts every request`,
    );
  if (shards.some((s) => s.fidelity !== 'exact'))
    said.push('proxy and fallback counts are widened by their measured error either way (docs/cost.md)');
  if (shards.some((s) => s.images > 0))
    said.push('image parts are not counted: their tokens depend on the image');
  if (shards.some((s) => s.billedOutput.max === null))
    said.push(
      'output has no upper bound: set option "maxTokens" (and option "thinkingBudget" where thinking is on), or give option "outputSample"',
    );
  if (options.prices) {
    said.push(billing.description);
    const missing = [...new Set(shards.filter((s) => s.price === null).map((s) => s.model))];
    if (missing.length > 0)
      said.push(
        `no price for ${missing.join(', ')} at provider ${options.profile.name}: give option "prices" a table with one`,
      );
    said.push(
      `prices as of ${options.prices.as_of} in ${options.prices.currency}: check them on the provider's page before relying on a figure`,
    );
  } else said.push('no prices: token counts only');
  return said;
}
