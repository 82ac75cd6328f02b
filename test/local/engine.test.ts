/**
 * The test engine through `POST /chat/completions`, `POST /embeddings` and batch lines: valid
 * completions that say they are not inference, schema-valid JSON, labels, reasoning, usage, unit
 * vectors, and the knobs that spoil a share of answers.
 */
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import {
  chatLines,
  contentOf,
  expectSchema,
  raw,
  resultLines,
  serviceFor,
  submit,
  validatorFor,
  waitFor,
} from './support.js';

const dir = tempDir('bp-local-engine-');
const { service, client } = await serviceFor({ seed: 1 });
const user = (content: string) => [{ role: 'user' as const, content }];

const LABELS = ['positive', 'negative', 'neutral'];
const labelFormat = {
  type: 'json_schema' as const,
  json_schema: {
    name: 'label',
    strict: true,
    schema: {
      type: 'object',
      properties: { label: { type: 'string', enum: LABELS } },
      required: ['label'],
      additionalProperties: false,
    },
  },
};

describe('chat completions', () => {
  it('answers with a valid completion that says it did no inference', async () => {
    const res = await raw(service, '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'qwen-plus', messages: user('Is this review positive?') }),
    });
    expect(res.status).toBe(200);
    expectSchema('CreateChatCompletionResponse', res.body);
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    const completion = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: user('Is this review positive?'),
    });
    expect(completion.model).toBe('batchpipe-test-engine/qwen-plus');
    expect(completion.system_fingerprint).toContain('no-inference');
    expect(completion.choices[0]!.message.content).toContain('no inference');
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    // Deterministic: the same request, the same answer.
    const again = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: user('Is this review positive?'),
    });
    expect(again.choices[0]!.message.content).toBe(completion.choices[0]!.message.content);
  });

  it('answers a JSON schema with JSON that validates, and an enum with one of its labels', async () => {
    const schema = {
      type: 'object',
      properties: {
        label: { type: 'string', enum: LABELS },
        score: { type: 'integer', minimum: 1, maximum: 5 },
        tags: { type: 'array', items: { type: 'string', maxLength: 12 }, minItems: 1, maxItems: 3 },
        detail: { anyOf: [{ $ref: '#/$defs/detail' }, { type: 'null' }] },
        when: { type: 'string', format: 'date' },
      },
      required: ['label', 'score', 'tags', 'detail', 'when'],
      additionalProperties: false,
      $defs: {
        detail: {
          type: 'object',
          properties: { reason: { type: 'string', minLength: 3 } },
          required: ['reason'],
        },
      },
    };
    const check = validatorFor(schema);
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const completion = await client.chat.completions.create({
        model: 'qwen-plus',
        messages: user(`review ${i}`),
        response_format: { type: 'json_schema', json_schema: { name: 'review', schema } },
      });
      const value = JSON.parse(completion.choices[0]!.message.content!) as { label: string };
      expect(check(value), JSON.stringify(check.errors)).toBe(true);
      seen.add(value.label);
    }
    expect([...seen].sort()).toEqual([...LABELS].sort());
  });

  it('in JSON mode, answers the schema or label list the prompt states, and asks for "json" in the prompt as the providers do', async () => {
    const instruction = `Answer with only a JSON object of the form {"label": "..."}, where label is one of: ${LABELS.map((l) => JSON.stringify(l)).join(', ')}.`;
    for (let i = 0; i < 10; i++) {
      const completion = await client.chat.completions.create({
        model: 'qwen-plus',
        messages: [{ role: 'system', content: instruction }, ...user(`row ${i}`)],
        response_format: { type: 'json_object' },
      });
      expect(LABELS).toContain(
        (JSON.parse(completion.choices[0]!.message.content!) as { label: string }).label,
      );
    }
    const schemaPrompt =
      'Reply in JSON matching this JSON Schema: {"type":"object","properties":{"n":{"type":"integer","minimum":3,"maximum":3}},"required":["n"]}';
    const shaped = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'system', content: schemaPrompt }, ...user('x')],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(shaped.choices[0]!.message.content!)).toEqual({ n: 3 });
    await expect(
      client.chat.completions.create({
        model: 'qwen-plus',
        messages: user('hello'),
        response_format: { type: 'json_object' },
      }),
    ).rejects.toMatchObject({ status: 400, param: 'messages' });
  });

  it('thinks by default for the qwen3.5/3.6/3.7 families, and when enable_thinking is on', async () => {
    type Thinking = OpenAI.Chat.ChatCompletion & {
      choices: Array<{ message: { reasoning_content?: string } }>;
    };
    const ask = async (body: Record<string, unknown>) =>
      (await client.chat.completions.create({
        messages: user('Why?'),
        ...body,
      } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming)) as Thinking;
    for (const model of ['qwen3.5-plus', 'qwen3.6-plus', 'qwen3.7-max']) {
      const thinking = await ask({ model });
      expect(thinking.choices[0]!.message.reasoning_content).toContain('no inference');
      const reasoning = thinking.usage!.completion_tokens_details!.reasoning_tokens!;
      expect(reasoning).toBeGreaterThan(0);
      expect(thinking.usage!.completion_tokens).toBeGreaterThan(reasoning);
      expect(thinking.usage!.total_tokens).toBe(
        thinking.usage!.prompt_tokens + thinking.usage!.completion_tokens,
      );
      const off = await ask({ model, enable_thinking: false });
      expect(off.choices[0]!.message.reasoning_content).toBeUndefined();
      expect(off.usage!.completion_tokens_details!.reasoning_tokens).toBe(0);
    }
    expect((await ask({ model: 'qwen-plus' })).choices[0]!.message.reasoning_content).toBeUndefined();
    expect(
      (await ask({ model: 'qwen-plus', enable_thinking: true })).choices[0]!.message.reasoning_content,
    ).toBeDefined();
    const capped = await ask({ model: 'qwen3.5-plus', thinking_budget: 8 });
    expect(capped.usage!.completion_tokens_details!.reasoning_tokens).toBeLessThanOrEqual(8);
  });

  it('stops at max_tokens with finish_reason "length"', async () => {
    const completion = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: user('a long question'),
      max_tokens: 4,
    });
    expect(completion.choices[0]!.finish_reason).toBe('length');
    expect(completion.usage!.completion_tokens).toBeLessThanOrEqual(4);
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });

  it('gives n choices when asked', async () => {
    const completion = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: user('pick'),
      n: 3,
    });
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2]);
  });

  it('refuses bodies the endpoint would refuse, naming the parameter', async () => {
    const refuse = async (body: Record<string, unknown>, param: string) => {
      const res = await raw(service, '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(400);
      expectSchema('ErrorResponse', res.body);
      expect((res.body.error as { param: string }).param).toBe(param);
    };
    await refuse({ messages: user('x') }, 'model');
    await refuse({ model: 'qwen-plus', messages: [] }, 'messages');
    await refuse({ model: 'qwen-plus', messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role');
    await refuse({ model: 'qwen-plus', messages: [{ role: 'user' }] }, 'messages[0].content');
    await refuse(
      { model: 'qwen-plus', messages: user('x'), response_format: { type: 'xml' } },
      'response_format.type',
    );
    await refuse({ model: 'qwen-plus', messages: user('x'), max_tokens: 0 }, 'max_tokens');
    await refuse({ model: 'qwen-plus', messages: user('x'), stream: true }, 'stream');
  });

  it("counts usage with the real o200k tokenizer by default under the openai profile (its own models' tokenizer)", async () => {
    // gpt-4o-mini is o200k's model: the openai profile offers it.
    const { client: exact } = await serviceFor({ profile: 'openai' });
    const system = 'You classify reviews.';
    const question = 'The battery died after two days, crème brûlée 很好 👍🏽';
    const completion = await exact.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: question },
      ],
    });
    // OpenAI's accounting: each message's content plus 3 tokens of framing, plus 3 to prime the reply.
    expect(completion.usage!.prompt_tokens).toBe(countTokens(system) + countTokens(question) + 3 * 2 + 3);
    expect(completion.usage!.completion_tokens).toBe(countTokens(completion.choices[0]!.message.content!));
  });

  it('estimates usage by default under the dashscope profile, and counts o200k when asked to', async () => {
    const question = 'The battery died after two days, and the charger was missing from the box.';
    const ask = async (client: typeof exactClient) =>
      (
        await client.chat.completions.create({
          model: 'qwen-plus',
          messages: [{ role: 'user', content: question }],
        })
      ).usage!.prompt_tokens;
    const { client: exactClient } = await serviceFor({ tokenizer: 'o200k' });
    const { client: estimating } = await serviceFor({});
    expect(await ask(exactClient)).toBe(countTokens(question) + 3 + 3);
    // ~4.3 characters a token on English prose.
    expect(await ask(estimating)).toBe(Math.ceil(question.length / 4.3) + 3 + 3);
  });
});

