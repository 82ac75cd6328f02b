import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { IHasher } from 'hash-wasm';

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
/** The same WebAssembly's exports called directly (see DirectXxh128); undefined: through `hasher`. */
let direct: DirectXxh128 | undefined;
let loading: Promise<void> | undefined;
let loaded = false;

/**
 * Resolves once this thread can make request keys: await it before the first requestKey. The
 * WebAssembly is compiled once, called directly, and checked against digests known beforehand
 * (checkDirect); `hash-wasm`'s own IHasher is made only if that fails: compiling the module twice and
 * loading all of `hash-wasm` cost each thread that keys ~20-50 ms before its first key.
 */
export function requestKeysReady(): Promise<void> {
  loading ??= loadDirect().then(async (exports) => {
    const candidate = exports && new DirectXxh128(exports);
    if (candidate && checkDirect(candidate)) direct = candidate;
    else {
      const { createXXHash128 } = await import('hash-wasm');
      hasher = await createXXHash128();
    }
    loaded = true;
  });
  return loading;
}

/** Whether requestKeysReady has resolved on this thread (keys can be made synchronously). */
export function requestKeysLoaded(): boolean {
  return loaded;
}

/** Whether keys are made by calling the WebAssembly's exports directly (DirectXxh128), not through IHasher. */
export function requestKeysDirect(): boolean {
  return direct !== undefined;
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
    else idFrom = idTo = start;
  }
  if (direct) {
    direct.key(line, start, idFrom, idTo, end, out, at);
    return;
  }
  if (!hasher) throw new Error('a request key was asked for before requestKeysReady() resolved');
  // The bytes before the id's value and those after it, joined in a scratch array and hashed in one
  // update. The line is only read (another thread may read it meanwhile). The tail (most of the line)
  // goes where its address has the same remainder mod 8 as in the line: V8 copies out of shared
  // memory (a render thread's buffer) a word at a time only so, else a byte at a time, which doubled
  // the key's cost (measured: ~830 -> ~450 ns a ~970-byte line, hashing included). The hasher copies
  // the scratch into its own memory again, but from plain memory that copy is a memmove.
  const head = idFrom - start;
  const tail = idTo;
  const at0 = ((head + 7) & ~7) + ((line.byteOffset + tail) & 7);
  const total = at0 + end - tail;
  if (scratch.length < total) scratch = new Uint8Array(Math.max(total, scratch.length * 2));
  const into = at0 - head;
  // A loop for the usual ~14 bytes (a call costs more); a copy for a long head (an id at the line's end).
  if (head <= 64) for (let k = 0; k < head; k++) scratch[into + k] = line[start + k]!;
  else scratch.set(line.subarray(start, idFrom), into);
  scratch.set(new Uint8Array(line.buffer, line.byteOffset + tail, end - tail), at0);
  hasher.init();
  hasher.update(new Uint8Array(scratch.buffer, into, total - into));
  out.set(hasher.digest('binary'), at);
}

/** Where requestKey joins a line's bytes around the id (one per thread, grown as needed). */
let scratch = new Uint8Array(4096);

/**
 * The keys of a batch's lines, as requestKeyInto makes them: line i is `data[starts[i], ends[i])`
 * (none where starts[i] is -1), its key into `out[i * 16, i * 16 + 16)`; `idFroms`, `idTos`: where
 * the id's value is, as requestKeyInto takes them (-1: searched for). Lines back to back in `data`
 * are copied into the WebAssembly's memory many at a time (DirectXxh128.keys).
 */
export function requestKeysInto(
  data: Buffer,
  starts: Int32Array,
  ends: Int32Array,
  idFroms: Int32Array | undefined,
  idTos: Int32Array | undefined,
  out: Uint8Array,
): void {
  if (direct) {
    direct.keys(data, starts, ends, idFroms, idTos, out);
    return;
  }
  for (let i = 0; i < starts.length; i++)
    if (starts[i]! >= 0)
      requestKeyInto(data, starts[i]!, ends[i]!, out, i * KEY_BYTES, idFroms?.[i] ?? -1, idTos?.[i] ?? -1);
}

