import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { joinTable } from '../../src/jobs/join-table.js';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { parquetSink } from '../../src/sinks/parquet-sink.js';
import { csvSource } from '../../src/sources/csv-source.js';
import { parquetSource } from '../../src/sources/parquet-source.js';
import type { Row } from '../../src/types.js';
import { collect, fileWith, tempDir } from '../helpers.js';
import { duckdb } from '../support/duckdb.js';
import { expectedValues, ROWS, TYPES_SELECT } from '../support/parquet-types.js';
import { answerLine, embeddingLine, errorLine } from '../support/results.js';

const dir = tempDir('bp-parquet-sink-');
let db: Awaited<ReturnType<typeof duckdb>>;
let source: string;
const ID_BASE = 9007199254740993n;

beforeAll(async () => {
  db = await duckdb();
  source = join(dir, 'types.parquet');
  await db.run(
    `COPY (${TYPES_SELECT}) TO '${source}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)`,
  );
}, 60_000);
afterAll(() => db.close());

/** Results for every row of the typed fixture: answers for most, failures for every 10th. */
function resultsFile(name: string, answer: (i: number) => string): string {
  const lines: string[] = [];
  for (let i = 0; i < ROWS; i++) {
    const id = String(ID_BASE + BigInt(i));
    if (i % 10 === 3) lines.push(errorLine(id, 'http', i));
    else if (i % 10 !== 7)
      lines.push(answerLine({ custom_id: id, content: answer(i), prompt_tokens: 20 + i, n: i }));
    // i % 10 === 7: no result (missing)
  }
  return fileWith(dir, name, `${lines.join('\n')}\n`);
}

