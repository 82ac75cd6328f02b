import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir();
const line = (id: string, model = 'qwen-plus', extra = '') =>
  `{"custom_id":"${id}","method":"POST","url":"/v1/chat/completions","body":{"model":"${model}","messages":[{"role":"user","content":"hi"}]${extra}}}`;

describe('batchpipe validate', () => {
  it('exits 0 for a file the provider will accept', async () => {
    const file = fileWith(dir, 'good.jsonl', `${line('1')}\n${line('2')}\n`);
    const result = await runCli(['validate', file, '--provider', 'dashscope']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`${file}: ok: 2 lines, 2 valid, 0 invalid`);
  });

  it('exits 1 naming file:line, custom_id and the rule for every broken line', async () => {
    const file = fileWith(
      dir,
      'bad.jsonl',
      [
        line('1'),
        line('1'),
        line('2', 'qwen-max'),
        '{"custom_id":"3"',
        '',
        line('4', 'qwen-plus', ',"enable_thinking":"yes"'),
      ].join('\n'),
    );
    const result = await runCli(['validate', file, '--provider', 'dashscope']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}:2: custom_id "1": BP_DUPLICATE_CUSTOM_ID`);
    expect(result.stderr).toContain(
      `${file}:3: custom_id "2": BP_MODEL_MIXED body.model is qwen-max but line 1 uses qwen-plus`,
    );
    expect(result.stderr).toContain(`${file}:4: BP_LINE_NOT_JSON invalid JSON`);
    expect(result.stderr).toContain(`${file}:5: BP_LINE_NOT_JSON empty line`);
    expect(result.stderr).toContain(`${file}:6: custom_id "4": BP_THINKING_INVALID`);
    expect(result.stderr).toContain('REFUSED');
  });

  it('holds a dry-run file to the dry run limits (100 lines)', async () => {
    const lines = Array.from(
      { length: 101 },
      (_, i) =>
        `{"custom_id":"${i}","method":"POST","url":"/v1/chat/ds-test","body":{"model":"batch-test-model","messages":[{"role":"user","content":"x"}]}}`,
    );
    const file = fileWith(dir, 'dry.jsonl', `${lines.join('\n')}\n`);
    const result = await runCli(['validate', file, '--provider', 'dashscope', '--json']);
    expect(result.code).toBe(1);
    const [report] = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      lines: 101,
      valid: 101,
      ok: false,
      problems: [{ code: 'BP_FILE_TOO_MANY_LINES' }],
    });
  });

  it('reports a region that does not offer the model', async () => {
    const file = fileWith(dir, 'region.jsonl', `${line('1', 'qwen3.5-plus', ',"enable_thinking":false')}\n`);
    const refused = await runCli(['validate', file, '--provider', 'dashscope']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('BP_MODEL_NOT_OFFERED');
    expect((await runCli(['validate', file, '--provider', 'dashscope-cn'])).code).toBe(0);
  });

  it('refuses a custom_id used in two files, naming both lines (ids were only checked per file: exit 0)', async () => {
    const a = fileWith(dir, 'a.jsonl', `${line('x')}\n${line('y')}\n`);
    const b = fileWith(dir, 'b.jsonl', `${line('z')}\n${line('y')}\n`);
    const result = await runCli(['validate', a, b, '--provider', 'dashscope']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${b}:2: custom_id "y": BP_DUPLICATE_CUSTOM_ID custom_id "y" is already used by ${a}:2; custom_ids must be unique across the run (results are joined back by them)`,
    );
    expect(result.stderr).toContain(`${a}: ok: 2 lines`);
    expect(result.stderr).toContain(`${b}: REFUSED: 2 lines, 1 valid, 1 invalid`);
    // Within one file the message is the provider's rule.
    const same = fileWith(dir, 'same.jsonl', `${line('q')}\n${line('q')}\n`);
    expect((await runCli(['validate', same])).stderr).toContain(
      'custom_id "q" is already used by line 1; custom_ids must be unique within a file',
    );
  });

  it('streams --json problems and keeps ids on disk, so memory stays flat (it held every rejection and an exact map of ids)', async () => {
    // 300,000 good lines (300,000 ids) and 300,000 bad ones: the rejections as objects (~75 MB, then one
    // JSON string of ~30 MB) do not fit a 48 MB heap. Streaming needs ~25 MB at its peak (a 1 MiB chunk's
    // items in flight); 24 MB was too tight on a loaded machine.
    const good = join(dir, 'many-good.jsonl');
    const bad = join(dir, 'many-bad.jsonl');
    const lines = (make: (i: number) => string) =>
      Array.from({ length: 300_000 }, (_, i) => make(i)).join('\n');
    writeFileSync(good, `${lines((i) => line(`id-${i}`))}\n`);
    writeFileSync(bad, `${lines((i) => `{"custom_id":"bad-${i}","method":"GET"}`)}\n`);
    const result = await runCli(
      [
        'validate',
        good,
        bad,
        '--provider',
        'dashscope',
        '--json',
        '--max-lines-per-file',
        '300000',
        '--max-bytes-per-file',
        '1GB',
      ],
      { env: { NODE_OPTIONS: '--max-old-space-size=48' } },
    );
    expect(result.stderr).not.toContain('heap out of memory');
    expect(result.code).toBe(1);
    const [first, second] = JSON.parse(result.stdout);
    expect(first).toMatchObject({ file: good, lines: 300_000, valid: 300_000, ok: true, rejections: [] });
    expect(second).toMatchObject({ file: bad, lines: 300_000, invalid: 300_000, ok: false });
    expect(second.rejections).toHaveLength(300_000);
    expect(second.rejections[299_999]).toMatchObject({
      line: 300_000,
      custom_id: 'bad-299999',
      code: 'BP_METHOD_INVALID',
    });
  }, 120_000);

  it('accepts a file that starts with a byte-order mark, with a warning (line 1 was refused with "Unexpected token")', async () => {
    const file = fileWith(dir, 'bom.jsonl', `\uFEFF${line('1')}\n${line('2')}\n`);
    const result = await runCli(['validate', file, '--provider', 'dashscope']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`${file}: ok: 2 lines, 2 valid, 0 invalid`);
    expect(result.stderr).toContain('warning BP_WARN_BOM: the file starts with a UTF-8 byte-order mark');
  });

  it('skips the rejections.jsonl and shards.json prepare writes beside its request files (reported BP_FILE_EMPTY)', async () => {
    const input = fileWith(dir, 'ok.csv', 'id,t\n1,a\n');
    const out = join(dir, 'prepared');
    expect(
      (await runCli(['prepare', input, '--template', '{{t}}', '--model', 'qwen-plus', '--out', out])).code,
    ).toBe(0);
    const files = ['requests-00001.jsonl', 'rejections.jsonl', 'shards.json'].map((f) => join(out, f));
    const result = await runCli(['validate', ...files, '--provider', 'dashscope']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      `skipped ${files[1]}: batchpipe prepare's list of rejected rows, not a request file`,
    );
    expect(result.stderr).toContain(`skipped ${files[2]}: batchpipe prepare's summary, not a request file`);
    expect(result.stderr).not.toContain('BP_FILE_EMPTY');
    // A rejections.jsonl that is not beside a shards.json is checked like any file.
    const loose = join(dir, 'loose');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(loose, { recursive: true });
    writeFileSync(join(loose, 'rejections.jsonl'), '');
    const checked = await runCli(['validate', join(loose, 'rejections.jsonl')]);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toContain('BP_FILE_EMPTY');
  });

  it('takes the limit and context options prepare takes (--context-windows, --max-lines-per-file, --max-bytes-per-file, --max-line-bytes)', async () => {
    const long = `,"messages":[{"role":"user","content":"${Array.from({ length: 300 }, (_, i) => `w${i}`).join(' ')}"}]`;
    const file = fileWith(
      dir,
      'limits.jsonl',
      `${line('1')}\n${line('2')}\n${line('3', 'qwen-plus', long)}\n`,
    );
    const run = (...args: string[]) =>
      runCli(['validate', file, '--provider', 'dashscope', '--json', ...args]);
    const [plain] = JSON.parse((await run()).stdout);
    expect(plain.ok).toBe(true);
    const [context] = JSON.parse((await run('--context-windows', 'qwen-plus=100')).stdout);
    expect(context.byCode).toEqual({ BP_CONTEXT_EXCEEDED: 1 });
    const [lineBytes] = JSON.parse((await run('--max-line-bytes', '1KB')).stdout);
    expect(lineBytes.byCode).toEqual({ BP_LINE_TOO_LARGE: 1 });
    const [fileLimits] = JSON.parse(
      (await run('--max-lines-per-file', '2', '--max-bytes-per-file', '100')).stdout,
    );
    expect(fileLimits.problems.map((p: { code: string }) => p.code)).toEqual([
      'BP_FILE_TOO_MANY_LINES',
      'BP_FILE_TOO_LARGE',
    ]);
  });

  it('exits 2 on usage errors', async () => {
    const result = await runCli(['validate']);
    expect(result.code).toBe(2);
    expect((await runCli(['validate', 'x.jsonl', '--provider', 'nowhere'])).code).toBe(2);
  });
});
