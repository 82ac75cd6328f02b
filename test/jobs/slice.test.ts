/**
 * Slices of a table through the library: sliceOfId against an independent reference, the slices of a
 * prepare covering the table once (requests and rejections, duplicate ids caught as without slices),
 * runTable's `slice` (its table holds its slice's rows; an empty slice sends nothing), joinTable's
 * `slice`, and the sliceRows stage in a user's pipeline of plain rows.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sliceOfId } from '../../src/core/rows/row-slice.js';
import { joinTable } from '../../src/jobs/join-table.js';
import { prepare } from '../../src/jobs/prepare.js';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { sharedConnection } from '../../src/run/start-run.js';
import { sliceRows } from '../../src/transforms/slice-rows.js';
import type { Row } from '../../src/types.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-jobs-slice-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ timeScale: 36_000 });
});
afterAll(() => service.close());

/** The documented rule, written apart from the code: FNV-1a 32 over UTF-8, MurmurHash3 fmix32, mod n. */
function referenceSlice(id: string, count: number): number {
  const M = 0xffffffffn;
  let h = 0x811c9dc5n;
  for (const byte of new TextEncoder().encode(id)) h = ((h ^ BigInt(byte)) * 0x01000193n) & M;
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M;
  h ^= h >> 16n;
  return Number(h % BigInt(count));
}

const read = (path: string) =>
  parse(readFileSync(path, 'utf8'), { columns: true }) as Array<Record<string, string>>;
const jsonLines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('sliceOfId', () => {
  it('is the documented hash, for any text (non-ASCII and lone surrogates included)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.integer({ min: 1, max: 10_000 }), (id, count) => {
        expect(sliceOfId(id, count)).toBe(referenceSlice(id, count));
      }),
      { numRuns: 2000 },
    );
  });

  it('spreads row-<n> ids evenly: 100,000 ids over 8 slices, each within 2% of an eighth', () => {
    const sizes = new Array<number>(8).fill(0);
    for (let n = 1; n <= 100_000; n++) sizes[sliceOfId(`row-${n}`, 8)]!++;
    for (const size of sizes) expect(Math.abs(size - 12_500)).toBeLessThan(250);
  });
});

describe('the slices of a prepare', () => {
  // Every 17th row repeats an id of an earlier row; every 23rd has no text (a rejected prompt).
  const rows = Array.from({ length: 300 }, (_, i) => [
    i % 17 === 16 ? `id-${i - 5}` : `id-${i}`,
    i % 23 === 22 ? '' : `t${i}`,
  ]);
  const input = fileWith(dir, 'dups.csv', csvText(['id', 'text'], rows));
  const options = { template: '{{text}}', model: 'qwen-plus', idColumn: 'id', provider: 'local' as const };

  it('cover the table once: the requests and rejections of the whole, duplicate ids caught as without slices', async () => {
    const whole = await prepare(input, { ...options, outDir: join(dir, 'whole') });
    expect(whole.rejections.by_code.BP_DUPLICATE_CUSTOM_ID).toBeGreaterThan(0);
    const requests = new Set<string>();
    const rejected: Array<{ row: number; code: string }> = [];
    let total = 0;
    for (let i = 0; i < 3; i++) {
      const out = join(dir, `part-${i}`);
      const part = await prepare(input, { ...options, outDir: out, slice: { index: i, count: 3 } });
      expect(part.slice).toEqual({ index: i, count: 3 });
      expect(JSON.parse(readFileSync(join(out, 'shards.json'), 'utf8')).slice).toEqual({
        index: i,
        count: 3,
      });
      total += part.rows;
      for (const shard of part.shards)
        for (const line of jsonLines(join(out, shard.file))) {
          const id = line.custom_id as string;
          expect(sliceOfId(id, 3)).toBe(i);
          expect(requests.has(id)).toBe(false);
          requests.add(id);
        }
      for (const r of jsonLines(join(out, 'rejections.jsonl')))
        rejected.push({ row: r.row as number, code: r.code as string });
    }
    expect(total).toBe(300);
    const wholeIds = whole.shards.flatMap((s) =>
      jsonLines(join(dir, 'whole', s.file)).map((l) => l.custom_id),
    );
    expect([...requests].sort()).toEqual([...wholeIds].sort());
    const wholeRejected = jsonLines(join(dir, 'whole', 'rejections.jsonl')).map((r) => ({
      row: r.row,
      code: r.code,
    }));
    expect(rejected.sort((a, b) => a.row - b.row)).toEqual(wholeRejected);
  });

  it('refuses a slice out of range, naming the option', async () => {
    await expect(
      prepare(input, { ...options, outDir: join(dir, 'bad'), slice: { index: 3, count: 3 } }),
    ).rejects.toThrow(/option "slice": expected index from 0 to count - 1/);
  });
});