describe('parquetSink from joinTable', () => {
  it("keeps a Parquet source's columns and types, types the result columns, and DuckDB reads it back in order", async () => {
    const results = resultsFile('labels.jsonl', (i) => ['positive', 'negative', 'neutral'][i % 3]!);
    const out = join(dir, 'labeled.parquet');
    const summary = await joinTable({
      source,
      results: [results],
      out,
      idColumn: 'id',
      labels: ['positive', 'negative', 'neutral'],
      rowGroupSize: 4096,
      compression: 'zstd',
    });
    expect(summary.rows).toBe(ROWS);

    // Types: the source's as DuckDB wrote them, the results' typed.
    const described = await db.rows(`DESCRIBE SELECT * FROM '${out}'`);
    const types = Object.fromEntries(described.map((r) => [r.column_name, r.column_type]));
    const sourceTypes = Object.fromEntries(
      (await db.rows(`DESCRIBE SELECT * FROM '${source}'`)).map((r) => [r.column_name, r.column_type]),
    );
    for (const [name, type] of Object.entries(sourceTypes)) expect(types[name], name).toBe(type);
    expect(types).toMatchObject({
      status: 'VARCHAR',
      label: 'VARCHAR',
      error_code: 'VARCHAR',
      error_message: 'VARCHAR',
      prompt_tokens: 'BIGINT',
      completion_tokens: 'BIGINT',
    });

    // Values and order: every source column equal to the source's, row by row.
    const columns = Object.keys(sourceTypes)
      .map((c) => `a.${c} IS NOT DISTINCT FROM b.${c}`)
      .join(' AND ');
    const same = await db.rows(
      `SELECT count(*) AS n, count(*) FILTER (WHERE ${columns}) AS same FROM
        (SELECT *, row_number() OVER () AS r FROM '${source}') a JOIN (SELECT *, row_number() OVER () AS r FROM '${out}') b USING (r)`,
    );
    expect(same[0]).toEqual({ n: String(ROWS), same: String(ROWS) });
    const rows = await db.rows(
      `SELECT id::VARCHAR AS id, status, label, prompt_tokens, completion_tokens, error_code FROM '${out}'`,
    );
    expect(rows).toHaveLength(ROWS);
    expect(rows[0]).toEqual({
      id: '9007199254740993',
      status: 'ok',
      label: 'positive',
      prompt_tokens: '20',
      completion_tokens: '3',
      error_code: null,
    });
    expect(rows[3]).toMatchObject({ status: 'failed', label: null, prompt_tokens: null });
    expect(rows[7]).toMatchObject({ status: 'missing', label: null });
    expect(rows[ROWS - 1]!.id).toBe(String(ID_BASE + BigInt(ROWS - 1)));
    // Written in row groups of the size asked for, zstd.
    const meta = await db.rows(
      `SELECT count(DISTINCT row_group_id) AS groups, string_agg(DISTINCT compression, ',') AS compression FROM parquet_metadata('${out}')`,
    );
    expect(meta[0]).toEqual({ groups: String(Math.ceil(ROWS / 4096)), compression: 'ZSTD' });
  });

  it('writes --schema answers as typed columns (integer, number, boolean, list, struct)', async () => {
    const schema = {
      type: 'object',
      properties: {
        sentiment: { type: 'string', enum: ['pos', 'neg'] },
        stars: { type: 'integer' },
        score: { type: 'number' },
        sarcastic: { type: 'boolean' },
        tags: { type: 'array', items: { type: 'string' } },
        author: {
          type: 'object',
          properties: { name: { type: 'string' }, age: { type: 'integer' } },
          required: ['name', 'age'],
        },
      },
      required: ['sentiment', 'stars', 'score', 'sarcastic', 'tags', 'author'],
    };
    const source = fileWith(dir, 'reviews.csv', 'id,review\n1,good\n2,bad\n3,"quoted, text"\n');
    const answers = [
      {
        sentiment: 'pos',
        stars: 5,
        score: 0.75,
        sarcastic: false,
        tags: ['a', 'b'],
        author: { name: 'x', age: 30 },
      },
      { sentiment: 'neg', stars: 1, score: -1.5, sarcastic: true, tags: [], author: { name: 'y', age: 41 } },
    ];
    const results = fileWith(
      dir,
      'schema.jsonl',
      `${answers.map((a, i) => answerLine({ custom_id: String(i + 1), content: JSON.stringify(a) })).join('\n')}\n${answerLine({ custom_id: '3', content: 'not json' })}\n`,
    );
    const out = join(dir, 'schema.parquet');
    await joinTable({ source, results: [results], out, idColumn: 'id', schema });
    const types = Object.fromEntries(
      (await db.rows(`DESCRIBE SELECT * FROM '${out}'`)).map((r) => [r.column_name, r.column_type]),
    );
    expect(types).toMatchObject({
      id: 'VARCHAR',
      review: 'VARCHAR',
      status: 'VARCHAR',
      sentiment: 'VARCHAR',
      stars: 'BIGINT',
      score: 'DOUBLE',
      sarcastic: 'BOOLEAN',
      tags: 'VARCHAR[]',
      'author.name': 'VARCHAR',
      'author.age': 'BIGINT',
    });
    const rows = await db.rows(`SELECT * FROM '${out}'`);
    expect(
      rows.map((r) => [r.review, r.status, r.stars, r.score, r.sarcastic, r.tags, r['author.age']]),
    ).toEqual([
      ['good', 'ok', '5', 0.75, false, ['a', 'b'], '30'],
      ['bad', 'ok', '1', -1.5, true, [], '41'],
      ['quoted, text', 'invalid_output', null, null, null, null, null],
    ]);
  });

  it('writes embeddings as list<float>', async () => {
    const source = fileWith(dir, 'texts.csv', 'id,text\na,one\nb,two\nc,three\n');
    const results = fileWith(
      dir,
      'emb.jsonl',
      `${[embeddingLine('a', [0.25, 1]), embeddingLine('b', [-0.5, 2]), errorLine('c', 'http')].join('\n')}\n`,
    );
    const out = join(dir, 'emb.parquet');
    await joinTable({ source, results: [results], out, idColumn: 'id', endpoint: '/v1/embeddings' });
    const types = Object.fromEntries(
      (await db.rows(`DESCRIBE SELECT * FROM '${out}'`)).map((r) => [r.column_name, r.column_type]),
    );
    expect(types.embedding).toBe('FLOAT[]');
    const rows = await db.rows(`SELECT id, embedding FROM '${out}'`);
    expect(rows).toEqual([
      { id: 'a', embedding: [0.25, 1] },
      { id: 'b', embedding: [-0.5, 2] },
      { id: 'c', embedding: null },
    ]);
  });

  it('Parquet in, CSV out: cells rendered by the type rules', async () => {
    const results = resultsFile('csv-out.jsonl', () => 'fine');
    const out = join(dir, 'out.csv');
    await joinTable({ source, results: [results], out, idColumn: 'id' });
    const rows = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(ROWS);
    for (const i of [0, 1, 2, 3, 7, 4097]) {
      const v = expectedValues(i);
      const row = rows[i]!;
      expect(row.id).toBe(v.id);
      expect(row.ts_tz).toBe(v.ts_tz);
      expect(row.ts_ns).toBe(v.ts_ns);
      expect(row.day).toBe(v.day);
      expect(row.dec38).toBe(v.dec38);
      expect(row.u64).toBe(v.u64);
      expect(row.bin).toBe(v.bin);
      expect(row.txt).toBe(v.txt ?? '');
      expect(row.list).toBe(v.list === null ? '' : JSON.stringify(v.list));
      expect(row.struct).toBe(`{"a":${i},"b":"x${i}","big":9007199254740993}`);
    }
    expect(rows[0]!.status).toBe('ok');
    expect(rows[3]!.status).toBe('failed');
  });

  it('Parquet rows piped straight into csvSink: cells as text by the type rules', async () => {
    const path = join(dir, 'floats.parquet');
    await db.run(
      `COPY (SELECT 0.1::FLOAT AS f, 0.1::DOUBLE AS d, [1, 9007199254740993]::BIGINT[] AS l, 9007199254740993::BIGINT AS b, NULL::VARCHAR AS n) TO '${path}' (FORMAT parquet)`,
    );
    const out = join(dir, 'floats.csv');
    await pipeline(parquetSource(path), csvSink(out));
    expect(readFileSync(out, 'utf8')).toBe('f,d,l,b,n\n0.1,0.1,"[1,9007199254740993]",9007199254740993,\n');
  });

  it('CSV rows piped straight into parquetSink: text columns, in order', async () => {
    const csv = fileWith(
      dir,
      'plain.csv',
      `id,text\n${Array.from({ length: 5000 }, (_, i) => `${i},t${i}`).join('\n')}\n`,
    );
    const out = join(dir, 'plain.parquet');
    await pipeline(csvSource(csv), parquetSink(out, { rowGroupSize: 1000 }));
    const rows = await db.rows(`SELECT id, text FROM '${out}'`);
    expect(rows).toHaveLength(5000);
    expect(rows[4999]).toEqual({ id: '4999', text: 't4999' });
    // And batchpipe reads its own file back.
    const back = await collect<Row>(parquetSource(out));
    expect(back.map((r) => r.values.text)).toEqual(rows.map((r) => r.text));
  });

  it('records (plain objects) get types from the first rows', async () => {
    const out = join(dir, 'records.parquet');
    const records = Array.from({ length: 3000 }, (_, i) => ({ n: i, x: i / 2, ok: i % 2 === 0, s: `v${i}` }));
    const { Readable } = await import('node:stream');
    await pipeline(Readable.from(records), parquetSink(out));
    const types = Object.fromEntries(
      (await db.rows(`DESCRIBE SELECT * FROM '${out}'`)).map((r) => [r.column_name, r.column_type]),
    );
    expect(types).toEqual({ n: 'BIGINT', x: 'DOUBLE', ok: 'BOOLEAN', s: 'VARCHAR' });
    const rows = await db.rows(`SELECT sum(n) AS total, count(*) AS count FROM '${out}'`);
    expect(rows[0]).toEqual({ total: String((2999 * 3000) / 2), count: '3000' });
    writeFileSync(join(dir, 'done'), '');
  });
});
