/**
 * A rendered batch's key records (made where the batch was rendered, kinds left undecided): each is
 * the record RequestReuse writes for the line, and a batch decided with them (takeBatch) writes the
 * same request-keys.tsv, cached.jsonl, reused.requests.jsonl and digest as its lines taken one by one.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CACHED_FILE,
  REQUEST_KEYS_FILE,
  REUSED_REQUESTS_FILE,
  RequestReuse,
} from '../../src/cache/request-reuse.js';
import { CacheWriter, ResultCache } from '../../src/cache/result-cache.js';
import { writeKeyRecords } from '../../src/core/requests/key-records.js';
import type { LineTemplate } from '../../src/core/requests/line-template.js';
import { RequestBatch } from '../../src/core/requests/request-batch.js';
import {
  customIdValueRange,
  KEY_BYTES,
  keyHex,
  requestKeyInto,
} from '../../src/core/requests/request-key.js';
import { ByteWriter } from '../../src/internal/byte-writer.js';

const id = (i: number) => (i % 11 === 0 ? `r "${i}"\t\\ é 😀` : i % 13 === 0 ? `ряд-${i}` : `k${i}`);
const lineOf = (i: number) =>
  `${JSON.stringify({
    custom_id: id(i),
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: 'qwen-plus', messages: [{ role: 'user', content: `text ${i % 300}` }], temperature: 0 },
  })}\n`;

/** A batch of `n` lines as the renderer hands it on: keys, and records when `withRecords`. */
function batchOf(n: number, withRecords: boolean, rejected: ReadonlySet<number>): RequestBatch {
  const texts = Array.from({ length: n }, (_, i) => lineOf(i));
  const data = Buffer.from(new SharedArrayBuffer(texts.reduce((sum, t) => sum + Buffer.byteLength(t), 0)));
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const idFroms = new Int32Array(n);
  const idTos = new Int32Array(n);
  const keys = new Uint8Array(n * KEY_BYTES);
  let at = 0;
  for (let i = 0; i < n; i++) {
    starts[i] = at;
    at += data.write(texts[i]!, at);
    ends[i] = at;
    const [from, to] = customIdValueRange(data, starts[i]!, ends[i]! - 1)!;
    // The value's bytes without its quotes, where the renderer wrote them.
    idFroms[i] = from;
    idTos[i] = to;
    requestKeyInto(data, starts[i]!, ends[i]!, keys, i * KEY_BYTES);
  }
  const template = { model: 'qwen-plus', url: '/v1/chat/completions' } as LineTemplate;
  const positions = {
    length: n,
    index: (i: number) => i + 1,
    file: () => 'in.csv',
    line: (i: number) => i + 2,
  };
  const batch = RequestBatch.ofLines(
    template,
    positions,
    texts.map((_, i) => id(i)),
    starts,
    ends,
    new Uint8Array(n),
    () => {
      throw new Error('no rejection expected');
    },
  );
  batch.data = data;
  batch.requestKeys = keys;
  if (withRecords) {
    // After the lines, in their buffer (grown here: it holds the lines only).
    const writer = new ByteWriter(0, undefined, data);
    writer.pos = at;
    batch.keyRecordAt = new Int32Array(n + 1);
    expect(writeKeyRecords(writer, starts, idFroms, idTos, keys, batch.keyRecordAt)).toBe(true);
    batch.data = writer.buffer;
  }
  for (const i of rejected)
    batch.reject(i, {
      kind: 'rejection',
      index: i + 1,
      file: 'in.csv',
      line: i + 2,
      custom_id: id(i),
      code: 'BP_LINE_TOO_LARGE',
      message: 'x',
    });
  return batch;
}

describe('key records made where lines are rendered', () => {
  it("are each line's record with its kind undecided, ids as JSON", () => {
    const batch = batchOf(40, true, new Set());
    const at = batch.keyRecordAt!;
    const text = batch.data!.toString('utf8', at[0], at[40]);
    const expected = Array.from(
      { length: 40 },
      (_, i) => `${JSON.stringify(id(i))}\t${keyHex(batch.requestKeys!.subarray(i * KEY_BYTES))}\t*\n`,
    );
    expect(text).toBe(expected.join(''));
    // Right after the last line, each record where the one before it ends.
    expect(at[0]).toBe(batch.end(39));
    for (let i = 0; i < 40; i++) expect(batch.data!.toString('utf8', at[i], at[i + 1])).toBe(expected[i]);
  });

  it('decide a batch as its lines taken one by one do: the same files and digest', async () => {
    const n = 20_000;
    // Rendered entries later rejected (validation): no record of theirs is written.
    const rejected = new Set([0, 17, 18, 2500, n - 1]);
    // A cache holding the answers of a third of the texts: cached rows and duplicates both.
    const cacheDir = mkdtempSync(join(tmpdir(), 'bp-key-records-cache-'));
    const writer = new CacheWriter(cacheDir);
    const one = batchOf(300, false, new Set());
    for (let i = 0; i < 300; i += 3)
      await writer.add(
        one.requestKeys!.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES),
        Buffer.from(
          JSON.stringify({
            id: `b${i}`,
            custom_id: `c${i}`,
            response: { status_code: 200, body: { n: i } },
            error: null,
          }),
        ),
      );
    await writer.commit(Number.MAX_SAFE_INTEGER);
    const outputs = [];
    for (const withRecords of [false, true]) {
      const dir = mkdtempSync(join(tmpdir(), 'bp-key-records-'));
      const cache = await ResultCache.open(cacheDir);
      const reuse = new RequestReuse(dir, { dedup: 'on', cache });
      const batch = batchOf(n, withRecords, rejected);
      const verdicts = new Uint8Array(n);
      for (let i = 0; i < n; ) {
        if (batch.rejection(i)) {
          i++;
          continue;
        }
        i = reuse.takeBatch(batch, i, verdicts);
        await reuse.waiting();
      }
      const summary = await reuse.finish();
      cache.close();
      const read = (file: string) => readFileSync(join(dir, file), 'utf8');
      outputs.push({
        summary,
        verdicts: [...verdicts],
        keys: read(REQUEST_KEYS_FILE),
        cached: read(CACHED_FILE),
        reused: read(REUSED_REQUESTS_FILE),
      });
    }
    const [byLine, byBatch] = outputs;
    expect(byLine!.summary).toMatchObject({ keyed: n - rejected.size });
    expect(byLine!.summary.cached).toBeGreaterThan(0);
    expect(byLine!.summary.duplicates).toBeGreaterThan(0);
    expect(byLine!.keys.split('\n')).toHaveLength(n - rejected.size + 1);
    expect(byBatch).toEqual(byLine);
  });
});
