import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { fileWith, tempDir } from '../helpers.js';
import { runCli, withoutEngineNotice } from './run-cli.js';

const dir = tempDir('bp-line-ends-');
/** No provider in the environment: commands use the embedded local service. */
const env = {
  BATCHPIPE_PROVIDER: '',
  BATCHPIPE_BASE_URL: '',
  BATCHPIPE_API_KEY: '',
  DASHSCOPE_API_KEY: '',
  OPENAI_API_KEY: '',
};

describe('every row of a CSV is read, whatever its line ends, on every command', () => {
  // Rows end in CR alone; cells hold LF, CRLF and CR inside quotes (this file once gave 0 rows, exit 0).
  const rows = Array.from({ length: 40 }, (_, i) => `r${i},"line one\nline two\r\nthree\r${i}"`);
  const input = fileWith(dir, 'cr-only.csv', `id,text\r${rows.join('\r')}\r`);

  it('prepare and run read all 40 rows; the joined table holds each once with its text', async () => {
    const prep = await runCli(
      [
        'prepare',
        input,
        '--template',
        '{{text}}',
        '--model',
        'qwen-plus',
        '--id-column',
        'id',
        '--out',
        join(dir, 'prep'),
      ],
      { env },
    );
    expect(prep.code).toBe(0);
    expect(prep.stderr).toContain('prepared 40 rows: 40 requests');
    const first = JSON.parse(readFileSync(join(dir, 'prep', 'requests-00001.jsonl'), 'utf8').split('\n')[0]!);
    expect(first.body.messages[0].content).toBe('line one\nline two\r\nthree\r0');

    const out = join(dir, 'out.csv');
    const run = await runCli(
      ['run', input, '--template', '{{text}}', '--model', 'qwen-plus', '--id-column', 'id', '--out', out],
      { cwd: dir, env },
    );
    expect(run.code).toBe(0);
    const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    expect(table.map((r) => [r.id, r.text, r.status])).toEqual(
      rows.map((_, i) => [`r${i}`, `line one\nline two\r\nthree\r${i}`, 'ok']),
    );
  });

  it('a header that swallows the file stops prepare, run and join (exit 1), never 0 rows in silence', async () => {
    const swallowed = fileWith(dir, 'swallowed.csv', 'id,"text\n1,a\n2,b\n');
    const message = `error BP_INPUT_PARSE: ${swallowed}:1: no row was read: the header spans lines 1-3 (a quoted line break in it); is a quote left open in the header?`;
    const fixed = fileWith(dir, 'open-quote.csv', 'id,"text\n1,a\n2,b"\n');
    for (const args of [
      ['prepare', '--template', '{{id}}', '--model', 'qwen-plus', '--out', join(dir, 'sw-prep')],
      ['run', '--template', '{{id}}', '--model', 'qwen-plus', '--out', join(dir, 'sw.csv')],
    ]) {
      const [command, ...rest] = args;
      // The unclosed quote is its own error; a closed one that swallows the rows is this one.
      const open = await runCli([command!, swallowed, ...rest], { cwd: dir, env });
      expect(open.code).toBe(1);
      expect(open.stderr).toContain('BP_INPUT_PARSE');
      const result = await runCli([command!, fixed, ...rest], { cwd: dir, env });
      expect(result.code).toBe(1);
      expect(withoutEngineNotice(result.stderr).trim()).toBe(message.replace(swallowed, fixed));
    }
    const results = fileWith(dir, 'none.jsonl', '');
    const joined = await runCli(
      ['join', '--source', fixed, '--results', results, '--out', join(dir, 'sw-joined.csv')],
      {
        cwd: dir,
        env,
      },
    );
    expect(joined.code).toBe(1);
    expect(joined.stderr).toContain(message.replace(swallowed, fixed));
  });

  it('JSON Lines whose lines end in CR alone are not read as one row in silence: the rejection says why', async () => {
    const table = fileWith(dir, 'cr.jsonl', '{"t":"a"}\r{"t":"b"}\r{"t":"c"}\r');
    const prep = await runCli(
      ['prepare', table, '--template', '{{t}}', '--model', 'qwen-plus', '--out', join(dir, 'cr-prep')],
      {
        env,
      },
    );
    expect(prep.code).toBe(1);
    expect(prep.stderr).toContain('its lines seem to end in CR alone, JSON Lines end them in LF');
    const requests = fileWith(
      dir,
      'cr-requests.jsonl',
      ['a', 'b']
        .map((id) =>
          JSON.stringify({
            custom_id: id,
            method: 'POST',
            url: '/v1/chat/completions',
            body: { model: 'qwen-plus', messages: [{ role: 'user', content: id }] },
          }),
        )
        .join('\r'),
    );
    const validate = await runCli(['validate', requests], { env });
    expect(validate.code).toBe(1);
    expect(validate.stderr).toContain('BP_LINE_NOT_JSON');
    expect(validate.stderr).toContain('its lines seem to end in CR alone, JSON Lines end them in LF');
  });
});
