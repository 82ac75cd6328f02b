import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepare } from '../../src/jobs/prepare.js';
import { parquetSource } from '../../src/sources/parquet-source.js';
import { resultSource } from '../../src/sources/result-source.js';
import { joinResults } from '../../src/transforms/join-results.js';
import type { Row } from '../../src/types.js';
import { collect, tempDir } from '../helpers.js';
import { duckdb } from '../support/duckdb.js';
import { expectedValues, ROWS, TYPES_SELECT } from '../support/parquet-types.js';
import { answerLine } from '../support/results.js';

const dir = tempDir('bp-parquet-');
const ROW_GROUP = 2048;

const COMPRESSIONS = ['uncompressed', 'snappy', 'zstd', 'gzip', 'brotli', 'lz4'] as const;
const files: Record<string, string> = {};

beforeAll(async () => {
  const db = await duckdb();
  try {
    for (const compression of COMPRESSIONS) {
      for (const version of ['V1', 'V2']) {
        const path = join(dir, `types-${compression}-${version}.parquet`);
        // Every type but UINT32, which parquet-wasm cannot read from V2 pages (refused: see below).
        const select = version === 'V2' ? `SELECT * EXCLUDE (u32) FROM (${TYPES_SELECT})` : TYPES_SELECT;
        await db.run(
          `COPY (${select}) TO '${path}' (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE ${ROW_GROUP}, PARQUET_VERSION ${version})`,
        );
        files[`${compression}-${version}`] = path;
      }
    }
    // The files hold what the issue lists: many row groups, dictionary pages, V2's delta encodings.
    const meta = await db.rows(
      `SELECT string_agg(DISTINCT encodings, ',') AS encodings, count(DISTINCT row_group_id) AS groups FROM parquet_metadata('${files['zstd-V2']}')`,
    );
    expect(Number(meta[0]!.groups)).toBeGreaterThanOrEqual(4);
    expect(meta[0]!.encodings).toMatch(/RLE_DICTIONARY/);
    expect(meta[0]!.encodings).toMatch(/DELTA_BINARY_PACKED/);
  } finally {
    db.close();
  }
}, 60_000);

afterAll(() => undefined);

