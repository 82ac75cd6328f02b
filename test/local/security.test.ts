/**
 * What a server must never do: answer without the key it was given, leak the key, let an id reach
 * outside the data dir, read an unbounded body, or answer a malformed request with a 5xx.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { random } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';
import { chatLines, clientFor, raw, serviceFor, submit, upload, waitFor } from './support.js';

const KEY = 'sk-local-test-8f3a91c2d7e4';
const dir = tempDir('bp-local-security-');
const logLines: string[] = [];
const { service, client } = await serviceFor({
  apiKey: KEY,
  limits: { maxJsonBodyBytes: 4096 },
  log: (line) => logLines.push(line),
});
const authed = clientFor(service, KEY);

function allFiles(root: string): string[] {
  return readdirSync(root).flatMap((name) => {
    const path = join(root, name);
    return statSync(path).isDirectory() ? allFiles(path) : [path];
  });
}

describe('API key', () => {
  it('binds to 127.0.0.1 by default', () => {
    expect(service.host).toBe('127.0.0.1');
    expect(service.url).toBe(`http://127.0.0.1:${service.port}/v1`);
  });

  it('refuses calls without the key, or with another one, with a 401', async () => {
    const none = await raw(service, '/v1/files');
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: 'missing_api_key', type: 'invalid_request_error' });
    for (const wrong of ['sk-wrong', KEY.slice(0, -1), `${KEY}x`, KEY.toUpperCase(), '']) {
      const res = await raw(service, '/v1/files', { headers: { authorization: `Bearer ${wrong}` } });
      expect(res.status).toBe(401);
    }
    await expect(client.files.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(
      client.chat.completions.create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] }),
    ).rejects.toMatchObject({ status: 401 });
    const res = await raw(service, '/_batchpipe/records');
    expect(res.status).toBe(401);
    for (const [path, method] of [
      ['/_batchpipe/faults', 'GET'],
      ['/_batchpipe/faults', 'POST'],
      ['/_batchpipe/faults', 'DELETE'],
      ['/_batchpipe/restart', 'POST'],
      ['/_batchpipe/batches/batch_x/expire', 'POST'],
      ['/api/v1/batches', 'POST'],
    ] as const)
      expect((await raw(service, path, { method })).status).toBe(401);
  });

  it('serves every call that has it', async () => {
    const batch = await waitFor(authed, (await submit(authed, dir, chatLines(5))).id);
    expect(batch.status).toBe('completed');
  });

  it('never writes the key to the data dir or the log, nor echoes it in a refusal', async () => {
    const wrong = await raw(service, '/v1/files', { headers: { authorization: `Bearer ${KEY}-almost` } });
    expect(JSON.stringify(wrong.body)).not.toContain(KEY);
    for (const file of allFiles(service.dataDir)) expect(readFileSync(file, 'latin1')).not.toContain(KEY);
    expect(logLines.length).toBeGreaterThan(0);
    expect(logLines.join('\n')).not.toContain(KEY);
  });
});

describe('ids and paths', () => {
  it('never lets an id name a path outside its store', async () => {
    const headers = { authorization: `Bearer ${KEY}` };
    for (const path of [
      '/v1/files/..%2F..%2F..%2Fetc%2Fpasswd',
      '/v1/files/..%2F..%2Fclock.json/content',
      '/v1/files/file-..%2F..%2Frecords/content',
      '/v1/files/%2Fetc%2Fpasswd/content',
      '/v1/files/file-batch-%00/content',
      '/v1/batches/..%2Fbatches',
      '/v1/batches/batch_..%2F..%2Fclock',
      '/v1/files/%E0%A4%A',
    ]) {
      const res = await raw(service, path, { headers });
      expect(res.status, path).toBe(404);
    }
    const res = await raw(service, '/v1/batches', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({
        input_file_id: '../clock',
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
      }),
    });
    expect(res.status).toBe(400);
  });
});

describe('malformed requests get a clear 4xx, never a 5xx', () => {
  const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
  const post = (path: string, body: string, extra: Record<string, string> = {}) =>
    raw(service, path, { method: 'POST', headers: { ...headers, ...extra }, body });

  it('bodies over the limit: 413', async () => {
    const big = JSON.stringify({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'x'.repeat(5000) }],
    });
    const res = await post('/v1/chat/completions', big);
    expect(res.status).toBe(413);
    expect(res.body.error).toMatchObject({ code: 'request_too_large' });
    // The limit holds for a body sent without a length, too.
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > 10_000) return controller.close();
        sent += 1000;
        controller.enqueue(new TextEncoder().encode(' '.repeat(1000)));
      },
    });
    const chunked = await raw(service, '/v1/batches', {
      method: 'POST',
      headers,
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
  });

  it('bodies that are not JSON objects, and the wrong content type: 400', async () => {
    for (const body of ['{"model":', '', '[1,2]', 'null', '"text"']) {
      const res = await post('/v1/chat/completions', body);
      expect(res.status, body).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error' });
    }
    expect((await post('/v1/batches', '{}', { 'content-type': 'text/plain' })).status).toBe(400);
  });

  it('unknown routes and methods: 404 with the URL', async () => {
    const res = await raw(service, '/v1/nope', { headers });
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ message: 'Invalid URL (GET /v1/nope)' });
    expect((await raw(service, '/v1/files', { method: 'PUT', headers })).status).toBe(404);
    expect((await raw(service, '/v1/batches/batch_x/cancel', { headers })).status).toBe(404);
  });

  it('a seeded storm of odd requests: no 5xx, every refusal in the API shape, and the service stays up', async () => {
    const next = random(99);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
    const paths = [
      '/v1/files',
      '/v1/batches',
      '/v1/chat/completions',
      '/v1/embeddings',
      '/v1/files/file-batch-x/content',
      '/v1/batches/batch_x/cancel',
      '/v1/batches?limit=abc',
      '/v1/files?after=%ZZ',
      '/v1//files',
      '/v1/files/',
    ];
    const bodies = [
      '{}',
      '{"input_file_id":null}',
      '{"model":"m","messages":"hi"}',
      '{"model":"m","messages":[{"role":"robot","content":1}]}',
      '{"model":"m","input":[]}',
      '{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}',
      '{"model":"m","messages":[{"role":"user","content":"x"}],"n":1000}',
      '{"input_file_id":"file-batch-x","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":[]}',
      '\u0000\u0001',
      'x'.repeat(3000),
    ];
    const types = [
      'application/json',
      'multipart/form-data',
      'multipart/form-data; boundary=zz',
      'text/plain',
    ];
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const method = pick(['GET', 'POST', 'DELETE']);
      const init: RequestInit = {
        method,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': pick(types) },
      };
      if (method === 'POST') init.body = pick(bodies);
      const path = pick(paths);
      const res = await raw(service, path, init);
      expect(res.status, `${method} ${path} ${String(init.body).slice(0, 40)}`).toBeLessThan(500);
      if (res.status >= 400) {
        refused++;
        expect(res.body.error).toMatchObject({ message: expect.any(String), type: expect.any(String) });
      }
    }
    expect(refused).toBeGreaterThan(100);
    const file = await upload(authed, dir, chatLines(2));
    expect(file.status).toBe('uploaded');
    expect(logLines.some((line) => line.startsWith('error'))).toBe(false);
  });
});

describe('requests that cost far more than they weigh', () => {
  // Default limits (the bodies here are up to a few MB), and OpenAI's embedding models too.
  let open: Awaited<ReturnType<typeof serviceFor>>;
  beforeAll(async () => {
    open = await serviceFor({ seed: 2, models: 'any' });
  });
  const arrayOf20M = {
    type: 'json_schema' as const,
    json_schema: {
      name: 'many',
      schema: { type: 'array', minItems: 20_000_000, items: { type: 'string', minLength: 8 } },
    },
  };

  it('a ~200-byte schema asking for 20,000,000 items no longer crashes the service: the answer stops at the output limit, finish_reason "length"', async () => {
    const started = Date.now();
    const completion = await authed.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'list them' }],
      response_format: arrayOf20M,
    });
    expect(Date.now() - started).toBeLessThan(5000);
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe('length');
    const content = choice.message.content!;
    expect(content.startsWith('["')).toBe(true);
    expect(content.length).toBeLessThanOrEqual(256 * 1024);
    // Cut off mid-way, as a model at its output limit: not valid JSON.
    expect(() => JSON.parse(content)).toThrow();
    // Strings, nesting and n multiply nothing past the one budget of a request.
    const huge = await authed.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'x' }],
      n: 128,
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'nested',
          schema: {
            type: 'object',
            properties: {
              text: { type: 'string', minLength: 1_000_000_000 },
              grid: { type: 'array', minItems: 100_000, items: { type: 'array', minItems: 100_000 } },
            },
          },
        },
      },
    });
    const total = huge.choices.reduce((sum, c) => sum + c.message.content!.length, 0);
    expect(total).toBeLessThanOrEqual(256 * 1024 + huge.choices.length);
    expect(huge.choices.every((c) => c.finish_reason === 'length')).toBe(true);
    // The service is still up and answers normally.
    const after = await authed.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'still there?' }],
    });
    expect(after.choices[0]!.finish_reason).toBe('stop');
  });

  it('in a batch, the same schema gives that line a cut-off answer and the batch completes (it crashed the service on every restart)', async () => {
    const lines = chatLines(3, { body: { response_format: arrayOf20M } });
    const batch = await waitFor(authed, (await submit(authed, dir, lines)).id);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
  });

  it('a small schema still gets a whole, valid answer', async () => {
    const completion = await authed.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'x' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'list',
          schema: { type: 'array', minItems: 500, maxItems: 500, items: { type: 'integer' } },
        },
      },
    });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
    expect(JSON.parse(completion.choices[0]!.message.content!)).toHaveLength(500);
  });

  it('a JSON-mode prompt of many braces is answered at once (looking for a schema in it was quadratic)', async () => {
    const prompt = `json ${'{"a":'.repeat(200_000)}1}`;
    const started = Date.now();
    const completion = await open.client.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: prompt }],
      response_format: { type: 'json_object' },
    });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(completion.choices[0]!.finish_reason).toBe('stop');
  });

  it('embeddings: dimensions past the model size, inputs past 8,192 tokens or 300,000 in all are refused before any vector is made (2048 x 8192 blocked the service 20 s)', async () => {
    const inputs = Array.from({ length: 2048 }, (_, i) => `text ${i}`);
    const started = Date.now();
    for (const [model, max] of [
      ['text-embedding-v4', 2048],
      ['text-embedding-3-small', 1536],
      ['my-embedder', 3072],
    ] as const) {
      await expect(
        open.client.embeddings.create({ model, input: inputs, dimensions: 8192, encoding_format: 'float' }),
        model,
      ).rejects.toMatchObject({ status: 400, param: 'dimensions' });
      const one = await open.client.embeddings.create({
        model,
        input: 'x',
        dimensions: max,
        encoding_format: 'float',
      });
      expect(one.data[0]!.embedding).toHaveLength(max);
    }
    const long = 'word '.repeat(50_000);
    await expect(
      open.client.embeddings.create({ model: 'text-embedding-v4', input: ['short', long] }),
    ).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded', param: 'input[1]' });
    const many = Array.from({ length: 2048 }, (_, i) => `${i} ${'word '.repeat(700)}`);
    await expect(
      open.client.embeddings.create({ model: 'text-embedding-v4', input: many }),
    ).rejects.toMatchObject({ status: 400, code: 'max_tokens_per_request', param: 'input' });
    expect(Date.now() - started).toBeLessThan(15_000);
    // 2048 inputs within every limit are answered.
    const all = await open.client.embeddings.create({
      model: 'text-embedding-v4',
      input: inputs,
      dimensions: 64,
    });
    expect(all.data).toHaveLength(2048);
  });
});

describe('slow clients', () => {
  it('closes a connection whose client stops sending its body (the server had no timeout at all)', async () => {
    const { service: strict } = await serviceFor({ limits: { idleTimeoutMs: 300 } });
    const socket = connect(strict.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const started = Date.now();
    socket.write(
      'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":',
    );
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('never cuts off a call waiting on the service itself (latency longer than the idle timeout)', async () => {
    const { client: patient } = await serviceFor({ limits: { idleTimeoutMs: 200 }, latencyMs: 600 });
    const completion = await patient.chat.completions.create({
      model: 'qwen-plus',
      messages: [{ role: 'user', content: 'take your time' }],
    });
    expect(completion.choices[0]!.finish_reason).toBe('stop');
  });
});
