import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { BatchpipeError } from '../errors.js';
import SHIPPED from './prices.json' with { type: 'json' };

const DAY = /^\d{4}-\d{2}-\d{2}$/;

const PriceEntry = z.strictObject({
  /** Provider name as `--provider` spells it (`dashscope`, `dashscope-cn`, `openai`, `local`, ...). */
  provider: z.string().min(1),
  /** The region the price holds in (DashScope prices differ between Singapore and Beijing). */
  region: z.string().min(1),
  /** A model id; a price for `qwen-plus` also holds for its dated snapshots (`qwen-plus-2025-07-28`). */
  model: z.string().min(1),
  /** Real-time list price per million input tokens, in the table's currency. */
  input_per_million: z.number().nonnegative(),
  /** Real-time list price per million output tokens (thinking tokens bill as output). */
  output_per_million: z.number().nonnegative(),
  /** Where a model bills thinking-mode output at another price (DashScope Beijing's qwen-plus does). */
  thinking_output_per_million: z.number().nonnegative().optional(),
  /** The public page the price was read from, and the day it was read. */
  source: z.string().min(1),
  read: z.string().regex(DAY, 'expected a date as YYYY-MM-DD'),
});
export type PriceEntry = z.output<typeof PriceEntry>;

const PriceTableSchema = z.strictObject({
  /** ISO 4217 code of every price in the table (and of `--max-cost`). */
  currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code such as "USD" or "CNY"'),
  /** The day the table was last checked. */
  as_of: z.string().regex(DAY, 'expected a date as YYYY-MM-DD'),
  note: z.string().optional(),
  prices: z.array(PriceEntry),
});
export type PriceTable = z.output<typeof PriceTableSchema>;

/** The region each provider's prices are listed for. */
export const PROVIDER_REGIONS: Record<string, string> = {
  dashscope: 'ap-southeast-1',
  'dashscope-batch-chat': 'cn-beijing',
  'dashscope-cn': 'cn-beijing',
  openai: 'global',
  local: 'local',
  custom: 'custom',
};

/** The table shipped in the package (src/cost/prices.json): an example, dated; check before relying on it. */
export function shippedPrices(): PriceTable {
  return parsePriceTable(SHIPPED, 'the shipped price table');
}

/** Reads a prices file (`--prices file.json`). Throws BP_PRICES_INVALID naming the file and the field. */
export async function readPriceTable(file: string): Promise<PriceTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new BatchpipeError('BP_PRICES_INVALID', `${file}: cannot be read: ${(error as Error).message}`, {
      file,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new BatchpipeError('BP_PRICES_INVALID', `${file}: not JSON: ${(error as Error).message}`, { file });
  }
  return parsePriceTable(raw, file);
}

/** Checks a price table (already parsed JSON). */
export function parsePriceTable(raw: unknown, where: string): PriceTable {
  const parsed = PriceTableSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length > 0 ? issue.path.join('.') : '(top level)';
    throw new BatchpipeError('BP_PRICES_INVALID', `${where}: field ${path}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * The price of a model at a provider: the entry for the provider's region and the exact model id, or
 * else the longest model id that the requested one extends with a dash (a dated snapshot).
 */
export function findPrice(table: PriceTable, provider: string, model: string): PriceEntry | undefined {
  const region = PROVIDER_REGIONS[provider];
  let best: PriceEntry | undefined;
  for (const entry of table.prices) {
    if (entry.provider !== provider) continue;
    if (region !== undefined && entry.region !== region) continue;
    if (entry.model === model) return entry;
    if (model.startsWith(`${entry.model}-`) && (best === undefined || entry.model.length > best.model.length))
      best = entry;
  }
  return best;
}

/**
 * How a provider bills batch work, from its documents in ref/: the share of the real-time list price
 * paid, as a range where a discount is not guaranteed.
 */
export interface BillingRule {
  name: 'file-batch' | 'batch-chat';
  /** Share of the list price: the least and the most it may be. */
  share: { min: number; max: number };
  description: string;
}

const FILE_BATCH: BillingRule = {
  name: 'file-batch',
  share: { min: 0.5, max: 0.5 },
  description:
    'file batch: half the real-time price for input and output, successful requests only, no context-cache discount; thinking bills as output',
};
const BATCH_CHAT: BillingRule = {
  name: 'batch-chat',
  share: { min: 0.5, max: 1 },
  description:
    'Batch Chat: the real-time list price, with a limited-time 50% discount (so half to full price); timed-out and failed requests are not billed; thinking bills as output',
};

/** The billing rule of a provider's batches. */
export function billingRule(provider: string): BillingRule {
  return provider === 'dashscope-batch-chat' ? BATCH_CHAT : FILE_BATCH;
}
