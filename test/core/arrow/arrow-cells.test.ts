import {
  Int64,
  makeData,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Uint64,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { cellText, writeCellCsv } from '../../../src/core/arrow/arrow-cells.js';
import { ByteWriter } from '../../../src/internal/byte-writer.js';
import { random } from '../../fixtures/make-fixtures.js';

/** A timestamp's text by BigInt arithmetic and Date (the reference): every stored fraction digit. */
function reference(value: bigint, per: bigint, digits: number): string {
  let seconds = value / per;
  let fraction = value % per;
  if (fraction < 0n) {
    fraction += per;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString();
  return `${iso.slice(0, iso.indexOf('.'))}${digits === 0 ? '' : `.${fraction.toString().padStart(digits, '0')}`}`;
}

describe('cellText of timestamps', () => {
  it('matches BigInt and Date for every unit: near 2^53, negative, years past 9999, random', () => {
    const next = random(11);
    const values: bigint[] = [0n, -1n, 1n, 9007199254740991n, -9007199254740991n, 9007199254740993n];
    for (let k = 0; k < 20_000; k++) {
      values.push(BigInt(Math.floor(next() * 2 ** 53)) * (next() < 0.5 ? -1n : 1n));
      values.push(9007199254740991n - BigInt(k), BigInt(k) * 1_000_000_000n - 1n);
    }
    const units = [
      [new TimestampSecond(), 1n, 0],
      [new TimestampMillisecond(), 1000n, 3],
      [new TimestampMicrosecond(), 1_000_000n, 6],
      [new TimestampNanosecond(), 1_000_000_000n, 9],
    ] as const;
    for (const [type, per, digits] of units) {
      // Seconds past Date's range are left out: they throw, as Date does.
      const fit = values.filter((v) => (v / per < 0n ? -v / per : v / per) <= 8_640_000_000_000n);
      const data = makeData({ type, length: fit.length, nullCount: 0, data: BigInt64Array.from(fit) });
      for (let i = 0; i < fit.length; i++)
        if (cellText(data, i) !== reference(fit[i]!, per, digits))
          expect(cellText(data, i), `${String(type)} ${fit[i]}`).toBe(reference(fit[i]!, per, digits));
    }
  });
});

describe('writeCellCsv of 64-bit integers', () => {
  it('writes every digit: around 2^53, 2^63 and 2^64, negative, unsigned', () => {
    const signed = [0n, -1n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, -(2n ** 53n)];
    signed.push(2n ** 63n - 1n, -(2n ** 63n), 4294967295n, 4294967296n, -4294967296n, -4294967297n);
    const unsigned = [0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, 4294967296n];
    for (const [type, values, Array64] of [
      [new Int64(), signed, BigInt64Array],
      [new Uint64(), unsigned, BigUint64Array],
    ] as const) {
      const data = makeData({
        type,
        length: values.length,
        nullCount: 0,
        data: Array64.from(values),
      } as never);
      const out = new ByteWriter(256);
      for (let i = 0; i < values.length; i++) {
        writeCellCsv(data, i, 0x2c, out);
        out.writeText('|');
      }
      expect(out.buffer.toString('utf8', 0, out.pos)).toBe(values.map((v) => `${v}|`).join(''));
    }
  });
});
