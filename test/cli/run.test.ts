import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { csvText } from '../fixtures/make-fixtures.js';
import { fileWith, tempDir } from '../helpers.js';
import { CLI, runCli } from './run-cli.js';

const dir = tempDir('bp-run-');
/** No provider in the environment: commands use the embedded local service. */
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};

function serviceCalls(cwd: string): number {
  return readFileSync(join(cwd, '.batchpipe', 'local', 'records.jsonl'), 'utf8')
    .trimEnd()
    .split('\n').length;
}

describe('batchpipe run', () => {
  it('turns a table into the table with results, on the embedded local service, and resumes instead of resubmitting', async () => {
    const rows = Array.from({ length: 30 }, (_, i) => [
      `id-${i}`,
      i % 7 === 3 ? '' : `review "${i}", with a comma\nand a newline`,
      String(i % 5),
    ]);
    rows.push(['id-3', 'duplicate id', '1']);
    const input = join(dir, 'reviews.csv');
    writeFileSync(input, csvText(['id', 'review', 'rating'], rows));
    const args = [
      'run',
      input,
      '--template',
      'Rate: {{review}}',
      '--labels',
      'good,bad',
      '--model',
      'qwen-plus',
      '--enable-thinking',
      'false',
      '--id-column',
      'id',
      '--out',
      join(dir, 'out', 'labeled.csv'),
      '--max-lines-per-file',
      '8',
    ];
    const first = await runCli(args, { cwd: dir, env });
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('wrote 31 rows');
    const table = parse(readFileSync(join(dir, 'out', 'labeled.csv'), 'utf8'), { columns: true }) as Record<
      string,
      string
    >[];
    expect(table).toHaveLength(31);
    expect(table.map((r) => r.id)).toEqual(rows.map((r) => r[0]));
    expect(table[0]).toMatchObject({
      id: 'id-0',
      review: 'review "0", with a comma\nand a newline',
      rating: '0',
      status: 'ok',
    });
    expect(['good', 'bad']).toContain(table[0]!.label);
    expect(table[30]).toMatchObject({ id: 'id-3', status: 'rejected', error_code: 'BP_DUPLICATE_CUSTOM_ID' });
    expect(table.filter((r) => r.status === 'ok')).toHaveLength(30);

    const calls = serviceCalls(dir);
    const again = await runCli(args, { cwd: dir, env });
    expect(again.code).toBe(0);
    expect(serviceCalls(dir)).toBe(calls);
    expect(again.stderr).not.toContain('uploaded');
  });

  it('checks everything and submits nothing with --dry-run, and keeps nothing', async () => {
    const cwd = join(dir, 'dry');
    mkdirSync(cwd, { recursive: true });
    const input = fileWith(cwd, 'dry.csv', 'id,t\n1,a\n2,b\n');
    const result = await runCli(
      [
        'run',
        input,
        '--template',
        '{{t}}',
        '--model',
        'qwen-plus',
        '--out',
        join(cwd, 'dry-out.csv'),
        '--dry-run',
      ],
      { cwd, env },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('dry run: 2 rows: 2 requests in 1 file, 0 rejected; nothing submitted');
    expect(readdirSync(join(cwd, '.batchpipe', 'runs'))).toEqual([]);
  });
});

describe('batchpipe run on the test engine', () => {
  it('says so: a line at the start, a mark on the summary, a field in --json, and --include model in the table', async () => {
    const cwd = join(dir, 'engine');
    mkdirSync(cwd, { recursive: true });
    const input = fileWith(cwd, 'in.csv', 'id,t\n1,a\n2,b\n');
    const args = [
      'run',
      input,
      '--template',
      '{{t}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--include',
      'model',
    ];
    const text = await runCli([...args, '--out', join(cwd, 'out.csv')], { cwd, env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stderr.split('\n')[0]).toBe(
      "answers come from batchpipe's local test engine: deterministic placeholders, no inference (set DASHSCOPE_API_KEY or OPENAI_API_KEY for a model)",
    );
    expect(text.stderr).toMatch(/wrote 2 rows to .*out\.csv: 2 ok \(run .*\) \[test engine: no inference\]/);
    const rows = parse(readFileSync(join(cwd, 'out.csv'), 'utf8'), { columns: true }) as Array<
      Record<string, string>
    >;
    expect(rows.map((r) => r.model)).toEqual([
      'batchpipe-test-engine/qwen-plus',
      'batchpipe-test-engine/qwen-plus',
    ]);

    const json = await runCli([...args, '--out', join(cwd, 'out2.csv'), '--json'], { cwd, env });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ engine: 'batchpipe-test-engine', statuses: { ok: 2 } });
  });
});

