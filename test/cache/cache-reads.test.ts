/**
 * The result cache's lookups and batched reads: keys that share their first bytes (the search orders
 * by them first), a key stored in two segments (the newest answers), answers read together in any
 * order, a segment cut short (an entry past its end answers nothing), and segments of the first
 * format (SHA-256 keys) never read.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CacheWriter, cacheStats, pruneCache, ResultCache } from '../../src/cache/result-cache.js';
import { KEY_BYTES } from '../../src/core/requests/request-key.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-cache-reads-');

/** A key whose first four bytes are `head` (when given), the rest random. */
function key(head?: number): Buffer {
  const k = randomBytes(KEY_BYTES);
  if (head !== undefined) k.writeUInt32BE(head, 0);
  return k;
}

async function fill(cacheDir: string, entries: Array<[Buffer, string]>): Promise<void> {
  const writer = new CacheWriter(cacheDir);
  for (const [k, answer] of entries) await writer.add(k, Buffer.from(answer));
  await writer.commit();
}

describe('ResultCache lookups', () => {
  it('finds every stored key, ties on the first bytes included, and no other', async () => {
    const cacheDir = join(dir, 'ties');
    const stored: Array<[Buffer, string]> = [];
    for (let i = 0; i < 300; i++) stored.push([key(i < 100 ? 0xaabbccdd : i < 150 ? 0 : undefined), `a${i}`]);
    stored.push([Buffer.alloc(KEY_BYTES, 0xff), 'last']);
    stored.push([Buffer.alloc(KEY_BYTES, 0), 'zero']);
    await fill(cacheDir, stored);
    const cache = await ResultCache.open(cacheDir);
    for (const [k, answer] of stored) expect(cache.lookup(k)?.toString()).toBe(answer);
    // Absent keys, among the ties and at either end.
    for (const k of [key(0xaabbccdd), key(0), key(0xffffffff), key(0xaabbccdc), key()])
      expect(cache.lookup(k)).toBeUndefined();
    // A key inside a larger array, at an offset.
    const packed = Buffer.concat([Buffer.from('xyz'), stored[42]![0]]);
    expect(cache.lookup(packed, 3)?.toString()).toBe('a42');
    cache.close();
  });

  it('answers a key stored twice from the newer segment, and reads many answers in any order', async () => {
    const cacheDir = join(dir, 'two');
    const older: Array<[Buffer, string]> = Array.from({ length: 2000 }, (_, i) => [key(), `old ${i}`]);
    await fill(cacheDir, older);
    await new Promise((r) => setTimeout(r, 5));
    const newer: Array<[Buffer, string]> = Array.from({ length: 2000 }, (_, i) => [
      i % 2 === 0 ? older[i]![0] : key(),
      `new ${i} ${'x'.repeat(i % 50)}`,
    ]);
    await fill(cacheDir, newer);
    const cache = await ResultCache.open(cacheDir);
    const expected = new Map<string, string>();
    for (const [k, a] of older) expected.set(k.toString('hex'), a);
    for (const [k, a] of newer) expected.set(k.toString('hex'), a);
    const keys = [...expected.keys()].map((h) => Buffer.from(h, 'hex'));
    // Shuffled, with repeats: each hit answered in its own place.
    const asked = [...keys, ...keys.slice(0, 500)].sort(() => Math.random() - 0.5);
    const hits = asked.map((k) => cache.locate(k)!);
    const answers = cache.readAll(hits);
    expect(answers.map((a) => a?.toString())).toEqual(asked.map((k) => expected.get(k.toString('hex'))));
    cache.close();
  });

  it('leaves out answers past the end of a segment cut short', async () => {
    const cacheDir = join(dir, 'short');
    const stored: Array<[Buffer, string]> = Array.from({ length: 10 }, (_, i) => [key(), `answer ${i}`]);
    const writer = new CacheWriter(cacheDir);
    for (const [k, a] of stored) await writer.add(k, Buffer.from(a));
    await writer.commit();
    const { readdirSync } = await import('node:fs');
    const segment = readdirSync(cacheDir).find((f) => f.endsWith('.seg'))!;
    // The first five answers ("answer N\n", 9 bytes each) stay whole.
    truncateSync(join(cacheDir, segment), 5 * 9);
    const cache = await ResultCache.open(cacheDir);
    expect(stored.map(([k]) => cache.lookup(k)?.toString())).toEqual([
      ...stored.slice(0, 5).map(([, a]) => a),
      ...Array(5).fill(undefined),
    ]);
    cache.close();
  });
});

describe('A cache written with SHA-256 keys (the first format)', () => {
  it('is read as empty, counted as stale by stats, and removed by a prune, new segments kept', async () => {
    const cacheDir = join(dir, 'sha256');
    const k = key();
    await fill(cacheDir, [[k, 'an answer']]);
    // The same segment under the first format's names: `<name>.idx` and `<name>.seg`.
    const name = readdirSync(cacheDir)
      .find((f) => f.endsWith('.xxh128.idx'))!
      .slice(0, -'.xxh128.idx'.length);
    for (const ext of ['idx', 'seg'])
      renameSync(join(cacheDir, `${name}.xxh128.${ext}`), join(cacheDir, `${name}.${ext}`));
    const cache = await ResultCache.open(cacheDir);
    expect(cache.entries).toBe(0);
    expect(cache.lookup(k)).toBeUndefined();
    cache.close();
    const stats = await cacheStats(cacheDir);
    expect(stats).toMatchObject({ segments: 0, entries: 0, bytes: 0 });
    // One index entry (32 bytes) and the answer's line.
    expect(stats.staleBytes).toBe(32 + 'an answer\n'.length);
    // A segment of this format beside them stays; the old ones go, however young.
    await fill(cacheDir, [[key(), 'kept']]);
    expect(readdirSync(cacheDir).filter((f) => /^\d+-\d+-[0-9a-f]+\.(idx|seg)$/.test(f))).toEqual([]);
    expect(await cacheStats(cacheDir)).toMatchObject({ segments: 1, entries: 1, staleBytes: 0 });
    // And `prune` removes them when no run adds a segment.
    for (const ext of ['idx', 'seg']) writeFileSync(join(cacheDir, `${name}.${ext}`), 'x');
    const removed = await pruneCache(cacheDir, {});
    expect(removed).toMatchObject({ segments: 1, bytes: 2 });
    expect(await cacheStats(cacheDir)).toMatchObject({ segments: 1, entries: 1, staleBytes: 0 });
  });
});
