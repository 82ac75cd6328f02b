/**
 * Paying once: `runTable` with the result cache and deduplication, against the local service over
 * HTTP. Requests are counted where they arrive: the request files the service holds (its records name
 * every upload; each file's lines are read back through the Files API).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheStats } from '../../src/cache/result-cache.js';
import { type RunTableOptions, runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-cache-');
let service: LocalService;
let client: OpenAI;

beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000, seed: 3 });
  client = new OpenAI({ baseURL: service.url, apiKey: 'local' });
});
afterAll(() => service.close());

/** Request lines uploaded since `since` calls were recorded, and the calls recorded now. */
async function uploadedSince(since: number): Promise<{ lines: number; calls: number }> {
  const records = await service.records();
  let lines = 0;
  for (const call of records.calls.slice(since)) {
    if (call.op !== 'file.create') continue;
    const text = await (await client.files.content(call.id)).text();
    lines += text.split('\n').filter((l) => l.trim() !== '').length;
  }
  return { lines, calls: records.calls.length };
}

function readOut(path: string): Array<Record<string, string>> {
  return parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;
}

function reviews(name: string, texts: string[]): string {
  return fileWith(
    dir,
    name,
    csvText(
      ['id', 'review'],
      texts.map((t, i) => [`k${i}`, t]),
    ),
  );
}

function run(input: string, out: string, runsDir: string, extra: Partial<RunTableOptions> = {}) {
  return runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
    model: 'qwen-plus',
    template: 'Label the review: {{review}}',
    idColumn: 'id',
    temperature: 0,
    runsDir,
    pollInterval: 0.05,
    out,
    ...extra,
  });
}

const texts = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `review ${from + i}: fine, mostly`);

describe('the result cache', () => {
  it('labels 1,000 rows, then 1,100: exactly the 100 new requests are uploaded, the first 1,000 rows come out as before', async () => {
    const runsDir = join(dir, 'runs-a');
    let calls = (await service.records()).calls.length;
    const first = await run(reviews('a1000.csv', texts(1000)), join(dir, 'a1000.out.csv'), runsDir);
    expect(first.state).toBe('done');
    let up = await uploadedSince(calls);
    expect(up.lines).toBe(1000);
    calls = up.calls;
    expect(first.settled?.stored).toBe(1000);
    expect((await cacheStats(join(runsDir, '.cache'))).entries).toBe(1000);

    const out = join(dir, 'a1100.out.csv');
    const second = await run(reviews('a1100.csv', texts(1100)), out, runsDir, { include: ['cached'] });
    expect(second.state).toBe('done');
    up = await uploadedSince(calls);
    expect(up.lines).toBe(100);
    expect(second.prepared.reuse).toMatchObject({ cached: 1000, sent: 100, duplicates: 0 });

    const before = readOut(join(dir, 'a1000.out.csv'));
    const after = readOut(out);
    expect(after).toHaveLength(1100);
    expect(after.every((r) => r.status === 'ok')).toBe(true);
    for (let i = 0; i < 1000; i++) {
      const { cached, ...row } = after[i]!;
      expect(row).toEqual(before[i]);
      expect(cached).toBe('true');
    }
    expect(after.slice(1000).every((r) => r.cached === 'false')).toBe(true);
    // The new answers are stored too: a third run sends nothing and needs no batch at all.
    calls = up.calls;
    const third = await run(reviews('a1100.csv', texts(1100)), join(dir, 'a1100.again.csv'), runsDir);
    expect(third.state).toBe('done');
    expect(third.run).toBeUndefined();
    expect((await uploadedSince(calls)).lines).toBe(0);
    expect(readOut(join(dir, 'a1100.again.csv'))).toEqual(after.map(({ cached: _c, ...row }) => row));
  });

  it('writes only its slice when every answer of a slice comes from the cache (bug: the whole table, other slices missing)', async () => {
    const runsDir = join(dir, 'runs-s');
    const input = reviews('s.csv', texts(60));
    const slice = { index: 0, count: 2 };
    const first = await run(input, join(dir, 's1.csv'), runsDir, { slice });
    const calls = (await service.records()).calls.length;
    const again = await run(input, join(dir, 's2.csv'), runsDir, { slice });
    expect(again.prepared.reuse?.cached).toBe(first.prepared.rows);
    expect((await uploadedSince(calls)).lines).toBe(0);
    const before = readOut(join(dir, 's1.csv'));
    const after = readOut(join(dir, 's2.csv'));
    expect(before.length).toBeGreaterThan(0);
    expect(before.length).toBeLessThan(60);
    expect(after.map((r) => [r.id, r.status, r.content])).toEqual(
      before.map((r) => [r.id, r.status, r.content]),
    );
  });

  it('bypasses the cache with cache: false', async () => {
    const runsDir = join(dir, 'runs-b');
    const input = reviews('b.csv', texts(40));
    await run(input, join(dir, 'b1.csv'), runsDir);
    const calls = (await service.records()).calls.length;
    const again = await run(input, join(dir, 'b2.csv'), runsDir, { cache: false, newRun: true });
    expect(again.state).toBe('done');
    expect((await uploadedSince(calls)).lines).toBe(40);
    expect(again.prepared.reuse).toMatchObject({ cache: false, cached: 0 });
  });

  it('does not cache answers without temperature 0 or a seed, unless dedup is true', async () => {
    const runsDir = join(dir, 'runs-c');
    const input = reviews('c.csv', texts(30));
    const plain = { temperature: undefined };
    const first = await run(input, join(dir, 'c1.csv'), runsDir, plain);
    expect(first.prepared.reuse?.keyed).toBe(0);
    expect(first.settled?.stored).toBe(0);
    const calls = (await service.records()).calls.length;
    const second = await run(input, join(dir, 'c2.csv'), runsDir, { ...plain, newRun: true, dedup: true });
    expect((await uploadedSince(calls)).lines).toBe(30);
    expect(second.settled?.stored).toBe(30);
  });
});

