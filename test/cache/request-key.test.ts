import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REQUEST_KEYS_FILE, RequestReuse } from '../../src/cache/request-reuse.js';
import { inPlaceScratchBytes, keysCopied, keysInPlace } from '../../src/core/requests/key-module.js';
import { writeKeyRecords } from '../../src/core/requests/key-records.js';
import { KeySet } from '../../src/core/requests/key-set.js';
import {
  customIdValueRange,
  KEY_BYTES,
  keyHex,
  requestKey,
  requestKeyInto,
  requestKeysInto,
} from '../../src/core/requests/request-key.js';
import { LINES_POOL } from '../../src/internal/buffer-pool.js';
import { ByteWriter } from '../../src/internal/byte-writer.js';
import { inLinesMemory } from '../../src/internal/lines-memory.js';
import { definedKey } from '../support/request-keys.js';

const body = (text: string) => ({
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'qwen-plus', messages: [{ role: 'user', content: text }], temperature: 0 },
});

describe('requestKey', () => {
  const lines = [
    JSON.stringify({ custom_id: 'row-1', ...body('hello') }),
    `${JSON.stringify({ custom_id: 'row-2', ...body('hello') })}\n`,
    JSON.stringify({ custom_id: 'a "quoted" \\ id', ...body('x') }),
    JSON.stringify({ ...body('id last'), custom_id: 'r' }),
    JSON.stringify(body('no id at all')),
    JSON.stringify({ custom_id: '', ...body('empty id') }),
    // Longer than the scratch buffer the key is joined in.
    JSON.stringify({ custom_id: 'big', ...body('é'.repeat(40_000)) }),
    JSON.stringify({ custom_id: 'x'.repeat(20_000), ...body('long id') }),
  ];

  it('is XXH3-128 of the line without its id, however the line is laid out', () => {
    for (const line of lines)
      expect(keyHex(requestKey(Buffer.from(line))), line.slice(0, 60)).toBe(definedKey(line));
  });

  it('is XXH3-128 as its reference vectors give it (seed 0, canonical byte order)', () => {
    // The empty input's digest as xxHash's own tests give it; a line of no id is hashed whole.
    expect(keyHex(requestKey(Buffer.alloc(0)))).toBe('99aa06d3014798d86001c324468d497f');
    // With an id, its value is left out: the key of {"custom_id":"x","a":1} is that of {"custom_id":"","a":1}.
    expect(keyHex(requestKey(Buffer.from('{"custom_id":"x","a":1}')))).toBe(
      keyHex(requestKey(Buffer.from('{"custom_id":"","a":1}'))),
    );
  });

  it('reads a line inside a larger buffer and leaves the buffer as it was', () => {
    const all = Buffer.from(lines.join('\n'));
    const copy = Buffer.from(all);
    let start = 0;
    for (const line of lines) {
      const end = start + Buffer.byteLength(line);
      expect(keyHex(requestKey(all, start, end))).toBe(definedKey(line));
      start = end + 1;
    }
    expect(all.equals(copy)).toBe(true);
  });

  it('agrees with the definition at every length, id place and alignment in shared memory', () => {
    const shared = Buffer.from(new SharedArrayBuffer(80_000));
    const out = new Uint8Array(KEY_BYTES + 3);
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 8;
    };
    for (const length of [
      0, 1, 5, 16, 17, 100, 128, 129, 240, 241, 255, 256, 257, 513, 970, 1024, 16_400, 40_000,
    ])
      for (let round = 0; round < 6; round++) {
        const text = Array.from({ length: Math.max(0, length - 40) }, () =>
          String.fromCharCode(32 + (random() % 90)),
        ).join('');
        const id = 'x'.repeat(random() % 30);
        const line = JSON.stringify({ custom_id: id, text });
        const at = random() % 64;
        const bytes = Buffer.from(line);
        bytes.copy(shared, at);
        const known = bytes.indexOf('"custom_id":"') + 13;
        const expected = definedKey(line);
        // Found by the search, and given by the caller (as the renderer does); into an array at an offset.
        requestKeyInto(shared, at, at + bytes.length, out, 3);
        expect(keyHex(out.subarray(3)), `${length} ${round}`).toBe(expected);
        requestKeyInto(shared, at, at + bytes.length, out, 1, at + known, at + known + id.length);
        expect(keyHex(out.subarray(1)), `${length} ${round} given`).toBe(expected);
      }
  });

  it('keys rows that differ only in their ids alike', () => {
    const a = requestKey(Buffer.from(JSON.stringify({ custom_id: 'row-1', ...body('same') })));
    const b = requestKey(Buffer.from(JSON.stringify({ custom_id: 'row-999', ...body('same') })));
    expect(a.equals(b)).toBe(true);
  });
});

