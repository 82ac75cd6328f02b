/**
 * estimateTable: the request files prepare makes, counted a line at a time, per shard and in total.
 * Every figure is checked against the tokenizer run by hand over the same texts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCost } from '../../src/cost/cost-guard.js';
import { rawCounter } from '../../src/cost/model-tokenizer.js';
import { findPrice, type PriceTable, parsePriceTable, shippedPrices } from '../../src/cost/prices.js';
import { isBatchpipeError } from '../../src/errors.js';
import { estimateTable } from '../../src/jobs/estimate-table.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-estimate-');
const ROWS = 25;
const reviews = Array.from(
  { length: ROWS },
  (_, i) => `Review ${i}: ${'works well and arrived on time, '.repeat(1 + (i % 4))}`,
);
const input = join(dir, 'reviews.csv');
writeFileSync(
  input,
  csvText(
    ['id', 'review'],
    reviews.map((r, i) => [`k${i}`, r]),
  ),
);

const PRICES: PriceTable = parsePriceTable(
  {
    currency: 'USD',
    as_of: '2026-12-05',
    prices: [
      {
        provider: 'dashscope',
        region: 'ap-southeast-1',
        model: 'qwen-plus',
        input_per_million: 0.4,
        output_per_million: 1.2,
        source: 'test',
        read: '2026-12-05',
      },
      {
        provider: 'openai',
        region: 'global',
        model: 'o3-mini',
        input_per_million: 1.1,
        output_per_million: 4.4,
        source: 'test',
        read: '2026-12-05',
      },
    ],
  },
  'test prices',
);

const base = { template: 'Classify: {{review}}', idColumn: 'id', system: 'You are a helpful assistant.' };

describe('estimateTable', () => {
  it('counts input with the Qwen tokenizer and the template overhead, per shard and in total', async () => {
    const qwen = await rawCounter('qwen3');
    const { estimate, prepared } = await estimateTable(input, {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope',
      enableThinking: false,
      maxTokens: 50,
      maxLinesPerFile: 10,
    });
    expect(prepared.shards.map((s) => s.lines)).toEqual([10, 10, 5]);
    const byHand = reviews.map((r) => qwen('You are a helpful assistant.') + qwen(`Classify: ${r}`) + 2 * 6);
    expect(estimate.shards.map((s) => s.inputCounted)).toEqual([
      byHand.slice(0, 10).reduce((a, b) => a + b),
      byHand.slice(10, 20).reduce((a, b) => a + b),
      byHand.slice(20).reduce((a, b) => a + b),
    ]);
    const total = byHand.reduce((a, b) => a + b);
    expect(estimate.total.input).toEqual({ min: total, max: total });
    expect(estimate.total.requests).toBe(ROWS);
    // Free text: at least a token each, at most max_tokens each.
    expect(estimate.total.output).toEqual({ min: ROWS, max: ROWS * 50 });
    expect(estimate.total.thinking).toBeNull();
    expect(estimate.total.cost).toBeNull();
    expect(estimate.notes).toContain('no prices: token counts only');
  });

  it('extrapolates a sample of each file (sampleRequests): every request counted, the exact input inside the range', async () => {
    const options = {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope' as const,
      enableThinking: false,
      maxTokens: 50,
      maxLinesPerFile: 10,
    };
    const exact = (await estimateTable(input, options)).estimate;
    const { estimate } = await estimateTable(input, { ...options, sampleRequests: 3 });
    expect(estimate.shards.map((s) => s.sampled)).toEqual([true, true, true]);
    expect(estimate.total.requests).toBe(ROWS);
    const counted = exact.total.input.min;
    expect(estimate.total.input.min).toBeLessThanOrEqual(counted);
    expect(estimate.total.input.max).toBeGreaterThanOrEqual(counted);
    // Output bounds scale with the requests: the same as counting each.
    expect(estimate.total.output).toEqual(exact.total.output);
    expect(estimate.notes.join('\n')).toContain('sampled: the first 3 requests of each file');
    // A sample as large as the file is the exact count.
    const whole = (await estimateTable(input, { ...options, sampleRequests: 10 })).estimate;
    expect(whole.shards.every((s) => !s.sampled)).toBe(true);
    expect(whole.total.input).toEqual(exact.total.input);
  });

  it('takes the output range of labels from the labels, and prices it at half the list price', async () => {
    const qwen = await rawCounter('qwen3');
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope',
      enableThinking: false,
      labels: ['ok', 'not ok at all'],
      prices: PRICES,
    });
    const shortest = qwen('{"label":"ok"}');
    const longest = qwen('{"label":"not ok at all"}');
    expect(estimate.total.output).toEqual({ min: ROWS * shortest, max: ROWS * longest });
    const { input: tokens } = estimate.total;
    // DashScope is asked in JSON mode: the schema is in the system prompt, counted as text.
    expect(tokens.max).toBe(tokens.min);
    const price = findPrice(PRICES, 'dashscope', 'qwen-plus')!;
    expect(estimate.total.cost!.min).toBeCloseTo(
      ((tokens.min * 0.4 + ROWS * shortest * 1.2) / 1e6) * 0.5,
      12,
    );
    expect(estimate.total.cost!.max).toBeCloseTo(
      ((tokens.max! * 0.4 + ROWS * longest * 1.2) / 1e6) * 0.5,
      12,
    );
    expect(price.model).toBe('qwen-plus');
    expect(estimate.billing.name).toBe('file-batch');
  });

  it('adds thinking to billed output where thinking is on, bounded by thinking_budget', async () => {
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope',
      enableThinking: true,
      thinkingBudget: 100,
      maxTokens: 20,
    });
    expect(estimate.total.thinking).toEqual({ min: 0, max: ROWS * 100 });
    expect(estimate.total.billedOutput).toEqual({ min: ROWS, max: ROWS * 120 });
  });

  it('has no upper bound without max_tokens or a thinking budget, and the guard refuses then', async () => {
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope',
      enableThinking: true,
      prices: PRICES,
    });
    expect(estimate.total.billedOutput.max).toBeNull();
    expect(estimate.total.cost!.max).toBeNull();
    expect(() => checkCost(estimate, 100)).toThrow(/no upper bound/);
  });

  it('keeps OpenAI reasoning inside max_completion_tokens: shown, not added twice', async () => {
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'o3-mini',
      provider: 'openai',
      maxTokens: 40,
      prices: PRICES,
    });
    expect(estimate.shards[0]!.tokenizer).toBe('o200k_base');
    expect(estimate.total.thinking).toEqual({ min: 0, max: ROWS * 40 });
    expect(estimate.total.billedOutput.max).toBe(ROWS * 40);
  });

  it('takes the output range from a sample of results, reasoning apart, failed lines left out', async () => {
    const sample = join(dir, 'sample.jsonl');
    const line = (status: number, completion: number, reasoning: number) =>
      JSON.stringify({
        custom_id: `c${completion}`,
        response: {
          status_code: status,
          body: {
            usage: {
              prompt_tokens: 9,
              completion_tokens: completion,
              completion_tokens_details: { reasoning_tokens: reasoning },
            },
          },
        },
      });
    writeFileSync(sample, [line(200, 30, 10), line(200, 90, 40), line(500, 999, 0)].join('\n'));
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope',
      enableThinking: true,
      outputSample: sample,
    });
    // Answers 20 and 50 tokens, thinking 10 and 40: the 500 line is not billed, so not sampled.
    expect(estimate.total.output).toEqual({ min: ROWS * 20, max: ROWS * 50 });
    expect(estimate.total.thinking).toEqual({ min: ROWS * 10, max: ROWS * 40 });
    expect(estimate.total.billedOutput).toEqual({ min: ROWS * 30, max: ROWS * 90 });
  });

  it('widens a fallback count by its measured error', async () => {
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'deepseek-v3',
      provider: 'local',
      maxTokens: 10,
    });
    const s = estimate.shards[0]!;
    expect(s.fidelity).toBe('fallback');
    expect(s.input.min).toBe(Math.floor(s.inputCounted * 0.75));
    expect(s.input.max).toBe(Math.ceil(s.inputCounted * 1.25));
  });

  it('refuses above maxCost with BP_COST_LIMIT saying by how much', async () => {
    const options = {
      ...base,
      model: 'qwen-plus',
      provider: 'dashscope' as const,
      enableThinking: false,
      maxTokens: 1000,
      prices: PRICES,
    };
    const { estimate } = await estimateTable(input, options);
    const upper = estimate.total.cost!.max!;
    await expect(estimateTable(input, { ...options, maxCost: upper * 2 })).resolves.toBeDefined();
    const refused = await estimateTable(input, { ...options, maxCost: upper / 2 }).catch((e: unknown) => e);
    expect(isBatchpipeError(refused) && refused.code).toBe('BP_COST_LIMIT');
    expect((refused as Error).message).toContain(`by ${(upper / 2).toPrecision(2)} USD`);
  });

  it("counts a json_schema format's schema at the upper end only", async () => {
    const { estimate } = await estimateTable(input, {
      ...base,
      model: 'gpt-4o-mini',
      provider: 'openai',
      labels: ['ok', 'not ok'],
    });
    const o200k = await rawCounter('o200k_base');
    const s = estimate.shards[0]!;
    expect(s.input.min).toBe(s.inputCounted);
    expect(s.input.max! - s.input.min).toBeGreaterThan(0);
    expect((s.input.max! - s.input.min) % ROWS).toBe(0);
    const schemaTokens = (s.input.max! - s.input.min) / ROWS;
    expect(schemaTokens).toBeGreaterThan(o200k('"ok","not ok"'));
  });

  it('refuses a model with no price: the guard cannot bound it', async () => {
    const refused = await estimateTable(input, {
      ...base,
      model: 'qwen-turbo',
      provider: 'dashscope',
      maxTokens: 5,
      prices: PRICES,
      maxCost: 1000,
    }).catch((e: unknown) => e);
    expect(isBatchpipeError(refused) && refused.code).toBe('BP_COST_LIMIT');
    expect((refused as Error).message).toMatch(/no price for qwen-turbo/);
  });
});

describe('the shipped price table', () => {
  it('is dated, in one currency, and names the page and day of every price', () => {
    const table = shippedPrices();
    expect(table.currency).toBe('USD');
    expect(table.as_of).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(table.prices.length).toBeGreaterThan(0);
    for (const p of table.prices) {
      expect(p.source).toMatch(/^https:\/\//);
      expect(p.read).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('finds a dated snapshot by its base model, and only in the provider region', () => {
    const table = shippedPrices();
    expect(findPrice(table, 'dashscope', 'qwen-plus-2025-07-28')?.model).toBe('qwen-plus');
    expect(findPrice(table, 'dashscope-cn', 'qwen-plus')).toBeUndefined();
    expect(findPrice(table, 'local', 'qwen-plus')).toBeUndefined();
  });

  it('rejects a table without a currency, naming the field', () => {
    expect(() => parsePriceTable({ as_of: '2026-01-01', prices: [] }, 'p.json')).toThrow(
      /p\.json: field currency/,
    );
  });
});