describe('identical requests within a run', () => {
  it('sends each distinct request once and gives its answer to every row that asked, under its own id', async () => {
    const runsDir = join(dir, 'runs-d');
    // 90 rows, 30 distinct reviews, each three times, spread out.
    const rows = Array.from({ length: 90 }, (_, i) => `review ${i % 30}: the same again`);
    const out = join(dir, 'd.csv');
    const calls = (await service.records()).calls.length;
    const result = await run(reviews('d.csv', rows), out, runsDir, { include: ['custom_id'] });
    expect(result.state).toBe('done');
    expect((await uploadedSince(calls)).lines).toBe(30);
    expect(result.prepared.reuse).toMatchObject({ keyed: 90, sent: 30, duplicates: 60 });
    expect(result.settled?.fannedOut).toBe(60);
    const table = readOut(out);
    expect(table.map((r) => r.id)).toEqual(rows.map((_, i) => `k${i}`));
    expect(table.map((r) => r.custom_id)).toEqual(rows.map((_, i) => `k${i}`));
    expect(table.every((r) => r.status === 'ok')).toBe(true);
    for (let i = 30; i < 90; i++) expect(table[i]!.content).toBe(table[i % 30]!.content);
  });

  it('sends repeats of requests that are not the same draw, and counts what dedup would save', async () => {
    const runsDir = join(dir, 'runs-e');
    const rows = Array.from({ length: 20 }, (_, i) => `review ${i % 5}: again`);
    const calls = (await service.records()).calls.length;
    const result = await run(reviews('e.csv', rows), join(dir, 'e.csv'), runsDir, { temperature: 0.7 });
    expect((await uploadedSince(calls)).lines).toBe(20);
    expect(result.prepared.reuse).toMatchObject({ keyed: 0, duplicates: 0 });
    expect(result.repeats).toBe(15);
  });

  it('sends every row with dedup: false and no cache', async () => {
    const runsDir = join(dir, 'runs-f');
    const rows = Array.from({ length: 20 }, (_, i) => `review ${i % 5}: again`);
    const calls = (await service.records()).calls.length;
    const result = await run(reviews('f.csv', rows), join(dir, 'f.csv'), runsDir, {
      dedup: false,
      cache: false,
    });
    expect((await uploadedSince(calls)).lines).toBe(20);
    expect(result.prepared.reuse).toBeUndefined();
    expect(result.repeats).toBe(15);
  });
});
