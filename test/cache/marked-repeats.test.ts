/**
 * Repeats marked where lines are rendered (`markRepeats`, which `prepare` sets with deduplication):
 * the key table moves with the lines to the render thread, and the sharder reads a mark a line. What
 * it decides must be what its own table would have: the same request files, the same
 * request-keys.tsv, kinds included; a line whose first copy was rejected after it was marked (a
 * duplicate custom_id) is sent; batches that come out of order are refused.
 */
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { REQUEST_KEYS_FILE, REUSED_REQUESTS_FILE } from '../../src/cache/request-reuse.js';
import { KEY_NEW, KEY_NONE, KEY_REPEAT, KEY_UNKEPT, KeySet } from '../../src/core/requests/key-set.js';
import type { RequestBatch } from '../../src/core/requests/request-batch.js';
import { KEY_BYTES, requestKeyInto } from '../../src/core/requests/request-key.js';
import {
  RENDER_THREAD_AFTER_ROWS,
  RENDER_THREAD_AT_ONCE_ROWS,
} from '../../src/core/requests/request-maker.js';
import { csvSource, parquetSink } from '../../src/index.js';
import { prepare } from '../../src/jobs/prepare.js';
import { runTable } from '../../src/jobs/run-table.js';
import { type LocalService, startLocalService } from '../../src/local/index.js';
import { resolveConnection } from '../../src/providers/connection.js';
import { resolveProfile } from '../../src/providers/resolve-profile.js';
import { shardRequests } from '../../src/sinks/shard-requests.js';
import { BatchTransform } from '../../src/streams/batch-transform.js';
import { toRequests } from '../../src/transforms/to-requests.js';
import { validateRequests } from '../../src/transforms/validate-requests.js';
import { csvText } from '../fixtures/make-fixtures.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('bp-repeats-');
const TEMPLATE = 'Say {{text}}';

/**
 * Rows past the thread's start whose texts first come on either side of it, mixed with repeats; and
 * at `twice` on each side, a custom_id given twice (the second row rejected, BP_DUPLICATE_CUSTOM_ID)
 * whose text, new there, comes again in two later rows.
 */
function table(name: string, rows: number, twice: number[]): { input: string; distinct: number } {
  const cells: string[][] = [];
  const sent = new Set<string>();
  for (let i = 0; i < rows; i++) {
    const at = twice.find((t) => i >= t && i < t + 4);
    let text = `text ${(i * 7919) % 25_000} "q" é`;
    let id = `k${i}`;
    // `t`: a row; `t + 1`: the same id, a new text (rejected); `t + 2`, `t + 3`: that text again.
    if (at !== undefined) {
      text = i === at ? `first ${at}` : `second ${at}`;
      if (i <= at + 1) id = `dup${at}`;
    }
    if (at === undefined || i !== at + 1) sent.add(text);
    cells.push([id, text]);
  }
  const input = join(dir, name);
  writeFileSync(input, csvText(['id', 'text'], cells));
  return { input, distinct: sent.size };
}

/** Every file prepare wrote, by name (shards.json apart: it names the options). */
function filesOf(outDir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(outDir).sort())
    if (name !== 'shards.json') files.set(name, readFileSync(join(outDir, name), 'utf8'));
  return files;
}

const provider = resolveProfile({ provider: 'local' });

/** `toRequests` as `prepare` composes it with deduplication, with or without marks. */
function keyedRequests(marked: boolean) {
  return toRequests({
    model: 'qwen-plus',
    template: TEMPLATE,
    idColumn: 'id',
    temperature: 0,
    provider,
    requestKeys: 'auto',
    ...(marked && { markRepeats: {} }),
  });
}

/** `prepare` with deduplication: repeats marked where the lines are rendered. */
function prepareMarked(input: string, outDir: string) {
  return prepare(input, {
    outDir,
    model: 'qwen-plus',
    template: TEMPLATE,
    idColumn: 'id',
    temperature: 0,
    provider: 'local',
    dedup: 'auto',
  });
}

/**
 * prepareMarked, checking that the sharder read the marks: it adds a key to a table of its own only
 * for the rejected ids (the table where lines are rendered marks them without a call to `add`).
 */
async function prepareReadingMarks(input: string, outDir: string) {
  const added = vi.spyOn(KeySet.prototype, 'add');
  try {
    const result = await prepareMarked(input, outDir);
    expect(added.mock.calls.length).toBeLessThan(10);
    return result;
  } finally {
    added.mockRestore();
  }
}

/** The same stages `prepare` composes, with the sharder's own key table (no marks). */
async function prepareUnmarked(input: string, outDir: string): Promise<void> {
  await pipeline(
    csvSource(input),
    keyedRequests(false),
    validateRequests({ provider }),
    shardRequests({ outDir, provider, reuse: { dedup: 'auto', cache: undefined } }),
  );
}

/**
 * Prepares a table of `rows` (see `table`) with marks and with the sharder's own table: the same
 * files and summary, and the rejected ids' texts sent once with their next rows.
 */
