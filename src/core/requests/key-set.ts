import { endianness } from 'node:os';
import { KEY_BYTES } from './request-key.js';

/** Words read through an Int32Array are the little-endian words `word` reads only here. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** Words (32-bit) a key takes in the table. */
const WORDS = KEY_BYTES / 4;
const FIRST_SLOTS = 1 << 16;
/**
 * Distinct keys held at most. Memory is 16 bytes a slot and the table at most half full, so the
 * bound is 32 bytes a distinct request: 128 MiB at this many (32 MiB at a million).
 */
export const MAX_DISTINCT_KEYS = 4_000_000;

/** What `mark` says of an entry: its key is new, came earlier, was not kept (no room), or it has none. */
export const KEY_NEW = 0;
export const KEY_REPEAT = 1;
export const KEY_UNKEPT = 2;
export const KEY_NONE = 3;

/** A key table as it moves to another thread: its table (in shared memory, not copied) and counts. */
export interface KeySetState {
  words: Int32Array<ArrayBufferLike>;
  written: Uint8Array<ArrayBufferLike>;
  size: number;
  zero: boolean;
  maxKeys: number;
}

/**
 * The request keys a run has seen: an open-addressing table of 128-bit keys in one typed array (no
 * object per key), doubling while under `maxKeys`. Past it no new key is kept (`add` says `full`):
 * the requests that follow are sent as they are, which costs money but never answers a row wrongly.
 */
export class KeySet {
  readonly #maxKeys: number;
  /** The table's arrays are in shared memory (`state` hands them to another thread). */
  readonly #shared: boolean;
  #words: Int32Array<ArrayBufferLike>;
  #mask = FIRST_SLOTS - 1;
  #size = 0;
  /** The buffer of the last key array added from, and it seen as words. */
  #viewed: ArrayBufferLike = new ArrayBuffer(0);
  #view: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** The all-zero key marks an empty slot: it is kept aside. */
  #zero = false;
  /** Per 4 KiB page of the table: 1 once a key may be in it (see `touch`). */
  #written: Uint8Array<ArrayBufferLike>;

  /**
   * `expectedKeys`: about how many keys will come (a table's estimated rows): the table starts with
   * room for them, at most 3/4 of them past half full, so the keys go in without the table growing
   * and rehashing them (~0.05-0.1 s, 31 MB of tables made and dropped, and 17 MB more peak RSS at a
   * million keys). An estimate up to 4/3 of the keys that come makes no larger a table than growing
   * would have; a larger one, memory only where keys land.
   *
   * `shared`: the table is made in shared memory, so that it can move to another thread (`state`):
   * an ArrayBuffer transferred instead would be the process's first detached one, and V8 then drops
   * every optimized function that reads a typed array (measured: ~40 functions compiled again, 0.1 s
   * of compiler threads at a million rows).
   */
  constructor(maxKeys = MAX_DISTINCT_KEYS, expectedKeys = 0, shared = false) {
    this.#maxKeys = maxKeys;
    this.#shared = shared;
    let slots = FIRST_SLOTS;
    while (slots < 1.5 * Math.min(expectedKeys, maxKeys)) slots *= 2;
    // Not written through: pages no key lands in take no memory (most rows repeating, the estimate
    // too high). `touch` stores to a page before it reads it, so a page faults once, when a key
    // first lands in it.
    this.#words = new Int32Array(this.#memory(slots * WORDS * 4));
    this.#mask = slots - 1;
    this.#written = new Uint8Array(pagesOf(this.#words));
  }

  /** Zeroed memory for the table (shared when the table may move: see the constructor). */
  #memory(bytes: number): ArrayBufferLike {
    return this.#shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  }

