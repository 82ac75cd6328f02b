/**
 * The estimate on counting threads: each request file cut into parts by bytes, counted on threads
 * that end with it, gives the figures counting in this thread gives. And the reader of a part gives
 * every line of a file to exactly one part, wherever the file is cut.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { linesStartingIn } from '../../src/cost/count-requests.js';
import { estimateShards } from '../../src/cost/estimate.js';
import { prepare } from '../../src/jobs/prepare.js';
import { resolveProfile } from '../../src/providers/resolve-profile.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';
import { corpus } from './corpus.js';

const dir = tempDir('bp-estimate-threads-');

async function collect(path: string, from: number, to: number): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of linesStartingIn(path, from, to)) lines.push(line.toString('utf8'));
  return lines;
}

describe('linesStartingIn', () => {
  it('gives every line to the one part it starts in, wherever the file is cut', async () => {
    const path = join(dir, 'lines.jsonl');
    const text = 'a\n\nbb\r\nccc\n{"é":"😀"}\nd\r\n\nlast';
    writeFileSync(path, text);
    const all = await collect(path, 0, Number.POSITIVE_INFINITY);
    expect(all).toEqual(['a', 'bb', 'ccc', '{"é":"😀"}', 'd', 'last']);
    const size = Buffer.byteLength(text);
    for (let cut = 0; cut <= size; cut++)
      for (let cut2 = cut; cut2 <= size; cut2 += 3) {
        const parts = [
          await collect(path, 0, cut),
          await collect(path, cut, cut2),
          await collect(path, cut2, Number.POSITIVE_INFINITY),
        ];
        expect(parts.flat(), `cut at ${cut} and ${cut2}`).toEqual(all);
      }
  });

  it('reads lines longer than its buffer, across reads', async () => {
    const path = join(dir, 'long.jsonl');
    const lines = ['x'.repeat(3 * 1024 * 1024), 'short', 'y'.repeat(1024 * 1024 + 7)];
    writeFileSync(path, `${lines.join('\n')}\n`);
    expect(await collect(path, 0, Number.POSITIVE_INFINITY)).toEqual(lines);
    expect(await collect(path, 1, Number.POSITIVE_INFINITY)).toEqual(lines.slice(1));
  });
});

describe('estimateShards on threads', () => {
  it('gives the figures counting in this thread gives, whole and sampled, Qwen and o200k', async () => {
    const input = join(dir, 'reviews.csv');
    const texts = [
      ...corpus('english', 800, 160, 3),
      ...corpus('chinese', 400, 160, 4),
      ...corpus('json', 300, 80, 5),
    ];
    writeFileSync(
      input,
      csvText(
        ['id', 'review'],
        texts.map((t, i) => [`r${i}`, t]),
      ),
    );
    for (const [model, provider] of [
      ['qwen-plus', 'dashscope'],
      ['gpt-4o-mini', 'openai'],
    ] as const) {
      const out = join(dir, model);
      // Small files, so each is cut into parts: several shards, several parts each.
      const prepared = await prepare(input, {
        template: 'Review: {{review}}',
        idColumn: 'id',
        system: 'Label the review.',
        model,
        provider,
        outDir: out,
        maxTokens: 5,
        anyModel: true,
        maxLinesPerFile: 700,
      });
      expect(prepared.shards.length).toBeGreaterThan(1);
      expect(prepared.shards[0]!.bytes).toBeGreaterThan(2 * 256 * 1024);
      const profile = resolveProfile({ provider, anyModel: true });
      const labels = ['positive', 'negative'];
      const here = await estimateShards(out, prepared.shards, { profile, labels });
      const threaded = await estimateShards(out, prepared.shards, { profile, labels, threads: 2 });
      expect(threaded).toEqual(here);
      expect(here.total.requests).toBe(texts.length);
      const sampled = await estimateShards(out, prepared.shards, { profile, sampleRequests: 50 });
      const sampledThreaded = await estimateShards(out, prepared.shards, {
        profile,
        sampleRequests: 50,
        threads: 1,
      });
      expect(sampledThreaded).toEqual(sampled);
      expect(sampled.shards.every((s) => s.sampled)).toBe(true);
    }
  });
});
