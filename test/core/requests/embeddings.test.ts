/**
 * Embeddings requests in every input form the OpenAI spec allows, held to each profile's documented
 * limits, and cut into files by embedding inputs where a batch limits them:
 * - ref/openai-openapi-full.yaml, CreateEmbeddingRequest.input: "Input text to embed, encoded as a
 *   string or array of tokens. To embed multiple inputs in a single request, pass an array of strings
 *   or array of token arrays. The input must not exceed the max input tokens for the model (8192 tokens
 *   for all embedding models), cannot be an empty string, and any array must be 2048 dimensions or
 *   less. ... all embedding models enforce a maximum of 300,000 tokens summed across all inputs in a
 *   single request."
 * - ref/openai-batch-openapi.yaml, CreateBatchRequest.endpoint: "`/v1/embeddings` batches are also
 *   restricted to a maximum of 50,000 embedding inputs across all requests in the batch."
 * - ref/ gives no such figures for DashScope's text-embedding-v4: none are applied there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { prepare } from '../../../src/jobs/prepare.js';
import type { ProviderProfile } from '../../../src/providers/profile.js';
import { PROFILES } from '../../../src/providers/profiles.js';
import { shardRequests } from '../../../src/sinks/shard-requests.js';
import { csvSource } from '../../../src/sources/csv-source.js';
import { toRequests } from '../../../src/transforms/to-requests.js';
import { validateRequests } from '../../../src/transforms/validate-requests.js';
import type { Rejection, RequestItem } from '../../../src/types.js';
import { fileWith, tempDir, through } from '../../helpers.js';

const dir = tempDir('bp-embeddings-');
type Out = RequestItem | Rejection;

async function verdicts(inputs: unknown[], provider: 'openai' | 'dashscope-cn' = 'openai') {
  const model = provider === 'openai' ? 'text-embedding-3-small' : 'text-embedding-v4';
  const out = await through<Out>(
    validateRequests({ provider }),
    inputs.map((input, i) => ({
      kind: 'request',
      index: i + 1,
      file: 'e.jsonl',
      line: i + 1,
      request: { custom_id: `e${i}`, method: 'POST', url: '/v1/embeddings', body: { model, input } },
    })),
  );
  return out.map((o) => (o.kind === 'request' ? 'ok' : `${o.code}: ${o.message}`));
}

const tokens = (n: number) => Array.from({ length: n }, (_, i) => i % 1000);

describe('embeddings input forms', () => {
  it('accepts a string, an array of strings, a token array and an array of token arrays', async () => {
    expect(await verdicts(['hello', ['a', 'b'], [1, 2, 3], [[1, 2], [3]]])).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(await verdicts(['hello', ['a', 'b'], [1, 2, 3], [[1, 2], [3]]], 'dashscope-cn')).toEqual([
      'ok',
      'ok',
      'ok',
      'ok',
    ]);
  });

  it('refuses empty input, mixed forms and non-tokens ("cannot be an empty string")', async () => {
    const out = await verdicts(['', [], ['a', ''], ['a', [1]], [1.5], [-1], [[]], { text: 'a' }]);
    expect(out.every((v) => v.startsWith('BP_BODY_INVALID'))).toBe(true);
    expect(out[0]).toContain('body.input is empty');
  });
});

describe('OpenAI embeddings limits, per request', () => {
  it('"any array must be 2048 dimensions or less": 2,048 inputs pass, 2,049 do not', async () => {
    const [ok, over] = await verdicts([Array(2048).fill('a'), Array(2049).fill('a')]);
    expect(ok).toBe('ok');
    expect(over).toBe(
      'BP_BODY_INVALID: body.input holds 2049 inputs; OpenAI takes at most 2048 per request ("any array must be 2048 dimensions or less")',
    );
  });

  it('"8192 tokens for all embedding models": a token array of 8,192 passes, 8,193 does not', async () => {
    const [ok, over, nested] = await verdicts([tokens(8192), tokens(8193), [tokens(3), tokens(8193)]]);
    expect(ok).toBe('ok');
    expect(over).toContain('token array of 8193 tokens; OpenAI takes at most 8192 per input');
    expect(nested).toContain('token array of 8193 tokens');
  });

  it('"a maximum of 300,000 tokens summed across all inputs in a single request"', async () => {
    const within = [...Array(36).fill(tokens(8192)), tokens(300_000 - 36 * 8192)];
    const over = [...within.slice(0, -1), tokens(300_001 - 36 * 8192)];
    const [a, b] = await verdicts([within, over]);
    expect(a).toBe('ok');
    expect(b).toContain('body.input holds 300001 tokens; OpenAI takes at most 300000 summed');
  });

  it('borrows none of them for text-embedding-v4, for which ref/ gives none', async () => {
    expect(PROFILES['dashscope-cn'].embeddingLimits ?? null).toBeNull();
    expect(await verdicts([Array(2049).fill('a'), tokens(9000)], 'dashscope-cn')).toEqual(['ok', 'ok']);
  });
});

describe('files cut by embedding inputs, not lines', () => {
  const shards = (outDir: string) =>
    readdirSync(outDir)
      .filter((f) => f.startsWith('requests-'))
      .sort()
      .map((f) => {
        const lines = readFileSync(join(outDir, f), 'utf8').trimEnd().split('\n');
        const inputs = lines.reduce((n, l) => {
          const input = JSON.parse(l).body.input;
          return n + (Array.isArray(input) && typeof input[0] !== 'number' ? input.length : 1);
        }, 0);
        return [lines.length, inputs];
      });

  it('keeps every OpenAI batch within 50,000 embedding inputs (25 lines of 2,048 inputs: two files)', async () => {
    const input = fileWith(
      dir,
      'many.csv',
      `id\n${Array.from({ length: 25 }, (_, i) => i + 1).join('\n')}\n`,
    );
    const outDir = join(dir, 'many');
    const result = await prepare(input, {
      outDir,
      provider: 'openai',
      endpoint: '/v1/embeddings',
      model: 'text-embedding-3-small',
      mapper: () => ({ input: Array(2048).fill('a') }),
    });
    expect(result.requests).toBe(25);
    // 24 x 2,048 = 49,152; a 25th line would make 51,200.
    expect(shards(outDir)).toEqual([
      [24, 49_152],
      [1, 2048],
    ]);
  });

  it('counts template lines (one input each) against the same limit', async () => {
    const profile: ProviderProfile = {
      ...PROFILES.openai,
      limits: { ...PROFILES.openai.limits, maxEmbeddingInputsPerFile: 10 },
    };
    const input = fileWith(
      dir,
      'rows.csv',
      `t\n${Array.from({ length: 25 }, (_, i) => `text ${i}`).join('\n')}\n`,
    );
    const outDir = join(dir, 'rows');
    const requests = {
      provider: profile,
      endpoint: '/v1/embeddings' as const,
      model: 'text-embedding-3-small',
      template: '{{t}}',
    };
    await pipeline(
      csvSource(input),
      toRequests(requests),
      validateRequests({ provider: profile }),
      shardRequests({ outDir, provider: profile }),
    );
    expect(shards(outDir)).toEqual([
      [10, 10],
      [10, 10],
      [5, 5],
    ]);
  });
});
