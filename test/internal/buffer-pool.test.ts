/**
 * The buffer pool's region: the lines pool's first buffers are carved from the lines memory (where
 * request keys are made in place), never lost, and the pool goes on with buffers of its own past them.
 */
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/internal/buffer-pool.js';

describe('BufferPool with a region', () => {
  it('carves its first buffers from the region, then makes its own, and keeps the region buffers given back', () => {
    const region = new SharedArrayBuffer(4096 + 3 * 1024);
    const pool = new BufferPool(1024, 3, true, { memory: () => region, at: 4096, count: 3 });
    const carved = [pool.take(), pool.take(), pool.take()];
    expect(carved.map((b) => [b.buffer === region, b.byteOffset])).toEqual([
      [true, 4096],
      [true, 5120],
      [true, 6144],
    ]);
    const own = [pool.take(), pool.take(), pool.take()];
    for (const b of own) expect(b.buffer === region || b.length !== 1024).toBe(false);
    // Full of buffers of its own, it still takes the region's back (dropping its own), never the reverse.
    for (const b of own) pool.give(b);
    for (const b of carved) pool.give(b);
    const again = [pool.take(), pool.take(), pool.take()];
    expect(again.every((b) => b.buffer === region)).toBe(true);
    expect(new Set(again.map((b) => b.byteOffset)).size).toBe(3);
    // A buffer given back twice is kept once.
    pool.give(again[0]);
    pool.give(again[0]);
    expect(pool.take()).toBe(again[0]);
    expect(pool.take().buffer === region).toBe(false);
  });
});
