import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromArrays } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { loadArrow } from '../../../src/core/arrow/arrow-lib.js';
import { parquetWriter } from '../../../src/core/parquet/parquet-writer.js';
import { parquetSink } from '../../../src/sinks/parquet-sink.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';

const dir = tempDir('bp-parquet-write-');

describe('parquetWriter', () => {
  it('writes every batch, in order, over many row groups; DuckDB reads them back', async () => {
    const chunks: Buffer[] = [];
    const writer = parquetWriter(
      await loadArrow(),
      { rowGroupSize: 4096, compression: 'zstd' },
      (chunk) => {
        chunks.push(Buffer.from(chunk));
        return undefined;
      },
      join(dir, 'many.pages'),
    );
    for (let b = 0; b < 40; b++) {
      const ids = Float64Array.from({ length: 1000 }, (_, i) => b * 1000 + i);
      const table = tableFromArrays({ id: ids, text: Array.from(ids, (id) => `row ${id}`) });
      await writer.write(table.batches[0]!);
    }
    await writer.finish();
    const path = join(dir, 'many.parquet');
    writeFileSync(path, Buffer.concat(chunks));
    const db = await duckdb();
    try {
      const [summary] = await db.rows(
        `SELECT count(*) AS n, count(DISTINCT text) AS texts, bool_and(text = 'row ' || CAST(id AS BIGINT)) AS same FROM '${path}'`,
      );
      expect(summary).toEqual({ n: '40000', texts: '40000', same: true });
      const groups = await db.rows(`SELECT DISTINCT row_group_id FROM parquet_metadata('${path}')`);
      expect(groups.length).toBe(10);
      const ids = await db.rows(`SELECT CAST(id AS BIGINT) AS id FROM '${path}'`);
      expect(ids.every((row, i) => Number(row.id) === i)).toBe(true);
    } finally {
      db.close();
    }
  });

  it('bytes that cannot be written fail the writer with that error', async () => {
    const writer = parquetWriter(
      await loadArrow(),
      { rowGroupSize: 1000, compression: 'snappy' },
      () => Promise.reject(new Error('disk full')),
      join(dir, 'full.pages'),
    );
    const failed = (async () => {
      for (let b = 0; b < 20; b++) {
        await writer.write(
          tableFromArrays({ id: Float64Array.from({ length: 1000 }, (_, i) => i) }).batches[0]!,
        );
      }
      await writer.finish();
    })();
    await expect(failed).rejects.toThrow('disk full');
    await writer.abort();
  });

  it('a sink destroyed before it finishes leaves no file', async () => {
    const path = join(dir, 'destroyed.parquet');
    const sink = parquetSink(path);
    for (let i = 0; i < 5000; i++) sink.write({ id: i, text: `row ${i}` });
    sink.destroy();
    await new Promise((resolve) => sink.on('close', resolve));
    const { existsSync } = await import('node:fs');
    expect(existsSync(path)).toBe(false);
    // Nor the file its row group's pages waited in.
    expect(existsSync(`${path}.pages`)).toBe(false);
  });
});
