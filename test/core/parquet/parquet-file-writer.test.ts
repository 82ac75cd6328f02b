import { openAsBlob, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { RecordBatch } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArrow, loadParquet } from '../../../src/core/arrow/arrow-lib.js';
import type { ColumnarWriter } from '../../../src/core/arrow/columnar-writer.js';
import { planColumns } from '../../../src/core/parquet/parquet-schema-out.js';
import { ThriftReader } from '../../../src/core/parquet/parquet-thrift.js';
import {
  type ParquetCompression,
  parquetWasmWriter,
  parquetWriter,
} from '../../../src/core/parquet/parquet-writer.js';
import { parquetSink } from '../../../src/sinks/parquet-sink.js';
import { parquetSource } from '../../../src/sources/parquet-source.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';
import { ROWS, TYPES_SELECT } from '../../support/parquet-types.js';

const dir = tempDir('bp-parquet-file-writer-');
const arrow = await loadArrow();
let db: Awaited<ReturnType<typeof duckdb>>;
let count = 0;
/** Spill files of the writers made here (each removed once open). */
let spills = 0;

/** Every flat column of the typed fixture (parquet-types.ts): what batchpipe's writer covers. */
const FLAT = [
  'id',
  'i8',
  'i16',
  'i32',
  'u8',
  'u16',
  'u32',
  'u64',
  'f32',
  'f64',
  'flag',
  'txt',
  'bin',
  'day',
  'clock',
  'ts_us',
  'ts_ms',
  'ts_ns',
  'ts_tz',
  'ts_old',
  'dec18',
  'dec38',
  'nothing',
];

beforeAll(async () => {
  db = await duckdb();
});
afterAll(() => db.close());

/** Writes batches through `make` (a writer of the sinks' interface) into a new file. */
async function written(
  batches: RecordBatch[],
  make: (write: (chunk: Uint8Array) => undefined) => Promise<ColumnarWriter> | ColumnarWriter,
): Promise<string> {
  const chunks: Buffer[] = [];
  const writer = await make((chunk) => {
    chunks.push(Buffer.from(chunk));
    return undefined;
  });
  for (const batch of batches) await writer.write(batch);
  await writer.finish();
  const path = join(dir, `${++count}.parquet`);
  writeFileSync(path, Buffer.concat(chunks));
  return path;
}

const ours = (batches: RecordBatch[], compression: ParquetCompression = 'snappy', rowGroupSize = 122_880) =>
  written(batches, (write) =>
    parquetWriter(arrow, { rowGroupSize, compression }, write, join(dir, `${++spills}.pages`)),
  );
const wasm = (batches: RecordBatch[], compression: ParquetCompression = 'snappy', rowGroupSize = 122_880) =>
  written(batches, async (write) =>
    parquetWasmWriter(arrow, await loadParquet(), { rowGroupSize, compression }, write),
  );

/** The footer's schema elements, every field as stored (types, converted and logical types). */
function footerSchema(path: string): unknown {
  const bytes = readFileSync(path);
  const length = bytes.readUInt32LE(bytes.length - 8);
  return new ThriftReader(bytes.subarray(bytes.length - 8 - length, bytes.length - 8)).struct().get(2);
}

/** The Arrow schema parquet-wasm reads from a file (from its ARROW:schema when there is one). */
async function arrowSchema(path: string): Promise<string[]> {
  const parquet = await loadParquet();
  const file = await parquet.ParquetFile.fromFile(await openAsBlob(path));
  const schema = arrow.tableFromIPC(file.schema().intoIPCStream()).schema;
  file.free();
  return schema.fields.map((f) => `${f.name}: ${String(f.type)}${f.nullable ? '' : ' not null'}`);
}

/** True when every column of `a` equals `b`'s, row by row, in order. */
async function sameRows(a: string, b: string, columns: readonly string[]): Promise<unknown> {
  const same = columns.map((c) => `a."${c}" IS NOT DISTINCT FROM b."${c}"`).join(' AND ');
  const [row] = await db.rows(
    `SELECT count(*) AS n, count(*) FILTER (WHERE ${same}) AS same FROM
      (SELECT *, row_number() OVER () AS r FROM '${a}') a JOIN (SELECT *, row_number() OVER () AS r FROM '${b}') b USING (r)`,
  );
  return row;
}

