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

  it('exits 2 on usage errors', async () => {
    const result = await runCli(['validate']);
    expect(result.code).toBe(2);
    expect((await runCli(['validate', 'x.jsonl', '--provider', 'nowhere'])).code).toBe(2);
  });
});
