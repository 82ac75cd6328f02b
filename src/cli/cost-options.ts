import type { Command } from 'commander';
import { money } from '../cost/cost-guard.js';
import type { Estimate } from '../cost/estimate.js';
import type { PriceTable } from '../cost/prices.js';
import type { TokenRange } from '../cost/request-tokens.js';
import type { RunUsage } from '../jobs/estimate-table.js';
import { count, info, type Output } from './output.js';
import { list, number } from './parse-values.js';

export interface CostFlags {
  prices?: string;
  maxCost?: number;
  outputSample?: string[];
}

/** `--prices`, `--max-cost` and `--output-sample`: what `estimate` and `run` price a job with. */
export function addCostOptions(command: Command): Command {
  return command
    .option(
      '--prices <file.json>',
      'price table (per provider, region and model, per million tokens, one currency; default: the shipped example table)',
    )
    .option(
      '--max-cost <amount>',
      "refuse (exit 4, nothing submitted) when the estimate's upper bound exceeds this amount, in the prices' currency",
      number,
    )
    .option(
      '--output-sample <files>',
      'result files (JSON Lines) whose answer and thinking lengths stand in for the output range, comma-separated',
      list,
    );
}

/** The price table the flags name, or the shipped one. */
export async function pricesFrom(flags: CostFlags): Promise<PriceTable> {
  const { readPriceTable, shippedPrices } = await import('../cost/prices.js');
  return flags.prices === undefined ? shippedPrices() : readPriceTable(flags.prices);
}

/** Tokens as "1,234" or "1,000-2,000" or "1,000 or more". */
export function range(r: TokenRange): string {
  if (r.max === null) return `${count(r.min)} or more`;
  return r.min === r.max ? count(r.min) : `${count(r.min)}-${count(r.max)}`;
}

function costRange(c: { min: number; max: number | null }, currency: string): string {
  if (c.max === null) return `${money(c.min, currency)} or more`;
  return c.min === c.max ? money(c.min, currency) : `${money(c.min, currency)} to ${money(c.max, currency)}`;
}

/** The estimate per request file and in total, then what it rests on. */
export function reportEstimate(
  out: Output,
  estimate: Estimate,
  words: (text: string) => string = (t) => t,
): void {
  const currency = estimate.currency ?? '';
  for (const s of estimate.shards) {
    const thinking = s.thinking ? `, thinking ${range(s.thinking)}` : '';
    const cost = s.cost
      ? `, cost ${costRange(s.cost, currency)}`
      : s.price === null && estimate.currency
        ? ', no price'
        : '';
    info(
      out,
      `  ${s.file}  ${s.model}  ${count(s.requests)} requests: input ${range(s.input)} tokens (${s.tokenizer}, ${s.fidelity}), output ${range(s.output)}${thinking}${cost}`,
    );
  }
  const t = estimate.total;
  const thinking = t.thinking
    ? `, thinking ${range(t.thinking)} (billed as output: ${range(t.billedOutput)} in all)`
    : '';
  const cost = t.cost ? `; cost ${costRange(t.cost, currency)}` : '';
  info(
    out,
    `estimate: ${count(t.requests)} requests: input ${range(t.input)} tokens, output ${range(t.output)}${thinking}${cost}`,
  );
  for (const note of estimate.notes) info(out, words(`  note: ${note}`));
}

/** The tokens a run reported, their cost, and the estimate's error. */
export function reportUsage(out: Output, usage: RunUsage, testEngine: boolean): void {
  const thinking = usage.thinking > 0 ? ` (of which thinking ${count(usage.thinking)})` : ', thinking 0';
  const cost = usage.cost && usage.currency ? `; cost ${money(usage.cost.min, usage.currency)}` : '';
  info(
    out,
    `usage from ${count(usage.files)} output ${usage.files === 1 ? 'file' : 'files'}: ${count(usage.requests)} successful requests: input ${count(usage.input)} tokens, output ${count(usage.output)}${thinking}${cost}`,
  );
  if (usage.error) {
    const pct = (x: number | null) => (x === null ? '-' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`);
    info(
      out,
      `  against the estimate, per request: input ${pct(usage.error.input)}, output ${pct(usage.error.output)} (output against the middle of its range)`,
    );
  }
  info(out, `  source: ${usage.source}`);
  if (testEngine)
    info(
      out,
      '  note: the test engine counts with o200k and makes up answers: these figures check the plumbing, not the estimate',
    );
}
