import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadArrow, loadParquet } from '../../../src/core/arrow/arrow-lib.js';
import { lz4Block, snappy } from '../../../src/core/parquet/parquet-codecs.js';
import { planPages, readFooter } from '../../../src/core/parquet/parquet-page-plan.js';
import { readParquetBatches } from '../../../src/core/parquet/parquet-reader.js';
import { readPageHeader } from '../../../src/core/parquet/parquet-thrift.js';
import { tempDir } from '../../helpers.js';
import { duckdb } from '../../support/duckdb.js';

const dir = tempDir('bp-parquet-pages-');
const ROWS = 10_000;
const COMPRESSIONS = ['uncompressed', 'snappy', 'zstd', 'gzip', 'brotli', 'lz4'] as const;

/** Flat columns of every type the page decoder reads: nulls, empty strings, multi-byte UTF-8, a dictionary. */
const FLAT = `SELECT
  i::INTEGER AS i32,
  (i * 1000003 - 5000000000)::BIGINT AS i64,
  (i * 7)::UBIGINT AS u64,
  CASE WHEN i % 7 = 0 THEN NULL ELSE i * 0.5 END::DOUBLE AS dbl,
  (i * 0.25 - 3)::FLOAT AS flt,
  CASE WHEN i % 13 = 0 THEN NULL ELSE i % 3 = 0 END AS flag,
  CASE WHEN i % 5 = 0 THEN NULL WHEN i % 11 = 0 THEN '' ELSE 'review ' || i || ' é漢字🙂 "q"' || chr(10) || repeat('x', i % 300) END AS txt,
  CASE WHEN i % 17 = 0 THEN NULL ELSE ['red', 'green', '', 'ünïcode 🙂'][i % 4 + 1] END AS cat,
  CASE WHEN i % 9 = 0 THEN NULL ELSE ('blob' || i)::BLOB END AS bin,
  DATE '2020-01-01' + (i % 1000)::INTEGER AS d,
  TIMESTAMP '2024-01-01 00:00:00' + to_microseconds(i * 1234567) AS ts,
  TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 1234567) AS tstz,
  epoch_ms(i * 1000)::TIMESTAMP_MS AS tsms,
  NULL::VARCHAR AS empty
FROM range(${ROWS}) t(i)`;
const FLAT_COLUMNS = [
  'i32',
  'i64',
  'u64',
  'dbl',
  'flt',
  'flag',
  'txt',
  'cat',
  'bin',
  'd',
  'ts',
  'tstz',
  'tsms',
  'empty',
];

const duckFiles: Record<string, string> = {};
const wasmFiles: Record<string, string> = {};
let nested = '';

beforeAll(async () => {
  const db = await duckdb();
  try {
    for (const compression of COMPRESSIONS) {
      for (const version of ['V1', 'V2']) {
        const path = join(dir, `flat-${compression}-${version}.parquet`);
        await db.run(
          `COPY (${FLAT}) TO '${path}' (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE 2048, PARQUET_VERSION ${version})`,
        );
        duckFiles[`${compression}-${version}`] = path;
      }
    }
    nested = join(dir, 'nested.parquet');
    await db.run(
      `COPY (SELECT i AS id, 'text ' || i AS txt, [i, i + 1] AS list, {'a': i, 'b': 'x' || i} AS struct, MAP {'k': i} AS map, (i / 100)::DECIMAL(10, 2) AS dec, (i % 100)::TINYINT AS i8 FROM range(3000) t(i)) TO '${nested}' (FORMAT parquet, COMPRESSION zstd)`,
    );
  } finally {
    db.close();
  }
  // arrow-rs (parquet-wasm's writer) writes DATA_PAGE_V2 headers and many small pages per chunk.
  const parquet = await loadParquet();
  const codecs = {
    uncompressed: parquet.Compression.UNCOMPRESSED,
    snappy: parquet.Compression.SNAPPY,
    zstd: parquet.Compression.ZSTD,
    gzip: parquet.Compression.GZIP,
    brotli: parquet.Compression.BROTLI,
    lz4: parquet.Compression.LZ4_RAW,
  };
  for (const compression of COMPRESSIONS) {
    for (const dictionary of [true, false]) {
      const table = parquet.readParquet(readFileSync(duckFiles[`${compression}-V1`]!));
      const properties = new parquet.WriterPropertiesBuilder()
        .setWriterVersion(parquet.WriterVersion.V2)
        .setCompression(codecs[compression])
        .setDictionaryEnabled(dictionary)
        // Without it arrow-rs's V2 writer takes the DELTA encodings, left to parquet-wasm.
        .setEncoding(parquet.Encoding.PLAIN)
        .setDataPageSizeLimit(4096)
        .setWriteBatchSize(500)
        .setMaxRowGroupSize(4000)
        .build();
      const path = join(dir, `v2pages-${compression}-${dictionary ? 'dict' : 'plain'}.parquet`);
      writeFileSync(path, parquet.writeParquet(table, properties));
      wasmFiles[`${compression}-${dictionary ? 'dict' : 'plain'}`] = path;
    }
  }
}, 120_000);

