import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { beforeAll, describe, expect, it } from 'vitest';
import { csvText } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';
import { duckdb } from '../support/duckdb.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-formats-cli-');
/** No provider in the environment: commands use the embedded local service. */
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};
const ROWS = 40;
let reviews: string;

beforeAll(async () => {
  const db = await duckdb();
  reviews = join(dir, 'reviews.parquet');
  await db.run(
    `COPY (SELECT (9007199254740993 + i)::BIGINT AS id, 'review ' || i AS review, (i % 5)::INTEGER AS stars, TIMESTAMP '2024-01-01 00:00:00.5' AS at
      FROM range(${ROWS}) t(i)) TO '${reviews}' (FORMAT parquet, COMPRESSION zstd)`,
  );
  db.close();
}, 60_000);

const labelArgs = ['--template', 'Rate: {{review}} ({{at}})', '--labels', 'good,bad', '--model', 'qwen-plus'];

describe('every command takes every format', () => {
  it('prepare reads Parquet: int64 ids exact as custom_ids', async () => {
    const outDir = join(dir, 'prepared');
    const result = await runCli(
      ['prepare', reviews, ...labelArgs, '--id-column', 'id', '--out', outDir, '--json'],
      {
        cwd: dir,
        env,
      },
    );
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { shards: Array<{ file: string }> };
    const lines = readFileSync(join(outDir, summary.shards[0]!.file), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(ROWS);
    expect(lines[0]).toContain('"custom_id":"9007199254740993"');
    expect(lines[0]).toContain('Rate: review 0 (2024-01-01T00:00:00.500000)');
  });

  it('run: Parquet in, Parquet out; DuckDB reads the typed table back in order', async () => {
    const out = join(dir, 'out', 'labeled.parquet');
    const result = await runCli(
      [
        'run',
        reviews,
        ...labelArgs,
        '--id-column',
        'id',
        '--out',
        out,
        '--compression',
        'zstd',
        '--row-group-size',
        '16',
      ],
      { cwd: dir, env },
    );
    expect(result.code, result.stderr).toBe(0);
    const db = await duckdb();
    const rows = await db.rows(
      `SELECT id::VARCHAR AS id, review, stars, status, label, prompt_tokens FROM '${out}'`,
    );
    const types = Object.fromEntries(
      (await db.rows(`DESCRIBE SELECT * FROM '${out}'`)).map((r) => [r.column_name, r.column_type]),
    );
    const meta = await db.rows(
      `SELECT count(DISTINCT row_group_id) AS groups, string_agg(DISTINCT compression, ',') AS codec FROM parquet_metadata('${out}')`,
    );
    db.close();
    expect(meta[0]).toEqual({ groups: String(Math.ceil(ROWS / 16)), codec: 'ZSTD' });
    expect(rows).toHaveLength(ROWS);
    expect(rows.map((r) => r.id)).toEqual(
      Array.from({ length: ROWS }, (_, i) => String(9007199254740993n + BigInt(i))),
    );
    expect(rows.every((r) => r.status === 'ok' && ['good', 'bad'].includes(r.label as string))).toBe(true);
    expect(types).toMatchObject({
      id: 'BIGINT',
      stars: 'INTEGER',
      at: 'TIMESTAMP',
      status: 'VARCHAR',
      prompt_tokens: 'BIGINT',
    });
  });

  it('run: CSV in, Parquet out; Parquet in, CSV out', async () => {
    const csv = join(dir, 'reviews.csv');
    writeFileSync(
      csv,
      csvText(
        ['id', 'review'],
        [
          ['a', 'fine'],
          ['b', 'poor'],
        ],
      ),
    );
    const parquetOut = join(dir, 'csv-in.parquet');
    const first = await runCli(
      [
        'run',
        csv,
        ...labelArgs.slice(0, 2),
        '--template',
        'Rate: {{review}}',
        ...labelArgs.slice(2),
        '--id-column',
        'id',
        '--out',
        parquetOut,
      ],
      { cwd: dir, env },
    );
    expect(first.code, first.stderr).toBe(0);
    const db = await duckdb();
    expect(
      (await db.rows(`SELECT id, review, status FROM '${parquetOut}'`)).map((r) => [
        r.id,
        r.review,
        r.status,
      ]),
    ).toEqual([
      ['a', 'fine', 'ok'],
      ['b', 'poor', 'ok'],
    ]);
    db.close();
    const csvOut = join(dir, 'parquet-in.csv');
    const second = await runCli(['run', reviews, ...labelArgs, '--id-column', 'id', '--out', csvOut], {
      cwd: dir,
      env,
    });
    expect(second.code, second.stderr).toBe(0);
    const table = parse(readFileSync(csvOut, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(table[1]).toMatchObject({
      id: '9007199254740994',
      review: 'review 1',
      at: '2024-01-01T00:00:00.500000',
      status: 'ok',
    });
  });

  it('run refuses an --out it cannot write before anything is read or uploaded', async () => {
    const cwd = join(dir, 'refuse');
    mkdirSync(cwd);
    const unknown = await runCli(['run', reviews, ...labelArgs, '--out', join(cwd, 'labeled.xlsx')], {
      cwd,
      env,
    });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('BP_USAGE');
    expect(unknown.stderr).toContain('labeled.xlsx');
    const blocked = join(cwd, 'a-file');
    writeFileSync(blocked, '');
    const unwritable = await runCli(
      ['run', reviews, ...labelArgs, '--out', join(blocked, 'labeled.parquet')],
      { cwd, env },
    );
    expect(unwritable.code).not.toBe(0);
    expect(unwritable.stderr).toContain('BP_OUTPUT_PATH');
    // Nothing was staged, and the local service received nothing.
    expect(existsSync(join(cwd, '.batchpipe', 'runs'))).toBe(false);
    const records = join(cwd, '.batchpipe', 'local', 'records.jsonl');
    expect(existsSync(records) ? readFileSync(records, 'utf8').trim() : '').toBe('');
  });

  it('join writes Arrow with --out-format', async () => {
    const outDir = join(dir, 'prepared');
    const results = join(dir, 'no-results.jsonl');
    writeFileSync(results, '');
    const out = join(dir, 'joined.bin');
    const result = await runCli(
      [
        'join',
        '--source',
        reviews,
        '--results',
        results,
        '--rejections',
        join(outDir, 'rejections.jsonl'),
        '--id-column',
        'id',
        '--out',
        out,
        '--out-format',
        'arrows',
        // No result file: every row is missing, which is the table this test reads.
        '--allow-empty',
      ],
      { cwd: dir, env },
    );
    expect(result.code, result.stderr).toBe(0);
    const { tableFromIPC } = await import('apache-arrow');
    const table = tableFromIPC(readFileSync(out));
    expect(table.numRows).toBe(ROWS);
    expect(table.getChild('status')!.get(0)).toBe('missing');
    expect(table.getChild('id')!.get(0)).toBe(9007199254740993n);
  });
});