describe("batchpipe's Parquet writer", () => {
  it('writes every flat type as parquet-wasm does: the same schema, Arrow types and values, in order', async () => {
    const source = join(dir, 'types.parquet');
    await db.run(
      `COPY (${TYPES_SELECT}) TO '${source}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`,
    );
    const ourFile = join(dir, 'types-ours.parquet');
    const wasmFile = join(dir, 'types-wasm.parquet');
    await pipeline(parquetSource(source, { columns: FLAT }), parquetSink(ourFile, { compression: 'zstd' }));
    // The same rows through parquet-wasm, for its schema.
    const table = await readTable(source, FLAT);
    const reference = await wasm(table, 'zstd');
    writeFileSync(wasmFile, readFileSync(reference));

    // Written by batchpipe's writer (PLAIN values only; parquet-wasm writes dictionaries).
    const encodings = await db.rows(`SELECT DISTINCT encodings FROM parquet_metadata('${ourFile}')`);
    expect(encodings).toEqual([{ encodings: 'PLAIN, RLE' }]);
    expect(footerSchema(ourFile)).toEqual(footerSchema(wasmFile));
    expect(await arrowSchema(ourFile)).toEqual(await arrowSchema(wasmFile));
    const described = (path: string) => db.rows(`DESCRIBE SELECT * FROM '${path}'`);
    expect(await described(ourFile)).toEqual(await described(wasmFile));
    expect(await db.rows(`SELECT * EXCLUDE (file_name) FROM parquet_schema('${ourFile}')`)).toEqual(
      await db.rows(`SELECT * EXCLUDE (file_name) FROM parquet_schema('${wasmFile}')`),
    );
    expect(await sameRows(source, ourFile, FLAT)).toEqual({ n: String(ROWS), same: String(ROWS) });
  });

  it('writes decimals of every width as parquet-wasm does (INT32, INT64, fixed-length bytes)', async () => {
    const source = join(dir, 'decimals.parquet');
    const columns = ['d1', 'd9', 'd10', 'd18', 'd19', 'd38'];
    await db.run(
      `COPY (SELECT (i % 10 - 5)::DECIMAL(1,0) AS d1, ((i - 500) * 12345.67)::DECIMAL(9,2) AS d9,
          ((i - 500) * 1234567.8)::DECIMAL(10,1) AS d10, ((i - 500) * 123456789012.345)::DECIMAL(18,3) AS d18,
          ((i - 500) * 1234567890123.456)::DECIMAL(19,3) AS d19,
          CASE WHEN i % 9 = 0 THEN NULL ELSE ((i - 500) * 12345678901234567890.123456789)::DECIMAL(38,9) END AS d38
        FROM range(1000) t(i)) TO '${source}' (FORMAT parquet)`,
    );
    const table = await readTable(source, columns);
    const ourFile = await ours(table);
    const wasmFile = await wasm(table);
    expect(footerSchema(ourFile)).toEqual(footerSchema(wasmFile));
    expect(await arrowSchema(ourFile)).toEqual(await arrowSchema(wasmFile));
    expect(await sameRows(source, ourFile, columns)).toEqual({ n: '1000', same: '1000' });
  });

  for (const compression of ['snappy', 'zstd'] as const) {
    it(`${compression}: nulls, empty strings, multi-byte text, many row groups and pages, read back in order`, async () => {
      const rows = 25_000;
      const expected = Array.from({ length: rows }, (_, i) => ({
        n: i % 17 === 0 ? null : String(BigInt(i) * 3_000_000_000n),
        text:
          i % 11 === 0
            ? null
            : i % 13 === 0
              ? ''
              : `${'é日本語🙂'.repeat(i % 40)} row ${i} ${'x'.repeat(i % 97)}`,
        flag: i % 5 === 0 ? null : i % 3 === 0,
        score: i % 19 === 0 ? null : i / 8,
      }));
      // Three rows before the table's own, so every batch below starts at a bit offset not a multiple of 8.
      const column = <T>(pick: (row: (typeof expected)[number]) => T | null) => [
        null,
        null,
        null,
        ...expected.map(pick),
      ];
      const table = new arrow.Table({
        n: arrow.vectorFromArray(
          column((r) => (r.n === null ? null : BigInt(r.n))),
          new arrow.Int64(),
        ),
        text: arrow.vectorFromArray(
          column((r) => r.text),
          new arrow.Utf8(),
        ),
        flag: arrow.vectorFromArray(
          column((r) => r.flag),
          new arrow.Bool(),
        ),
        score: arrow.vectorFromArray(
          column((r) => r.score),
          new arrow.Float64(),
        ),
      });
      // Batches of uneven sizes, as slices of the table.
      const batches: RecordBatch[] = [];
      for (let start = 0; start < rows; ) {
        const size = Math.min(rows - start, 1 + ((start * 7) % 3001));
        batches.push(...table.slice(start + 3, start + 3 + size).batches);
        start += size;
      }
      const path = await ours(batches, compression, 10_000);
      const meta = await db.rows(
        `SELECT count(DISTINCT row_group_id) AS groups, string_agg(DISTINCT compression, ',') AS compression,
           string_agg(DISTINCT encodings, ',') AS encodings,
           max(total_uncompressed_size) FILTER (WHERE path_in_schema = 'text') AS text_bytes
         FROM parquet_metadata('${path}')`,
      );
      // The text column of a row group spans several pages (about 1 MiB each).
      expect(Number(meta[0]!.text_bytes)).toBeGreaterThan(2 << 20);
      expect({ ...meta[0], text_bytes: undefined }).toEqual({
        groups: '3',
        compression: compression.toUpperCase(),
        encodings: 'PLAIN, RLE',
        text_bytes: undefined,
      });
      const back = await db.rows(`SELECT n::VARCHAR AS n, text, flag, score FROM '${path}'`);
      expect(back).toEqual(expected);
    });
  }

  it('writes text from shared memory at any offset, nulls over bytes and values of every length, as DuckDB reads them', async () => {
    // Values of 0-700 bytes (the copy of a value changes at 32), multi-byte UTF-8, and null slots
    // that keep bytes (Arrow allows it): the bytes under a null are not written.
    const texts: Array<string | null> = [];
    for (let i = 0; i < 5000; i++) {
      const length = [0, 1, 7, 31, 32, 33, 64, 600, 700][i % 9]!;
      const text = `${i}:${'é€x'.repeat(length)}`.slice(0, length + 2);
      texts.push(i % 11 === 3 ? null : text);
    }
    const encoder = new TextEncoder();
    const parts = texts.map((t, i) => encoder.encode(t ?? `hidden ${i}`));
    const size = parts.reduce((sum, part) => sum + part.length, 0);
    const batches: RecordBatch[] = [];
    const skews = [0, 1, 3, 5, 7];
    for (const skew of skews) {
      // The bytes in a SharedArrayBuffer (as a decode thread hands them over), `skew` bytes in.
      const shared = new Uint8Array(new SharedArrayBuffer(size + 16), skew, size);
      const offsets = new Int32Array(texts.length + 1);
      const nulls = new Uint8Array((texts.length + 7) >> 3);
      let at = 0;
      for (let i = 0; i < texts.length; i++) {
        shared.set(parts[i]!, at);
        at += parts[i]!.length;
        offsets[i + 1] = at;
        if (texts[i] !== null) nulls[i >> 3]! |= 1 << (i & 7);
      }
      const nullCount = texts.filter((t) => t === null).length;
      const text = arrow.makeData({
        type: new arrow.Utf8(),
        length: texts.length,
        nullCount,
        nullBitmap: nulls,
        valueOffsets: offsets,
        data: shared,
      });
      const id = arrow.makeData({
        type: new arrow.Int32(),
        length: texts.length,
        data: Int32Array.from(texts, (_, i) => skew * 10_000 + i),
      });
      const schema = new arrow.Schema([
        new arrow.Field('id', new arrow.Int32(), false),
        new arrow.Field('text', new arrow.Utf8(), true),
      ]);
      const struct = arrow.makeData({
        type: new arrow.Struct(schema.fields),
        length: texts.length,
        nullCount: 0,
        children: [id, text],
      });
      batches.push(new arrow.RecordBatch(schema, struct));
    }
    const path = await ours(batches, 'snappy', 7000);
    const back = await db.rows(`SELECT id, text FROM '${path}'`);
    expect(back.length).toBe(skews.length * texts.length);
    back.forEach((row, r) => {
      expect(row.id).toBe((skews[Math.floor(r / texts.length)]! * 10_000 + (r % texts.length)) as never);
      expect(row.text).toBe(texts[r % texts.length] as never);
    });
  });

  it('an empty table keeps its columns; no batch at all writes nothing', async () => {
    const table = new arrow.Table({
      id: arrow.vectorFromArray([] as bigint[], new arrow.Int64()),
      text: arrow.vectorFromArray([] as string[], new arrow.Utf8()),
    });
    const path = await ours(table.batches);
    expect(await db.rows(`SELECT count(*) AS n FROM '${path}'`)).toEqual([{ n: '0' }]);
    expect(
      (await db.rows(`DESCRIBE SELECT * FROM '${path}'`)).map((r) => [r.column_name, r.column_type]),
    ).toEqual([
      ['id', 'BIGINT'],
      ['text', 'VARCHAR'],
    ]);
    const none = await ours([]);
    expect(readFileSync(none).length).toBe(0);
  });

  it('leaves nested and other types to parquet-wasm', () => {
    const list = new arrow.Field(
      'v',
      new arrow.List(new arrow.Field('item', new arrow.Float32(), true)),
      true,
    );
    expect(planColumns([list])).toBeUndefined();
    expect(planColumns([new arrow.Field('s', new arrow.TimestampSecond(), true)])).toBeUndefined();
    expect(planColumns([new arrow.Field('t', new arrow.Utf8(), true)])).toHaveLength(1);
  });
});

/** A Parquet file's rows as record batches (read through parquet-wasm, types as it gives them). */
async function readTable(path: string, columns: string[]): Promise<RecordBatch[]> {
  const parquet = await loadParquet();
  const file = await parquet.ParquetFile.fromFile(await openAsBlob(path));
  const table = arrow.tableFromIPC((await file.read({ columns })).intoIPCStream());
  file.free();
  return table.batches;
}