  /**
   * The table for another thread (`attach`), made `shared`: this set must not be used afterwards
   * (the other thread changes the table without a word to this one).
   */
  state(): KeySetState {
    if (!this.#shared)
      throw new Error('a key table not made shared cannot move to another thread (a batchpipe bug)');
    return {
      words: this.#words,
      // Small: copied as the state is sent.
      written: this.#written,
      size: this.#size,
      zero: this.#zero,
      maxKeys: this.#maxKeys,
    };
  }

  /** The table `state` gave, on the thread it was sent to. */
  static attach(state: KeySetState): KeySet {
    const set = new KeySet(state.maxKeys, 0, true);
    set.#words = state.words;
    set.#written = state.written;
    set.#mask = state.words.length / WORDS - 1;
    set.#size = state.size;
    set.#zero = state.zero;
    return set;
  }

  /**
   * Adds the keys of a batch's entries `0..n` that have a line (`starts[i] >= 0`; the keys array
   * holds KEY_BYTES an entry), saying of each in `out[i]` whether it is new here, came earlier, or
   * was not kept (KEY_NEW, KEY_REPEAT, KEY_UNKEPT; KEY_NONE without a line).
   */
  mark(keys: Uint8Array, starts: ArrayLike<number>, n: number, out: Uint8Array): void {
    this.touch(keys, 0, n);
    for (let i = 0; i < n; i++) {
      if (starts[i]! < 0) {
        out[i] = KEY_NONE;
        continue;
      }
      const added = this.add(keys, i * KEY_BYTES);
      out[i] = added === 'added' ? KEY_NEW : added === 'present' ? KEY_REPEAT : KEY_UNKEPT;
    }
  }

  /** Whether the key at `key[at, at + 16)` is in the table (adding nothing). */
  has(key: Uint8Array, at = 0): boolean {
    const a = word(key, at);
    const b = word(key, at + 4);
    const c = word(key, at + 8);
    const d = word(key, at + 12);
    if ((a | b | c | d) === 0) return this.#zero;
    return this.#find(a, b, c, d) < 0;
  }

  get size(): number {
    return this.#size + (this.#zero ? 1 : 0);
  }

  /** Bytes the table holds. */
  get bytes(): number {
    return this.#words.byteLength;
  }

  /**
   * Adds the key at `key[at, at + 16)`: `added`, `present` (seen before), or `full` (not seen, and no
   * room to keep it). Read byte by byte: a batch's keys come as one array, no object a key.
   */
  add(key: Uint8Array, at = 0): 'added' | 'present' | 'full' {
    let a: number;
    let b: number;
    let c: number;
    let d: number;
    const byte = key.byteOffset + at;
    if (LITTLE_ENDIAN && (byte & 3) === 0) {
      // Four loads, not sixteen: the batch's key array seen as words (one view an array, kept).
      if (this.#viewed !== key.buffer) {
        this.#viewed = key.buffer;
        this.#view = new Int32Array(key.buffer, 0, key.buffer.byteLength >> 2);
      }
      const view = this.#view;
      const w = byte >> 2;
      a = view[w]!;
      b = view[w + 1]!;
      c = view[w + 2]!;
      d = view[w + 3]!;
    } else {
      a = word(key, at);
      b = word(key, at + 4);
      c = word(key, at + 8);
      d = word(key, at + 12);
    }
    if ((a | b | c | d) === 0) {
      if (this.#zero) return 'present';
      if (this.size >= this.#maxKeys) return 'full';
      this.#zero = true;
      return 'added';
    }
    const found = this.#find(a, b, c, d);
    if (found < 0) return 'present';
    if (this.size >= this.#maxKeys) return 'full';
    this.#put(found, a, b, c, d);
    if (this.#size * 2 > this.#mask + 1) this.#grow();
    return 'added';
  }

  /**
   * Reads the first slot of each key at `keys[from * 16, to * 16)`, adding nothing: a batch's keys
   * probed before they are added. Each probe of a table of a million keys is a cache miss (the table
   * is tens of MB); here they are independent loads the CPU overlaps, where `add` one by one waited
   * for each in turn (measured on 1M random keys, growth included: ~280 -> ~155 ns a key). Keys read as
   * words only (a batch's array). Returns a number of no meaning: the loads are used, so kept.
   * A slot in a page no key was put in is written (a 0 over a 0) before it is read (see below).
   */
  touch(keys: Uint8Array, from: number, to: number): number {
    if (!LITTLE_ENDIAN || (keys.byteOffset & 3) !== 0) return 0;
    if (this.#viewed !== keys.buffer) {
      this.#viewed = keys.buffer;
      this.#view = new Int32Array(keys.buffer, 0, keys.buffer.byteLength >> 2);
    }
    const view = this.#view;
    const words = this.#words;
    const written = this.#written;
    const mask = this.#mask;
    let sum = 0;
    const first = keys.byteOffset >> 2;
    for (let w = first + from * WORDS, end = first + to * WORDS; w < end; w += WORDS) {
      const at = (view[w]! & mask) * WORDS;
      // A page no key was put in is all zeros: its first touch is a store of 0, not a read. Read
      // first, it was mapped to the zero page, and the key's store faulted again to copy it, which
      // flushed the page from the other core's TLB (an interrupt each: ~50 ms of the main thread at
      // a million keys, measured by perf).
      if (written[at >>> PAGE_WORDS_LOG] === 0) {
        written[at >>> PAGE_WORDS_LOG] = 1;
        words[at] = 0;
      }
      sum ^= words[at]!;
    }
    return sum;
  }

  /** The slot of the key, negated minus one when present; else the empty slot it would go in. */
  #find(a: number, b: number, c: number, d: number): number {
    const words = this.#words;
    // The key is a hash already: its first word picks the slot.
    let slot = a & this.#mask;
    for (;;) {
      const w = slot * WORDS;
      const wa = words[w]!;
      const wb = words[w + 1]!;
      const wc = words[w + 2]!;
      const wd = words[w + 3]!;
      if ((wa | wb | wc | wd) === 0) return slot;
      if (wa === a && wb === b && wc === c && wd === d) return -1 - slot;
      slot = (slot + 1) & this.#mask;
    }
  }

  #put(slot: number, a: number, b: number, c: number, d: number): void {
    const w = slot * WORDS;
    this.#words[w] = a;
    this.#words[w + 1] = b;
    this.#words[w + 2] = c;
    this.#words[w + 3] = d;
    this.#written[w >>> PAGE_WORDS_LOG] = 1;
    this.#size++;
  }

  #grow(): void {
    const old = this.#words;
    const slots = (this.#mask + 1) * 2;
    const words = new Int32Array(this.#memory(slots * WORDS * 4));
    const mask = slots - 1;
    // The keys are distinct: each goes in the first empty slot from its own, no comparison (a loop of
    // locals, where #find and #put a key were most of the growth's time).
    for (let w = 0; w < old.length; w += WORDS) {
      const a = old[w]!;
      const b = old[w + 1]!;
      const c = old[w + 2]!;
      const d = old[w + 3]!;
      if ((a | b | c | d) === 0) continue;
      let at = (a & mask) * WORDS;
      while ((words[at]! | words[at + 1]! | words[at + 2]! | words[at + 3]!) !== 0)
        at = (at + WORDS) & (mask * WORDS + WORDS - 1);
      words[at] = a;
      words[at + 1] = b;
      words[at + 2] = c;
      words[at + 3] = d;
    }
    this.#words = words;
    this.#mask = mask;
    // Every page may hold keys now.
    this.#written = new Uint8Array(pagesOf(words)).fill(1);
  }
}

/** Words of a 4 KiB page, as a power of 2. */
const PAGE_WORDS_LOG = 10;

/** Pages of 4 KiB `words` spans. */
function pagesOf(words: Int32Array): number {
  return (words.length >>> PAGE_WORDS_LOG) + 1;
}

/** The little-endian 32-bit word at `bytes[at]`. */
function word(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}
