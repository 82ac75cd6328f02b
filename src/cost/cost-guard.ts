import { BatchpipeError } from '../errors.js';
import type { Estimate } from './estimate.js';

/**
 * Refuses work whose estimated cost may exceed `maxCost` (in the price table's currency), with
 * BP_COST_LIMIT saying by how much, or why the bound cannot be known (no price, no output bound).
 * A guard that cannot tell refuses: it is there to stop a surprise bill.
 */
export function checkCost(estimate: Estimate, maxCost: number): void {
  const { cost } = estimate.total;
  const currency = estimate.currency ?? '';
  if (estimate.currency === null || cost === null) {
    const missing = [...new Set(estimate.shards.filter((s) => s.price === null).map((s) => s.model))];
    throw new BatchpipeError(
      'BP_COST_LIMIT',
      `the cost guard refused: the cost cannot be bounded: no price for ${missing.join(', ') || 'the models'}; give option "prices" a table with one; nothing was submitted`,
      { option: 'maxCost' },
    );
  }
  if (cost.max === null)
    throw new BatchpipeError(
      'BP_COST_LIMIT',
      `the cost guard refused: the output has no upper bound, so neither has the cost (at least ${money(cost.min, currency)}); set option "maxTokens" (and option "thinkingBudget" where thinking is on) or give option "outputSample"; nothing was submitted`,
      { option: 'maxCost' },
    );
  if (cost.max > maxCost)
    throw new BatchpipeError(
      'BP_COST_LIMIT',
      `the cost guard refused: the estimate's upper bound ${money(cost.max, currency)} exceeds the limit of option "maxCost", ${money(maxCost, currency)}, by ${money(cost.max - maxCost, currency)} (range ${money(cost.min, currency)} to ${money(cost.max, currency)}); nothing was submitted`,
      { option: 'maxCost' },
    );
}

/** An amount with enough digits for small batches (a thousand short requests may cost a few cents). */
export function money(amount: number, currency: string): string {
  const text = amount === 0 || Math.abs(amount) >= 0.01 ? amount.toFixed(2) : amount.toPrecision(2);
  return `${text} ${currency}`.trim();
}