/**
 * A batch of lines as the renderer leaves them in `buffer`: every XXH3 length class (0-16, 17-128,
 * 129-240, longer, past 16 KiB), ids with escapes and of up to 300 bytes, lines at every address mod
 * 8, and entries without a line. Returns the lines' places, the ids' places and each line's text.
 */
function batchIn(buffer: Buffer, from: number) {
  let seed = 11;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 8;
  };
  const lengths = [0, 1, 9, 16, 17, 100, 128, 129, 200, 240, 241, 256, 257, 600, 970, 1024, 5000, 17_000];
  const n = lengths.length * 4;
  const starts = new Int32Array(n).fill(-1);
  const ends = new Int32Array(n).fill(-1);
  const idFroms = new Int32Array(n);
  const idTos = new Int32Array(n);
  const texts: string[] = [];
  let at = from;
  for (let i = 0; i < n; i++) {
    texts.push('');
    if (i % 9 === 4) continue;
    const length = lengths[i % lengths.length]!;
    const id = i % 5 === 0 ? `r "${i}" \\ é`.repeat(1 + (i % 3) * 10) : `row-${i}`;
    const text = Array.from({ length }, () => String.fromCharCode(32 + (random() % 90))).join('');
    texts[i] = `${JSON.stringify({ custom_id: id, body: { text } })}${i % 2 ? '\n' : ''}`;
    at += random() % 8;
    starts[i] = at;
    at += buffer.write(texts[i]!, at);
    ends[i] = at;
    const [idFrom, idTo] = customIdValueRange(buffer, starts[i]!, ends[i]!)!;
    idFroms[i] = idFrom;
    idTos[i] = idTo;
  }
  return { n, starts, ends, idFroms, idTos, texts, end: at };
}

describe('keys made where a batch is', () => {
  it('are the defined keys, with the records writeKeyRecords makes, in the lines memory, and leave the lines as they were', () => {
    const buffer = LINES_POOL.take();
    try {
      expect(inLinesMemory(buffer)).toBe(true);
      const { n, starts, ends, idFroms, idTos, texts, end } = batchIn(buffer, 3);
      const before = Buffer.from(buffer.subarray(0, end));
      // Laid out as the renderer lays them: keys at a multiple of 16, then recordAt, the records, the scratch.
      const keysAt = ((buffer.byteOffset + end + 15) & -16) - buffer.byteOffset;
      const keys = new Uint8Array(buffer.buffer, buffer.byteOffset + keysAt, n * KEY_BYTES).fill(0);
      const recordAt = new Int32Array(buffer.buffer, buffer.byteOffset + keysAt + n * KEY_BYTES, n + 1);
      const recordsAt = keysAt + n * KEY_BYTES + (n + 1) * 4;
      const scratch = inPlaceScratchBytes(starts, idTos);
      keysInPlace(
        buffer,
        starts,
        ends,
        idFroms,
        idTos,
        keys,
        recordAt,
        recordsAt,
        recordsAt + 200_000,
        scratch,
      );
      for (let i = 0; i < n; i++)
        if (starts[i]! >= 0)
          expect(keyHex(keys.subarray(i * KEY_BYTES)), `line ${i}`).toBe(definedKey(texts[i]!));
      expect(Buffer.from(buffer.subarray(0, end)).equals(before)).toBe(true);
      // writeKeyRecords' records for the same lines and keys, in a copy.
      const writer = new ByteWriter(0, undefined, Buffer.from(buffer.subarray(0, recordsAt)));
      writer.pos = recordsAt;
      const expectedAt = new Int32Array(n + 1);
      writeKeyRecords(writer, starts, idFroms, idTos, Uint8Array.from(keys), expectedAt);
      expect([...recordAt]).toEqual([...expectedAt]);
      expect(buffer.subarray(recordsAt, recordAt[n]).toString()).toBe(
        writer.buffer.subarray(recordsAt, writer.pos).toString(),
      );
    } finally {
      LINES_POOL.give(buffer);
    }
  });

  it('are the same keys copied from plain memory, from shared memory at any offset, and searched for', () => {
    for (const buffer of [Buffer.alloc(200_000), Buffer.from(new SharedArrayBuffer(200_000), 5)]) {
      const { n, starts, ends, idFroms, idTos, texts } = batchIn(buffer, 1);
      const copied = new Uint8Array(n * KEY_BYTES);
      keysCopied(buffer, starts, ends, idFroms, idTos, copied);
      const searched = new Uint8Array(n * KEY_BYTES);
      requestKeysInto(buffer, starts, ends, undefined, undefined, searched);
      for (let i = 0; i < n; i++)
        if (starts[i]! >= 0) {
          expect(keyHex(copied.subarray(i * KEY_BYTES)), `line ${i}`).toBe(definedKey(texts[i]!));
          expect(keyHex(searched.subarray(i * KEY_BYTES)), `line ${i}`).toBe(definedKey(texts[i]!));
        }
    }
  });
});

