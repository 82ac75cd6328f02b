/**
 * The README's "request files alone" script, run as written: the code block is read from README.md,
 * its `from 'batchpipe'` pointed at src/index.ts and its two paths at a temp dir, and imported. If the
 * README's example stops working, this fails.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateRequestFiles } from '../../src/jobs/validate-file.js';
import { csvText, reviewRows } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-readme-');
const root = fileURLToPath(new URL('../../', import.meta.url));

/** The first ```ts block after `marker` in README.md. */
function readmeBlock(marker: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(marker);
  expect(at).toBeGreaterThan(-1);
  const start = readme.indexOf('```ts\n', at) + '```ts\n'.length;
  return readme.slice(start, readme.indexOf('```', start));
}

describe("the README's script: csvSource -> toRequests -> validateRequests -> shardRequests", () => {
  it('runs as written and writes request files the provider accepts, with the rejections beside them', async () => {
    const snippet = readmeBlock('Request files alone');
    expect(snippet).toContain("await pipeline(\n  csvSource('reviews.csv'),\n  toRequests({");
    const reviews = reviewRows(120, 4);
    const table = reviews.map((r, i) => [i === 50 ? reviews[3]!.id : r.id, r.review]);
    const input = join(dir, 'reviews.csv');
    writeFileSync(input, csvText(['id', 'review'], table));
    const outDir = join(dir, 'prep');
    const script = join(dir, 'script.ts');
    writeFileSync(
      script,
      snippet
        .replace("from 'batchpipe'", `from ${JSON.stringify(join(root, 'src/index.ts'))}`)
        .replaceAll("'reviews.csv'", JSON.stringify(input))
        .replaceAll("'prep'", JSON.stringify(outDir))
        .replace('console.log(files.summary);', 'globalThis.readmeSummary = files.summary;'),
    );
    await import(pathToFileURL(script).href);
    const summary = (globalThis as { readmeSummary?: { rows: number; requests: number; rejected: number } })
      .readmeSummary;
    expect(summary).toMatchObject({ rows: 120, requests: 119, rejected: 1 });
    const rejected = JSON.parse(readFileSync(join(outDir, 'rejections.jsonl'), 'utf8'));
    expect(rejected).toMatchObject({ row: 51, code: 'BP_DUPLICATE_CUSTOM_ID', custom_id: reviews[3]!.id });
    const first = JSON.parse(readFileSync(join(outDir, 'requests-00001.jsonl'), 'utf8').split('\n')[0]!);
    expect(first).toEqual({
      custom_id: reviews[0]!.id,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'qwen-plus',
        messages: [
          { role: 'system', content: 'Answer with one word.' },
          { role: 'user', content: `Classify: ${reviews[0]!.review}` },
        ],
      },
    });
    const { resolveProfile } = await import('../../src/providers/resolve-profile.js');
    const reports = await validateRequestFiles([join(outDir, 'requests-00001.jsonl')], {
      profile: resolveProfile('dashscope'),
    });
    expect(reports.map((r) => [r.ok, r.valid])).toEqual([[true, 119]]);
  });
});
