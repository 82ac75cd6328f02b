/**
 * `batchpipe estimate`, the estimate `run` prints before it submits, the cost guard (exit 4, nothing
 * submitted), and the usage `run --json` and `status --json` report from the result lines. Against the
 * embedded local service: its test engine makes up answers and counts with o200k, so the usage figures
 * prove the plumbing (every successful line summed once), not the estimate's accuracy.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { csvText } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-cli-estimate-');
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};
const ROWS = 12;
const input = join(dir, 'reviews.csv');
writeFileSync(
  input,
  csvText(
    ['id', 'review'],
    Array.from({ length: ROWS }, (_, i) => [`k${i}`, `review ${i}: ${'fine, mostly. '.repeat(1 + (i % 3))}`]),
  ),
);
const prices = join(dir, 'prices.json');
writeFileSync(
  prices,
  JSON.stringify({
    currency: 'EUR',
    as_of: '2026-12-05',
    prices: [
      {
        provider: 'local',
        region: 'local',
        model: 'qwen-plus',
        input_per_million: 100,
        output_per_million: 400,
        source: 'a test table',
        read: '2026-12-05',
      },
    ],
  }),
);
const job = [
  '--template',
  'Classify: {{review}}',
  '--labels',
  'good,bad',
  '--model',
  'qwen-plus',
  '--enable-thinking',
  'false',
  '--id-column',
  'id',
];

interface EstimateJson {
  estimate: {
    shards: Array<{
      file: string;
      requests: number;
      inputCounted: number;
      cost: { min: number; max: number };
    }>;
    total: { requests: number; cost: { min: number; max: number } | null };
    currency: string | null;
  };
}

describe('batchpipe estimate', () => {
  it('prints each request file and the total, and the same as JSON', async () => {
    const text = await runCli(['estimate', input, ...job, '--max-lines-per-file', '5', '--prices', prices], {
      cwd: dir,
      env,
    });
    expect(text.code).toBe(0);
    expect(text.stderr).toMatch(
      /requests-00001\.jsonl {2}qwen-plus {2}5 requests: input [\d,-]+ tokens \(qwen3, exact\)/,
    );
    expect(text.stderr).toContain('requests-00003.jsonl  qwen-plus  2 requests');
    expect(text.stderr).toMatch(/estimate: 12 requests: input [\d,-]+ tokens/);
    expect(text.stderr).toMatch(/EUR: check them/);
    const json = await runCli(
      ['estimate', input, ...job, '--max-lines-per-file', '5', '--prices', prices, '--json'],
      { cwd: dir, env },
    );
    expect(json.code).toBe(0);
    const { estimate } = JSON.parse(json.stdout) as EstimateJson;
    expect(estimate.shards.map((s) => s.requests)).toEqual([5, 5, 2]);
    expect(estimate.total.requests).toBe(ROWS);
    expect(estimate.currency).toBe('EUR');
    const sum = estimate.shards.reduce((n, s) => n + s.cost.max, 0);
    expect(estimate.total.cost!.max).toBeCloseTo(sum, 12);
  });

  it('exits 4 under --max-cost, saying by how much', async () => {
    const json = await runCli(['estimate', input, ...job, '--prices', prices, '--json'], { cwd: dir, env });
    const upper = (JSON.parse(json.stdout) as EstimateJson).estimate.total.cost!.max;
    const refused = await runCli(
      ['estimate', input, ...job, '--prices', prices, '--max-cost', String(upper / 4)],
      {
        cwd: dir,
        env,
      },
    );
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(
      /error BP_COST_LIMIT: .*exceeds the limit of --max-cost, .* EUR, by .* EUR/,
    );
    const allowed = await runCli(
      ['estimate', input, ...job, '--prices', prices, '--max-cost', String(upper * 2)],
      {
        cwd: dir,
        env,
      },
    );
    expect(allowed.code).toBe(0);
  });

  it('shows token counts without prices, and a bad prices file is a usage error', async () => {
    const noPrice = await runCli(['estimate', input, ...job], { cwd: dir, env });
    expect(noPrice.code).toBe(0);
    expect(noPrice.stderr).toMatch(/estimate: 12 requests: input [\d,-]+ tokens/);
    expect(noPrice.stderr).toContain('no price for qwen-plus at provider local');
    const bad = join(dir, 'bad-prices.json');
    writeFileSync(
      bad,
      JSON.stringify({ currency: 'EUR', as_of: '2026-12-05', prices: [{ provider: 'local' }] }),
    );
    const refused = await runCli(['estimate', input, ...job, '--prices', bad], { cwd: dir, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/error BP_PRICES_INVALID: .*bad-prices\.json: field prices\.0\.region/);
  });
});

describe('batchpipe run with estimates', () => {
  it('puts the estimate in --dry-run --json, and the guard refuses before anything is submitted', async () => {
    const cwd = tempDir('bp-cli-guard-');
    const dry = await runCli(
      ['run', input, ...job, '--out', join(cwd, 'out.csv'), '--prices', prices, '--dry-run', '--json'],
      {
        cwd,
        env,
      },
    );
    expect(dry.code).toBe(0);
    const { estimate } = JSON.parse(dry.stdout) as EstimateJson;
    expect(estimate.total.requests).toBe(ROWS);
    const refused = await runCli(
      [
        'run',
        input,
        ...job,
        '--out',
        join(cwd, 'out.csv'),
        '--prices',
        prices,
        '--max-cost',
        String(estimate.total.cost!.max / 3),
      ],
      { cwd, env },
    );
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/estimate: 12 requests/);
    expect(refused.stderr).toContain('error BP_COST_LIMIT');
    // Nothing reached the service, no run was made, and no table written.
    expect(existsSync(join(cwd, '.batchpipe', 'local', 'records.jsonl'))).toBe(false);
    const runs = join(cwd, '.batchpipe', 'runs');
    expect(existsSync(runs) ? readdirSync(runs).filter((d) => !d.startsWith('.')) : []).toEqual([]);
    expect(existsSync(join(cwd, 'out.csv'))).toBe(false);
  });

  it('reports the usage of the result lines beside the estimate, and status the same', async () => {
    const cwd = tempDir('bp-cli-usage-');
    const done = await runCli(
      ['run', input, ...job, '--out', join(cwd, 'out.csv'), '--prices', prices, '--json'],
      {
        cwd,
        env,
      },
    );
    expect(done.code).toBe(0);
    const outcome = JSON.parse(done.stdout) as {
      run_dir: string;
      estimate: EstimateJson['estimate'];
      usage: {
        requests: number;
        input: number;
        output: number;
        thinking: number;
        cost: { min: number };
        source: string;
        error: { input: number };
      };
    };
    // Summed by hand from the output files the run downloaded.
    const results = join(outcome.run_dir, 'results');
    const lines = readdirSync(results)
      .filter((f) => f.endsWith('.output.jsonl'))
      .flatMap((f) => readFileSync(join(results, f), 'utf8').trim().split('\n'));
    const usages = lines.map(
      (l) =>
        (
          JSON.parse(l) as {
            response: { body: { usage: { prompt_tokens: number; completion_tokens: number } } };
          }
        ).response.body.usage,
    );
    expect(usages).toHaveLength(ROWS);
    const inTokens = usages.reduce((n, u) => n + u.prompt_tokens, 0);
    const outTokens = usages.reduce((n, u) => n + u.completion_tokens, 0);
    expect(outcome.usage).toMatchObject({ requests: ROWS, input: inTokens, output: outTokens, thinking: 0 });
    expect(outcome.usage.cost.min).toBeCloseTo(((inTokens * 100 + outTokens * 400) / 1e6) * 0.5, 12);
    expect(outcome.usage.source).toMatch(/DashScope's batch objects carry no usage/);
    expect(typeof outcome.usage.error.input).toBe('number');
    expect(outcome.estimate.total.requests).toBe(ROWS);
    const status = await runCli(['status', outcome.run_dir, '--prices', prices, '--json'], { cwd, env });
    expect(status.code).toBe(0);
    expect((JSON.parse(status.stdout) as { usage: object }).usage).toMatchObject({
      requests: ROWS,
      input: inTokens,
      output: outTokens,
    });
    const human = await runCli(['run', input, ...job, '--out', join(cwd, 'out.csv'), '--prices', prices], {
      cwd,
      env,
    });
    expect(human.stderr).toMatch(
      /usage from 1 output file: 12 successful requests: input [\d,]+ tokens, output [\d,]+, thinking 0; cost/,
    );
    expect(human.stderr).toContain('these figures check the plumbing, not the estimate');
  });
});