/** The keys of `n` lines, `distinct` of them different, one after another in one array. */
function repeatingKeys(n: number, distinct: number): Uint8Array {
  const keys = new Uint8Array(n * KEY_BYTES);
  for (let i = 0; i < n; i++) keys.set(requestKey(Buffer.from(`{"n":${i % distinct}}`)), i * KEY_BYTES);
  return keys;
}

describe('KeySet', () => {
  it('reads keys at an offset in one array as it reads them one by one', () => {
    const n = 100_000;
    const keys = repeatingKeys(n, 60_000);
    const packed = new KeySet();
    const single = new KeySet();
    let present = 0;
    for (let i = 0; i < n; i++) {
      const verdict = packed.add(keys, i * KEY_BYTES);
      expect(single.add(Buffer.from(keys.subarray(i * KEY_BYTES, (i + 1) * KEY_BYTES)))).toBe(verdict);
      if (verdict === 'present') present++;
    }
    expect(present).toBe(40_000);
    expect(packed.size).toBe(60_000);
  });
});

describe('RequestReuse records', () => {
  it('writes a record per keyed request and a digest of their ids and keys, whatever became of them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bp-reuse-'));
    const reuse = new RequestReuse(dir, { dedup: 'on', cache: undefined });
    const ids = ['row-1', 'row "2"', 'ряд-3', 'row-4', '😀'.repeat(100)];
    const keys = new Uint8Array(ids.length * KEY_BYTES);
    for (const [i, id] of ids.entries()) {
      const line = Buffer.from(
        JSON.stringify({ custom_id: id, ...body(i === 3 ? 'same' : `text ${i % 3}`) }),
      );
      keys.set(requestKey(line), i * KEY_BYTES);
      reuse.take(line, 0, line.length, id, undefined, keys, i * KEY_BYTES);
      await reuse.waiting();
    }
    const summary = await reuse.finish();
    const records = readFileSync(join(dir, REQUEST_KEYS_FILE), 'utf8').split('\n').slice(0, -1);
    expect(records).toEqual(
      ids.map(
        (id, i) => `${JSON.stringify(id)}\t${keyHex(keys.subarray(i * KEY_BYTES))}\t${i === 4 ? 'd' : 's'}`,
      ),
    );
    const digest = createHash('sha256');
    for (const record of records) digest.update(`${record.slice(0, -1)}*\n`);
    expect(summary.digest).toBe(digest.digest('hex'));
    expect(summary).toMatchObject({ keyed: 5, sent: 4, duplicates: 1 });
  });
});

