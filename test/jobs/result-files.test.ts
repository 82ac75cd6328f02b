import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findResultFiles } from '../../src/jobs/result-files.js';
import { tempDir } from '../helpers.js';
import { answerLine } from '../support/results.js';

const dir = tempDir('bp-result-files-');
const request = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v1/chat/completions', body: {} });
const answer = answerLine({ custom_id: 'a', content: 'x' });
const dl = join(dir, 'dl');

function tree(root: string, files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), `${text}\n`);
  }
  return root;
}

describe('findResultFiles', () => {
  it('sorts a prepared directory and a folder of downloads into requests, rejections and results', async () => {
    const prepared = tree(join(dir, 'prep'), {
      'requests-00001.jsonl': request,
      'shards.json': JSON.stringify({ shards: [{ file: 'requests-00001.jsonl' }] }),
      'rejections.jsonl': '{"row": 1}',
      'row-hashes.tsv': '{"row_hashes":1,"columns":["text"]}\n"row-1"\tAAAAAAAAA\n',
    });
    const downloads = tree(dl, {
      'b.jsonl': answer,
      'a.jsonl': answer,
      'unlisted-requests.jsonl': request,
      'notes.txt': 'not jsonl',
      'empty.jsonl': '',
    });
    expect(await findResultFiles([prepared, downloads, join(dir, 'dl', 'a.jsonl')])).toEqual({
      results: [
        join(dl, 'a.jsonl'),
        join(dl, 'b.jsonl'),
        join(dl, 'empty.jsonl'),
        join(dir, 'dl', 'a.jsonl'),
      ],
      rejections: [join(prepared, 'rejections.jsonl')],
      requests: [join(prepared, 'requests-00001.jsonl'), join(dl, 'unlisted-requests.jsonl')],
      rowHashes: [join(prepared, 'row-hashes.tsv')],
      slices: [],
    });
  });

  it("takes a finished run's results.jsonl and leaves out the attempts it supersedes", async () => {
    const run = tree(join(dir, 'run'), {
      'manifest.json': '{}',
      'rejections.jsonl': '{"row": 2}',
      'results.jsonl': answer,
      'results/job-1.output.jsonl': answer,
      'results/job-1.errors.jsonl': answer,
      'shards/requests-00001.jsonl': request,
    });
    expect(await findResultFiles([run])).toEqual({
      results: [join(run, 'results.jsonl')],
      rejections: [join(run, 'rejections.jsonl')],
      requests: [join(run, 'shards', 'requests-00001.jsonl')],
      rowHashes: [],
      slices: [],
    });
    const running = tree(join(dir, 'running'), {
      'manifest.json': '{}',
      'results/job-1.output.jsonl': answer,
    });
    expect((await findResultFiles([running])).results).toEqual([
      join(running, 'results', 'job-1.output.jsonl'),
    ]);
  });

  it('takes plain files as requests when asked, and fails on a path that does not exist', async () => {
    const file = join(dir, 'dl', 'a.jsonl');
    expect(await findResultFiles([file], 'requests')).toEqual({
      results: [],
      rejections: [],
      requests: [file],
      rowHashes: [],
      slices: [],
    });
    await expect(findResultFiles([join(dir, 'nope')])).rejects.toMatchObject({ code: 'BP_INPUT_NOT_FOUND' });
  });
});
