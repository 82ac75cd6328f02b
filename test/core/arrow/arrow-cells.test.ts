import {
  makeData,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { cellText } from '../../../src/core/arrow/arrow-cells.js';
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
