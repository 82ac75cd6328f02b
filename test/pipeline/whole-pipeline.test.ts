import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  batchSink,
  csvSink,
  csvSource,
  joinResults,
  type LocalService,
  startLocalService,
  toRequests,
  validateRequests,
} from '../../src/index.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-pipeline-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000, refuseRate: 0.1, seed: 3 });
});
afterAll(() => service.close());

let runs = 0;

/** The README's pipeline, stage for stage, on the local service. */
async function whole(input: string, out: string, maxLinesPerFile: number) {
  const labels = ['positive', 'negative'];
  const sink = batchSink({
    baseURL: service.url,
    provider: 'local',
    runsDir: join(dir, `runs-${++runs}`),
    pollInterval: 0.05,
    maxLinesPerFile,
  });
  await pipeline(
    csvSource(input),
    toRequests({
      model: 'qwen-plus',
      template: 'Classify: {{review}}',
      labels,
      idColumn: 'id',
      enableThinking: false,
    }),
    validateRequests(),
    sink,
    joinResults({ source: input, idColumn: 'id', labels }),
    csvSink(out),
  );
  return sink;
}

describe('the whole pipeline: csvSource -> toRequests -> validateRequests -> batchSink -> joinResults -> csvSink', () => {
  it('conserves rows: every input row comes out once, in order, as a result, a failure or a rejection (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(fc.constantFrom('a', 'b', 'c', 'dup', ''), fc.string({ unit: 'grapheme', maxLength: 30 })),
          { minLength: 1, maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 12 }),
        async (cells, maxLinesPerFile) => {
          const rows = cells.map(([key, text], i) => [key === 'dup' ? 'dup' : `${key}${i}`, text, String(i)]);
          rows.push(['broken']); // a row with the wrong field count: rejected before upload
          const input = fileWith(dir, 'reviews.csv', csvText(['id', 'review', 'n'], rows));
          const out = join(dir, `out-${runs}.csv`);
          const sink = await whole(input, out, maxLinesPerFile);
          const table = parse(readFileSync(out, 'utf8'), {
            columns: true,
            relax_column_count: true,
          }) as Record<string, string>[];
          expect(table).toHaveLength(rows.length);
          // The broken row cannot be read into columns: it comes out rejected, its cells empty.
          expect(table.slice(0, -1).map((r) => r.id)).toEqual(rows.slice(0, -1).map((r) => r[0]));
          expect(table.at(-1)).toMatchObject({ status: 'rejected', error_code: 'BP_ROW_FIELD_COUNT' });
          const statuses = new Set(table.map((r) => r.status));
          for (const status of statuses)
            expect(['ok', 'failed', 'rejected', 'invalid_output']).toContain(status);
          const counts = sink.counts!;
          expect(counts.ok + counts.failed + counts.rejected + counts.expired + counts.cancelled).toBe(
            rows.length,
          );
          expect(table.filter((r) => r.status === 'rejected').length).toBe(counts.rejected);
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('joinResults after batchSink', () => {
  it('takes the run’s endpoint when not told: embeddings come out in an `embedding` column', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => [`e${i}`, `review number ${i}`]);
    const input = fileWith(dir, 'embed.csv', csvText(['id', 'review'], rows));
    const out = join(dir, 'embed-out.csv');
    await pipeline(
      csvSource(input),
      toRequests({
        endpoint: '/v1/embeddings',
        model: 'text-embedding-v4',
        template: '{{review}}',
        idColumn: 'id',
      }),
      validateRequests(),
      batchSink({
        baseURL: service.url,
        provider: 'local',
        runsDir: join(dir, 'runs-embed'),
        pollInterval: 0.05,
      }),
      joinResults({ source: input, idColumn: 'id' }),
      csvSink(out),
    );
    const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(table.map((r) => r.id)).toEqual(rows.map((r) => r[0]));
    expect(Object.keys(table[0]!)).toContain('embedding');
    expect(Object.keys(table[0]!)).not.toContain('content');
    for (const row of table.filter((r) => r.status === 'ok')) {
      const vector = JSON.parse(row.embedding!) as number[];
      expect(vector.length).toBeGreaterThan(0);
      expect(vector.every((v) => typeof v === 'number')).toBe(true);
    }
  });
});
