import { keyLineCopied, keysCopied } from './key-module.js';

/** Bytes of a request key: an XXH3-128 digest. */
export const KEY_BYTES = 16;
/**
 * The hash the keys are made with, in the names of the cache's files: keys
 * of another hash are never compared with these. Was SHA-256 (first 16 bytes) before `xxh128`.
 */
export const KEY_ALGORITHM = 'xxh128';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const SPACE = 0x20;
const ID_KEY = Buffer.from('"custom_id"');
const TEMPERATURE = Buffer.from('"temperature"');
const SEED = Buffer.from('"seed"');

/**
 * A request's content key: XXH3-128 (seed 0, canonical byte order) of its line `line[start, end)`
 * without the custom_id's value (and without a trailing newline), so rows that ask the same thing
 * (same url, model, messages, parameters) key alike whatever their ids. The same bytes
 * `<shard>.hashes.tsv` hashes: its hex is the key's. XXH3 is xxHash's own code in WebAssembly
 * (key-module.ts): ~0.1 us a 1 KB line, where SHA-256 took ~0.8-1.4 us, and 128 bits, so two
 * different requests share a key with odds of about n^2 / 2^129 (docs/cache.md).
 */
export function requestKey(line: Buffer, start = 0, end = line.length): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  requestKeyInto(line, start, end, key, 0);
  return key;
}

/**
 * requestKey written into `out[at, at + 16)`. `idFrom`, `idTo`: where the caller knows
 * customIdValueRange finds the id's value (it wrote the line), which spares the search.
 */
export function requestKeyInto(
  line: Buffer,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
  idFrom = -1,
  idTo = -1,
): void {
  if (idFrom < 0) {
    const value = customIdValueRange(line, start, end);
    // No id: the line is hashed whole (an empty id at its start).
    idFrom = value ? value[0] : start;
    idTo = value ? value[1] : start;
  }
  keyLineCopied(line, start, end, idFrom, idTo, out, at);
}

/**
 * The keys of a batch's lines, as requestKeyInto makes them: line i is `data[starts[i], ends[i])`
 * (none where starts[i] is -1), its key into `out[i * 16, i * 16 + 16)`; `idFroms`, `idTos`: where
 * the id's value is, as requestKeyInto takes them (-1, or undefined for all: searched for; they are
 * then filled in). Lines in the lines memory are keyed where they are by the renderer (keysInPlace);
 * these are copied first.
 */
export function requestKeysInto(
  data: Uint8Array,
  starts: Int32Array,
  ends: Int32Array,
  idFroms: Int32Array | undefined,
  idTos: Int32Array | undefined,
  out: Uint8Array,
): void {
  const n = starts.length;
  const froms = idFroms ?? new Int32Array(n).fill(-1);
  const tos = idTos ?? new Int32Array(n).fill(-1);
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.length);
  for (let i = 0; i < n; i++) {
    const start = starts[i]!;
    if (start < 0 || froms[i]! >= 0) continue;
    const value = customIdValueRange(bytes, start, ends[i]!);
    // No id: the line is hashed whole (an empty id at its start).
    froms[i] = value ? value[0] : start;
    tos[i] = value ? value[1] : start;
  }
  keysCopied(data, starts, ends, froms, tos, out);
}

/** A key as stored in text files: 32 hex digits. */
export function keyHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, KEY_BYTES).toString('hex');
}

/** Where a line's custom_id string value sits (between its quotes), escapes included. */
export function customIdValueRange(line: Buffer, start = 0, end = line.length): [number, number] | undefined {
  const at = line.indexOf(ID_KEY, start);
  if (at === -1 || at >= end) return undefined;
  let p = at + ID_KEY.length;
  while (line[p] === SPACE) p++;
  if (line[p] !== COLON) return undefined;
  p++;
  while (line[p] === SPACE) p++;
  if (line[p] !== QUOTE) return undefined;
  const from = p + 1;
  for (p = from; p < end; p++) {
    if (line[p] === BACKSLASH) p++;
    else if (line[p] === QUOTE) return [from, p];
  }
  return undefined;
}

/**
 * Whether sending the request again would be the same draw: its body sets `temperature` to 0 or a
 * `seed`. Read from the bytes: a key can appear unescaped only as a key (inside a string its quotes
 * are escaped), and a nested one (a schema property named "seed") has an object, not a number, after it.
 */
export function isSameDraw(line: Buffer, start = 0, end = line.length): boolean {
  const view = line.subarray(start, end);
  return numberAfter(view, TEMPERATURE) === 0 || numberAfter(view, SEED) !== undefined;
}

/** The number after the first `"key":` in `bytes`, if a number follows it. */
function numberAfter(bytes: Buffer, key: Buffer): number | undefined {
  let at = bytes.indexOf(key);
  while (at !== -1) {
    let p = at + key.length;
    while (bytes[p] === SPACE) p++;
    if (bytes[p] === COLON) {
      p++;
      while (bytes[p] === SPACE) p++;
      let q = p;
      while (q < bytes.length && /[-+.\deE]/.test(String.fromCharCode(bytes[q]!))) q++;
      if (q > p) {
        const value = Number(bytes.toString('latin1', p, q));
        if (Number.isFinite(value)) return value;
      }
    }
    at = bytes.indexOf(key, at + key.length);
  }
  return undefined;
}
