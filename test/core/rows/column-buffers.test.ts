import { describe, expect, it } from 'vitest';
import { ColumnMemory, FRESH_COLUMNS } from '../../../src/core/rows/column-buffers.js';

describe('ColumnMemory', () => {
  it('hands out the same buffers, in the order asked, batch after batch, and larger ones when outgrown', () => {
    const memory = new ColumnMemory();
    const first = [memory.bytes(1000), memory.int32(101), memory.zeroed(13)];
    first[0]!.fill(7);
    memory.reuse();
    const second = [memory.bytes(900), memory.int32(101), memory.zeroed(13)];
    expect(second.map((b) => b.buffer)).toEqual(first.map((b) => b.buffer));
    expect(second.map((b) => b.length)).toEqual([900, 101, 13]);
    // Contents of `bytes` are what the last batch left; `zeroed` is zero whatever was there.
    expect(second[0]![0]).toBe(7);
    second[2]!.fill(9);
    memory.reuse();
    const third = [memory.bytes(5000), memory.int32(101), memory.zeroed(13)];
    expect(third[0]!.buffer).not.toBe(first[0]!.buffer);
    expect(third[1]!.buffer).toBe(first[1]!.buffer);
    expect([...third[2]!]).toEqual(new Array(13).fill(0));
    // Within a batch, no two buffers share memory.
    expect(new Set(third.map((b) => b.buffer)).size).toBe(3);
  });

  it('FRESH_COLUMNS makes new buffers every time, plain typed arrays of the size asked', () => {
    const a = FRESH_COLUMNS.bytes(8);
    const b = FRESH_COLUMNS.bytes(8);
    expect(a.buffer).not.toBe(b.buffer);
    expect(a.constructor).toBe(Uint8Array);
    expect(a.length).toBe(8);
    expect([...FRESH_COLUMNS.zeroed(5)]).toEqual([0, 0, 0, 0, 0]);
    expect(FRESH_COLUMNS.int32(3).length).toBe(3);
  });
});
