import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { partitionOf } from '../../../src/core/join/hash-join.js';
import {
  type JoinedShare,
  type JoinShare,
  joinPartition,
  joinShare,
} from '../../../src/core/join/partition-join.js';
import { SpillCursor, SpillFile } from '../../../src/core/join/spill-file.js';
import { WorkerPool } from '../../../src/internal/worker-pool.js';
import { tempDir } from '../../helpers.js';

const dir = tempDir('bp-join-share-');
const PARTITIONS = 7;

/** Every line of each partition of a joined file, partition by partition. */
async function linesOf(file: SpillFile, partitions: readonly number[]): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const p of partitions) {
    const cursor = new SpillCursor(file, p);
    const lines: string[] = [];
    while (await cursor.load())
      for (let line = cursor.next(); line !== undefined; line = cursor.next()) lines.push(line);
    out.set(p, lines);
  }
  return out;
}

describe('step 3 of the hash join on several threads', () => {
  it('joins each partition once, as one thread does, whichever thread takes it', async () => {
    // Two result files (as two parsing threads write them): ids row-1..row-3000, some twice with
    // another rank (the better, or on a tie the later, wins), some never asked for (orphans).
    const results = [
      new SpillFile(join(dir, 'results-0'), PARTITIONS),
      new SpillFile(join(dir, 'results-1'), PARTITIONS),
    ];
    const add = (file: SpillFile, id: string, entry: string) => {
      const json = JSON.stringify(id);
      return file.append(partitionOf(id, PARTITIONS), `${json}\t${entry}\n`);
    };
    for (let i = 1; i <= 3000; i++) {
      await add(results[i % 2]!, `row-${i}`, `0${i % 3},answer ${i}`);
      if (i % 11 === 0) await add(results[1]!, `row-${i}`, `${i % 2 ? 0 : 5}1,again ${i}`);
    }
    for (let i = 1; i <= 40; i++) await add(results[0]!, `orphan-${i}`, '01,nobody asked');
    // Ids beyond ASCII (and one with a quote) are found by their bytes as well.
    const wide = ['é-1', 'ü"2', '😀-3'];
    for (const id of wide) await add(results[0]!, id, `01,${id}`);
    // Keys in source order: rows after row-3000 have no result.
    const keys = new SpillFile(join(dir, 'keys'), PARTITIONS);
    for (const id of [...Array.from({ length: 4500 }, (_, i) => `row-${i + 1}`), ...wide]) {
      await keys.append(partitionOf(id, PARTITIONS), `${JSON.stringify(id)}\n`);
    }
    for (const file of [...results, keys]) await file.flush();

    // One thread, every partition: the reference.
    const one = new SpillFile(join(dir, 'joined-one'), PARTITIONS);
    let duplicates = 0;
    let orphans = 0;
    for (let p = 0; p < PARTITIONS; p++) {
      const done = await joinPartition(p, results, keys, one, undefined);
      duplicates += done.duplicates;
      orphans += done.orphans;
    }
    await one.flush();
    const all = Array.from({ length: PARTITIONS }, (_, p) => p);
    const expected = await linesOf(one, all);
    expect(duplicates).toBe(Math.floor(3000 / 11));
    expect(orphans).toBe(40);
    expect([...expected.values()].flat()).toHaveLength(4500 + wide.length);
    // A better rank wins over the earlier line; on a tie the later line wins.
    const line = (id: string) => [...expected.values()].flat().find((l) => l.startsWith(`"${id}"\t`));
    expect(line('row-22')).toBe('"row-22"\t01,answer 22');
    expect(line('row-11')).toBe('"row-11"\t01,again 11');
    expect(line('row-4500')).toBe('"row-4500"\t');
    for (const id of wide)
      expect(line(JSON.stringify(id).slice(1, -1))).toBe(`${JSON.stringify(id)}\t01,${id}`);

    // Three threads: this one and two of the join's own worker threads.
    const threads = 3;
    const share = (thread: number): JoinShare => ({
      partitions: PARTITIONS,
      results: results.map((f) => ({ path: f.path, index: f.index })),
      keys: { path: keys.path, index: keys.index },
      expected: undefined,
      thread,
      threads,
      out: join(dir, `joined-${thread}`),
    });
    const pool = new WorkerPool<JoinShare, JoinedShare>(
      new URL('../../../src/core/join/partition-join.ts', import.meta.url).href,
      'join-worker',
      threads - 1,
      {},
      'a join',
    );
    let shares: JoinedShare[];
    try {
      shares = await Promise.all([joinShare(share(0)), pool.run(share(1)), pool.run(share(2))]);
    } finally {
      await pool.close();
    }
    expect(shares.flatMap((s) => s.partitions).sort()).toEqual(all);
    expect(shares.reduce((n, s) => n + s.duplicates, 0)).toBe(duplicates);
    expect(shares.reduce((n, s) => n + s.orphans, 0)).toBe(orphans);
    for (const s of shares) {
      const got = await linesOf(SpillFile.written(s.joined.path, s.joined.index), s.partitions);
      for (const p of s.partitions) expect(got.get(p)).toEqual(expected.get(p));
    }
    for (const file of [...results, keys, one]) await file.close();
  });
});