describe('KeySet, keys at any byte offset', () => {
  it('gives the same verdicts for keys read as words and byte by byte', () => {
    const n = 20_000;
    // The same keys at offset 0 (read as words) and at offset 1 (read byte by byte).
    const aligned = new Uint8Array(n * KEY_BYTES);
    const shifted = new Uint8Array(n * KEY_BYTES + 1);
    for (let i = 0; i < n; i++) {
      const key = requestKey(Buffer.from(`{"n":${i % 7_000}}`));
      aligned.set(key, i * KEY_BYTES);
      shifted.set(key, 1 + i * KEY_BYTES);
    }
    const words = new KeySet();
    const bytes = new KeySet();
    const mixed = new KeySet();
    for (let i = 0; i < n; i++) {
      const verdict = words.add(aligned, i * KEY_BYTES);
      expect(bytes.add(shifted, 1 + i * KEY_BYTES)).toBe(verdict);
      // One table fed both ways finds a key whichever way it was added.
      expect(mixed.add(i % 2 === 0 ? aligned : shifted, (i % 2) + i * KEY_BYTES)).toBe(verdict);
    }
    expect([words.size, bytes.size, mixed.size]).toEqual([7_000, 7_000, 7_000]);
  });

  it('gives the same verdicts when a batch is touched before its keys are added, across growth', () => {
    const n = 100_000;
    const keys = repeatingKeys(n, 45_000);
    const plain = new KeySet();
    const touched = new KeySet();
    for (let from = 0; from < n; from += 2048) {
      const to = Math.min(n, from + 2048);
      touched.touch(keys, from, to);
      for (let i = from; i < to; i++)
        expect(touched.add(keys, i * KEY_BYTES)).toBe(plain.add(keys, i * KEY_BYTES));
    }
    expect(touched.size).toBe(45_000);
    // Keys not at a word boundary are not read as words: touch reads nothing.
    expect(touched.touch(new Uint8Array(keys.buffer, 1, KEY_BYTES * 4), 0, 4)).toBe(0);
  });

  it('keeps every key in a table made large beforehand, touched batch by batch and key by key', () => {
    // Touch stores a 0 to a slot of a page no key was put in: a page that holds a key must never be
    // taken for one that does not. Keys put by `add` alone (no touch) share pages with touched ones.
    const n = 150_000;
    const keys = repeatingKeys(n, 60_000);
    const table = new KeySet(undefined, 60_000);
    const seen = new Set<string>();
    for (let from = 0; from < n; from += 1000) {
      const to = Math.min(n, from + 1000);
      // The first half of the distinct keys go in by `add` alone (no page marked by a touch).
      if (from >= 30_000 && (from / 1000) % 3 !== 2) table.touch(keys, from, to);
      for (let i = from; i < to; i++) {
        const hex = keyHex(keys.subarray(i * KEY_BYTES));
        expect(table.add(keys, i * KEY_BYTES), `key ${i}`).toBe(seen.has(hex) ? 'present' : 'added');
        seen.add(hex);
      }
    }
    expect(table.size).toBe(60_000);
  });
});

describe('RequestReuse records, many', () => {
  it('writes every record in order across its blocks, ids escaped as JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bp-reuse-many-'));
    const reuse = new RequestReuse(dir, { dedup: 'on', cache: undefined });
    const n = 30_000;
    const id = (i: number) => (i % 11 === 0 ? `r "${i}"\t\\ é 😀` : `row-${i}`);
    const keys = new Uint8Array(n * KEY_BYTES);
    const expected: string[] = [];
    for (let i = 0; i < n; i++) {
      const line = Buffer.from(JSON.stringify({ custom_id: id(i), ...body(`text ${i % 1000}`) }));
      keys.set(requestKey(line), i * KEY_BYTES);
      reuse.take(line, 0, line.length, id(i), undefined, keys, i * KEY_BYTES);
      await reuse.waiting();
      expected.push(
        `${JSON.stringify(id(i))}\t${keyHex(keys.subarray(i * KEY_BYTES))}\t${i < 1000 ? 's' : 'd'}`,
      );
    }
    const summary = await reuse.finish();
    const records = readFileSync(join(dir, REQUEST_KEYS_FILE), 'utf8').split('\n').slice(0, -1);
    expect(records).toEqual(expected);
    const digest = createHash('sha256');
    for (const record of records) digest.update(`${record.slice(0, -1)}*\n`);
    expect(summary.digest).toBe(digest.digest('hex'));
  });
});