describe('knobs', () => {
  it('refuses, spoils JSON and truncates the configured share, the same requests every time', async () => {
    const { client: spoiled } = await serviceFor({
      refuseRate: 0.2,
      invalidJsonRate: 0.2,
      truncateRate: 0.2,
      seed: 42,
    });
    const lines = chatLines(500, { body: { response_format: labelFormat } });
    const run = async () => {
      const batch = await waitFor(spoiled, (await submit(spoiled, dir, lines)).id);
      const fates = new Map<string, string>();
      for (const line of await resultLines(spoiled, batch.error_file_id)) {
        expect(line.response!.status_code).toBe(400);
        expect(line.response!.body.error).toMatchObject({ code: 'data_inspection_failed' });
        fates.set(line.custom_id, 'refused');
      }
      for (const line of await resultLines(spoiled, batch.output_file_id)) {
        const choice = (line.response!.body.choices as Array<{ finish_reason: string }>)[0]!;
        let fate = 'ok';
        if (choice.finish_reason === 'length') fate = 'truncated';
        else {
          try {
            JSON.parse(contentOf(line));
          } catch {
            fate = 'invalid';
          }
        }
        fates.set(line.custom_id, fate);
      }
      return fates;
    };
    const first = await run();
    const share = (fate: string) => [...first.values()].filter((f) => f === fate).length / first.size;
    expect(first.size).toBe(500);
    for (const fate of ['refused', 'invalid', 'truncated']) {
      expect(share(fate)).toBeGreaterThan(0.13);
      expect(share(fate)).toBeLessThan(0.27);
    }
    expect(await run()).toEqual(first);
  });

  it('takes knobs per request from the body metadata', async () => {
    await expect(
      client.chat.completions.create({
        model: 'qwen-plus',
        messages: user('x'),
        metadata: { bp_refuse_rate: '1' },
      }),
    ).rejects.toMatchObject({ status: 400, code: 'data_inspection_failed' });
    const truncated = await client.chat.completions.create({
      model: 'qwen-plus',
      messages: user('x'),
      metadata: { bp_truncate_rate: '1' },
    });
    expect(truncated.choices[0]!.finish_reason).toBe('length');
  });

  it('spoils only answers that were asked to be JSON', async () => {
    const { client: spoiled } = await serviceFor({ invalidJsonRate: 1 });
    const text = await spoiled.chat.completions.create({ model: 'qwen-plus', messages: user('x') });
    expect(text.choices[0]!.message.content).toContain('no inference');
    const json = await spoiled.chat.completions.create({
      model: 'qwen-plus',
      messages: user('x'),
      response_format: labelFormat,
    });
    expect(() => JSON.parse(json.choices[0]!.message.content!)).toThrow();
  });

  it('waits latencyMs per request', async () => {
    const { client: slow } = await serviceFor({ latencyMs: 150 });
    const started = Date.now();
    await slow.chat.completions.create({ model: 'qwen-plus', messages: user('x') });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('embeddings', () => {
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

  it('gives deterministic unit vectors of the requested dimensions (base64, as the SDK asks by default)', async () => {
    const result = await client.embeddings.create({
      model: 'text-embedding-v4',
      input: ['alpha', 'beta', 'alpha'],
      dimensions: 64,
    });
    expect(result.model).toBe('batchpipe-test-engine/text-embedding-v4');
    expect(result.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const { embedding } of result.data) {
      expect(embedding).toHaveLength(64);
      expect(Math.abs(norm(embedding) - 1)).toBeLessThan(1e-5);
    }
    expect(result.data[2]!.embedding).toEqual(result.data[0]!.embedding);
    expect(result.data[1]!.embedding).not.toEqual(result.data[0]!.embedding);
    expect(result.usage.prompt_tokens).toBeGreaterThan(0);
    const floats = await raw(service, '/v1/embeddings', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'text-embedding-v4',
        input: 'alpha',
        dimensions: 64,
        encoding_format: 'float',
      }),
    });
    expectSchema('CreateEmbeddingResponse', floats.body);
    const vector = (floats.body.data as Array<{ embedding: number[] }>)[0]!.embedding;
    expect(vector.map((x) => Math.fround(x))).toEqual(result.data[0]!.embedding);
    const defaults = await client.embeddings.create({ model: 'text-embedding-v4', input: 'x' });
    expect(defaults.data[0]!.embedding).toHaveLength(1024);
  });

  it('runs embedding batches', async () => {
    const lines = Array.from({ length: 20 }, (_, i) => ({
      custom_id: `e${i}`,
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'text-embedding-v4', input: `text ${i}`, dimensions: 16, encoding_format: 'float' },
    }));
    const batch = await waitFor(
      client,
      (await submit(client, dir, lines, { endpoint: '/v1/embeddings' })).id,
    );
    expect(batch.status).toBe('completed');
    const output = await resultLines(client, batch.output_file_id);
    expect(output).toHaveLength(20);
    for (const line of output) {
      expectSchema('CreateEmbeddingResponse', line.response!.body);
      const [item] = line.response!.body.data as Array<{ embedding: number[] }>;
      expect(item!.embedding).toHaveLength(16);
    }
  });

  it('refuses a bad request with a 400', async () => {
    await expect(client.embeddings.create({ model: 'text-embedding-v4', input: [] })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
    await expect(
      client.embeddings.create({ model: 'text-embedding-v4', input: 'x', dimensions: 0 }),
    ).rejects.toMatchObject({ status: 400, param: 'dimensions' });
  });
});