/** The exports of hash-wasm's XXH3-128 WebAssembly (its src/xxhash128.c). */
interface Xxh128Exports {
  memory: { buffer: ArrayBuffer };
  /** Where the input goes (16 KiB): Hash_Init reads the seed's 8 bytes there, Hash_Final leaves the digest. */
  Hash_GetBuffer(): number;
  Hash_Init(): void;
  /** Hashes the buffer's first `length` bytes into the state (XXH3 streaming). */
  Hash_Update(length: number): void;
  Hash_Final(): void;
}

/** Bytes of the WebAssembly's input buffer (MAIN_BUFFER_SIZE in hash-wasm's src/hash-wasm.h). */
const DIRECT_BUFFER_BYTES = 16 * 1024;
/**
 * Where in the input buffer DirectXxh128.keys copies a run of lines (its last 12 KiB): a line's input
 * goes below it, so lines of up to 4 KiB are keyed this way.
 */
const STAGE_AT = 4 * 1024;
const STAGE_BYTES = DIRECT_BUFFER_BYTES - STAGE_AT;
/** 32-bit words of a key. */
const WORDS_A_KEY = KEY_BYTES / 4;

/**
 * hash-wasm's XXH3-128 WebAssembly with its exports called directly: `IHasher`'s init, update and
 * digest checked their arguments, made views and copied the digest into a new array each call (~0.25
 * us a line, and garbage on the render thread). Here the line's bytes go straight from the line into
 * the WebAssembly's buffer, the id's value left out, and the digest straight into the caller's array.
 * The line is read in two updates: the bytes before the id's value and the few after it up to an
 * address that is a multiple of 8, copied one by one, then the rest in one copy from that address to
 * the buffer (aligned too): V8 copies out of shared memory (a render thread's buffer) a word at a time
 * only when both ends have the same remainder mod 8, a byte at a time otherwise (measured: ~650 -> ~365
 * CPU ns a ~950-byte line, hashing included, against IHasher and a scratch copy).
 */
class DirectXxh128 {
  readonly #exports: Xxh128Exports;
  /** The WebAssembly's memory (never grown: none of these exports grows it), and its input buffer's place. */
  readonly #memory: Uint8Array;
  readonly #words: Int32Array;
  readonly #buffer: number;

  constructor(exports: Xxh128Exports) {
    this.#exports = exports;
    this.#memory = new Uint8Array(exports.memory.buffer);
    this.#words = new Int32Array(exports.memory.buffer);
    this.#buffer = exports.Hash_GetBuffer();
  }

  /**
   * requestKeysInto: the lines are copied into the stage (the input buffer's upper part, which
   * Hash_Init, Hash_Update and Hash_Final leave alone while a line's input fits below it) a run of
   * them at a time, at the same address remainder mod 8 as in `data` (a word at a time out of shared
   * memory, see `key`): one copy, and one view made, for ~12 lines of 1 KB (a view a line was ~90
   * bytes of garbage, a third of the render thread's young-generation collections). Then each line's
   * bytes around its id are moved from the stage to the input buffer's start inside the
   * WebAssembly's memory (plain memory: memmove, whatever the alignment) and hashed in one update. A
   * line longer than the space below the stage is keyed by `key`.
   */
  keys(
    data: Uint8Array,
    starts: Int32Array,
    ends: Int32Array,
    idFroms: Int32Array | undefined,
    idTos: Int32Array | undefined,
    out: Uint8Array,
  ): void {
    const exports = this.#exports;
    const memory = this.#memory;
    const words = this.#words;
    const buffer = this.#buffer;
    const n = starts.length;
    // The digests go into `out` as words when it is seen as words (one view a batch).
    const outWords =
      (out.byteOffset & 3) === 0 ? new Int32Array(out.buffer, 0, out.buffer.byteLength >> 2) : undefined;
    let i = 0;
    while (i < n) {
      const from = starts[i]!;
      if (from < 0) {
        i++;
        continue;
      }
      // The lines from i that fit the stage (its last 8 bytes kept for the alignment shift).
      let j = i;
      let to = from;
      while (
        j < n &&
        (starts[j]! < 0 || (ends[j]! - from <= STAGE_BYTES - 8 && ends[j]! - starts[j]! <= STAGE_AT))
      ) {
        if (starts[j]! >= 0) to = ends[j]!;
        j++;
      }
      if (j === i) {
        const [idFrom, idTo] = [idFroms?.[i] ?? -1, idTos?.[i] ?? -1];
        requestKeyInto(data as Buffer, from, ends[i]!, out, i * KEY_BYTES, idFrom, idTo);
        i++;
        continue;
      }
      const base = buffer + STAGE_AT + ((data.byteOffset + from) & 7) - from;
      memory.set(new Uint8Array(data.buffer, data.byteOffset + from, to - from), base + from);
      for (let k = i; k < j; k++) {
        const start = starts[k]!;
        if (start < 0) continue;
        let end = ends[k]!;
        if (end > start && data[end - 1] === LF) end--;
        let idFrom = idFroms?.[k] ?? -1;
        let idTo = idTos?.[k] ?? -1;
        if (idFrom < 0) {
          const value = customIdValueRange(data as Buffer, start, end);
          if (value) [idFrom, idTo] = value;
          else idFrom = idTo = start;
        }
        const head = idFrom - start;
        const total = head + end - idTo;
        words[buffer >> 2] = 0;
        words[(buffer >> 2) + 1] = 0;
        exports.Hash_Init();
        // The usual ~14 bytes of the head in a loop (a call costs more), the tail in one move.
        if (head <= 32) for (let b = 0; b < head; b++) memory[buffer + b] = memory[base + start + b]!;
        else memory.copyWithin(buffer, base + start, base + idFrom);
        memory.copyWithin(buffer + head, base + idTo, base + end);
        exports.Hash_Update(total);
        exports.Hash_Final();
        if (outWords) {
          const w = (out.byteOffset >> 2) + k * WORDS_A_KEY;
          const d = buffer >> 2;
          outWords[w] = words[d]!;
          outWords[w + 1] = words[d + 1]!;
          outWords[w + 2] = words[d + 2]!;
          outWords[w + 3] = words[d + 3]!;
        } else {
          const at = k * KEY_BYTES;
          for (let b = 0; b < KEY_BYTES; b++) out[at + b] = memory[buffer + b]!;
        }
      }
      i = j;
    }
  }

