/**
 * Batch Chat semantics on `POST /v1/chat/completions` (ref/modelstudio-batch-chat.txt): calls queue
 * and wait at most their timeout (60-3600 s, the SDK's `timeout`, default 3600), a model with too
 * many pending calls refuses more, and the call rate is capped (1,000 QPS; 10,000 calls per 10 s).
 * Small numbers and a scaled clock keep it quick.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { type LocalServiceOptions, startLocalService } from '../../src/local/index.js';
import { raw } from './support.js';

const ask = (model = 'qwen-plus') => ({ model, messages: [{ role: 'user' as const, content: 'hi' }] });

async function withService(
  options: LocalServiceOptions,
  body: (url: string) => Promise<void>,
): Promise<void> {
  const service = await startLocalService(options);
  try {
    await body(service.url);
  } finally {
    await service.close();
  }
}

function client(url: string, timeoutMs = 3_600_000): OpenAI {
  return new OpenAI({ baseURL: url, apiKey: 'local', maxRetries: 0, timeout: timeoutMs });
}

describe('Batch Chat', () => {
  // ref/modelstudio-batch-chat.txt: "Text generation models: qwen3.5-plus, qwen3.5-flash, qwen3-max,
  // qwen-plus, qwen-flash, deepseek-v3.2"; "Image and video understanding models: qwen3.5-plus,
  // qwen3.5-flash, qwen3-vl-plus, qwen3-vl-flash". Its own list, not the file-batch one.
  it("offers the Batch Chat document's models, not the file-batch list", async () => {
    const listed = ['qwen3.5-plus', 'qwen3.5-flash', 'qwen3-max', 'qwen-plus', 'qwen-flash', 'deepseek-v3.2'];
    await withService({ batchChat: { enabled: true } }, async (url) => {
      const c = client(url);
      for (const model of [...listed, 'qwen3-vl-plus', 'qwen3-vl-flash'])
        expect((await c.chat.completions.create(ask(model))).model).toBe(`batchpipe-test-engine/${model}`);
      // On the file-batch list, not on Batch Chat's.
      for (const model of ['qwen-max', 'qwq-plus', 'qwen-long', 'qwen-vl-max', 'deepseek-r1'])
        await expect(c.chat.completions.create(ask(model))).rejects.toMatchObject({
          status: 404,
          code: 'model_not_found',
        });
    });
    // Without Batch Chat, the real-time route keeps the file-batch list: qwen3-max is not on it.
    await withService({}, async (url) => {
      const c = client(url);
      expect((await c.chat.completions.create(ask('qwen-max'))).object).toBe('chat.completion');
      await expect(c.chat.completions.create(ask('qwen3-max'))).rejects.toMatchObject({ status: 404 });
    });
  });

  it('refuses calls past the pending limit of a model with 429, other models unaffected', async () => {
    await withService(
      { latencyMs: 150, concurrency: 1, batchChat: { enabled: true, maxPendingPerModel: 2 } },
      async (url) => {
        const c = client(url);
        const calls = Array.from({ length: 4 }, () => c.chat.completions.create(ask()));
        const other = c.chat.completions.create(ask('qwen3-max'));
        const outcomes = await Promise.allSettled(calls);
        expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(2);
        for (const o of outcomes)
          if (o.status === 'rejected')
            expect(o.reason).toMatchObject({ status: 429, code: 'too_many_pending_requests' });
        expect((await other).choices[0]!.message.content).toContain('Test answer');
        // Once they are answered, the model takes calls again.
        expect((await c.chat.completions.create(ask())).object).toBe('chat.completion');
      },
    );
  });

  it('caps calls per second and per 10 seconds, with retry-after', async () => {
    await withService({ batchChat: { enabled: true, maxPerSecond: 3, maxPer10s: 100 } }, async (url) => {
      const c = client(url);
      for (let i = 0; i < 3; i++) await c.chat.completions.create(ask());
      const refused = await c.chat.completions.create(ask()).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
      expect((refused as Error).message).toContain('at most 3 calls per 1 s');
      const wait = Number((refused as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after-ms'));
      await sleep(wait + 5);
      expect((await c.chat.completions.create(ask())).object).toBe('chat.completion');
    });
    await withService({ batchChat: { enabled: true, maxPerSecond: 100, maxPer10s: 4 } }, async (url) => {
      const c = client(url);
      for (let i = 0; i < 4; i++) await c.chat.completions.create(ask());
      await expect(c.chat.completions.create(ask())).rejects.toThrow(/at most 4 calls per 10 s/);
    });
  });

  it('answers 504 when a call waits past its timeout (60 s at least), not billed', async () => {
    // 60 service seconds are one real second at timeScale 60. The SDK tells the server a request's
    // own timeout (x-stainless-timeout); a client-wide timeout it enforces alone.
    await withService(
      { timeScale: 60, latencyMs: 700, concurrency: 1, batchChat: { enabled: true } },
      async (url) => {
        const c = client(url);
        const first = c.chat.completions.create(ask(), { timeout: 60_000 });
        await sleep(20);
        const started = performance.now();
        // Asks for 10 s: held to the documented minimum of 60 s (one real second here).
        const second = c.chat.completions.create(ask(), { timeout: 10_000 }).catch((e: unknown) => e);
        const patient = c.chat.completions.create(ask(), { timeout: 180_000 });
        expect((await first).object).toBe('chat.completion');
        const late = await second;
        expect(late).toMatchObject({ status: 504, code: 'request_timeout' });
        expect(performance.now() - started).toBeGreaterThanOrEqual(900);
        expect((await patient).object).toBe('chat.completion');
      },
    );
  });

  it('frees the pending place of a caller that gave up', async () => {
    await withService(
      { latencyMs: 300, concurrency: 1, batchChat: { enabled: true, maxPendingPerModel: 2 } },
      async (url) => {
        const c = client(url);
        const first = c.chat.completions.create(ask());
        const quitter = new AbortController();
        const gaveUp = c.chat.completions.create(ask(), { signal: quitter.signal }).catch((e: unknown) => e);
        await sleep(50);
        quitter.abort();
        await gaveUp;
        await sleep(20);
        // Its place is free: a new call is admitted while the first still runs.
        const next = c.chat.completions.create(ask());
        expect((await first).object).toBe('chat.completion');
        expect((await next).object).toBe('chat.completion');
      },
    );
  });

  it('is off by default: the plain endpoint takes any number of pending calls', async () => {
    await withService(
      { latencyMs: 50, concurrency: 1, batchChat: { maxPendingPerModel: 1 } },
      async (url) => {
        const c = client(url);
        const all = await Promise.all(Array.from({ length: 4 }, () => c.chat.completions.create(ask())));
        expect(all).toHaveLength(4);
        const embedded = await raw({ url }, '/v1/embeddings', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'text-embedding-v4', input: 'hi' }),
        });
        expect(embedded.status).toBe(200);
      },
    );
  });

  it('lets a client that retries on 429 get through (the documents: "implement retry logic")', async () => {
    await withService(
      { latencyMs: 30, concurrency: 1, batchChat: { enabled: true, maxPendingPerModel: 1 } },
      async (url) => {
        const retrying = new OpenAI({ baseURL: url, apiKey: 'local', maxRetries: 6 });
        const answers = await Promise.all(
          Array.from({ length: 3 }, () => retrying.chat.completions.create(ask())),
        );
        expect(answers.map((a) => a.object)).toEqual([
          'chat.completion',
          'chat.completion',
          'chat.completion',
        ]);
      },
    );
  });
});
