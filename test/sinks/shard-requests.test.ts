import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shardRequests } from '../../src/sinks/shard-requests.js';
import type { Rejection, RequestItem } from '../../src/types.js';
import { tempDir } from '../helpers.js';

const root = tempDir();
let runs = 0;

function requestItem(index: number, model = 'qwen-plus', content = `text ${index}`): RequestItem {
  return {
    kind: 'request',
    index,
    file: 'in.csv',
    line: index + 1,
    request: {
      custom_id: `row-${index}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model, messages: [{ role: 'user', content }] },
    },
  };
}

async function shard(
  items: Array<RequestItem | Rejection>,
  options: { maxLinesPerFile?: number; maxBytesPerFile?: number } = {},
  outDir = join(root, `run-${++runs}`),
) {
  const sink = shardRequests({ outDir, ...options });
  await pipeline(Readable.from(items), sink);
  return { outDir, summary: sink.summary! };
}

describe('shardRequests', () => {
  it('writes files within the line limit, named in order, with exact bytes and sha256', async () => {
    const items = Array.from({ length: 25 }, (_, i) => requestItem(i + 1));
    const { outDir, summary } = await shard(items, { maxLinesPerFile: 10 });
    expect(summary.shards.map((s) => [s.file, s.lines, s.first_row, s.last_row])).toEqual([
      ['requests-00001.jsonl', 10, 1, 10],
      ['requests-00002.jsonl', 10, 11, 20],
      ['requests-00003.jsonl', 5, 21, 25],
    ]);
    for (const s of summary.shards) {
      const bytes = readFileSync(join(outDir, s.file));
      expect(bytes.length).toBe(s.bytes);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(s.sha256);
    }
    const lines = summary.shards.flatMap((s) =>
      readFileSync(join(outDir, s.file), 'utf8').trimEnd().split('\n'),
    );
    expect(lines.map((l) => JSON.parse(l).custom_id)).toEqual(items.map((i) => i.request.custom_id));
    expect(JSON.parse(readFileSync(join(outDir, 'shards.json'), 'utf8'))).toEqual(summary);
    expect(readdirSync(outDir).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('keeps every file within the byte and line limits, whatever the line sizes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 400, max: 2000 }),
        async (sizes, maxLines, maxBytes) => {
          const items = sizes.map((n, i) => requestItem(i + 1, 'qwen-plus', 'é'.repeat(n)));
          const { summary } = await shard(items, { maxLinesPerFile: maxLines, maxBytesPerFile: maxBytes });
          for (const s of summary.shards) {
            expect(s.lines).toBeLessThanOrEqual(maxLines);
            expect(s.bytes).toBeLessThanOrEqual(maxBytes);
          }
          expect(summary.requests + summary.rejected).toBe(items.length);
          expect(summary.shards.reduce((n, s) => n + s.lines, 0)).toBe(summary.requests);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rejects a line that no file could hold', async () => {
    const { outDir, summary } = await shard([requestItem(1, 'qwen-plus', 'x'.repeat(500)), requestItem(2)], {
      maxBytesPerFile: 300,
    });
    expect(summary.rejected).toBe(1);
    const [rejection] = readFileSync(join(outDir, 'rejections.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rejection).toMatchObject({ row: 1, custom_id: 'row-1', code: 'BP_LINE_TOO_LARGE' });
  });

  it('gives each model its own files', async () => {
    const items = [requestItem(1, 'a'), requestItem(2, 'b'), requestItem(3, 'a'), requestItem(4, 'b')];
    const { summary } = await shard(items, { maxLinesPerFile: 10 });
    expect(summary.shards.map((s) => [s.model, s.lines, s.first_row])).toEqual([
      ['a', 2, 1],
      ['b', 2, 2],
    ]);
  });

  it('writes rejections with row, file, line and code', async () => {
    const rejection: Rejection = {
      kind: 'rejection',
      index: 2,
      file: 'in.csv',
      line: 3,
      custom_id: 'x',
      code: 'BP_DUPLICATE_CUSTOM_ID',
      message: 'dup',
    };
    const { outDir, summary } = await shard([requestItem(1), rejection]);
    expect(summary).toMatchObject({
      rows: 2,
      requests: 1,
      rejected: 1,
      rejections: { count: 1, by_code: { BP_DUPLICATE_CUSTOM_ID: 1 } },
    });
    expect(JSON.parse(readFileSync(join(outDir, 'rejections.jsonl'), 'utf8'))).toEqual({
      row: 2,
      file: 'in.csv',
      line: 3,
      custom_id: 'x',
      code: 'BP_DUPLICATE_CUSTOM_ID',
      message: 'dup',
    });
  });

  it('removes files an earlier run listed and this run did not write, and nothing else', async () => {
    const outDir = join(root, 'rerun');
    await shard(
      Array.from({ length: 30 }, (_, i) => requestItem(i + 1)),
      { maxLinesPerFile: 10 },
      outDir,
    );
    writeFileSync(join(outDir, 'notes.txt'), 'mine');
    const { summary } = await shard([requestItem(1)], { maxLinesPerFile: 10 }, outDir);
    expect(summary.shards.map((s) => s.file)).toEqual(['requests-00001.jsonl']);
    expect(existsSync(join(outDir, 'requests-00002.jsonl'))).toBe(false);
    expect(readFileSync(join(outDir, 'notes.txt'), 'utf8')).toBe('mine');
  });
});
