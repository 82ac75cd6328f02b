/**
 * runTable's estimate and cost guard as a library caller meets them: `maxCost` refuses before a run is
 * made or anything reaches the service; `onEstimate` sees the figures first; a finished run reports the
 * usage of its result lines (the local test engine's made-up answers: plumbing, not accuracy).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Estimate } from '../../src/cost/estimate.js';
import { parsePriceTable } from '../../src/cost/prices.js';
import { isBatchpipeError } from '../../src/errors.js';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { clientFor } from '../local/support.js';

const dir = tempDir('bp-run-cost-');
let service: LocalService;
beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000 });
});
afterAll(() => service.close());

const ROWS = 20;
const input = fileWith(
  dir,
  'reviews.csv',
  csvText(
    ['id', 'review'],
    Array.from({ length: ROWS }, (_, i) => [`k${i}`, `review ${i}, quite good`]),
  ),
);
const prices = parsePriceTable(
  {
    currency: 'CNY',
    as_of: '2026-12-05',
    prices: [
      {
        provider: 'local',
        region: 'local',
        model: 'qwen-plus',
        input_per_million: 0.8,
        output_per_million: 2,
        source: 'test',
        read: '2026-12-05',
      },
    ],
  },
  'test',
);

function run(runsDir: string, extra: Partial<Parameters<typeof runTable>[2]>) {
  return runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
    model: 'qwen-plus',
    template: 'Classify: {{review}}',
    labels: ['good', 'bad'],
    idColumn: 'id',
    enableThinking: false,
    runsDir,
    pollInterval: 0.05,
    out: join(runsDir, 'out.csv'),
    prices,
    ...extra,
  });
}

describe('runTable with maxCost', () => {
  it('refuses above the limit before a run is made, after onEstimate saw the figures', async () => {
    const runsDir = join(dir, 'refused');
    const seen: Estimate[] = [];
    const refused = await run(runsDir, { maxCost: 0, onEstimate: (e) => seen.push(e) }).catch(
      (e: unknown) => e,
    );
    expect(isBatchpipeError(refused) && refused.code).toBe('BP_COST_LIMIT');
    expect((refused as Error).message).toMatch(/exceeds the limit of option "maxCost", 0\.00 CNY, by /);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.total.requests).toBe(ROWS);
    expect(existsSync(runsDir) ? readdirSync(runsDir) : []).toEqual([]);
    const batches = await clientFor(service).batches.list();
    expect(batches.data).toEqual([]);
  });

  it('runs within the limit and reports usage from the result lines', async () => {
    const runsDir = join(dir, 'allowed');
    const result = await run(runsDir, { maxCost: 1 });
    expect(result.state).toBe('done');
    expect(result.estimate!.total.requests).toBe(ROWS);
    expect(result.usage).toMatchObject({ requests: ROWS, files: 1, thinking: 0, currency: 'CNY' });
    expect(result.usage!.input).toBeGreaterThan(0);
    expect(result.usage!.cost!.min).toBeCloseTo(
      ((result.usage!.input * 0.8 + result.usage!.output * 2) / 1e6) * 0.5,
      12,
    );
  });

  it('takes only an amount of 0 or more', async () => {
    const refused = await run(join(dir, 'bad'), { maxCost: -1 }).catch((e: unknown) => e);
    expect(isBatchpipeError(refused) && refused.code).toBe('BP_INVALID_OPTION');
    expect((refused as Error).message).toContain('option "maxCost"');
  });
});