describe('parquetSource', () => {
  it.each(COMPRESSIONS.flatMap((c) => [`${c}-V1`, `${c}-V2`]))(
    'reads every type of a DuckDB file (%s), row group after row group',
    async (key) => {
      const rows = await collect<Row>(parquetSource(files[key]!));
      expect(rows).toHaveLength(ROWS);
      for (const i of [0, 1, 2, 3, 7, 2047, 2048, 4999, ROWS - 1]) {
        expect(rows[i]!.index).toBe(i + 1);
        const expected = expectedValues(i);
        if (key.endsWith('V2')) delete expected.u32;
        expect(rows[i]!.values).toEqual(expected);
      }
      expect(rows.map((r) => r.index)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
    },
  );

  it('refuses, naming the column, a UINT32 column in V2 pages (parquet-wasm would abort the process)', async () => {
    const path = join(dir, 'u32-v2.parquet');
    const db = await duckdb();
    await db.run(
      `COPY (SELECT (4000000000 + i)::UINTEGER AS big FROM range(10) t(i)) TO '${path}' (FORMAT parquet, PARQUET_VERSION V2)`,
    );
    db.close();
    await expect(collect(parquetSource(path))).rejects.toMatchObject({
      code: 'BP_INPUT_PARSE',
      context: { file: path, column: 'big' },
    });
  });

  it('reads many row groups in file order (decoded on threads, one row group each)', async () => {
    const path = join(dir, 'many-groups.parquet');
    const db = await duckdb();
    await db.run(
      `COPY (SELECT i AS id, repeat('review text ' || i, 20) AS review FROM range(240000) t(i)) TO '${path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 20480)`,
    );
    db.close();
    const { rowBatchesOf } = await import('../../src/streams/row-batches.js');
    let rows = 0;
    let inOrder = true;
    for await (const batch of rowBatchesOf(parquetSource(path, { columns: ['id'] }))) {
      for (let i = 0; i < batch.length; i++)
        inOrder &&= batch.index(i) === rows + 1 && Number(batch.values(i).id) === rows++;
    }
    // 12 row groups; memory per thread: test/core/parquet/parquet-decoder.test.ts.
    expect(rows).toBe(240000);
    expect(inOrder).toBe(true);
  });

  it('reads only the columns asked for', async () => {
    const rows = await collect<Row>(parquetSource(files['zstd-V2']!, { columns: ['txt', 'id', 'struct.b'] }));
    expect(rows).toHaveLength(ROWS);
    expect(Object.keys(rows[8]!.values)).toEqual(['id', 'txt', 'struct']);
    expect(rows[8]!.values.struct).toEqual({ a: 8, b: 'x8', big: '9007199254740993' });
  });

  it('names the file when it is not Parquet, and when it is missing', async () => {
    const bad = join(dir, 'bad.parquet');
    writeFileSync(bad, 'id,text\n1,hello\n');
    await expect(collect(parquetSource(bad))).rejects.toMatchObject({ code: 'BP_INPUT_PARSE' });
    await expect(collect(parquetSource(bad))).rejects.toMatchObject({ context: { file: bad } });
    await expect(collect(parquetSource(join(dir, 'none.parquet')))).rejects.toMatchObject({
      code: 'BP_INPUT_NOT_FOUND',
    });
  });
});

describe('prepare from Parquet', () => {
  it('renders cells by the type rules, int64 ids exact as custom_ids', async () => {
    const outDir = join(dir, 'prepared');
    const result = await prepare(files['zstd-V2']!, {
      outDir,
      template:
        '{{txt}}|{{day}}|{{ts_us}}|{{ts_tz}}|{{ts_ns}}|{{dec18}}|{{dec38}}|{{u64}}|{{bin}}|{{list}}|{{struct}}|{{map}}|{{nothing}}|{{f32}}|{{flag}}|{{struct.b}}',
      idColumn: 'id',
      model: 'qwen-plus',
    });
    expect(result.rows).toBe(ROWS);
    expect(result.requests).toBe(ROWS);
    const lines = result.shards.flatMap((s) =>
      readFileSync(join(outDir, s.file), 'utf8').trimEnd().split('\n'),
    );
    for (const i of [0, 1, 2, 7, 1234, ROWS - 1]) {
      const line = JSON.parse(lines[i]!) as {
        custom_id: string;
        body: { messages: Array<{ content: string }> };
      };
      const v = expectedValues(i);
      expect(line.custom_id).toBe(v.id);
      // The id is written with every digit, as text.
      expect(lines[i]).toContain(`"custom_id":"${v.id}"`);
      const list = v.list === null ? '' : JSON.stringify(v.list);
      const struct = `{"a":${i},"b":"x${i}","big":9007199254740993}`;
      expect(line.body.messages.at(-1)!.content).toBe(
        [
          v.txt ?? '',
          v.day,
          v.ts_us,
          v.ts_tz,
          v.ts_ns,
          v.dec18,
          v.dec38,
          v.u64,
          v.bin,
          list,
          struct,
          JSON.stringify(v.map),
          '',
          String(v.f32),
          String(v.flag),
          `x${i}`,
        ].join('|'),
      );
    }
  });

  it('a mapper module gets whole rows, values as Row.values holds them', async () => {
    const mapper = join(dir, 'mapper.mjs');
    writeFileSync(
      mapper,
      "export default (v) => ({ messages: [{ role: 'user', content: JSON.stringify([v.ts_tz, v.dec18, v.struct, v.list]) }] });\n",
    );
    const outDir = join(dir, 'mapped');
    const result = await prepare(files['snappy-V1']!, { outDir, mapper, idColumn: 'id', model: 'qwen-plus' });
    expect(result.requests).toBe(ROWS);
    const line = JSON.parse(readFileSync(join(outDir, result.shards[0]!.file), 'utf8').split('\n')[2]!);
    const v = expectedValues(2);
    expect(line.custom_id).toBe(v.id);
    expect(JSON.parse(line.body.messages[0].content)).toEqual([v.ts_tz, v.dec18, v.struct, v.list]);
  });
});

describe('joinResults from a Parquet path', () => {
  it('reads the source twice from the file, every row once in order', async () => {
    const results = join(dir, 'results.jsonl');
    writeFileSync(
      results,
      `${[0, 5, ROWS - 1].map((i) => answerLine({ custom_id: String(9007199254740993n + BigInt(i)), content: `a${i}` })).join('\n')}\n`,
    );
    const rows = await collect<Row>(
      resultSource(results).pipe(joinResults({ source: files['zstd-V1']!, idColumn: 'id' })),
    );
    expect(rows).toHaveLength(ROWS);
    expect(rows[5]!.values).toMatchObject({ ...expectedValues(5), status: 'ok', content: 'a5' });
    expect(rows[6]!.values.status).toBe('missing');
    expect(rows.map((r) => r.index)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
  });
});

describe('a join reads only the columns its first pass needs', () => {
  it('parquetSource with no column the file has still counts every row, from the metadata', async () => {
    const { rowBatchesOf } = await import('../../src/streams/row-batches.js');
    let rows = 0;
    for await (const batch of rowBatchesOf(parquetSource(files['zstd-V1']!, { columns: ['absent'] }))) {
      // The batch names the table's columns though it read none of them.
      expect(batch.tableColumns).toContain('txt');
      expect(batch.keys(0)).toEqual([]);
      for (let i = 0; i < batch.length; i++) expect(batch.index(i)).toBe(++rows);
    }
    expect(rows).toBe(ROWS);
  });

  it('the first pass is asked for the id column only, the second for every column', async () => {
    const results = join(dir, 'results-projected.jsonl');
    writeFileSync(results, `${answerLine({ custom_id: String(9007199254740993n + 7n), content: 'a7' })}\n`);
    const asked: Array<readonly string[] | undefined> = [];
    const rows = await collect<Row>(
      resultSource(results).pipe(
        joinResults({
          source: (columns) => {
            asked.push(columns);
            return parquetSource(files['snappy-V2']!, columns ? { columns: [...columns] } : {});
          },
          idColumn: 'id',
        }),
      ),
    );
    expect(asked).toEqual([['id'], undefined]);
    expect(rows).toHaveLength(ROWS);
    const expected = expectedValues(7);
    delete expected.u32;
    expect(rows[7]!.values).toEqual({
      ...expected,
      status: 'ok',
      content: 'a7',
      error_code: null,
      error_message: null,
      prompt_tokens: 20,
      completion_tokens: 3,
    });
    expect(Object.keys(rows[0]!.values).slice(0, Object.keys(expected).length)).toEqual(
      Object.keys(expected),
    );
    expect(rows.map((r) => r.index)).toEqual(Array.from({ length: ROWS }, (_, i) => i + 1));
  });

  it("a template column the file lacks is named, with the file's columns listed", async () => {
    await expect(
      prepare(files['zstd-V1']!, {
        outDir: join(dir, 'lacking'),
        template: '{{nothing_here}}',
        model: 'qwen-plus',
      }),
    ).rejects.toMatchObject({
      code: 'BP_TEMPLATE_MISSING_COLUMN',
      message: expect.stringMatching(/no column "nothing_here" \(columns: id, .*txt/),
    });
  });

  it('without an id column the first pass decodes nothing; row hashes read their columns', async () => {
    const source = join(dir, 'hashed.parquet');
    const changed = join(dir, 'hashed-changed.parquet');
    const db = await duckdb();
    const select = (edit: string) =>
      `SELECT i AS n, 'text ' || i AS txt, ${edit} AS other FROM range(5000) t(i)`;
    await db.run(`COPY (${select("'x'")}) TO '${source}' (FORMAT parquet, ROW_GROUP_SIZE 1024)`);
    // Row 4001 changes a column its prompt uses; row 3 a column it does not.
    await db.run(
      `COPY (SELECT n, CASE WHEN n = 4000 THEN 'edited' ELSE txt END AS txt, CASE WHEN n = 2 THEN 'y' ELSE other END AS other FROM read_parquet('${source}')) TO '${changed}' (FORMAT parquet, ROW_GROUP_SIZE 1024)`,
    );
    db.close();
    const outDir = join(dir, 'hashed-prepared');
    await prepare(source, { outDir, template: '{{txt}}', model: 'qwen-plus' });
    const results = join(dir, 'results-hashed.jsonl');
    writeFileSync(
      results,
      `${Array.from({ length: 5000 }, (_, i) => answerLine({ custom_id: `row-${i + 1}`, content: `a${i}` })).join('\n')}\n`,
    );
    const { joinTable } = await import('../../src/jobs/join-table.js');
    const out = join(dir, 'hashed-joined.csv');
    const summary = await joinTable({
      source: changed,
      results: [results],
      out,
      rowHashes: [join(outDir, 'row-hashes.tsv')],
      allowStale: true,
    });
    expect(summary.rows).toBe(5000);
    expect(summary.statuses).toMatchObject({ ok: 4999, stale: 1 });
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(
      'n,txt,other,status,content,error_code,error_message,prompt_tokens,completion_tokens',
    );
    expect(lines[4001]).toMatch(/^4000,edited,x,stale,/);
    expect(lines[3]).toMatch(/^2,text 2,y,ok,a2,/);
    expect(lines).toHaveLength(5001);
  });
});
