import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { FilePageHold, type KeptPage } from '../../../src/core/parquet/parquet-page-hold.js';
import { parquetSink } from '../../../src/sinks/parquet-sink.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';

const dir = tempDir('bp-parquet-page-hold-');

/** A page of `length` bytes whose every byte tells its page and place. */
function page(n: number, length: number): [Uint8Array, Uint8Array] {
  const header = Uint8Array.from([0xf0, n & 0xff, (n >> 8) & 0xff]);
  const body = new Uint8Array(length);
  for (let i = 0; i < length; i++) body[i] = (n * 31 + i * 7) & 0xff;
  return [header, body];
}

/** What writeOut hands on, copied (the hold reuses its read buffer once a write is taken). */
async function writtenOut(hold: FilePageHold, pages: readonly KeptPage[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await hold.writeOut(pages, async (bytes) => {
    out.push(Buffer.from(bytes));
  });
  return Buffer.concat(out);
}

describe('FilePageHold', () => {
  it('gives back every page in the order asked, whatever order they were kept in, over groups', async () => {
    const path = join(dir, 'order.parquet.pages');
    const hold = new FilePageHold(path);
    for (let group = 0; group < 3; group++) {
      // Three columns' pages kept interleaved (as they finish compressing), one past the read size.
      const sizes = [100, 70_000, 1, 1_500_000, 20, 333, 4096, 0, 9];
      const made = sizes.map((size, i) => page(group * 100 + i, size));
      const kept = await Promise.all(made.map(([header, body]) => hold.keep(header, body)));
      for (const column of [
        [0, 3, 6],
        [1, 4, 7],
        [2, 5, 8],
      ]) {
        const expected = Buffer.concat(column.flatMap((i) => made[i]!));
        expect(
          await writtenOut(
            hold,
            column.map((i) => kept[i]!),
          ),
        ).toEqual(expected);
      }
      hold.clear();
    }
    await hold.close();
    await hold.close();
    expect(existsSync(path)).toBe(false);
  });

  it('is removed from the directory as soon as it is open, and reads on through its handle', async () => {
    const sub = join(dir, 'removed');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(sub);
    const hold = new FilePageHold(join(sub, 'x.pages'));
    const [header, body] = page(1, 10_000);
    const kept = await hold.keep(header, body);
    expect(readdirSync(sub)).toEqual([]);
    expect(await writtenOut(hold, [kept])).toEqual(Buffer.concat([header, body]));
    await hold.close();
  });

  it('a spill file that cannot be made fails with an error naming it', async () => {
    const path = join(dir, 'no-such-dir', 'x.pages');
    const hold = new FilePageHold(path);
    await expect(hold.keep(...page(1, 10))).rejects.toThrow(path);
    await hold.close();
  });
});

describe('parquetSink with its spill file', () => {
  it('writes many row groups whose pages waited on disk; DuckDB reads the rows back in order, and no spill file is left', async () => {
    const out = join(dir, 'sink', 'many.parquet');
    const rows = 30_000;
    async function* source() {
      for (let i = 0; i < rows; i++)
        yield { id: i, text: `row ${i} ${'x'.repeat(i % 97)}`, score: i % 7 === 0 ? null : i / 4 };
    }
    await pipeline(source(), parquetSink(out, { rowGroupSize: 4000, compression: 'zstd' }));
    expect(readdirSync(join(dir, 'sink'))).toEqual(['many.parquet']);
    const db = await duckdb();
    try {
      const [summary] = await db.rows(
        `SELECT count(*) AS n,
           bool_and(text = 'row ' || CAST(id AS BIGINT) || ' ' || repeat('x', CAST(id AS BIGINT) % 97)) AS texts,
           bool_and(CASE WHEN CAST(id AS BIGINT) % 7 = 0 THEN score IS NULL ELSE score = id / 4 END) AS scores
         FROM '${out}'`,
      );
      expect(summary).toEqual({ n: String(rows), texts: true, scores: true });
      const groups = await db.rows(`SELECT DISTINCT row_group_id FROM parquet_metadata('${out}')`);
      expect(groups.length).toBe(Math.ceil(rows / 4000));
      const ids = await db.rows(`SELECT CAST(id AS BIGINT) AS id FROM '${out}'`);
      expect(ids.every((row, i) => Number(row.id) === i)).toBe(true);
    } finally {
      db.close();
    }
    expect(readFileSync(out).subarray(0, 4).toString('latin1')).toBe('PAR1');
  });
});