/** Every row's values and texts, read by the page decoder or by parquet-wasm. */
async function readAll(path: string, columns: readonly string[] | undefined, pageDecoder: boolean) {
  let by = '';
  const values: unknown[] = [];
  const texts: unknown[] = [];
  for await (const batch of readParquetBatches(path, path, {
    columns,
    pageDecoder,
    decodedBy: (decoder) => (by = decoder),
  })) {
    for (let i = 0; i < batch.length; i++) {
      values.push(batch.values(i));
      texts.push(batch.texts(i));
    }
  }
  return { by, values, texts };
}

async function expectSameAsParquetWasm(path: string, columns?: readonly string[]) {
  const pages = await readAll(path, columns, true);
  const wasm = await readAll(path, columns, false);
  expect(pages.by).toBe('pages');
  expect(wasm.by).toBe('parquet-wasm');
  expect(pages.values).toHaveLength(wasm.values.length);
  expect(pages.values).toEqual(wasm.values);
  expect(pages.texts).toEqual(wasm.texts);
  return pages;
}

/** The page types (0 V1, 2 dictionary, 3 V2) of each column chunk of a file, and the most pages one holds. */
async function pageTypes(path: string): Promise<{ types: Set<number>; most: number }> {
  const bytes = readFileSync(path);
  const footer = await readFooter(path);
  const types = new Set<number>();
  let most = 0;
  for (const group of footer.rowGroups) {
    for (const chunk of group.columns) {
      let pos = chunk.start;
      let count = 0;
      while (pos < chunk.start + chunk.length) {
        const { header, end } = readPageHeader(bytes, pos);
        types.add(header.type);
        count++;
        pos = end + header.compressedSize;
      }
      most = Math.max(most, count);
    }
  }
  return { types, most };
}

