/**
 * chatSink in a whole pipeline (docs/sync.md's example) against the local service's Batch Chat: every
 * row comes out once, in source order, answered or rejected; the same pipeline again sends nothing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chatSink,
  csvSink,
  csvSource,
  joinResults,
  type LocalService,
  startLocalService,
  toRequests,
  validateRequests,
} from '../../src/index.js';
import { fileWith, tempDir } from '../helpers.js';

const dir = tempDir('bp-chat-sink-');
let service: LocalService;

beforeAll(async () => {
  service = await startLocalService({ latencyMs: 5, batchChat: { enabled: true } });
});
afterAll(() => service.close());

async function whole(input: string, out: string) {
  const sink = chatSink({
    provider: 'dashscope-batch-chat',
    baseURL: service.url,
    apiKey: 'local-key',
    runsDir: join(dir, 'runs'),
    callTimeout: 1800,
  });
  await pipeline(
    csvSource(input),
    toRequests({ template: 'Classify: {{review}}', model: 'qwen-plus', idColumn: 'id' }),
    validateRequests({ provider: 'dashscope-batch-chat' }),
    sink,
    joinResults({ source: input, idColumn: 'id' }),
    csvSink(out),
  );
  return sink;
}

describe('chatSink', () => {
  it('answers every row once, in source order (quoted cells, an empty one); the same pipeline again sends nothing', async () => {
    let text = 'id,review\n';
    for (let i = 1; i <= 60; i++) text += i === 7 ? '7,\n' : `${i},review ${i}\n`;
    text += '61,"a review with ""quotes"", and a comma"\n';
    const input = fileWith(dir, 'reviews.csv', text);
    const out = join(dir, 'labeled.csv');
    const sink = await whole(input, out);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(
      'id,review,status,content,error_code,error_message,prompt_tokens,completion_tokens',
    );
    const ids = lines.slice(1).map((l) => l.split(',')[0]);
    expect(ids).toEqual(Array.from({ length: 61 }, (_, i) => String(i + 1)));
    expect(lines.slice(1).every((l) => /,ok,/.test(l))).toBe(true);
    expect(sink.counts).toMatchObject({ rows: 61, ok: 61, failed: 0, pending: 0 });
    expect(sink.runDir).toMatch(/sync-[0-9a-f]{16}$/);
    const calls = service.syncTally().calls;
    expect(calls).toBe(61);
    // The same pipeline on the same input resumes its run: every row has its answer, nothing is sent.
    await whole(input, join(dir, 'again.csv'));
    expect(service.syncTally().calls).toBe(calls);
    expect(readFileSync(join(dir, 'again.csv'), 'utf8')).toBe(readFileSync(out, 'utf8'));
  });
});
