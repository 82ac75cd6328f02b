import { createXXHash128, type IHasher } from 'hash-wasm';

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
const LF = 0x0a;
const ID_KEY = Buffer.from('"custom_id"');
const TEMPERATURE = Buffer.from('"temperature"');
const SEED = Buffer.from('"seed"');

/**
 * One hasher a thread (each render thread has its own module instance). XXH3-128 in WebAssembly:
 * ~0.4 us for a 1 KB line where SHA-256 took ~0.8-1.4 us (measured on this machine), and 128 bits,
 * so two different requests share a key with odds of about n^2 / 2^129 (docs/cache.md). Made by
 * requestKeysReady, not at import: the WebAssembly compiles asynchronously, and a top-level await
 * would keep `require('batchpipe')` from loading the package.
 */
let hasher: IHasher | undefined;
let loading: Promise<void> | undefined;

/** Resolves once this thread can make request keys: await it before the first requestKey. */
export function requestKeysReady(): Promise<void> {
  loading ??= createXXHash128().then((made) => {
    hasher = made;
  });
  return loading;
}

/** Whether requestKeysReady has resolved on this thread (keys can be made synchronously). */
export function requestKeysLoaded(): boolean {
  return hasher !== undefined;
}

/**
 * A request's content key: XXH3-128 (seed 0, canonical byte order) of its line `line[start, end)`
 * without the custom_id's value (and without a trailing newline), so rows that ask the same thing
 * (same url, model, messages, parameters) key alike whatever their ids. The same bytes
 * `<shard>.hashes.tsv` hashes: its hex is the key's.
 */
export function requestKey(line: Buffer, start = 0, end = line.length): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  requestKeyInto(line, start, end, key, 0);
  return key;
}

/**
 * requestKey written into `out[at, at + 16)`: a batch's keys go into one array, no object a key
 * (a Buffer a line was a tenth of the key's cost, and garbage on the busiest thread).
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
  if (end > start && line[end - 1] === LF) end--;
  // `idFrom`, `idTo`: where the caller knows customIdValueRange finds the value (it wrote the line),
  // which spares the search (a fifth of the key's cost on ~1 KB lines).
  if (idFrom < 0) {
    const value = customIdValueRange(line, start, end);
    if (value) [idFrom, idTo] = value;
  }
  // The bytes before the id's value and those after it, joined in a scratch array and hashed in one
  // update. The line is only read (another thread may read it meanwhile). The tail (most of the line)
  // goes where its address has the same remainder mod 8 as in the line: V8 copies out of shared
  // memory (a render thread's buffer) a word at a time only so, else a byte at a time, which doubled
  // the key's cost (measured: ~830 -> ~450 ns a ~970-byte line, hashing included). The hasher copies
  // the scratch into its own memory again, but from plain memory that copy is a memmove.
  const head = idFrom >= 0 ? idFrom - start : 0;
  const tail = idFrom >= 0 ? idTo : start;
  const at0 = ((head + 7) & ~7) + ((line.byteOffset + tail) & 7);
  const total = at0 + end - tail;
  if (scratch.length < total) scratch = new Uint8Array(Math.max(total, scratch.length * 2));
  const into = at0 - head;
  // A loop for the usual ~14 bytes (a call costs more); a copy for a long head (an id at the line's end).
  if (head <= 64) for (let k = 0; k < head; k++) scratch[into + k] = line[start + k]!;
  else scratch.set(line.subarray(start, idFrom), into);
  scratch.set(new Uint8Array(line.buffer, line.byteOffset + tail, end - tail), at0);
  if (!hasher) throw new Error('a request key was asked for before requestKeysReady() resolved');
  hasher.init();
  hasher.update(new Uint8Array(scratch.buffer, into, total - into));
  out.set(hasher.digest('binary'), at);
}

/** Where requestKey joins a line's bytes around the id (one per thread, grown as needed). */
let scratch = new Uint8Array(4096);

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