describe('runTable and joinTable with a slice', () => {
  const connection = () => resolveConnection({ provider: 'local', baseURL: service.url });
  const input = fileWith(
    dir,
    'small.csv',
    csvText(
      ['id', 'text'],
      Array.from({ length: 40 }, (_, i) => [`k${i}`, `text ${i}`]),
    ),
  );
  const base = {
    model: 'qwen-plus',
    template: 'Say: {{text}}',
    idColumn: 'id',
    pollInterval: 0.02,
    runsDir: join(dir, 'runs'),
  };

  it('writes only its slice, in source order; joinTable of every slice run gives every row once', async () => {
    const dirs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const out = join(dir, `small-${i}.csv`);
      const result = await runTable(input, connection(), { ...base, out, slice: { index: i, count: 2 } });
      expect(result.state).toBe('done');
      expect(result.run!.manifest.run_id).toMatch(new RegExp(`-s${i}of2$`));
      dirs.push(result.run!.dir);
      const expected = Array.from({ length: 40 }, (_, r) => `k${r}`).filter((id) => sliceOfId(id, 2) === i);
      expect(read(out).map((r) => r.id)).toEqual(expected);
    }
    const one = await joinTable({
      source: input,
      results: [join(dirs[1]!, 'results.jsonl')],
      idColumn: 'id',
      out: join(dir, 'one.csv'),
      slice: { index: 1, count: 2 },
    });
    expect(one.rows).toBe(read(join(dir, 'small-1.csv')).length);
    expect(one.statuses.ok).toBe(one.rows);
    const all = await joinTable({
      source: input,
      results: dirs.map((d) => join(d, 'results.jsonl')),
      idColumn: 'id',
      out: join(dir, 'all.csv'),
    });
    expect(all.statuses.ok).toBe(40);
    expect(read(join(dir, 'all.csv')).map((r) => r.id)).toEqual(
      Array.from({ length: 40 }, (_, r) => `k${r}`),
    );
  });

  it('an empty slice writes an empty file and sends nothing', async () => {
    const tiny = fileWith(dir, 'tiny.csv', 'id,text\nonly,one row\n');
    const empty = [0, 1, 2, 3].find((i) => sliceOfId('only', 4) !== i)!;
    const before = (await service.records()).calls.length;
    const out = join(dir, 'tiny-empty.csv');
    const result = await runTable(tiny, connection(), { ...base, out, slice: { index: empty, count: 4 } });
    expect(result.state).toBe('done');
    expect(result.run).toBeUndefined();
    expect(result.joined!.rows).toBe(0);
    // As a table with no rows joins: no row, so no columns to name either.
    expect(readFileSync(out, 'utf8')).toBe('');
    expect((await service.records()).calls.length).toBe(before);
  });
});

describe('sliceRows in a pipeline of plain rows', () => {
  it('keeps the rows of its slice, by the id column or the row number', async () => {
    const rows: Row[] = Array.from({ length: 50 }, (_, i) => ({
      kind: 'row',
      index: i + 1,
      file: 'mem',
      line: i + 2,
      values: { id: i % 5 === 0 ? '' : `u${i}`, n: i },
    }));
    const kept = async (slice: { index: number; count: number }, idColumn?: string) => {
      const out: number[] = [];
      await pipeline(
        Readable.from(rows),
        sliceRows({ slice, idColumn }),
        new Writable({
          objectMode: true,
          write(row: Row, _e, done) {
            out.push(row.index);
            done();
          },
        }),
      );
      return out;
    };
    // An empty key is `row-<n>`, as its custom_id is.
    const idOf = (r: Row, byColumn: boolean) =>
      byColumn && r.values.id !== '' ? (r.values.id as string) : `row-${r.index}`;
    for (const byColumn of [true, false]) {
      const seen: number[] = [];
      for (let i = 0; i < 3; i++) {
        const got = await kept({ index: i, count: 3 }, byColumn ? 'id' : undefined);
        expect(got).toEqual(rows.filter((r) => sliceOfId(idOf(r, byColumn), 3) === i).map((r) => r.index));
        seen.push(...got);
      }
      expect(seen.sort((a, b) => a - b)).toEqual(rows.map((r) => r.index));
    }
    expect(() => sliceRows({ slice: { index: 0, count: 0 } })).toThrow(/sliceRows: option "slice.count"/);
  });
});

describe('a slice process and the account rates', () => {
  it('keeps to 1/n of each documented per-account rate, so n slices at once stay within them', () => {
    const dashscope = resolveConnection({ provider: 'dashscope', apiKey: 'k' });
    expect(sharedConnection(dashscope, 4).profile.rateLimits).toEqual({
      createPerMinute: 250,
      queryPerMinute: 250,
      cancelPerMinute: 250,
      listPerMinute: 25,
      concurrentBatches: 250,
    });
    // Never below one call a minute; the connection given is left as it was.
    expect(sharedConnection(dashscope, 1000).profile.rateLimits!.listPerMinute).toBe(1);
    expect(dashscope.profile.rateLimits!.listPerMinute).toBe(100);
    expect(sharedConnection(dashscope, 1)).toBe(dashscope);
  });
});
