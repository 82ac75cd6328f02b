/**
 * JSON nested thousands of levels deep, wherever a user or a server can put it (a --schema file, a
 * request line, a table row, a result line, a model's answer), ends in a coded error or a row's
 * status, never a stack overflow: each walk of such values is bounded (src/internal/json-depth.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepare } from '../../src/index.js';
import { MAX_JSON_DEPTH } from '../../src/internal/json-depth.js';
import { fileWith, tempDir } from '../helpers.js';
import { runCli } from './run-cli.js';

const dir = tempDir('bp-cli-deep-');

function deepAnyOf(depth: number): string {
  let schema = '{"type":"string"}';
  for (let i = 0; i < depth; i++) schema = `{"anyOf":[${schema}]}`;
  return schema;
}
const deepArray = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;
const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

const SCHEMA = `{"type":"object","properties":{"a":${deepAnyOf(10_000)}},"required":["a"],"additionalProperties":false}`;
const rows = fileWith(dir, 'rows.csv', 'text\nhello\nworld\n');

/** No stack trace reached the user: a line of a JS stack starts with "    at ". */
function expectNoStack(stderr: string): void {
  expect(stderr).not.toMatch(/^\s+at /m);
  expect(stderr).not.toContain('Maximum call stack');
}

describe('input nested too deep', () => {
  it('--schema with anyOf 10,000 deep: BP_INVALID_OPTION naming the file, exit 2', async () => {
    const schema = fileWith(dir, 'deep-schema.json', SCHEMA);
    for (const command of ['prepare', 'run']) {
      const out = command === 'prepare' ? join(dir, 'prepared') : join(dir, 'out.csv');
      const result = await runCli([
        command,
        rows,
        '--out',
        out,
        '--template',
        '{{text}}',
        '--schema',
        schema,
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `error BP_INVALID_OPTION: --schema ${schema}: the JSON Schema nests deeper than ${MAX_JSON_DEPTH} levels (at properties.a.anyOf[0]`,
      );
      expectNoStack(result.stderr);
    }
  });

  it('the library refuses such a schema with BP_INVALID_OPTION before reading a row', async () => {
    const error = await prepare(rows, {
      outDir: join(dir, 'lib'),
      template: '{{text}}',
      model: 'qwen-plus',
      schema: JSON.parse(SCHEMA) as Record<string, unknown>,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BP_INVALID_OPTION' });
    expect((error as Error).message).toContain(`the JSON Schema nests deeper than ${MAX_JSON_DEPTH} levels`);
  });

  it('validate: a request body nested 20,000 deep is BP_BODY_INVALID for its line, exit 1', async () => {
    const ok =
      '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}]}}';
    const deep = `{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus","messages":[{"role":"user","content":"hi"}],"x":${deepArray(20_000)}}}`;
    const file = fileWith(dir, 'requests.jsonl', `${ok}\n${deep}\n`);
    const result = await runCli(['validate', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${file}:2: custom_id "b": BP_BODY_INVALID body nests deeper than ${MAX_JSON_DEPTH} levels (at x[0][0]`,
    );
    expect(result.stderr).toContain('1 valid, 1 invalid');
    expectNoStack(result.stderr);
  });

  it('prepare: a JSON Lines row nested too deep is a rejection; the other rows go on (both number modes)', async () => {
    const table = fileWith(
      dir,
      'deep.jsonl',
      `{"text":"hi","x":${deepObject(20_000)}}\n{"text":"ok","x":1}\n`,
    );
    for (const mode of ['string', 'number']) {
      const out = join(dir, `deep-${mode}`);
      const result = await runCli([
        'prepare',
        table,
        '--out',
        out,
        '--template',
        '{{text}} {{x}}',
        '--model',
        'qwen-plus',
        '--big-integers',
        mode,
      ]);
      expect(result.code).toBe(0);
      expect(result.stderr).toContain('1 requests in 1 file, 1 rejected');
      const rejection = JSON.parse(readFileSync(join(out, 'rejections.jsonl'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(rejection).toMatchObject({
        row: 1,
        code: 'BP_INPUT_PARSE',
        message: `the value nests deeper than ${MAX_JSON_DEPTH} levels`,
      });
      expectNoStack(result.stderr);
    }
  });

  it('join: an error object or an answer nested 20,000 deep becomes the row status, no crash', async () => {
    const error = `{"id":"e","custom_id":"row-1","response":null,"error":${deepObject(20_000)}}`;
    const answer = JSON.stringify(`{"a":${deepArray(20_000)}}`);
    const output = `{"id":"o","custom_id":"row-2","response":{"status_code":200,"request_id":"r","body":{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":${answer}},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}},"error":null}`;
    const results = fileWith(dir, 'results.jsonl', `${error}\n${output}\n`);
    const schema = fileWith(dir, 'free.json', '{"type":"object","properties":{"a":{}},"required":["a"]}');
    const out = join(dir, 'joined.jsonl');
    const result = await runCli([
      'join',
      '--source',
      rows,
      '--results',
      results,
      '--out',
      out,
      '--schema',
      schema,
      // Neither row is answered: that is the point, not a failed join.
      '--allow-empty',
    ]);
    expectNoStack(result.stderr);
    expect(result.code).toBe(0);
    const joined = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(joined[0]).toMatchObject({ status: 'failed' });
    expect(joined[0]!.error_message).toContain(`nests deeper than ${MAX_JSON_DEPTH} levels`);
    expect(joined[1]).toMatchObject({ status: 'invalid_output', error_code: 'BP_OUTPUT_SCHEMA' });
    expect(joined[1]!.error_message).toContain(
      `the answer nests deeper than ${MAX_JSON_DEPTH} levels (at a[0]`,
    );
  });
});
