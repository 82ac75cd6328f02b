import { describe, expect, it } from 'vitest';
import { ArrowBatchBuilder } from '../../../src/core/arrow/arrow-batch-builder.js';
import { loadArrow } from '../../../src/core/arrow/arrow-lib.js';
import { ObjectRowBatch } from '../../../src/core/rows/object-row-batch.js';
import type { Row } from '../../../src/types.js';

const row = (index: number, values: Row['values']): Row => ({
  kind: 'row',
  index,
  file: 't',
  line: index,
  values,
});

describe('ArrowBatchBuilder', () => {
  it('builds text and int64 columns as vectorFromArray would: nulls, empty strings, any UTF-8, big integers', async () => {
    const arrow = await loadArrow();
    const texts = ['plain', null, '', 'é ü 中文 😀', 'lone \ud800 surrogate', 'quote " and \n newline', null];
    const numbers = [1, null, 0, -5, 9007199254740991, null, 42];
    const rows = new ObjectRowBatch(texts.map((t, i) => row(i + 1, { t, n: numbers[i] ?? null })));
    const batch = new ArrowBatchBuilder(arrow).fromRows(rows);
    expect(String(batch.schema.fields.map((f) => f.type))).toBe('Utf8,Int64');
    const t = batch.getChildAt(0)!;
    const n = batch.getChildAt(1)!;
    const viaBuilder = arrow.vectorFromArray(
      texts.map((v) => v),
      new arrow.Utf8(),
    );
    expect(t.nullCount).toBe(2);
    expect(n.nullCount).toBe(2);
    for (let i = 0; i < texts.length; i++) {
      expect(t.get(i)).toBe(viaBuilder.get(i));
      expect(n.get(i)).toBe(numbers[i] === null ? null : BigInt(numbers[i]!));
    }
    // The same bytes as the builder's: the lone surrogate too (U+FFFD).
    const offsets = [...viaBuilder.data[0]!.valueOffsets.subarray(0, texts.length + 1)];
    expect([...t.data[0]!.valueOffsets]).toEqual(offsets);
    const end = offsets.at(-1)!;
    expect(Buffer.from(t.data[0]!.values.subarray(0, end))).toEqual(
      Buffer.from(viaBuilder.data[0]!.values.subarray(0, end)),
    );
  });
});