describe('the page decoder', () => {
  it.each(COMPRESSIONS)(
    'reads DuckDB V1 files (%s) as parquet-wasm does, cell by cell, every column',
    async (compression) => {
      const path = duckFiles[`${compression}-V1`]!;
      const read = await expectSameAsParquetWasm(path);
      expect(read.values).toHaveLength(ROWS);
      expect(read.values[11]).toMatchObject({ txt: '', i32: 11 });
      expect(read.values[10]).toMatchObject({ txt: null, flag: false });
      expect(read.values[12]).toMatchObject({ flag: true, cat: 'red' });
      expect(read.values[14]).toMatchObject({ cat: '' });
      expect(read.values[7]).toMatchObject({ txt: `review 7 é漢字🙂 "q"\n${'x'.repeat(7)}`, dbl: null });
      expect((await readFooter(path)).rowGroups.length).toBeGreaterThanOrEqual(4);
    },
  );

  it.each(COMPRESSIONS.flatMap((c) => [`${c}-dict`, `${c}-plain`]))(
    'reads V2 data pages, many per column chunk (%s), as parquet-wasm does',
    async (key) => {
      const path = wasmFiles[key]!;
      const { types, most } = await pageTypes(path);
      expect(types.has(3)).toBe(true);
      expect(types.has(2)).toBe(key.endsWith('dict'));
      expect(most).toBeGreaterThan(key.endsWith('dict') ? 1 : 5);
      const read = await expectSameAsParquetWasm(path);
      expect(read.values).toHaveLength(ROWS);
    },
  );

  it.each(COMPRESSIONS)(
    "reads the columns of DuckDB's V2 files (%s) it can, and leaves DELTA encodings to parquet-wasm",
    async (compression) => {
      const path = duckFiles[`${compression}-V2`]!;
      const footer = await readFooter(path);
      const parquet = await loadParquet();
      const arrow = await loadArrow();
      const file = await parquet.ParquetFile.fromFile(new Blob([readFileSync(path)]));
      const fields = arrow.tableFromIPC(file.schema().intoIPCStream()).schema.fields;
      file.free();
      // DuckDB's V2 writes integers as DELTA_BINARY_PACKED and strings as DELTA_LENGTH_BYTE_ARRAY.
      expect(planPages(footer, fields, ['i32'])).toBeUndefined();
      expect(planPages(footer, fields, ['txt'])).toBeUndefined();
      expect((await readAll(path, ['i32', 'txt'], true)).by).toBe('parquet-wasm');
      const accepted = FLAT_COLUMNS.filter((name) => planPages(footer, fields, [name]));
      expect(accepted).toEqual(expect.arrayContaining(['cat', 'flag']));
      await expectSameAsParquetWasm(path, accepted);
    },
  );

  it("reads RLE booleans (arrow-rs's V2 default) as parquet-wasm does", async () => {
    const parquet = await loadParquet();
    const table = parquet.readParquet(readFileSync(duckFiles['snappy-V1']!));
    const properties = new parquet.WriterPropertiesBuilder()
      .setWriterVersion(parquet.WriterVersion.V2)
      .setDictionaryEnabled(false)
      .setDataPageSizeLimit(256)
      .build();
    const path = join(dir, 'rle-booleans.parquet');
    writeFileSync(path, parquet.writeParquet(table, properties));
    const chunks = (await readFooter(path)).rowGroups.map((g) => g.columns[FLAT_COLUMNS.indexOf('flag')]!);
    expect(chunks.every((c) => c.encodings.includes(3) && !c.encodings.includes(0))).toBe(true);
    await expectSameAsParquetWasm(path, ['flag']);
  });

  it('leaves lists, structs, maps, decimals and small integers to parquet-wasm, and reads the flat columns beside them', async () => {
    const parquet = await loadParquet();
    const arrow = await loadArrow();
    const file = await parquet.ParquetFile.fromFile(new Blob([readFileSync(nested)]));
    const fields = arrow.tableFromIPC(file.schema().intoIPCStream()).schema.fields;
    file.free();
    const footer = await readFooter(nested);
    for (const column of ['list', 'struct', 'map', 'dec', 'i8'])
      expect(planPages(footer, fields, ['id', column]), column).toBeUndefined();
    const all = await readAll(nested, undefined, true);
    expect(all.by).toBe('parquet-wasm');
    expect(all.values[5]).toMatchObject({ dec: '0.05', i8: 5 });
    await expectSameAsParquetWasm(nested, ['id', 'txt']);
  });

  it('decodes snappy and LZ4 blocks with long matches, overlapping copies and long literals', () => {
    // Snappy: a 70-byte literal (1-byte length extension), then a copy of 64 bytes from offset 1.
    const literal = Buffer.from('a'.repeat(35) + 'b'.repeat(35));
    const s = Buffer.concat([
      Buffer.from([134, 1]),
      Buffer.from([60 << 2, 69]),
      literal,
      Buffer.from([(63 << 2) | 2, 1, 0]),
    ]);
    expect(Buffer.from(snappy(s, 134)).toString()).toBe(
      `${'a'.repeat(35)}${'b'.repeat(35)}${'b'.repeat(64)}`,
    );
    // LZ4: 3 literals "abc", a match of 20 at offset 3, then the last 5 literals.
    const l = Buffer.concat([
      Buffer.from([(3 << 4) | 15, 0x61, 0x62, 0x63, 3, 0, 1]),
      Buffer.from([5 << 4]),
      Buffer.from('vwxyz'),
    ]);
    expect(Buffer.from(lz4Block(l, 28)).toString()).toBe(`${'abc'.repeat(7)}abvwxyz`);
  });

  it('decode literals and matches of every length from 1 to 80, short (copied in a loop) and long, overlapping or not', () => {
    for (let length = 1; length <= 80; length++) {
      for (const offset of [1, 3, length, length + 5]) {
        // A literal of `offset` distinct bytes, then a match of `length` bytes `offset` back.
        const lit = Buffer.from(Array.from({ length: offset }, (_, i) => (i * 7 + length) & 0xff));
        const expected = Buffer.concat([lit, Buffer.alloc(length)]);
        for (let i = 0; i < length; i++) expected[offset + i] = expected[i]!;
        // Snappy: a literal (length - 1 in the tag, or in one more byte from 60), a 2-byte-offset copy
        // of at most 64 (longer ones in two).
        const parts: Buffer[] = [
          Buffer.from(
            expected.length < 128
              ? [expected.length]
              : [(expected.length & 0x7f) | 0x80, expected.length >> 7],
          ),
        ];
        parts.push(
          lit.length <= 60 ? Buffer.from([(lit.length - 1) << 2]) : Buffer.from([60 << 2, lit.length - 1]),
        );
        parts.push(lit);
        for (let left = length; left > 0; ) {
          const n = Math.min(left, 64);
          parts.push(Buffer.from([((n - 1) << 2) | 2, offset, 0]));
          left -= n;
        }
        expect(
          Buffer.from(snappy(Buffer.concat(parts), expected.length)).equals(expected),
          `snappy ${length}/${offset}`,
        ).toBe(true);
        // LZ4: the literal and a match of `length` (4 at least: shorter ones are literals too), then no last literals.
        if (length < 4) continue;
        const token = (Math.min(lit.length, 15) << 4) | Math.min(length - 4, 15);
        const bytes: number[] = [token];
        if (lit.length >= 15) bytes.push(lit.length - 15);
        bytes.push(...lit, offset, 0);
        if (length - 4 >= 15) bytes.push(length - 4 - 15);
        expect(
          Buffer.from(lz4Block(Buffer.from(bytes), expected.length)).equals(expected),
          `lz4 ${length}/${offset}`,
        ).toBe(true);
      }
    }
  });
});