  /** XXH3-128 of `line[start, idFrom)` then `line[idTo, end)`, into `out[at, at + 16)`. */
  key(
    line: Uint8Array,
    start: number,
    idFrom: number,
    idTo: number,
    end: number,
    out: Uint8Array,
    at: number,
  ): void {
    const exports = this.#exports;
    const memory = this.#memory;
    const buffer = this.#buffer;
    // Seed 0, read from the buffer by Hash_Init (which still holds the last digest).
    this.#words[buffer >> 2] = 0;
    this.#words[(buffer >> 2) + 1] = 0;
    exports.Hash_Init();
    // The head (the usual ~14 bytes, a loop: a call costs more) and the tail up to an aligned address.
    const aligned = Math.min(end, idTo + ((8 - ((line.byteOffset + idTo) & 7)) & 7));
    let n = 0;
    if (idFrom - start + aligned - idTo <= 64) {
      for (let k = start; k < idFrom; k++) memory[buffer + n++] = line[k]!;
      for (let k = idTo; k < aligned; k++) memory[buffer + n++] = line[k]!;
      if (n > 0) exports.Hash_Update(n);
    } else {
      this.#copy(line, start, idFrom);
      this.#copy(line, idTo, aligned);
    }
    this.#copy(line, aligned, end);
    exports.Hash_Final();
    for (let k = 0; k < KEY_BYTES; k++) out[at + k] = memory[buffer + k]!;
  }

  /** Hashes `line[from, to)` in buffer-sized copies. */
  #copy(line: Uint8Array, from: number, to: number): void {
    for (; from < to; from += DIRECT_BUFFER_BYTES) {
      const n = Math.min(DIRECT_BUFFER_BYTES, to - from);
      this.#memory.set(new Uint8Array(line.buffer, line.byteOffset + from, n), this.#buffer);
      this.#exports.Hash_Update(n);
    }
  }
}

/** The WebAssembly API as used here (the project's TypeScript libraries do not declare it). */
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: object } }>;
    };
  }
).WebAssembly;

/**
 * Instantiates hash-wasm's XXH3-128 WebAssembly on its own, to call its exports (hash-wasm exposes
 * only IHasher): the binary is the one base64 string of its `dist/xxhash128.umd.min.js`, the same
 * bytes `createXXHash128` runs. Undefined, and keys made through IHasher, if the file or the exports
 * are not as expected (another hash-wasm version); `agrees` then checks it against IHasher.
 */
