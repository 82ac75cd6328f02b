/**
 * File-scale and line problems: the documents say the batch is created and then "the task validation
 * fails" (validating -> failed, errors.data items {code, line, message, param}) with no request run;
 * the upload itself is accepted.
 */
import type OpenAI from 'openai';
import type { Batch } from 'openai/resources/batches';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';
import {
  chatLines,
  contentOf,
  expectSchema,
  jsonl,
  type RequestLineSpec,
  resultLines,
  serviceFor,
  submit,
  waitFor,
} from './support.js';

// The documents' MB, read as decimal (src/providers/profiles.ts).
const MB = 1_000_000;
const dir = tempDir('bp-local-validation-');
const { service, client } = await serviceFor();

/** Submits `content` and expects validating -> failed with the given first error and no request run. */
async function expectFails(
  content: string | Buffer | readonly unknown[],
  first: { code: string; line: number | null; param?: string | null },
  using: OpenAI = client,
  create: Parameters<typeof submit>[3] = {},
): Promise<Batch> {
  const created = await submit(using, dir, content, create);
  expect(created.status).toBe('validating');
  const batch = await waitFor(using, created.id);
  expectSchema('Batch', batch);
  expect(batch.status).toBe('failed');
  expect(typeof batch.failed_at).toBe('number');
  expect(batch.in_progress_at).toBeNull();
  const errors = batch.errors!.data!;
  expect(errors.length).toBeGreaterThan(0);
  for (const error of errors) {
    expectSchema('BatchError', error);
    expect(Object.keys(error).sort()).toEqual(['code', 'line', 'message', 'param']);
    expect(error.message?.length).toBeGreaterThan(10);
  }
  expect(errors[0]).toMatchObject({ code: first.code, line: first.line });
  if (first.param !== undefined) expect(errors[0]!.param).toBe(first.param);
  // No request ran: no counts, no usage, no result file.
  expect(batch.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
  expect(batch.usage!.total_tokens).toBe(0);
  expect(batch.output_file_id).toBeNull();
  expect(batch.error_file_id).toBeNull();
  return batch;
}

async function expectCompletes(content: string | Buffer | readonly unknown[], lines: number): Promise<Batch> {
  const batch = await waitFor(client, (await submit(client, dir, content)).id, undefined, 60_000);
  expect(batch.status).toBe('completed');
  expect(batch.request_counts).toMatchObject({ total: lines, completed: lines });
  return batch;
}

function line(overrides: Partial<RequestLineSpec> & Record<string, unknown>, n = 1): RequestLineSpec {
  return { ...chatLines(n)[n - 1]!, ...overrides } as RequestLineSpec;
}

describe('file scale (DashScope: 50,000 requests, 500 MB, 6 MB a line)', () => {
  it('has the documented limits by default', () => {
    expect(service.limits).toEqual({
      maxLinesPerFile: 50_000,
      maxBytesPerFile: 500 * MB,
      maxLineBytes: 6 * MB,
      maxCustomIdChars: 256,
    });
  });

  it('runs a file of exactly 50,000 requests and fails one of 50,001 at line 50,001', async () => {
    const lines = chatLines(50_001, { seed: 9 });
    await expectCompletes(lines.slice(0, 50_000), 50_000);
    await expectFails(lines, { code: 'too_many_lines', line: 50_001 });
  });

  it('fails a file over the byte limit before reading a line', async () => {
    const { client: small, service: smallService } = await serviceFor({ limits: { maxBytesPerFile: 4096 } });
    expect(smallService.limits.maxBytesPerFile).toBe(4096);
    const lines = chatLines(100);
    expect(Buffer.byteLength(jsonl(lines))).toBeGreaterThan(4096);
    await expectFails(lines, { code: 'file_too_large', line: null, param: null }, small);
  });

  it('runs a line of exactly 6 MB and fails a line one byte longer', async () => {
    const make = (bytes: number) => {
      const base = JSON.stringify(
        line({ body: { model: 'qwen-plus', messages: [{ role: 'user', content: '' }] } }),
      );
      const pad = 'x'.repeat(bytes - Buffer.byteLength(base));
      return `${base.replace('"content":""', `"content":"${pad}"`)}\n`;
    };
    const exact = make(6 * MB);
    expect(Buffer.byteLength(exact)).toBe(6 * MB + 1);
    await expectCompletes(exact, 1);
    const over = make(6 * MB + 1);
    await expectFails(jsonl(chatLines(2)) + over, { code: 'line_too_large', line: 3 });
  });

  it('fails an empty file', async () => {
    await expectFails('', { code: 'empty_file', line: null });
  });
});

describe('line framing', () => {
  it('reads CRLF line ends and a last line without a newline', async () => {
    const lines = chatLines(20);
    const crlf = lines.map((l) => `${JSON.stringify(l)}\r\n`).join('');
    await expectCompletes(crlf, 20);
    await expectCompletes(jsonl(lines).trimEnd(), 20);
  });

  it('keeps multibyte characters intact across read-chunk boundaries (1 MiB)', async () => {
    // ~3.5 MB of lines full of 2-, 3- and 4-byte characters: many straddle a chunk boundary.
    const lines = chatLines(1500, { seed: 21 }).map((l, i) => ({
      ...l,
      body: { ...l.body, messages: [{ role: 'user', content: `${i} ${'é日😀'.repeat(200 + (i % 7))}` }] },
    }));
    const batch = await expectCompletes(lines, 1500);
    const byId = new Map(
      lines.map((l) => [l.custom_id, (l.body.messages as Array<{ content: string }>)[0]!.content]),
    );
    const output = await resultLines(client, batch.output_file_id);
    expect(output).toHaveLength(1500);
    for (const line of output) expect(contentOf(line)).toContain(byId.get(line.custom_id)!.slice(0, 60));
  });
});

describe('line rules', () => {
  const good = chatLines(5);
  const at3 = (bad: unknown) => [good[0], good[1], bad, good[3]];

  it('invalid JSON', async () => {
    await expectFails(`${jsonl(good.slice(0, 2))}{"custom_id": "x", "method": "POST",\n`, {
      code: 'invalid_json_line',
      line: 3,
    });
  });

  it('a blank line in the middle', async () => {
    await expectFails(`${jsonl(good.slice(0, 2))}\n${jsonl(good.slice(2))}`, {
      code: 'invalid_json_line',
      line: 3,
    });
  });

  it('a byte order mark before the first line (the bytes are not a JSON object)', async () => {
    await expectFails(`\ufeff${jsonl(good)}`, { code: 'invalid_json_line', line: 1 });
  });

  it('JSON that is not an object', async () => {
    await expectFails(at3('[1, 2]'), { code: 'invalid_json_line', line: 3 });
  });

  it('not UTF-8', async () => {
    const bad = Buffer.concat([
      Buffer.from(jsonl(good.slice(0, 1))),
      Buffer.from(
        '{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus","messages":[{"role":"user","content":"',
      ),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}]}}\n'),
    ]);
    await expectFails(bad, { code: 'invalid_encoding', line: 2 });
  });

  it('a missing custom_id', async () => {
    const { custom_id: _, ...rest } = good[2]!;
    await expectFails(at3(rest), { code: 'missing_required_parameter', line: 3, param: 'custom_id' });
  });

  it('a custom_id that is not a string', async () => {
    await expectFails(at3({ ...good[2], custom_id: 7 }), {
      code: 'invalid_custom_id',
      line: 3,
      param: 'custom_id',
    });
  });

  // ref/modelstudio-batch-file-input.txt: "The custom_id supports a maximum of 256 characters. If this
  // limit is exceeded, the task validation fails." Characters are code points: 256 emoji (1,024 UTF-8
  // bytes, 512 UTF-16 units) or 256 CJK characters (768 bytes) run.
  it('a custom_id over 256 characters fails; 256 runs, counted in code points', async () => {
    await expectCompletes([{ ...good[0], custom_id: 'a'.repeat(256) }], 1);
    await expectCompletes([{ ...good[0], custom_id: '😀'.repeat(256) }], 1);
    await expectCompletes([{ ...good[0], custom_id: '键'.repeat(256) }], 1);
    await expectFails(at3({ ...good[2], custom_id: 'a'.repeat(257) }), {
      code: 'custom_id_too_long',
      line: 3,
      param: 'custom_id',
    });
    const refused = await expectFails(at3({ ...good[2], custom_id: '😀'.repeat(257) }), {
      code: 'custom_id_too_long',
      line: 3,
      param: 'custom_id',
    });
    expect(refused.errors!.data![0]!.message).toContain('257 characters');
  });

  it('a duplicate custom_id', async () => {
    await expectFails(at3({ ...good[2], custom_id: good[0]!.custom_id }), {
      code: 'duplicate_custom_id',
      line: 3,
      param: 'custom_id',
    });
  });

  it('a method other than POST', async () => {
    await expectFails(at3({ ...good[2], method: 'GET' }), {
      code: 'invalid_method',
      line: 3,
      param: 'method',
    });
  });

  it('a url that is not an endpoint', async () => {
    await expectFails(at3({ ...good[2], url: '/v1/chat/complete' }), {
      code: 'invalid_url',
      line: 3,
      param: 'url',
    });
  });

  it("a url other than the batch's endpoint", async () => {
    await expectFails(at3({ ...good[2], url: '/v1/embeddings' }), {
      code: 'mismatched_endpoint',
      line: 3,
      param: 'url',
    });
    // The same file against the embeddings endpoint: every chat line mismatches.
    await expectFails(good, { code: 'mismatched_endpoint', line: 1 }, client, { endpoint: '/v1/embeddings' });
  });

  it('a body that is not an object', async () => {
    await expectFails(at3({ ...good[2], body: 'hello' }), { code: 'invalid_body', line: 3, param: 'body' });
  });

  it('a missing model', async () => {
    await expectFails(at3({ ...good[2], body: { messages: [] } }), {
      code: 'missing_required_parameter',
      line: 3,
      param: 'body.model',
    });
  });

  it('mixed models', async () => {
    await expectFails(at3({ ...good[2], body: { ...good[2]!.body, model: 'qwen-max' } }), {
      code: 'mismatched_model',
      line: 3,
      param: 'body.model',
    });
  });

  it('a model the service does not offer, when told which it offers', async () => {
    const { client: strict } = await serviceFor({ models: ['qwen-max'] });
    await expectFails(good, { code: 'model_not_found', line: 1, param: 'body.model' }, strict);
  });

  it('the dashscope profile fails a batch naming a model DashScope does not offer (the bug: any model ran)', async () => {
    // DESIGN.md section 4: "A model the region does not offer fails the batch."
    const own = chatLines(3, { model: 'gpt-4o-mini' });
    const batch = await expectFails(own, { code: 'model_not_found', line: 1, param: 'body.model' });
    expect(batch.errors!.data![0]!.message).toContain('gpt-4o-mini');
    expect(batch.errors!.data![0]!.message).toContain('--models any');
    // Said once for the file, not once per line.
    expect(batch.errors!.data).toHaveLength(1);
    // The Beijing list as ref/modelstudio-batch-file-input.txt gives it runs, embeddings included, and
    // dated snapshots of listed models (batchpipe's policy, as the client's).
    for (const model of ['qwen-plus', 'qwen-long', 'deepseek-v3', 'qwen3.5-plus', 'qwen-plus-2025-07-28'])
      await expectCompletes(chatLines(2, { model, body: { enable_thinking: false } }), 2);
    // It names no Turbo: "Qwen-Max, Plus, Flash, and Long" (Turbo is Singapore's alone).
    await expectFails(chatLines(2, { model: 'qwen-turbo' }), { code: 'model_not_found', line: 1 });
    // And synchronous calls get DashScope's 404 model_not_found.
    await expect(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }),
    ).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    await expect(client.embeddings.create({ model: 'my-embedder', input: 'x' })).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
    expect((await client.embeddings.create({ model: 'text-embedding-v4', input: 'x' })).data).toHaveLength(1);
  });

  it('takes any model with models: "any", with the openai profile, and with an upstream engine (which decides)', async () => {
    const own = chatLines(3, { model: 'my-own-model' });
    for (const options of [{ models: 'any' as const }, { profile: 'openai' as const }]) {
      const { client: open } = await serviceFor(options);
      const batch = await waitFor(open, (await submit(open, dir, own)).id);
      expect(batch.status, JSON.stringify(options)).toBe('completed');
      await open.chat.completions.create({
        model: 'my-own-model',
        messages: [{ role: 'user', content: 'x' }],
      });
    }
    const { service: upstream } = await serviceFor({ models: 'any' });
    const { client: front } = await serviceFor({ engine: 'upstream', upstream: { url: upstream.url } });
    const batch = await waitFor(front, (await submit(front, dir, own)).id);
    expect(batch.status).toBe('completed');
  });

  it("a prompt plainly over the model's context window fails on its own line with context_length_exceeded", async () => {
    // qwen3.5-plus: 256 K tokens in batches (ref/modelstudio-batch-file-input.txt); ~1.5 M characters is past it.
    const long = 'word '.repeat(300_000);
    const lines = chatLines(3, { model: 'qwen3.5-plus', body: { enable_thinking: false } });
    (lines[1]!.body.messages as Array<{ content: string }>)[1]!.content = long;
    const batch = await waitFor(client, (await submit(client, dir, lines)).id, undefined, 60_000);
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 2, failed: 1 });
    const [failed] = await resultLines(client, batch.error_file_id);
    expect(failed!.custom_id).toBe('row-2');
    expect(failed!.response!.status_code).toBe(400);
    expect(failed!.response!.body.error).toMatchObject({
      code: 'context_length_exceeded',
      param: 'messages',
    });
    // A model the profile gives no window for is not judged.
    const plain = chatLines(1, { model: 'qwen-plus' });
    (plain[0]!.body.messages as Array<{ content: string }>)[1]!.content = long;
    await expectCompletes(plain, 1);
  });

  it('reports every problem it finds, up to a cap, with line numbers', async () => {
    const lines: unknown[] = chatLines(300);
    for (let i = 9; i < 300; i += 10) lines[i] = { ...(lines[i] as object), method: 'PUT' };
    const batch = await expectFails(lines, { code: 'invalid_method', line: 10 });
    const errors = batch.errors!.data!;
    expect(errors).toHaveLength(30);
    expect(errors.map((e) => e.line)).toEqual(Array.from({ length: 30 }, (_, i) => 10 * (i + 1)));
    const { client: capped } = await serviceFor({ limits: { maxValidationErrors: 5 } });
    const few = await expectFails(lines, { code: 'invalid_method', line: 10 }, capped);
    expect(few.errors!.data).toHaveLength(5);
  });

  it('does not fail a file for line-level problems the provider only sees at run time', async () => {
    // A body the endpoint refuses (no messages) is a failed request in the error file, not a failed batch.
    const batch = await waitFor(
      client,
      (await submit(client, dir, at3({ ...good[2], body: { model: 'qwen-plus' } }))).id,
    );
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 4, completed: 3, failed: 1 });
  });
});