describe('batchpipe run with nothing to submit', () => {
  it('exits 1 with BP_NOTHING_TO_SUBMIT when every row is rejected, dry run or not, submitting nothing (bug: exit 2, a usage error)', async () => {
    const cwd = join(dir, 'nothing');
    mkdirSync(cwd, { recursive: true });
    const input = fileWith(cwd, 'long.csv', 'id,t\n1,aaaa\n2,bbbb\n3,cccc\n');
    for (const extra of [[], ['--dry-run']]) {
      const result = await runCli(
        [
          'run',
          input,
          '--template',
          '{{t}}',
          '--model',
          'qwen-plus',
          '--id-column',
          'id',
          '--max-line-bytes',
          '50',
          '--out',
          join(cwd, 'out.csv'),
          ...extra,
        ],
        { cwd, env },
      );
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(
        /BP_NOTHING_TO_SUBMIT: nothing to submit: all 3 rows were rejected \(most common: BP_LINE_TOO_LARGE 3\)/,
      );
    }
    expect(() => readFileSync(join(cwd, '.batchpipe', 'local', 'records.jsonl'), 'utf8')).toThrow();
    // Neither the failed run nor the dry run leaves its staging directory behind.
    expect(readdirSync(join(cwd, '.batchpipe', 'runs'))).toEqual([]);
  });

  it("takes --max-row-size, and words its errors with the command line's flags", async () => {
    const cwd = join(dir, 'row-size');
    mkdirSync(cwd, { recursive: true });
    const input = fileWith(cwd, 'rows.csv', `id,t\n1,"${'x'.repeat(5000)}"\n2,b\n`);
    const result = await runCli(
      [
        'run',
        input,
        '--template',
        '{{t}}',
        '--model',
        'qwen-plus',
        '--max-row-size',
        '1KB',
        '--out',
        join(cwd, 'o.csv'),
      ],
      { cwd, env },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /BP_ROW_TOO_LARGE: .*rows\.csv:2: row is longer than 1000 bytes \(--max-row-size\)/,
    );
    const wording = await runCli(
      [
        'run',
        fileWith(cwd, 'ok.csv', 'id,t\n1,a\n'),
        '--template',
        '{{t}}',
        '--model',
        'qwen-plus',
        '--id-column',
        'nope',
        '--out',
        join(cwd, 'o.csv'),
      ],
      { cwd, env },
    );
    expect(wording.stderr).toContain('--id-column');
    expect(wording.stderr).not.toContain('idColumn');
  });
});

describe('batchpipe run --max-reasks', () => {
  it('asks invalid answers again in rounds of their own and writes every row once', async () => {
    const { startLocalService } = await import('../../src/local/index.js');
    const service = await startLocalService({ timeScale: 36_000, invalidJsonRate: 0.4, seed: 9 });
    try {
      const cwd = join(dir, 'reask');
      mkdirSync(cwd, { recursive: true });
      const rows = Array.from({ length: 30 }, (_, i) => [`r${i}`, `text ${i}`]);
      const input = fileWith(cwd, 't.csv', csvText(['id', 'text'], rows));
      const out = join(cwd, 'out.csv');
      const args = [
        'run',
        input,
        '--template',
        'Classify: {{text}}',
        '--labels',
        'a,b',
        '--model',
        'qwen-plus',
        '--enable-thinking',
        'false',
        '--id-column',
        'id',
        '--provider',
        'local',
        '--base-url',
        service.url,
        '--poll-interval',
        '0.05',
        '--out',
        out,
      ];
      const plain = await runCli(args, { cwd, env });
      expect(plain.code).toBe(0);
      const before = Number(/(\d+) invalid_output/.exec(plain.stderr)?.[1]);
      expect(before).toBeGreaterThan(0);
      const result = await runCli([...args, '--max-reasks', '3'], { cwd, env });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain(`re-ask round 1: ${before} invalid answers asked again: done`);
      const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
      expect(table.map((r) => r.id)).toEqual(rows.map((r) => r[0]));
      expect(table.filter((r) => r.status === 'invalid_output').length).toBeLessThan(before);
    } finally {
      await service.close();
    }
  });
});

describe('the embedded service and batchpipe serve', () => {
  it('a command joins the service that `batchpipe serve` already runs on .batchpipe/local', async () => {
    const cwd = join(dir, 'shared');
    mkdirSync(cwd, { recursive: true });
    const serve = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const url = await new Promise<string>((resolve) => {
        let out = '';
        serve.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('\n')) resolve(out.split('\n')[0]!.trim());
        });
      });
      const input = fileWith(dir, 'joined.csv', 'id,t\n1,a\n2,b\n');
      const result = await runCli(
        ['run', input, '--template', '{{t}}', '--model', 'qwen-plus', '--out', join(cwd, 'out.csv')],
        { cwd, env },
      );
      expect(result.code).toBe(0);
      const records = (await (await fetch(`${url.replace(/\/v1$/, '')}/_batchpipe/records`)).json()) as {
        calls: Array<{ op: string }>;
      };
      expect(records.calls.filter((c) => c.op === 'batch.create')).toHaveLength(1);
    } finally {
      serve.kill('SIGTERM');
      await new Promise((resolve) => serve.once('exit', resolve));
    }
  });
});
