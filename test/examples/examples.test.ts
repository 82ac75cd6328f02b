/**
 * The scripts in examples/ run as a user runs them (`tsx`, importing 'batchpipe', which resolves to
 * this package's build by its own name) on the embedded local service, and write what they say.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { runNode } from '../cli/run-cli.js';
import { tempDir } from '../helpers.js';
import { duckdb } from '../support/duckdb.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = tempDir('bp-examples-');
const input = join(root, 'examples/reviews.csv');
const sourceRows = parse(readFileSync(input), { columns: true }) as Record<string, string>[];

/** No provider key: the examples start the embedded service. */
const env = {
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
  BATCHPIPE_API_KEY: '',
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
};

function example(name: string, ...args: string[]) {
  return runNode(['--import', 'tsx', join('examples', name), ...args], { cwd: root, env });
}

describe('examples/', () => {
  it('etl.ts: pipeline() from csvSource to csvSink labels every row once, in source order', async () => {
    const out = join(dir, 'etl.csv');
    const { code, stderr, stdout } = await example('etl.ts', input, out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`wrote ${out}`);
    const rows = parse(readFileSync(out), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.id)).toEqual(sourceRows.map((r) => r.id));
    expect(
      rows.every((r) => r.status === 'ok' && ['positive', 'negative', 'neutral'].includes(r.label!)),
    ).toBe(true);
    // The source's own text is kept: mapRows cleaned only what went into the prompts.
    expect(rows.map((r) => r.review)).toEqual(sourceRows.map((r) => r.review));
  });

  it('structured.ts: a zod schema gives each field of the answer its own column, checked', async () => {
    const out = join(dir, 'structured.jsonl');
    const { code, stderr } = await example('structured.ts', input, out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(sourceRows.length);
    for (const row of rows) {
      expect(row.status).toBe('ok');
      expect(['positive', 'negative', 'neutral']).toContain(row.sentiment);
      expect(typeof row.would_buy_again).toBe('boolean');
      expect(Array.isArray(row.problems)).toBe(true);
    }
  });

  it('evaluation.ts: scores the labels against the gold column and writes the HTML report', async () => {
    const out = join(dir, 'evaluation');
    const { code, stderr, stdout } = await example('evaluation.ts', input, out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [, accuracy, low, high] = /accuracy ([\d.]+) \(95% CI ([\d.]+)-([\d.]+)\)/
      .exec(stdout)!
      .map(Number);
    // The same accuracy, by hand, from the table the script wrote and the rating-derived gold.
    const rows = parse(readFileSync(join(out, 'evaluation-labeled.csv')), { columns: true }) as Record<
      string,
      string
    >[];
    const gold = (stars: number) => (stars >= 4 ? 'positive' : stars <= 2 ? 'negative' : 'neutral');
    const right = rows.filter((r) => r.label === gold(Number(r.rating))).length;
    expect(accuracy).toBeCloseTo(right / rows.length, 3);
    expect(low!).toBeLessThanOrEqual(accuracy!);
    expect(high!).toBeGreaterThanOrEqual(accuracy!);
    const html = readFileSync(join(out, 'evaluation-report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('gold');
  });

  it('embeddings.ts: one vector per row, of the model size, in a Parquet file DuckDB reads', async () => {
    const out = join(dir, 'embeddings.parquet');
    const { code, stderr, stdout } = await example('embeddings.ts', input, out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(`wrote ${sourceRows.length} rows`);
    const db = await duckdb();
    try {
      const rows = await db.rows(
        `SELECT id, status, len(embedding) AS dims FROM read_parquet('${out}') ORDER BY file_row_number`,
      );
      expect(rows.map((r) => r.id)).toEqual(sourceRows.map((r) => r.id));
      // text-embedding-v4 vectors have 1,024 dimensions.
      expect(rows.every((r) => r.status === 'ok' && Number(r.dims) === 1024)).toBe(true);
    } finally {
      db.close();
    }
  });
});
