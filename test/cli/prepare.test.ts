import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir();

describe('batchpipe prepare', () => {
  it('writes request files and says what it did', async () => {
    const input = fileWith(
      dir,
      'reviews.csv',
      'id,review\n1,"Great, really ""great"""\n2,Bad\n2,Dup id\n3\n',
    );
    const out = join(dir, 'prep');
    const result = await runCli([
      'prepare',
      input,
      '--template',
      'Classify: {{review}}',
      '--system',
      'One word.',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      out,
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('prepared 4 rows: 2 requests in 1 file, 2 rejected');
    expect(result.stderr).toContain(`${input}:4: row 3 custom_id "2": BP_DUPLICATE_CUSTOM_ID`);
    expect(result.stderr).toContain(
      `${input}:5: row 4: BP_ROW_FIELD_COUNT expected 2 fields (id, review), got 1`,
    );
    const lines = readFileSync(join(out, 'requests-00001.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({
      custom_id: '1',
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'qwen-plus',
        messages: [
          { role: 'system', content: 'One word.' },
          { role: 'user', content: 'Classify: Great, really "great"' },
        ],
      },
    });
  });

  it('prints the summary as JSON with --json', async () => {
    const input = fileWith(dir, 'small.csv', 'id,t\n1,a\n2,b\n3,c\n');
    const result = await runCli([
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'qwen-plus',
      '--out',
      join(dir, 'json'),
      '--max-lines-per-file',
      '2',
      '--json',
    ]);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ rows: 3, requests: 3, rejected: 0 });
    expect(summary).not.toHaveProperty('engine');
    expect(summary.shards.map((s: { lines: number }) => s.lines)).toEqual([2, 1]);
  });

  it('passes sampling and thinking options into every body, and warns about thinking defaults', async () => {
    const input = fileWith(dir, 'think.csv', 'q\nwhy?\n');
    const out = join(dir, 'think');
    const warned = await runCli([
      'prepare',
      input,
      '--template',
      '{{q}}',
      '--model',
      'qwen3.5-plus',
      '--out',
      out,
    ]);
    expect(warned.stderr).toContain('warning BP_WARN_THINKING_DEFAULT');
    const result = await runCli([
      'prepare',
      input,
      '--template',
      '{{q}}',
      '--model',
      'qwen3.5-plus',
      '--enable-thinking',
      'false',
      '--temperature',
      '0.2',
      '--max-tokens',
      '8',
      '--out',
      out,
    ]);
    expect(result.stderr).not.toContain('warning');
    const line = JSON.parse(readFileSync(join(out, 'requests-00001.jsonl'), 'utf8'));
    expect(line.body).toEqual({
      model: 'qwen3.5-plus',
      enable_thinking: false,
      messages: [{ role: 'user', content: 'why?' }],
      temperature: 0.2,
      max_tokens: 8,
    });
  });

  it('runs a TypeScript mapper module', async () => {
    const mapper = join(dir, 'mapper.ts');
    writeFileSync(
      mapper,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the mapper's own template literal
      "export default (row: Record<string, unknown>) => ({ model: 'qwen-max', messages: [{ role: 'user' as const, content: `Q: ${String(row.q)}` }] });\n",
    );
    const input = fileWith(dir, 'questions.jsonl', '{"q":"one"}\n{"q":"two"}\n');
    const out = join(dir, 'mapped');
    const result = await runCli(['prepare', input, '--mapper', mapper, '--out', out]);
    expect(result.code).toBe(0);
    const lines = readFileSync(join(out, 'requests-00001.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.custom_id, l.body.model, l.body.messages[0].content])).toEqual([
      ['row-1', 'qwen-max', 'Q: one'],
      ['row-2', 'qwen-max', 'Q: two'],
    ]);
  });

  it('exits 2 on usage errors and 1 when the run fails, saying why', async () => {
    const input = fileWith(dir, 'u.csv', 'id,t\n1,a\n');
    const noOut = await runCli(['prepare', input, '--template', '{{t}}', '--model', 'm']);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toContain("required option '--out <dir>' not specified");
    const badFlag = await runCli([
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'm',
      '--out',
      dir,
      '--temperature',
      'hot',
    ]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('expected a number, got "hot"');
    const both = await runCli(['prepare', input, '--model', 'm', '--out', dir]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('BP_INVALID_OPTION');
    const missing = await runCli([
      'prepare',
      join(dir, 'nope.csv'),
      '--template',
      '{{t}}',
      '--model',
      'm',
      '--out',
      dir,
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error BP_INPUT_NOT_FOUND: no such file');
    const column = await runCli([
      'prepare',
      input,
      '--template',
      '{{text}}',
      '--model',
      'm',
      '--out',
      join(dir, 'col'),
    ]);
    expect(column.code).toBe(1);
    expect(column.stderr).toContain(
      `error BP_TEMPLATE_MISSING_COLUMN: ${input}:2: the template uses {{text}} but row 1 has no column "text" (columns: id, t)`,
    );
  });

  it('prints the first rejections without reading all of rejections.jsonl (it read the whole file: 390 MB at 500k rejected rows)', async () => {
    // 300,000 short rows make a 42 MB rejections.jsonl; a 32 MB heap cannot hold it as one string.
    const input = fileWith(dir, 'many-bad.csv', `id,t\n1,ok\n${'x\n'.repeat(300_000)}`);
    const out = join(dir, 'many-bad');
    const result = await runCli(
      ['prepare', input, '--template', '{{t}}', '--model', 'qwen-plus', '--out', out],
      {
        env: { NODE_OPTIONS: '--max-old-space-size=32' },
      },
    );
    expect(result.stderr).not.toContain('heap out of memory');
    expect(result.code).toBe(0);
    expect(statSync(join(out, 'rejections.jsonl')).size).toBeGreaterThan(32 * 1024 * 1024);
    const shown = result.stderr.split('\n').filter((l) => l.includes('BP_ROW_FIELD_COUNT'));
    expect(shown).toHaveLength(10);
    expect(shown[0]).toBe(`  ${input}:3: row 2: BP_ROW_FIELD_COUNT expected 2 fields (id, t), got 1`);
    expect(result.stderr).toContain('  ... and 299,990 more\n');
  }, 60_000);

  it('exits 1 for a model the region does not offer, naming model, provider, region and what it offers (it exited 0 with "0 requests")', async () => {
    const input = fileWith(dir, 'region.csv', 'id,t\n1,a\n2,b\n3,c\n');
    const out = join(dir, 'region');
    const result = await runCli([
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'qwen3.5-plus',
      '--provider',
      'dashscope',
      '--out',
      out,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'error BP_MODEL_NOT_OFFERED: model qwen3.5-plus is not offered for batches by Alibaba Cloud Model Studio, international (Singapore), provider "dashscope" (offered: qwen-max, qwen-plus, qwen-flash, qwen-turbo); if the list changed, add it with --models;',
    );
    expect(result.stderr).toContain(`every row was rejected and written to ${join(out, 'rejections.jsonl')}`);
    // Nothing is lost: every row is in rejections.jsonl.
    const rejected = readFileSync(join(out, 'rejections.jsonl'), 'utf8').trimEnd().split('\n');
    expect(rejected.map((l) => JSON.parse(l).code)).toEqual(Array(3).fill('BP_MODEL_NOT_OFFERED'));
  });

  it('exits 1 with "nothing to submit" when every row was rejected (it exited 0)', async () => {
    const input = fileWith(dir, 'all-bad.csv', 'id,t\n1\n1,a\n1,b\n2\n');
    const out = join(dir, 'all-bad');
    const result = await runCli([
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      out,
      '--max-line-bytes',
      '10',
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('prepared 4 rows: 0 requests in 0 files, 4 rejected');
    expect(result.stderr.trimEnd().split('\n').at(-1)).toBe(
      `error BP_NOTHING_TO_SUBMIT: nothing to submit: all 4 rows were rejected (most common: BP_ROW_FIELD_COUNT 2, BP_LINE_TOO_LARGE 2); see ${join(out, 'rejections.jsonl')}`,
    );
  });

  it('prints the summary line last, after the warnings raised by many rows (warnings came after it)', async () => {
    const input = fileWith(dir, 'warn.csv', 'q\na\nb\nc\n');
    const result = await runCli([
      'prepare',
      input,
      '--template',
      '{{q}}',
      '--model',
      'qwen3.5-plus',
      '--out',
      join(dir, 'warn'),
    ]);
    expect(result.code).toBe(0);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines.at(-1)).toMatch(/^prepared 3 rows: 3 requests in 1 file, 0 rejected -> /);
    expect(lines.filter((l) => l.startsWith('warning BP_WARN_THINKING_DEFAULT'))).toEqual([
      expect.stringContaining('set --enable-thinking explicitly'),
      expect.stringContaining('[3 rows]'),
    ]);
  });

  it('names options as the command line spells them (--id-column, --endpoint, --encoding), not as the API does', async () => {
    const input = fileWith(dir, 'words.csv', 'id,t\n1,a\n');
    const idColumn = await runCli([
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'm',
      '--id-column',
      'idx',
      '--out',
      join(dir, 'w1'),
    ]);
    expect(idColumn.code).toBe(1);
    expect(idColumn.stderr).toContain(
      `error BP_ID_COLUMN_MISSING: ${input}:2: --id-column is "idx" but row 1 has no such column`,
    );
    const endpoint = await runCli([
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'm',
      '--endpoint',
      '/v1/embeddings',
      '--system',
      'x',
      '--out',
      join(dir, 'w2'),
    ]);
    expect(endpoint.code).toBe(2);
    expect(endpoint.stderr).toContain(
      'error BP_INVALID_OPTION: --endpoint: --system, --image-column and --video-column apply to chat only',
    );
    const latin1 = fileWith(dir, 'latin1.csv', Buffer.from('id,t\n1,caf\xe9\n2,ok\n', 'latin1'));
    const encoding = await runCli([
      'prepare',
      latin1,
      '--template',
      '{{t}}',
      '--model',
      'm',
      '--out',
      join(dir, 'w3'),
    ]);
    expect(encoding.code).toBe(0);
    expect(encoding.stderr).toContain(
      'BP_INPUT_ENCODING row is not valid UTF-8 (column "t", field 2); set --encoding',
    );
  });

  it('takes --max-row-size, --big-integers and --max-line-bytes, as prepare() takes maxRowSize, bigIntegers and maxLineBytes', async () => {
    const input = fileWith(
      dir,
      'big.jsonl',
      '{"id":12345678901234567890,"t":"a"}\n{"id":2,"t":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}\n',
    );
    const out = join(dir, 'big');
    const args = [
      'prepare',
      input,
      '--template',
      '{{t}}',
      '--model',
      'qwen-plus',
      '--id-column',
      'id',
      '--out',
      out,
    ];
    const lossy = await runCli([...args, '--big-integers', 'number', '--max-line-bytes', '200']);
    expect(lossy.code).toBe(0);
    expect(lossy.stderr).toContain(
      'warning BP_WARN_BIG_INTEGER: integers beyond 2^53 were read as numbers and lost digits (--big-integers is "number")',
    );
    expect(JSON.parse(readFileSync(join(out, 'requests-00001.jsonl'), 'utf8')).custom_id).toBe(
      '12345678901234567000',
    );
    expect(lossy.stderr).toContain(
      `${input}:2: row 2 custom_id "2": BP_LINE_TOO_LARGE line is 214 bytes, at most 200 allowed`,
    );
    const small = await runCli([...args, '--max-row-size', '20']);
    expect(small.code).toBe(1);
    expect(small.stderr).toContain('error BP_ROW_TOO_LARGE');
    expect((await runCli([...args, '--big-integers', 'maybe'])).code).toBe(2);
  });

  it('has --help', async () => {
    const help = await runCli(['prepare', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--template <text>');
    expect(help.stdout).toContain('Every row ends up once');
  });
});
