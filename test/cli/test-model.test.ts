/**
 * `run --test-model`: DashScope's free format check ("model batch-test-model with endpoint
 * /v1/chat/ds-test ... validate your file format without inference costs. Limits: 1 MB file, 100 lines,
 * 2 concurrent tasks", ref/dashscope-batch-api.txt) on a table's first requests, against the local
 * service's dry run: batch status, request counts and each failure joined to its row; no table written.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { readManifest } from '../../src/run/manifest.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const root = tempDir('bp-test-model-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ dataDir: join(root, 'service') });
});
afterAll(() => service.close());

const env = { DASHSCOPE_API_KEY: 'sk-dashscope-test', OPENAI_API_KEY: '', BATCHPIPE_API_KEY: '' };

function table(name: string, rows: number, bad: number[] = []): string {
  const lines = Array.from({ length: rows }, (_, i) => `${name}-${i},review ${i},${bad.includes(i) ? 5 : 1}`);
  return fileWith(root, `${name}.csv`, `id,text,temp\n${lines.join('\n')}\n`);
}

// The temperature comes from the row: 5 passes batchpipe's own checks (which do not range-check a
// mapper's body) and fails the provider's (0 to 2), so those rows are the format check's findings.
const mapper = join(root, 'mapper.ts');
writeFileSync(
  mapper,
  "export default (row: Record<string, unknown>) => ({ model: 'qwen-plus', temperature: Number(row.temp), messages: [{ role: 'user' as const, content: String(row.text) }] });\n",
);

function args(input: string, runs: string, extra: string[]): string[] {
  return [
    'run',
    input,
    '--mapper',
    mapper,
    '--id-column',
    'id',
    '--out',
    join(root, `${runs}.csv`),
    '--runs-dir',
    join(root, runs),
    '--base-url',
    service.url,
    '--poll-interval',
    '0.1',
    '--test-model',
    ...extra,
  ];
}

const runOf = (runs: string) =>
  join(root, runs, readdirSync(join(root, runs)).find((d) => d.startsWith('run-'))!);

describe('run --test-model', () => {
  it('sends the first 100 requests as batch-test-model on /v1/chat/ds-test, reports status, counts and each failure by its row, and writes no table', async () => {
    const input = table('sample', 150, [3, 40, 120]);
    const result = await runCli(args(input, 'runs-sample', ['--provider', 'dashscope', '--json']), { env });
    expect(result.code, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      state: 'test-model',
      run_state: 'done',
      passed: false,
      requests: 100,
      model: 'batch-test-model',
      endpoint: '/v1/chat/ds-test',
    });
    expect(report.note).toContain("says nothing about the model's answers");
    expect(report.batches).toEqual([
      expect.objectContaining({
        status: 'completed',
        request_counts: { total: 100, completed: 98, failed: 2 },
      }),
    ]);
    // Rows 4 and 41 (1-based; row 121 is past the sample), joined by their id column.
    expect(report.failures.map((f: { row: number; custom_id: string }) => [f.row, f.custom_id])).toEqual([
      [4, 'sample-3'],
      [41, 'sample-40'],
    ]);
    expect(report.failures[0].message).toMatch(/temperature/);
    expect(existsSync(join(root, 'runs-sample.csv'))).toBe(false);
    // What went to the provider: the test model on the test endpoint, the first 100 rows.
    const manifest = await readManifest(runOf('runs-sample'));
    expect(manifest.endpoint).toBe('/v1/chat/ds-test');
    const sent = readFileSync(join(runOf('runs-sample'), manifest.jobs[0]!.input), 'utf8')
      .trim()
      .split('\n');
    expect(sent).toHaveLength(100);
    const first = JSON.parse(sent[0]!);
    expect(first).toMatchObject({
      custom_id: 'sample-0',
      url: '/v1/chat/ds-test',
      body: { model: 'batch-test-model' },
    });
  });

  it('takes up to 200 over the two test batches, each within 100 lines, and passes a clean table (exit 0)', async () => {
    const input = table('two', 230);
    const result = await runCli(
      args(input, 'runs-two', ['--provider', 'dashscope', '--test-sample', '200']),
      { env },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('200 requests rewritten to batch-test-model');
    expect(result.stderr).toMatch(/passed: the test model checks the requests' format/);
    const manifest = await readManifest(runOf('runs-two'));
    expect(manifest.jobs.map((j) => j.lines)).toEqual([100, 100]);
    expect(manifest.jobs.every((j) => j.request_counts?.completed === 100)).toBe(true);
  });

  it('warns under dashscope-cn, whose documents do not describe it', async () => {
    const result = await runCli(args(table('cn', 5), 'runs-cn', ['--provider', 'dashscope-cn']), { env });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/warning: .*China \(Beijing\) does not document the test model/);
  });

  it('refuses a provider without a test model, and a sample past 200', async () => {
    const openai = await runCli(args(table('oa', 2), 'runs-oa', ['--provider', 'openai']), {
      env: { ...env, OPENAI_API_KEY: 'sk-openai-test' },
    });
    expect(openai.code).toBe(2);
    expect(openai.stderr).toMatch(/--test-model: OpenAI \(provider "openai"\) documents no test model/);
    const many = await runCli(
      args(table('many', 2), 'runs-many', ['--provider', 'dashscope', '--test-sample', '201']),
      {
        env,
      },
    );
    expect(many.code).toBe(2);
    expect(many.stderr).toMatch(/--test-sample: expected a whole number from 1 to 200/);
  });
});
