import { readFileSync, writeFileSync } from 'node:fs';
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
    expect(summary).toMatchObject({ rows: 3, requests: 3, rejected: 0, engine: 'bytes' });
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

  it('has --help', async () => {
    const help = await runCli(['prepare', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--template <text>');
    expect(help.stdout).toContain('Every row ends up once');
  });
});
