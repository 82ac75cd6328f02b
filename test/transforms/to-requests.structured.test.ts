import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RequestBuilder } from '../../src/core/requests/request-builder.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import type { ChatBody, RequestItem } from '../../src/types.js';
import { row } from '../helpers.js';

const LABELS = ['positive', 'negative', 'neutral'];
const build = (options: Parameters<typeof RequestBuilder.create>[0]) => {
  const built = RequestBuilder.create(options).build(row(1, { text: 'great', id: '7' }));
  return built as RequestItem | Promise<RequestItem>;
};
const body = (item: RequestItem) => item.request.body as ChatBody;

describe('toRequests with labels or a schema', () => {
  it('asks for a strict json_schema response on profiles that document it (OpenAI, local, custom)', () => {
    for (const provider of ['openai', 'local', 'custom'] as const) {
      const item = build({ template: '{{text}}', model: 'm', labels: LABELS, provider }) as RequestItem;
      expect(body(item).response_format, provider).toMatchObject({
        type: 'json_schema',
        json_schema: { name: 'label', strict: true, schema: { properties: { label: { enum: LABELS } } } },
      });
      expect(body(item).messages).toEqual([{ role: 'user', content: 'great' }]);
    }
  });

  it('uses JSON mode on DashScope, stating the schema after the system prompt (or as the system prompt)', () => {
    const withSystem = build({
      template: '{{text}}',
      system: 'You label reviews, #{{id}}.',
      model: 'qwen-plus',
      labels: LABELS,
      provider: 'dashscope',
    }) as RequestItem;
    expect(body(withSystem).response_format).toEqual({ type: 'json_object' });
    expect(body(withSystem).messages[0]).toEqual({
      role: 'system',
      content:
        'You label reviews, #7.\n\nAnswer with only a JSON object of the form {"label": "..."}, where label is one of: "positive", "negative", "neutral".',
    });
    const alone = build({
      template: '{{text}}',
      model: 'qwen-plus',
      schema: z.object({ a: z.string() }),
      provider: 'dashscope-cn',
    }) as RequestItem;
    expect(body(alone).messages).toEqual([
      {
        role: 'system',
        content:
          'Answer with only a JSON object, no other text, that matches this JSON Schema: {"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}',
      },
      { role: 'user', content: 'great' },
    ]);
  });

  it('a JSON Schema file: strict requests carry it closed, JSON mode states it as written (extra keys stay allowed)', () => {
    const file = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const strict = build({
      template: '{{text}}',
      model: 'm',
      schema: file,
      provider: 'openai',
    }) as RequestItem;
    expect(body(strict).response_format).toEqual({
      type: 'json_schema',
      json_schema: { name: 'answer', strict: true, schema: { ...file, additionalProperties: false } },
    });
    const stated = build({
      template: '{{text}}',
      model: 'qwen-plus',
      schema: file,
      provider: 'dashscope',
    }) as RequestItem;
    expect(body(stated).messages[0]!.content).toBe(
      `Answer with only a JSON object, no other text, that matches this JSON Schema: ${JSON.stringify(file)}`,
    );
    expect(file).not.toHaveProperty('additionalProperties');
  });

  it('lets structuredOutput override the profile', () => {
    const item = build({
      template: '{{text}}',
      model: 'qwen-plus',
      labels: LABELS,
      provider: 'dashscope',
      structuredOutput: 'json_schema',
    }) as RequestItem;
    expect(body(item).response_format).toMatchObject({ type: 'json_schema' });
  });

  it("adds the statement to a mapper's messages too, in JSON mode", async () => {
    const mapper = () => ({ messages: [{ role: 'user' as const, content: 'hi' }] });
    const item = await build({ mapper, model: 'qwen-plus', labels: LABELS, provider: 'dashscope' });
    expect(body(item).messages.map((m) => m.role)).toEqual(['system', 'user']);
    expect(body(item).response_format).toEqual({ type: 'json_object' });
    const withSystem = () => ({
      messages: [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'hi' },
      ],
    });
    const merged = await build({
      mapper: withSystem,
      model: 'qwen-plus',
      labels: LABELS,
      provider: 'dashscope',
    });
    expect(body(merged).messages[0]!.content).toMatch(/^Be brief\.\n\nAnswer with only a JSON object/);
  });

  it('refuses labels with a schema or a responseFormat, labels for embeddings, and optional fields in strict mode', () => {
    expect(() =>
      toRequests({ template: 't', model: 'm', labels: LABELS, responseFormat: { type: 'text' } }),
    ).toThrow(/give at most one of the labels, schema and responseFormat options/);
    expect(() =>
      toRequests({ template: 't', model: 'm', labels: LABELS, schema: z.object({ a: z.string() }) }),
    ).toThrow(/give at most one/);
    expect(() =>
      toRequests({ template: 't', model: 'm', endpoint: '/v1/embeddings', labels: LABELS }),
    ).toThrow(/the labels and schema options apply to chat only/);
    expect(() =>
      toRequests({
        template: 't',
        model: 'm',
        provider: 'openai',
        schema: z.object({ a: z.string().optional() }),
      }),
    ).toThrow(expect.objectContaining({ code: 'BP_INVALID_OPTION', context: { option: 'schema' } }));
  });
});
