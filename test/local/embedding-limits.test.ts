/**
 * The local service's embeddings limits per profile. openai: "any array must be 2048 dimensions or
 * less" (ref/openai-openapi-full.yaml, CreateEmbeddingRequest.input). dashscope: ref/ gives no input
 * cap for text-embedding-v4, so OpenAI's is not borrowed (the service keeps a bound of its own,
 * 10,000, on one request's work). Every input form the spec allows is answered.
 */
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import { serviceFor, submit, waitFor } from './support.js';

const dir = tempDir('bp-local-embed-');

describe('embeddings limits of the local service, per profile', () => {
  it('openai: 2,048 inputs are answered, 2,049 refused with 400', async () => {
    const { client } = await serviceFor({ profile: 'openai' });
    const model = 'text-embedding-3-small';
    const ok = await client.embeddings.create({ model, input: Array(2048).fill('a'), dimensions: 8 });
    expect(ok.data).toHaveLength(2048);
    await expect(client.embeddings.create({ model, input: Array(2049).fill('a') })).rejects.toMatchObject({
      status: 400,
      param: 'input',
    });
  });

  it('dashscope: 2,049 inputs are answered (no cap is borrowed from OpenAI)', async () => {
    const { client } = await serviceFor();
    const ok = await client.embeddings.create({
      model: 'text-embedding-v4',
      input: Array(2049).fill('a'),
      dimensions: 64,
    });
    expect(ok.data).toHaveLength(2049);
  });

  it('answers a string, strings, a token array and token arrays, one vector per input', async () => {
    const { client } = await serviceFor({ profile: 'openai' });
    const model = 'text-embedding-3-small';
    const count = async (input: Parameters<typeof client.embeddings.create>[0]['input']) =>
      (await client.embeddings.create({ model, input, dimensions: 8 })).data.length;
    expect(await count('a')).toBe(1);
    expect(await count(['a', 'b'])).toBe(2);
    expect(await count([1, 2, 3])).toBe(1);
    expect(await count([[1, 2], [3]])).toBe(2);
  });

  // ref/openai-batch-openapi.yaml: "`/v1/embeddings` batches are also restricted to a maximum of 50,000
  // embedding inputs across all requests in the batch."
  it('openai: fails a batch of more than 50,000 embedding inputs at validation, naming the line', async () => {
    const { client } = await serviceFor({ profile: 'openai' });
    const lines = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        custom_id: `e${i}`,
        method: 'POST',
        url: '/v1/embeddings',
        body: { model: 'text-embedding-3-small', input: Array(2048).fill('a'), dimensions: 1 },
      }));
    const create = { endpoint: '/v1/embeddings' as const };
    const within = await waitFor(
      client,
      (await submit(client, dir, lines(24), create)).id,
      undefined,
      60_000,
    );
    expect(within.status).toBe('completed');
    const over = await waitFor(client, (await submit(client, dir, lines(25), create)).id);
    expect(over.status).toBe('failed');
    expect(over.errors!.data![0]).toMatchObject({ code: 'too_many_embedding_inputs', line: 25 });
  }, 120_000);
});
