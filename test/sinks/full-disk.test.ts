/**
 * Issue 12, item 1: table outputs and request shards on a disk that fills up (a real 1 MB tmpfs)
 * fail with BP_OUTPUT_WRITE naming the file, and leave nothing under a final name. The bug: a CSV
 * sink ended "ok" with a truncated file renamed into place.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { csvSink } from '../../src/sinks/csv-sink.js';
import { jsonlSink } from '../../src/sinks/jsonl-sink.js';
import { shardRequests } from '../../src/sinks/shard-requests.js';
import type { RequestItem } from '../../src/types.js';
import { filesUnder, mountSmallDisk } from '../support/small-disk.js';

const disk = mountSmallDisk(1024 * 1024);
if (typeof disk === 'string') console.warn(`skipped the full-disk sink tests: ${disk}`);
afterAll(() => {
  if (typeof disk !== 'string') disk.unmount();
});

function* records(n: number) {
  for (let i = 0; i < n; i++) yield { id: i, text: 'x'.repeat(90) };
}

function* requests(n: number): Generator<RequestItem> {
  for (let i = 0; i < n; i++)
    yield {
      kind: 'request',
      index: i,
      file: 'in.csv',
      line: i + 2,
      request: {
        custom_id: `row-${i}`,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'qwen-plus', messages: [{ role: 'user', content: `text ${i} ${'y'.repeat(80)}` }] },
      },
    };
}

async function failure(work: Promise<unknown>): Promise<{ code: string; message: string; context: object }> {
  return work.then(
    () => {
      throw new Error('the write was reported done');
    },
    (error: unknown) => error as { code: string; message: string; context: object },
  );
}

describe.skipIf(typeof disk === 'string')('sinks on a full 1 MB tmpfs', () => {
  const small = disk as Exclude<typeof disk, string>;

  it.each([
    // Just past the room left (the last write is short: the case that used to pass), and well past it.
    ['csvSink', 11_000, (path: string) => csvSink(path), 'out.csv'],
    ['csvSink', 20_000, (path: string) => csvSink(path), 'out.csv'],
    ['csvSink (TSV)', 11_000, (path: string) => csvSink(path), 'out.tsv'],
    ['jsonlSink', 10_000, (path: string) => jsonlSink(path), 'out.jsonl'],
  ] as const)(
    '%s with %i rows: BP_OUTPUT_WRITE naming the file, no file left',
    async (_name, rows, make, name) => {
      small.empty();
      const path = join(small.dir, 'tables', name);
      const sink = make(path);
      const error = await failure(pipeline(Readable.from(records(rows)), sink));
      expect(error).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
      expect(error.message).toContain('no space left on the device (ENOSPC)');
      expect(sink.summary).toBeUndefined();
      expect(filesUnder(small.dir)).toEqual([]);
    },
  );

  it('a table that fits is written whole beside the filler', async () => {
    small.empty();
    small.fill(256 * 1024);
    const path = join(small.dir, 'fits.csv');
    const sink = csvSink(path);
    await pipeline(Readable.from(records(1000)), sink);
    expect(readFileSync(path, 'utf8').trimEnd().split('\n')).toHaveLength(1001);
    expect(sink.summary).toMatchObject({ rows: 1000 });
  });

  it('shardRequests: a shard cut short by the disk is never left under its name, and a failed run leaves no shards', async () => {
    small.empty();
    const outDir = join(small.dir, 'prepared');
    const sink = shardRequests({ outDir, maxLinesPerFile: 2000 });
    const error = await failure(pipeline(Readable.from(requests(12_000)), sink));
    expect(error.code).toBe('BP_OUTPUT_WRITE');
    expect(error.message).toMatch(/prepared\/requests-\d{5}\.jsonl: cannot be written: no space left/);
    // Not even the shards that were whole before the disk filled: a failed prepare is no prepared directory.
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('shardRequests: a run that fails before replacing any file leaves the earlier prepared directory as it was', async () => {
    small.empty();
    const outDir = join(small.dir, 'prepared');
    const first = shardRequests({ outDir });
    await pipeline(Readable.from(requests(100)), first);
    const before = Object.fromEntries(
      readdirSync(outDir).map((f) => [f, readFileSync(join(outDir, f), 'utf8')]),
    );
    expect(Object.keys(before).sort()).toEqual(['rejections.jsonl', 'requests-00001.jsonl', 'shards.json']);
    small.fill(16 * 1024);
    const error = await failure(pipeline(Readable.from(requests(5000)), shardRequests({ outDir })));
    expect(error.code).toBe('BP_OUTPUT_WRITE');
    const after = Object.fromEntries(
      readdirSync(outDir).map((f) => [f, readFileSync(join(outDir, f), 'utf8')]),
    );
    expect(after).toEqual(before);
  });
});