async function loadDirect(): Promise<Xxh128Exports | undefined> {
  try {
    const file = createRequire(import.meta.url).resolve('hash-wasm/dist/xxhash128.umd.min.js');
    const found = /"(AGFzbQ[A-Za-z0-9+/=]+)"/.exec(await readFile(file, 'latin1'));
    if (!found) return undefined;
    const { instance } = await wasm.instantiate(Buffer.from(found[1]!, 'base64'), {});
    const exports = instance.exports as Partial<Xxh128Exports>;
    const named = ['Hash_GetBuffer', 'Hash_Init', 'Hash_Update', 'Hash_Final'] as const;
    if (
      !(exports.memory?.buffer instanceof ArrayBuffer) ||
      named.some((n) => typeof exports[n] !== 'function')
    )
      return undefined;
    return exports as Xxh128Exports;
  } catch {
    return undefined;
  }
}

/**
 * XXH3-128 (hex) of the digests checkDirect makes, one after another, as `hash-wasm`'s IHasher makes
 * them (test/cache/request-key.test.ts recomputes it that way).
 */
export const DIRECT_CHECK_DIGEST = 'c29810bf2fa5d42054c2293b091506b5';

/**
 * The digests of inputs of every length class XXH3 treats apart (0, 1-3, 4-8, 9-16, 17-128, 129-240,
 * longer, longer than the buffer), split around an "id" at several places, from memory at every
 * remainder mod 8, made by `keyOf` into one array (exported for the test that checks the constant).
 */
export function directCheckDigests(
  keyOf: (line: Uint8Array, from: number, to: number, out: Uint8Array, at: number) => void,
): Uint8Array {
  const bytes = new Uint8Array(DIRECT_BUFFER_BYTES * 2 + 200);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  const lengths = [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1000, DIRECT_BUFFER_BYTES + 100];
  const offsets = [0, 1, 5, 7];
  const digests = new Uint8Array(lengths.length * offsets.length * 3 * KEY_BYTES);
  let at = 0;
  for (const length of lengths)
    for (const offset of offsets)
      for (const [from, to] of [
        [0, 0],
        [Math.floor(length / 3), Math.floor(length / 2)],
        [Math.max(0, length - 70), length],
      ] as const) {
        keyOf(bytes.subarray(offset, offset + length), from, to, digests, at);
        at += KEY_BYTES;
      }
  return digests;
}

/**
 * Whether the direct calls give the digests XXH3-128 gives (DIRECT_CHECK_DIGEST, of the digests of
 * directCheckDigests' inputs), and `keys` the same as `key` for lines back to back.
 */
function checkDirect(candidate: DirectXxh128): boolean {
  const digests = directCheckDigests((line, from, to, out, at) =>
    candidate.key(line, 0, from, to, line.length, out, at),
  );
  const folded = new Uint8Array(KEY_BYTES);
  candidate.key(digests, 0, 0, 0, digests.length, folded, 0);
  if (keyHex(folded) !== DIRECT_CHECK_DIGEST) return false;
  // Lines back to back through `keys`: the first 2,000 bytes cut in lines of 0 to 300 bytes, an
  // "id" in the middle of each, against `key` (checked above).
  const bytes = new Uint8Array(4000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  const key = new Uint8Array(KEY_BYTES);
  const starts = Int32Array.from({ length: 12 }, (_, i) => (i * i * 125) / 8);
  const ends = Int32Array.from(starts, (start, i) => start + i * 25);
  const idFroms = Int32Array.from(starts, (start, i) => start + i * 10);
  const idTos = Int32Array.from(idFroms, (from, i) => from + i);
  const keys = new Uint8Array(starts.length * KEY_BYTES);
  const line = bytes.subarray(3);
  candidate.keys(line, starts, ends, idFroms, idTos, keys);
  for (let i = 0; i < starts.length; i++) {
    // `keys` leaves a line's newline out, as requestKeyInto does before `key`.
    const end = ends[i]! - (ends[i]! > idTos[i]! && line[ends[i]! - 1] === LF ? 1 : 0);
    candidate.key(line, starts[i]!, idFroms[i]!, idTos[i]!, end, key, 0);
    for (let k = 0; k < KEY_BYTES; k++) if (keys[i * KEY_BYTES + k] !== key[k]) return false;
  }
  return true;
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
