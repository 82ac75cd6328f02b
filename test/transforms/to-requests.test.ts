import { describe, expect, it } from 'vitest';
import type { Warning } from '../../src/internal/warnings.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import type { Rejection, RequestItem } from '../../src/types.js';
import { row, through } from '../helpers.js';

type Out = RequestItem | Rejection;

describe('toRequests', () => {
  it('builds chat request lines from a template and a system prompt, custom_id row-<n>', async () => {
    const [item] = await through<Out>(
      toRequests({
        model: 'qwen-plus',
        template: 'Classify: {{text}}',
        system: 'One word, about {{topic}}.',
        temperature: 0,
        maxTokens: 5,
      }),
      [row(3, { text: 'great', topic: 'shoes' })],
    );
    expect(item).toEqual({
      kind: 'request',
      index: 3,
      file: 'table.csv',
      line: 4,
      request: {
        custom_id: 'row-3',
        method: 'POST',
        url: '/v1/chat/completions',
        body: {
          model: 'qwen-plus',
          messages: [
            { role: 'system', content: 'One word, about shoes.' },
            { role: 'user', content: 'Classify: great' },
          ],
          temperature: 0,
          max_tokens: 5,
        },
      },
    });
  });

  it('takes custom_id from the id column verbatim and derives it for unusable keys', async () => {
    const items = await through<RequestItem>(toRequests({ model: 'm', template: '{{t}}', idColumn: 'id' }), [
      row(1, { id: 'A-1', t: 'x' }),
      row(2, { id: '', t: 'y' }),
      row(3, { id: 'k'.repeat(300), t: 'z' }),
    ]);
    expect(items.map((i) => i.request.custom_id)).toEqual([
      'A-1',
      'row-2',
      expect.stringMatching(/^sha256-[0-9a-f]{64}$/),
    ]);
  });

  it('builds embeddings bodies', async () => {
    const [item] = await through<RequestItem>(
      toRequests({
        endpoint: '/v1/embeddings',
        model: 'text-embedding-v4',
        template: '{{t}}',
        dimensions: 256,
      }),
      [row(1, { t: 'hello' })],
    );
    expect(item!.request).toEqual({
      custom_id: 'row-1',
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'text-embedding-v4', input: 'hello', dimensions: 256 },
    });
  });

  it('sends an image column beside the prompt for vision models', async () => {
    const [item] = await through<RequestItem>(
      toRequests({ model: 'qwen-vl-plus', template: 'Describe', imageColumn: 'url' }),
      [row(1, { url: 'https://x/y.png' })],
    );
    expect(item!.request.body).toEqual({
      model: 'qwen-vl-plus',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'https://x/y.png' } },
            { type: 'text', text: 'Describe' },
          ],
        },
      ],
    });
  });

  it('puts enable_thinking and thinking_budget at the top level of body, beside model', async () => {
    const [item] = await through<RequestItem>(
      toRequests({
        model: 'qwen3.5-plus',
        template: '{{t}}',
        enableThinking: true,
        thinkingBudget: 50,
        extraBody: { seed: 1 },
      }),
      [row(1, { t: 'q' })],
    );
    expect(Object.keys(item!.request.body)).toEqual([
      'model',
      'enable_thinking',
      'thinking_budget',
      'messages',
      'seed',
    ]);
    expect(item!.request.body.enable_thinking).toBe(true);
  });

  it('moves thinking flags a mapper put in extra_body to the top level, warning once with a count', async () => {
    const warnings: Warning[] = [];
    const stage = toRequests({
      model: 'qwen3.5-plus',
      mapper: (v) => ({
        messages: [{ role: 'user', content: String(v.t) }],
        extra_body: { enable_thinking: false, other: 1 },
      }),
      onWarning: (w) => warnings.push(w),
    });
    const items = await through<RequestItem>(stage, [row(1, { t: 'a' }), row(2, { t: 'b' })]);
    expect(items[0]!.request.body).toEqual({
      enable_thinking: false,
      model: 'qwen3.5-plus',
      messages: [{ role: 'user', content: 'a' }],
      extra_body: { other: 1 },
    });
    expect(warnings.map((w) => w.code)).toEqual(['BP_WARN_THINKING_MOVED']);
    expect(stage.warnings.list()[0]!.count).toBe(2);
  });

  it('warns when a model that thinks by default gets no explicit enable_thinking', async () => {
    const stage = toRequests({ model: 'qwen3.6-plus', template: '{{t}}' });
    await through(stage, [row(1, { t: 'a' }), row(2, { t: 'b' })]);
    expect(stage.warnings.list()).toEqual([
      expect.objectContaining({
        code: 'BP_WARN_THINKING_DEFAULT',
        count: 2,
        first: expect.objectContaining({ row: 1 }),
      }),
    ]);
    const quiet = toRequests({ model: 'qwen3.6-plus', template: '{{t}}', enableThinking: false });
    await through(quiet, [row(1, { t: 'a' })]);
    expect(quiet.warnings.list()).toEqual([]);
    const other = toRequests({ model: 'qwen-plus', template: '{{t}}' });
    await through(other, [row(1, { t: 'a' })]);
    expect(other.warnings.list()).toEqual([]);
  });

  it('fails the run when the first row lacks a template column, naming column, row and file:line', async () => {
    const error = await through(toRequests({ model: 'm', template: '{{reveiw}}' }), [
      row(1, { review: 'x', id: '1' }),
    ]).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'BP_TEMPLATE_MISSING_COLUMN',
      context: { file: 'table.csv', line: 2, row: 1, column: 'reveiw' },
    });
    expect(String((error as Error).message)).toContain('(columns: review, id)');
  });

  it('rejects a later row that lacks a column (JSONL rows vary) and keeps going', async () => {
    const items = await through<Out>(toRequests({ model: 'm', template: '{{a}}' }), [
      row(1, { a: 'x' }),
      row(2, { b: 'y' }),
      row(3, { a: 'z' }),
    ]);
    expect(items.map((i) => i.kind)).toEqual(['request', 'rejection', 'request']);
    expect(items[1]).toMatchObject({ index: 2, custom_id: 'row-2', code: 'BP_TEMPLATE_MISSING_COLUMN' });
  });

  it('fails on a missing id column at the first row', async () => {
    await expect(
      through(toRequests({ model: 'm', template: '{{a}}', idColumn: 'key' }), [row(1, { a: 'x' })]),
    ).rejects.toMatchObject({ code: 'BP_ID_COLUMN_MISSING' });
  });

  it('runs sync and async mappers; a mapper that throws fails the run at the first row and rejects later rows', async () => {
    const mapper = async (v: Record<string, unknown>) => {
      if (v.t === 'bad') throw new Error('no way');
      return { messages: [{ role: 'user' as const, content: String(v.t) }] };
    };
    const items = await through<Out>(toRequests({ model: 'm', mapper }), [
      row(1, { t: 'a' }),
      row(2, { t: 'bad' }),
    ]);
    expect(items[1]).toMatchObject({
      kind: 'rejection',
      code: 'BP_MAPPER_FAILED',
      message: 'mapper failed on row 2: no way',
    });
    await expect(through(toRequests({ model: 'm', mapper }), [row(1, { t: 'bad' })])).rejects.toMatchObject({
      code: 'BP_MAPPER_FAILED',
    });
    const sync = await through<RequestItem>(
      toRequests({ mapper: (v) => ({ model: 'own', input: String(v.t) }), endpoint: '/v1/embeddings' }),
      [row(1, { t: 'a' })],
    );
    expect(sync[0]!.request.body).toEqual({ model: 'own', input: 'a' });
  });

  it('passes rejections from the source through untouched', async () => {
    const rejection: Rejection = {
      kind: 'rejection',
      index: 1,
      file: 'f',
      line: 2,
      custom_id: null,
      code: 'BP_INPUT_PARSE',
      message: 'x',
    };
    expect(await through(toRequests({ model: 'm', template: 't' }), [rejection])).toEqual([rejection]);
  });

  it('checks its options once, at call time', () => {
    expect(() => toRequests({ model: 'm' })).toThrow(/give exactly one of the template and mapper options/);
    expect(() => toRequests({ template: '{{a}}' })).toThrow(/a template needs the model option/);
    expect(() => toRequests({ model: 'm', template: 'x', temperature: 7 })).toThrow(
      expect.objectContaining({ code: 'BP_INVALID_OPTION', context: { option: 'temperature' } }),
    );
    expect(() => toRequests({ model: 'm', template: '{{oops' })).toThrow(
      expect.objectContaining({ code: 'BP_TEMPLATE_SYNTAX' }),
    );
  });
});
