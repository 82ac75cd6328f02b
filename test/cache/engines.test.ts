/**
 * The cache's engines alone: request keys and the same-draw rule, the bounded key table (against a
 * Set), result lines re-addressed to another row, the on-disk cache (concurrent writers, a prune under
 * an open reader, the size bound) and which answers a run stores.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { withCustomId } from '../../src/cache/custom-id-line.js';
import { REQUEST_KEYS_FILE } from '../../src/cache/request-reuse.js';
import { CacheWriter, cacheStats, pruneCache, ResultCache } from '../../src/cache/result-cache.js';
import { settleReuse } from '../../src/cache/settle-reuse.js';
import { KeySet } from '../../src/core/requests/key-set.js';
import { isSameDraw, keyHex, requestKey } from '../../src/core/requests/request-key.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-cache-engines-');
const line = (id: string, body: object) =>
  Buffer.from(JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body }));

describe('requestKey', () => {
  it('keys a request by everything but its custom_id', () => {
    const body = { model: 'qwen-plus', temperature: 0, messages: [{ role: 'user', content: 'hi "there"' }] };
    expect(keyHex(requestKey(line('row-1', body)))).toBe(keyHex(requestKey(line('a\\"b', body))));
    expect(keyHex(requestKey(line('row-1', body)))).not.toBe(
      keyHex(requestKey(line('row-1', { ...body, model: 'qwen-max' }))),
    );
    // A trailing newline, and a line inside a larger buffer, key the same.
    const text = Buffer.concat([Buffer.from('xx'), line('row-9', body), Buffer.from('\n')]);
    expect(keyHex(requestKey(text, 2, text.length))).toBe(keyHex(requestKey(line('row-1', body))));
  });

  it('tells a same draw (temperature 0 or a seed) from one that is not', () => {
    const m = [{ role: 'user', content: 'say "temperature":0 and "seed":1' }];
    expect(isSameDraw(line('r', { model: 'm', temperature: 0, messages: m }))).toBe(true);
    expect(isSameDraw(line('r', { model: 'm', temperature: 0.0, messages: m }))).toBe(true);
    expect(isSameDraw(line('r', { model: 'm', seed: 7, messages: m }))).toBe(true);
    expect(isSameDraw(line('r', { model: 'm', temperature: 0.7, messages: m }))).toBe(false);
    expect(isSameDraw(line('r', { model: 'm', messages: m }))).toBe(false);
    // A schema property named seed is no seed.
    const format = {
      type: 'json_schema',
      json_schema: { schema: { properties: { seed: { type: 'number' } } } },
    };
    expect(isSameDraw(line('r', { model: 'm', response_format: format, messages: m }))).toBe(false);
  });
});

describe('KeySet', () => {
  it('says present exactly for the keys added before, as a Set does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 3000 }), (values) => {
        const set = new KeySet();
        const seen = new Set<number>();
        for (const v of values) {
          const key = requestKey(Buffer.from(`v${v}`));
          expect(set.add(key)).toBe(seen.has(v) ? 'present' : 'added');
          seen.add(v);
        }
        expect(set.size).toBe(seen.size);
      }),
      { numRuns: 20 },
    );
  });

  it('keeps no more than its bound, and still knows the keys it kept', () => {
    const set = new KeySet(100_000);
    const keys = Array.from({ length: 100_010 }, () => randomBytes(16));
    const verdicts = keys.map((k) => set.add(k));
    expect(verdicts.filter((v) => v === 'added')).toHaveLength(100_000);
    expect(verdicts.slice(100_000)).toEqual(Array(10).fill('full'));
    expect(set.add(keys[5]!)).toBe('present');
    expect(set.add(Buffer.alloc(16))).toBe('full');
    // 16 bytes a key in the log and 4 a slot, the table at most half full (and doubled when it
    // grew), the log in blocks of 65,536 keys.
    expect(set.bytes).toBeLessThanOrEqual(2 * 65_536 * 16 + 100_000 * 4 * 2 * 2);
  });

  it('made for the keys expected, takes them without growing, no larger than growing would have made it', () => {
    for (const expected of [1_000, 200_000, 300_000]) {
      const grown = new KeySet();
      const presized = new KeySet(undefined, expected);
      const before = presized.tableBytes;
      // An estimate 4/3 of the keys that come: the table is still no larger than the grown one.
      const keys = Array.from({ length: Math.floor((expected * 3) / 4) }, () => randomBytes(16));
      for (const key of keys) {
        expect(presized.add(key)).toBe('added');
        grown.add(key);
      }
      for (const key of keys.slice(0, 100)) expect(presized.add(key)).toBe('present');
      expect(presized.size).toBe(keys.length);
      if (expected > 1_000) expect(presized.tableBytes).toBe(before);
      expect(presized.bytes).toBeLessThanOrEqual(grown.bytes);
    }
    // The bound caps the estimate.
    expect(new KeySet(1_000, 10_000_000).bytes).toBe(new KeySet(1_000).bytes);
  });
});

describe('withCustomId', () => {
  it('re-addresses a result line to another id, escapes kept, and marks it cached', () => {
    const original = Buffer.from(
      '{"id":"b1","custom_id":"k\\"1","response":{"status_code":200,"body":{"choices":[{"message":{"content":"ok"}}]}},"error":null}',
    );
    const moved = JSON.parse(withCustomId(original, 'row "7"\n', true).toString()) as Record<string, unknown>;
    expect(moved).toEqual({ ...JSON.parse(original.toString()), custom_id: 'row "7"\n', cached: true });
    const plain = JSON.parse(withCustomId(original, 'x').toString()) as Record<string, unknown>;
    expect(plain.custom_id).toBe('x');
    expect(plain.cached).toBeUndefined();
  });
});

describe('ResultCache', () => {
  it('takes answers from writers committing at once, and looks each up', async () => {
    const cacheDir = join(dir, 'concurrent');
    const writers = Array.from({ length: 4 }, () => new CacheWriter(cacheDir));
    const keys: Buffer[][] = writers.map(() => []);
    await Promise.all(
      writers.map(async (writer, w) => {
        for (let i = 0; i < 500; i++) {
          const key = requestKey(Buffer.from(`w${w}-${i}`));
          keys[w]!.push(key);
          await writer.add(key, Buffer.from(JSON.stringify({ custom_id: `w${w}-${i}`, n: i })));
        }
        await writer.commit();
      }),
    );
    const cache = await ResultCache.open(cacheDir);
    try {
      expect(cache.entries).toBe(2000);
      for (let w = 0; w < 4; w++)
        for (let i = 0; i < 500; i++)
          expect(JSON.parse(cache.lookup(keys[w]![i]!)!.toString())).toEqual({
            custom_id: `w${w}-${i}`,
            n: i,
          });
      expect(cache.lookup(requestKey(Buffer.from('none')))).toBeUndefined();
      // Pruned while open: what this reader opened stays readable; a new reader sees nothing.
      await pruneCache(cacheDir, { all: true });
      expect(cache.lookup(keys[2]![7]!)).toBeDefined();
      const fresh = await ResultCache.open(cacheDir);
      expect(fresh.entries).toBe(0);
      fresh.close();
    } finally {
      cache.close();
    }
  });

  it('stays within its size bound, dropping the oldest segments', async () => {
    const cacheDir = join(dir, 'bounded');
    for (let s = 0; s < 5; s++) {
      const writer = new CacheWriter(cacheDir);
      for (let i = 0; i < 100; i++)
        await writer.add(requestKey(Buffer.from(`${s}-${i}`)), Buffer.alloc(1000, 0x61));
      await writer.commit(250_000);
      await new Promise((r) => setTimeout(r, 5));
    }
    const stats = await cacheStats(cacheDir);
    expect(stats.bytes).toBeLessThanOrEqual(250_000);
    expect(stats.segments).toBe(2);
    const cache = await ResultCache.open(cacheDir);
    expect(cache.lookup(requestKey(Buffer.from('4-3')))).toBeDefined();
    expect(cache.lookup(requestKey(Buffer.from('0-3')))).toBeUndefined();
    cache.close();
  });
});

describe('settleReuse', () => {
  it('stores only answers (not failed, truncated or expired ones) and copies every result to the duplicates', async () => {
    const runDir = join(dir, 'settle');
    const cacheDir = join(dir, 'settle-cache');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(runDir, { recursive: true });
    const ok = (id: string, finish = 'stop') =>
      JSON.stringify({
        custom_id: id,
        response: {
          status_code: 200,
          body: { choices: [{ message: { content: `a ${id}` }, finish_reason: finish }] },
        },
        error: null,
      });
    const results = [
      ok('a'),
      ok('b', 'length'),
      JSON.stringify({
        custom_id: 'c',
        response: null,
        error: { code: 'batch_expired', message: 'expired' },
      }),
      JSON.stringify({
        custom_id: 'd',
        response: { status_code: 500, body: { error: { message: 'boom' } } },
        error: null,
      }),
    ];
    writeFileSync(join(runDir, 'results.jsonl'), `${results.join('\n')}\n`);
    const hex = (s: string) => keyHex(requestKey(Buffer.from(s)));
    writeFileSync(
      join(runDir, REQUEST_KEYS_FILE),
      `${['"a"\tA\ts', '"b"\tB\ts', '"c"\tC\ts', '"d"\tD\ts', '"a2"\tA\td', '"c2"\tC\td']
        .map((l) => l.replace(/\t([A-D])\t/, (_m, k: string) => `\t${hex(k)}\t`))
        .join('\n')}\n`,
    );
    const settled = await settleReuse(runDir, join(runDir, 'results.jsonl'), { cacheDir });
    expect(settled).toMatchObject({ stored: 1, fannedOut: 2 });
    const fanned = (await import('node:fs'))
      .readFileSync(settled.fanout!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { custom_id: string; error: unknown });
    expect(fanned.map((l) => l.custom_id).sort()).toEqual(['a2', 'c2']);
    expect(fanned.find((l) => l.custom_id === 'c2')!.error).toEqual({
      code: 'batch_expired',
      message: 'expired',
    });
    const cache = await ResultCache.open(cacheDir);
    expect(cache.lookup(requestKey(Buffer.from('A')))).toBeDefined();
    for (const k of ['B', 'C', 'D']) expect(cache.lookup(requestKey(Buffer.from(k)))).toBeUndefined();
    cache.close();
    // Settled once: the same call again stores nothing more.
    await settleReuse(runDir, join(runDir, 'results.jsonl'), { cacheDir });
    expect((await cacheStats(cacheDir)).entries).toBe(1);
  });
});