async function expectDecidedAlone(name: string, rows: number, twice: number[]): Promise<void> {
  const { input, distinct } = table(`${name}.csv`, rows, twice);
  const marked = join(dir, `${name}-marked`);
  const result = await prepareReadingMarks(input, marked);
  const unmarked = join(dir, `${name}-unmarked`);
  await prepareUnmarked(input, unmarked);
  expect(filesOf(marked)).toEqual(filesOf(unmarked));
  const summary = JSON.parse(readFileSync(join(unmarked, 'shards.json'), 'utf8')) as {
    reuse: unknown;
  };
  expect(result.reuse).toEqual(summary.reuse);
  // Each rejected id's text is sent with the next row that has it, and the row after is its duplicate.
  const kinds = new Map(
    readFileSync(join(marked, REQUEST_KEYS_FILE), 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((r) => r.split('\t'))
      .map(([id, , kind]) => [JSON.parse(id!) as string, kind]),
  );
  for (const at of twice) {
    expect(kinds.get(`dup${at}`)).toBe('s');
    expect(kinds.get(`k${at + 2}`)).toBe('s');
    expect(kinds.get(`k${at + 3}`)).toBe('d');
  }
  const reused = readFileSync(join(marked, REUSED_REQUESTS_FILE), 'utf8');
  expect(reused).toContain(`"custom_id":"k${twice[1]! + 3}"`);
  expect(result.rejected).toBe(2);
  expect(result.reuse).toMatchObject({ keyed: rows - 2, duplicates: rows - 2 - result.reuse!.sent });
  expect(result.reuse!.sent).toBe(distinct);
}

describe('repeats marked where lines are rendered', () => {
  it('are decided as the sharder decides them alone, on both sides of the render thread start', async () => {
    await expectDecidedAlone('mixed', RENDER_THREAD_AFTER_ROWS * 2 + 1000, [
      300,
      RENDER_THREAD_AFTER_ROWS + 2000,
    ]);
  });

  it('are decided as the sharder decides them alone in a table rendered on the thread from its first line', async () => {
    // Estimated from the file's size well past RENDER_THREAD_AT_ONCE_ROWS (the estimate is about, not
    // exact): the key table moves, empty, with the first batch.
    await expectDecidedAlone('large', RENDER_THREAD_AT_ONCE_ROWS + RENDER_THREAD_AFTER_ROWS, [
      300,
      RENDER_THREAD_AFTER_ROWS + 2000,
    ]);
  });

  it('are decided alike from Parquet, whose batches go to the render thread as Arrow', async () => {
    const rows = RENDER_THREAD_AFTER_ROWS + 6000;
    const twice = [RENDER_THREAD_AFTER_ROWS + 1000];
    const { input, distinct } = table('parquet.csv', rows, twice);
    const parquet = join(dir, 'marked.parquet');
    await pipeline(csvSource(input), parquetSink(parquet, { rowGroupSize: 4096 }));
    const marked = join(dir, 'marked-parquet');
    const result = await prepareReadingMarks(parquet, marked);
    const unmarked = join(dir, 'unmarked-csv');
    await prepareUnmarked(input, unmarked);
    expect(readFileSync(join(marked, REQUEST_KEYS_FILE), 'utf8')).toBe(
      readFileSync(join(unmarked, REQUEST_KEYS_FILE), 'utf8'),
    );
    expect(result.reuse).toMatchObject({ keyed: rows - 1, sent: distinct, duplicates: rows - 1 - distinct });
  });

  it('fails naming request-keys.tsv when its appends (not waited for by the sharder) fail, and leaves no file', async () => {
    const { input } = table('full.csv', RENDER_THREAD_AFTER_ROWS * 2, []);
    const outDir = join(dir, 'full');
    mkdirSync(outDir);
    // Every write to the records fails with ENOSPC.
    symlinkSync('/dev/full', join(outDir, `${REQUEST_KEYS_FILE}.partial`));
    await expect(prepareMarked(input, outDir)).rejects.toMatchObject({
      code: 'BP_OUTPUT_WRITE',
      message: expect.stringContaining(REQUEST_KEYS_FILE),
    });
    expect(readdirSync(outDir)).toEqual([]);
  });

  it('refuses batches that reach the sharder after a gap (a stage dropped one)', async () => {
    // About 3 MB: three batches at least (a batch is a chunk of the file).
    const input = join(dir, 'gap.csv');
    const lines = ['id,text'];
    for (let i = 0; i < 3000; i++) lines.push(`k${i},text ${i} ${'x'.repeat(1000)}`);
    writeFileSync(input, `${lines.join('\n')}\n`);
    let seen = 0;
    /** A stage of batches that drops the second. */
    class DropSecond extends BatchTransform<RequestBatch, RequestBatch> {
      protected toBatch(chunk: unknown): RequestBatch {
        return chunk as RequestBatch;
      }
      protected process(batch: RequestBatch): RequestBatch {
        if (++seen !== 2) return batch;
        batch.release();
        return { ...batch, length: 0 } as RequestBatch;
      }
    }
    const run = pipeline(
      csvSource(input),
      keyedRequests(true),
      new DropSecond(),
      shardRequests({ outDir: join(dir, 'gap'), provider, reuse: { dedup: 'auto', cache: undefined } }),
    );
    await expect(run).rejects.toMatchObject({
      code: 'BP_INVALID_OPTION',
      message: expect.stringMatching(/batch 2 .* where batch 1 was due: markRepeats needs every batch/),
    });
  });
});

describe('a run whose repeated request was first rejected', () => {
  let service: LocalService;
  beforeAll(async () => {
    service = await startLocalService({ timeScale: 36_000, seed: 5 });
  });
  afterAll(() => service.close());

  /** `runTable` with deduplication (the default) through the local service. */
  const label = (input: string, out: string) =>
    runTable(input, resolveConnection({ provider: 'local', baseURL: service.url }), {
      model: 'qwen-plus',
      template: TEMPLATE,
      idColumn: 'id',
      temperature: 0,
      runsDir: join(dir, 'runs'),
      pollInterval: 0.05,
      out,
    });

  it('sends the first copy that is not rejected and answers its repeats from it: every row out once', async () => {
    const rows = [
      ['a', 'one'],
      ['a', 'two'],
      ['b', 'two'],
      ['c', 'two'],
      ['d', 'one'],
    ];
    const input = join(dir, 'rejected-first.csv');
    writeFileSync(input, csvText(['id', 'text'], rows));
    const out = join(dir, 'rejected-first.out.csv');
    const result = await label(input, out);
    expect(result.state).toBe('done');
    expect(result.prepared.reuse).toMatchObject({ keyed: 4, sent: 2, duplicates: 2 });
    const table = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(table.map((r) => [r.id, r.text, r.status])).toEqual([
      ['a', 'one', 'ok'],
      ['a', 'two', 'rejected'],
      ['b', 'two', 'ok'],
      ['c', 'two', 'ok'],
      ['d', 'one', 'ok'],
    ]);
    expect(table[3]!.content).toBe(table[2]!.content);
    expect(table[4]!.content).toBe(table[0]!.content);
  });

  it('past the render thread start: each repeat answered as its first, a rejected first copy included', async () => {
    const rows = RENDER_THREAD_AFTER_ROWS + 4000;
    const twice = [RENDER_THREAD_AFTER_ROWS + 2000];
    const { input, distinct } = table('run-large.csv', rows, twice);
    const out = join(dir, 'run-large.out.csv');
    const result = await label(input, out);
    expect(result.state).toBe('done');
    expect(result.prepared.reuse).toMatchObject({ keyed: rows - 1, sent: distinct });
    const labeled = parse(readFileSync(out, 'utf8'), { columns: true }) as Array<Record<string, string>>;
    expect(labeled).toHaveLength(rows);
    // Every row once, in order; rows asking the same thing got the same answer.
    const byText = new Map<string, string>();
    for (const [i, row] of labeled.entries()) {
      if (i === twice[0]! + 1) {
        expect(row.status).toBe('rejected');
        continue;
      }
      expect(row.status, row.id).toBe('ok');
      const first = byText.get(row.text!);
      if (first === undefined) byText.set(row.text!, row.content!);
      else expect(row.content, row.id).toBe(first);
    }
    expect(byText.size).toBe(distinct);
  });
});

describe('KeySet marks', () => {
  it('says of each entry whether its key is new, came earlier, was not kept or is not there', () => {
    const lines = ['x', 'y', 'x', 'z', 'y', 'w'].map((t) => Buffer.from(`{"custom_id":"r","body":"${t}"}`));
    const keys = new Uint8Array(lines.length * KEY_BYTES);
    for (const [i, line] of lines.entries()) requestKeyInto(line, 0, line.length, keys, i * KEY_BYTES);
    const starts = [0, 0, 0, -1, 0, 0];
    const set = new KeySet(3, 0, true);
    const out = new Uint8Array(lines.length);
    set.mark(keys, starts, lines.length, out);
    // z has no line; w is the third key kept (the bound is 3), and finds no room in a table of 2.
    expect([...out]).toEqual([KEY_NEW, KEY_NEW, KEY_REPEAT, KEY_NONE, KEY_REPEAT, KEY_NEW]);
    const full = new KeySet(2);
    const outFull = new Uint8Array(lines.length);
    full.mark(keys, starts, lines.length, outFull);
    expect([...outFull]).toEqual([KEY_NEW, KEY_NEW, KEY_REPEAT, KEY_NONE, KEY_REPEAT, KEY_UNKEPT]);
    expect(full.has(keys, 0)).toBe(true);
    expect(full.has(keys, 5 * KEY_BYTES)).toBe(false);
    // Moved (as to a thread): the same table, going on where it was.
    const moved = KeySet.attach(structuredClone(set.state()));
    expect(moved.size).toBe(3);
    expect(moved.add(keys, 2 * KEY_BYTES)).toBe('present');
    expect(moved.add(keys, 3 * KEY_BYTES)).toBe('full');
    expect(() => new KeySet().state()).toThrow(/not made shared/);
  });
});
