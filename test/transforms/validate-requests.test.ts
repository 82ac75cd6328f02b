import { describe, expect, it } from 'vitest';
import { resolveProfile } from '../../src/providers/resolve-profile.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
import type { Rejection, RequestItem, RequestLine } from '../../src/types.js';
import { row, through } from '../helpers.js';

type Out = RequestItem | Rejection;

const chat = (
  custom_id: string,
  extra: { method?: string; url?: string; body?: Record<string, unknown> } = {},
): RequestLine =>
  ({
    custom_id,
    method: 'POST',
    url: '/v1/chat/completions',
    ...extra,
    body: { model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }], ...extra.body },
  }) as RequestLine;

const item = (index: number, request: unknown): RequestItem => ({
  kind: 'request',
  index,
  file: 'req.jsonl',
  line: index,
  request: request as RequestLine,
});

async function codes(
  lines: unknown[],
  options: Parameters<typeof validateRequests>[0] = { provider: 'dashscope' },
): Promise<Array<string>> {
  const out = await through<Out>(
    validateRequests(options),
    lines.map((l, i) => item(i + 1, l)),
  );
  return out.map((o) => (o.kind === 'request' ? 'ok' : o.code));
}

describe('validateRequests', () => {
  it('passes good lines with their serialized text and exact UTF-8 byte length', async () => {
    const request = chat('a', { body: { messages: [{ role: 'user', content: 'é😀' }] } });
    const [out] = await through<RequestItem>(validateRequests({ provider: 'dashscope' }), [item(1, request)]);
    expect(out!.text).toBe(JSON.stringify(request));
    expect(out!.bytes).toBe(Buffer.byteLength(JSON.stringify(request)));
  });

  // ref/modelstudio-batch-file-input.txt: "The custom_id supports a maximum of 256 characters." Counted in
  // code points: 256 emoji (512 UTF-16 units, 1,024 bytes) pass, 257 do not.
  it('enforces custom_id: present, a non-empty string, at most 256 characters, unique across the run', async () => {
    expect(
      await codes([
        { ...chat('x'), custom_id: undefined },
        { ...chat('x'), custom_id: 7 },
        chat(''),
        chat('😀'.repeat(257)),
        chat('😀'.repeat(256)),
        chat('é'.repeat(256)),
        chat('dup'),
        chat('dup'),
      ]),
    ).toEqual([
      'BP_CUSTOM_ID_MISSING',
      'BP_CUSTOM_ID_INVALID',
      'BP_CUSTOM_ID_INVALID',
      'BP_CUSTOM_ID_TOO_LONG',
      'ok',
      'ok',
      'ok',
      'BP_DUPLICATE_CUSTOM_ID',
    ]);
  });

  it('rejects the later of two rows with the same custom_id, naming the earlier row\'s line (it said only "an earlier row")', async () => {
    const out = await through<Out>(validateRequests(), [item(4, chat('k')), item(9, chat('k'))]);
    expect(out[0]!.kind).toBe('request');
    expect(out[1]).toMatchObject({
      kind: 'rejection',
      index: 9,
      line: 9,
      custom_id: 'k',
      code: 'BP_DUPLICATE_CUSTOM_ID',
      message:
        'custom_id "k" is already used by line 4; custom_ids must be unique across the run (results are joined back by them)',
    });
  });

  it('names the earlier file and line when rows of several files share a custom_id', async () => {
    const other = { ...item(2, chat('k')), file: 'other.jsonl' };
    const out = await through<Out>(validateRequests(), [item(3, chat('k')), other]);
    expect(out[1]).toMatchObject({
      file: 'other.jsonl',
      line: 2,
      code: 'BP_DUPLICATE_CUSTOM_ID',
      message: expect.stringContaining('custom_id "k" is already used by req.jsonl:3;'),
    });
  });

  it('enforces method, url and one endpoint per batch', async () => {
    expect(
      await codes(
        [
          chat('a', { method: 'GET' }),
          chat('b', { url: '/v1/chat' }),
          chat('c'),
          { ...chat('d'), url: '/v1/embeddings', body: { model: 'text-embedding-v4', input: 'x' } },
        ],
        {
          provider: 'dashscope-cn',
        },
      ),
    ).toEqual(['BP_METHOD_INVALID', 'BP_URL_INVALID', 'ok', 'BP_ENDPOINT_MISMATCH']);
  });

  it('knows which region offers which endpoint and model', async () => {
    const embedding = {
      ...chat('e'),
      url: '/v1/embeddings',
      body: { model: 'text-embedding-v4', input: 'x' },
    };
    expect(await codes([embedding], { provider: 'dashscope' })).toEqual(['BP_ENDPOINT_NOT_OFFERED']);
    expect(await codes([embedding], { provider: 'dashscope-cn' })).toEqual(['ok']);
    expect(await codes([chat('a', { body: { model: 'qwen3.5-plus' } })], { provider: 'dashscope' })).toEqual([
      'BP_MODEL_NOT_OFFERED',
    ]);
    expect(
      await codes([chat('a', { body: { model: 'qwen3.5-plus' } })], { provider: 'dashscope-cn' }),
    ).toEqual(['ok']);
    expect(
      await codes([chat('a', { body: { model: 'text-embedding-v4' } })], { provider: 'dashscope-cn' }),
    ).toEqual(['BP_MODEL_NOT_OFFERED']);
    expect(
      await codes([chat('a', { body: { model: 'my-own' } })], {
        provider: resolveProfile({ provider: 'dashscope', models: ['my-own'] }),
      }),
    ).toEqual(['ok']);
    expect(await codes([chat('a', { body: { model: 'anything' } })], { provider: 'openai' })).toEqual(['ok']);
  });

  it('checks the body shape', async () => {
    expect(
      await codes([
        { ...chat('a'), body: 'text' },
        chat('b', { body: { model: '' } }),
        chat('c', { body: { messages: [] } }),
        chat('d', { body: { messages: [{ role: 'robot', content: 'x' }] } }),
        chat('e', { body: { messages: [{ role: 'user' }] } }),
        chat('f', {
          body: {
            messages: [
              { role: 'assistant', content: null },
              { role: 'user', content: [{ type: 'text', text: 'x' }] },
            ],
          },
        }),
      ]),
    ).toEqual([
      'BP_BODY_INVALID',
      'BP_MODEL_MISSING',
      'BP_BODY_INVALID',
      'BP_BODY_INVALID',
      'BP_BODY_INVALID',
      'ok',
    ]);
  });

  it('checks thinking flags and warns when they hide in extra_body', async () => {
    const stage = validateRequests({ provider: 'dashscope' });
    const out = await through<Out>(stage, [
      item(1, chat('a', { body: { enable_thinking: 'no' } })),
      item(2, chat('b', { body: { thinking_budget: -5 } })),
      item(3, chat('c', { body: { extra_body: { enable_thinking: false } } })),
    ]);
    expect(out.map((o) => (o.kind === 'request' ? 'ok' : o.code))).toEqual([
      'BP_THINKING_INVALID',
      'BP_THINKING_INVALID',
      'ok',
    ]);
    expect(stage.warnings.list().map((w) => w.code)).toEqual(['BP_WARN_THINKING_IN_EXTRA_BODY']);
  });

  it('refuses lines over the per-line limit', async () => {
    const profile = resolveProfile({ provider: 'dashscope', maxLineBytes: 200 });
    expect(
      await codes(
        [chat('a', { body: { messages: [{ role: 'user', content: 'x'.repeat(300) }] } }), chat('b')],
        { provider: profile },
      ),
    ).toEqual(['BP_LINE_TOO_LARGE', 'ok']);
  });

  it('reads the documents\' "6 MB a line" as 6,000,000 bytes (a 6.1-million-byte line passed when MB meant MiB)', async () => {
    const sized = (id: string, bytes: number) => {
      const base = chat(id, { body: { messages: [{ role: 'user', content: '' }] } });
      const pad = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(base)));
      return chat(id, { body: { messages: [{ role: 'user', content: pad }] } });
    };
    expect(Buffer.byteLength(JSON.stringify(sized('a', 6_000_000)))).toBe(6_000_000);
    expect(
      await codes([sized('a', 6_000_000), sized('b', 6_000_001), sized('c', 6_100_000)], {
        provider: 'dashscope',
        checkContext: false,
      }),
    ).toEqual(['ok', 'BP_LINE_TOO_LARGE', 'BP_LINE_TOO_LARGE']);
    expect(resolveProfile('dashscope').limits).toMatchObject({
      maxBytesPerFile: 500_000_000,
      maxLineBytes: 6_000_000,
    });
    expect(resolveProfile('openai').limits.maxBytesPerFile).toBe(200_000_000);
  });

  it('refuses a prompt that plainly exceeds a known context window, and only then', async () => {
    const profile = resolveProfile({ provider: 'dashscope', contextWindows: { 'qwen-plus': 100 } });
    const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');
    const lines = [
      chat('long', { body: { messages: [{ role: 'user', content: words(400) }] } }),
      chat('fits', { body: { messages: [{ role: 'user', content: words(30) }] } }),
    ];
    expect(await codes(lines, { provider: profile })).toEqual(['BP_CONTEXT_EXCEEDED', 'ok']);
    expect(await codes(lines, { provider: profile, checkContext: false })).toEqual(['ok', 'ok']);
  });

  it('with singleModel, holds every line to the first line model', async () => {
    expect(
      await codes([chat('a'), chat('b', { body: { model: 'qwen-max' } })], {
        provider: 'dashscope',
        singleModel: true,
      }),
    ).toEqual(['ok', 'BP_MODEL_MIXED']);
    expect(
      await codes([chat('a'), chat('b', { body: { model: 'qwen-max' } })], { provider: 'dashscope' }),
    ).toEqual(['ok', 'ok']);
  });

  it('takes Rows whose values are request lines (a request file read with jsonlSource)', async () => {
    const out = await through<Out>(validateRequests(), [
      row(1, chat('a') as unknown as Record<string, unknown>),
      row(2, { nope: true }),
    ]);
    expect(out.map((o) => (o.kind === 'request' ? 'ok' : o.code))).toEqual(['ok', 'BP_CUSTOM_ID_MISSING']);
  });
});
