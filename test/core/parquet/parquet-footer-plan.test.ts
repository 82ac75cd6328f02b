import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ArrowRowBatch } from '../../../src/core/arrow/arrow-row-batch.js';
import { readParquetBatches } from '../../../src/core/parquet/parquet-reader.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';
import { ROWS, TYPES_SELECT } from '../../support/parquet-types.js';

const dir = tempDir('bp-parquet-footer-');
const files: Record<string, string> = {};
/** The fixture's flat columns of the types the page decoder reads. */
const PLAIN = [
  'id',
  'i32',
  'u32',
  'u64',
  'f32',
  'f64',
  'flag',
  'txt',
  'bin',
  'day',
  'ts_us',
  'ts_ms',
  'ts_ns',
  'ts_tz',
  'ts_old',
  'nothing',
];

beforeAll(async () => {
  const db = await duckdb();
  try {
    for (const compression of ['zstd', 'snappy']) {
      const path = join(dir, `types-${compression}.parquet`);
      await db.run(
        `COPY (${TYPES_SELECT}) TO '${path}' (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE 4096)`,
      );
      files[compression] = path;
    }
  } finally {
    db.close();
  }
}, 60_000);

/** Every batch of a read, its schema as its layout gives it and each row's values. */
async function readAll(path: string, columns: string[], pageDecoder: boolean) {
  let decoder = '';
  let typed = '';
  let schema: Array<[string, string, boolean]> = [];
  const values: unknown[] = [];
  for await (const batch of readParquetBatches(path, path, {
    columns,
    pageDecoder,
    decodedBy: (by) => {
      decoder = by;
    },
    typedBy: (by) => {
      typed = by;
    },
  }) as AsyncGenerator<ArrowRowBatch>) {
    if (schema.length === 0)
      schema = tableFromIPC(batch.layout.schemaBytes()).schema.fields.map((f) => [
        f.name,
        `${String(f.type)} ${(f.type as { timezone?: string | null }).timezone ?? ''}`,
        f.nullable,
      ]);
    for (let i = 0; i < batch.length; i++) values.push(batch.values(i));
    batch.release();
  }
  return { decoder, typed, schema, values };
}

describe('a plain file read from its footer alone (no parquet-wasm)', () => {
  it.each(['zstd', 'snappy'])(
    'types its columns as parquet-wasm does and reads the same values (%s)',
    async (compression) => {
      const path = files[compression]!;
      const own = await readAll(path, PLAIN, true);
      const wasm = await readAll(path, PLAIN, false);
      expect(own.decoder).toBe('pages');
      expect(own.typed).toBe('footer');
      expect(wasm.decoder).toBe('parquet-wasm');
      expect(wasm.typed).toBe('parquet-wasm');
      expect(own.schema).toEqual(wasm.schema);
      expect(own.values).toHaveLength(ROWS);
      expect(own.values).toEqual(wasm.values);
    },
  );

  it('a column of another type (a small integer, a decimal, a list) is read through parquet-wasm, as before', async () => {
    for (const other of ['i8', 'dec18', 'list']) {
      const read = await readAll(files.zstd!, ['id', other], true);
      expect(read.typed).toBe('parquet-wasm');
      expect(read.decoder).toBe('parquet-wasm');
      expect(read.values).toHaveLength(ROWS);
    }
  });

  it('no column asked for counts the rows from the footer', async () => {
    const read = await readAll(files.zstd!, ['not-there'], true);
    expect(read.typed).toBe('footer');
    expect(read.values).toHaveLength(ROWS);
    expect(read.values[0]).toEqual({});
  });
});
