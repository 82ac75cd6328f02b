import { endianness } from 'node:os';
import { KEY_BYTES } from './request-key.js';

/** Words read through an Int32Array are the little-endian words `word` reads only here. */
const LITTLE_ENDIAN = endianness() === 'LE';

/** Words (32-bit) a key takes in the log. */
const WORDS = KEY_BYTES / 4;
const FIRST_SLOTS = 1 << 16;
/** A slot's low bits: bits of the key's second word, compared before the key itself is read. */
const TAG_BITS = 10;
const TAG_MASK = (1 << TAG_BITS) - 1;
/** Keys a block of the log holds, as a power of 2 (1 MiB blocks). */
const BLOCK_LOG = 16;
const BLOCK_KEYS = 1 << BLOCK_LOG;
/**
 * Distinct keys held at most (a slot's high 22 bits number them). A key takes 16 bytes in the log and
 * the table 4 bytes a slot, at most half full: 24 bytes a distinct request, 96 MiB at this many (24
 * MiB at a million).
 */
export const MAX_DISTINCT_KEYS = 4_000_000;

/** What `mark` says of an entry: its key is new, came earlier, was not kept (no room), or it has none. */
export const KEY_NEW = 0;
export const KEY_REPEAT = 1;
export const KEY_UNKEPT = 2;
export const KEY_NONE = 3;

/** A key table as it moves to another thread: its arrays (in shared memory, not copied) and counts. */
export interface KeySetState {
  slots: Int32Array<ArrayBufferLike>;
  blocks: Array<Int32Array<ArrayBufferLike>>;
  written: Uint8Array<ArrayBufferLike>;
  size: number;
  maxKeys: number;
}

/**
 * The request keys a run has seen, no object a key: the keys one after another in a log (blocks of
 * 1 MiB), and an open-addressing table of 32-bit slots, each a key's number in the log and 10 bits
 * of the key, so a key is looked up in a table a quarter of the size that holding the keys takes (8
 * MiB at a million keys, not 32: each lookup is a cache and TLB miss, measured ~90 -> ~45 ms a
 * million new keys). The table doubles while under `maxKeys`; past it no new key is kept (`add`
 * says `full`): the requests that follow are sent as they are, which costs money but never answers
 * a row wrongly.
 */
export class KeySet {
  readonly #maxKeys: number;
  /** The arrays are in shared memory (`state` hands them to another thread). */
  readonly #shared: boolean;
  /** 0: empty; else `(n + 1) << TAG_BITS | tag`, the key being number n of the log. */
  #slots: Int32Array<ArrayBufferLike>;
  #mask: number;
  #blocks: Array<Int32Array<ArrayBufferLike>> = [];
  #size = 0;
  /** The buffer of the last key array added from, and it seen as words. */
  #viewed: ArrayBufferLike = new ArrayBuffer(0);
  #view: Int32Array<ArrayBufferLike> = new Int32Array(0);
  /** Per 4 KiB page of the table: 1 once a key may be in it (see `touch`). */
  #written: Uint8Array<ArrayBufferLike>;

  /**
   * `expectedKeys`: about how many keys will come (a table's estimated rows): the table starts with
   * room for them, at most 3/4 of them past half full, so the keys go in without the table growing
   * and rehashing them. An estimate up to 4/3 of the keys that come makes no larger a table than
   * growing would have; a larger one, memory only where keys land.
   *
   * `shared`: the table is made in shared memory, so that it can move to another thread (`state`):
   * an ArrayBuffer transferred instead would be the process's first detached one, and V8 then drops
   * every optimized function that reads a typed array (measured: ~40 functions compiled again, 0.1 s
   * of compiler threads at a million rows).
   */
  constructor(maxKeys = MAX_DISTINCT_KEYS, expectedKeys = 0, shared = false) {
    this.#maxKeys = Math.min(maxKeys, MAX_DISTINCT_KEYS);
    this.#shared = shared;
    let slots = FIRST_SLOTS;
    while (slots < 1.5 * Math.min(expectedKeys, this.#maxKeys)) slots *= 2;
    // Not written through: pages no key lands in take no memory (most rows repeating, the estimate
    // too high). `touch` stores to a page before it reads it, so a page faults once, when a key
    // first lands in it.
    this.#slots = new Int32Array(this.#memory(slots * 4));
    this.#mask = slots - 1;
    this.#written = new Uint8Array(pagesOf(slots));
  }

  /** Zeroed memory (shared when the set may move: see the constructor). */
  #memory(bytes: number): ArrayBufferLike {
    return this.#shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  }

  /**
   * The set for another thread (`attach`), made `shared`: this one must not be used afterwards (the
   * other thread changes the arrays without a word to this one).
   */
  state(): KeySetState {
    if (!this.#shared)
      throw new Error('a key table not made shared cannot move to another thread (a batchpipe bug)');
    // `written` is small: copied as the state is sent.
    return {
      slots: this.#slots,
      blocks: this.#blocks,
      written: this.#written,
      size: this.#size,
      maxKeys: this.#maxKeys,
    };
  }

  /** The set `state` gave, on the thread it was sent to. */
  static attach(state: KeySetState): KeySet {
    const set = new KeySet(state.maxKeys, 0, true);
    set.#slots = state.slots;
    set.#mask = state.slots.length - 1;
    set.#blocks = [...state.blocks];
    set.#written = state.written;
    set.#size = state.size;
    return set;
  }

  /**
   * Adds the keys of a batch's entries `0..n` that have a line (`starts[i] >= 0`; the keys array
   * holds KEY_BYTES an entry), saying of each in `out[i]` whether it is new here, came earlier, or
   * was not kept (KEY_NEW, KEY_REPEAT, KEY_UNKEPT; KEY_NONE without a line).
   */
  mark(keys: Uint8Array, starts: ArrayLike<number>, n: number, out: Uint8Array): void {
    if (!LITTLE_ENDIAN || (keys.byteOffset & 3) !== 0) {
      for (let i = 0; i < n; i++) out[i] = starts[i]! < 0 ? KEY_NONE : markOf(this.add(keys, i * KEY_BYTES));
      return;
    }
    this.touch(keys, 0, n);
    // The words read through one view (a typed array's `buffer`, asked for a key, was a call into
    // V8's runtime each time: twice as slow).
    const view = this.#viewOf(keys);
    const first = keys.byteOffset >> 2;
    for (let i = 0; i < n; i++) {
      if (starts[i]! < 0) {
        out[i] = KEY_NONE;
        continue;
      }
      const w = first + i * WORDS;
      out[i] = markOf(this.#add(view[w]!, view[w + 1]!, view[w + 2]!, view[w + 3]!));
    }
  }

  /** `buffer` seen as words (one view a buffer, kept). */
  #viewOf(keys: Uint8Array): Int32Array<ArrayBufferLike> {
    if (this.#viewed !== keys.buffer) {
      this.#viewed = keys.buffer;
      this.#view = new Int32Array(keys.buffer, 0, keys.buffer.byteLength >> 2);
    }
    return this.#view;
  }

  /** Whether the key at `key[at, at + 16)` is in the set (adding nothing). */
  has(key: Uint8Array, at = 0): boolean {
    return this.#find(word(key, at), word(key, at + 4), word(key, at + 8), word(key, at + 12)) < 0;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes of the table alone (the keys' log apart): what grows by doubling and rehashing. */
  get tableBytes(): number {
    return this.#slots.byteLength;
  }

  /** Bytes the set holds. */
  get bytes(): number {
    return this.#slots.byteLength + this.#blocks.length * BLOCK_KEYS * KEY_BYTES;
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
      // Four loads, not sixteen: the batch's key array seen as words.
      const view = this.#viewOf(key);
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
    return this.#add(a, b, c, d);
  }

  #add(a: number, b: number, c: number, d: number): 'added' | 'present' | 'full' {
    const found = this.#find(a, b, c, d);
    if (found < 0) return 'present';
    if (this.#size >= this.#maxKeys) return 'full';
    this.#put(found, a, b, c, d);
    if (this.#size * 2 > this.#mask + 1) this.#grow();
    return 'added';
  }

  /**
   * Reads the slot of each key at `keys[from * 16, to * 16)`, adding nothing: a batch's keys probed
   * before they are added. Each probe of a large table is a cache miss; here they are independent
   * loads the CPU overlaps, where `add` one by one waited for each in turn (measured on 1M random
   * keys: ~280 -> ~155 ns a key, with 16-byte slots). Keys read as words only (a batch's array).
   * Returns a number of no meaning: the loads are used, so kept. A slot in a page no key was put in
   * is written (a 0 over a 0) before it is read (see below).
   */
  touch(keys: Uint8Array, from: number, to: number): number {
    if (!LITTLE_ENDIAN || (keys.byteOffset & 3) !== 0) return 0;
    const view = this.#viewOf(keys);
    const slots = this.#slots;
    const written = this.#written;
    const mask = this.#mask;
    let sum = 0;
    const first = keys.byteOffset >> 2;
    for (let w = first + from * WORDS, end = first + to * WORDS; w < end; w += WORDS) {
      const at = view[w]! & mask;
      // A page no key was put in is all zeros: its first touch is a store of 0, not a read. Read
      // first, it was mapped to the zero page, and the key's store faulted again to copy it, which
      // flushed the page from the other core's TLB (an interrupt each: ~50 ms of the main thread at
      // a million keys, measured by perf).
      if (written[at >>> PAGE_SLOTS_LOG] === 0) {
        written[at >>> PAGE_SLOTS_LOG] = 1;
        slots[at] = 0;
      }
      sum ^= slots[at]!;
    }
    return sum;
  }

  /** The slot of the key, negated minus one when present; else the empty slot it would go in. */
  #find(a: number, b: number, c: number, d: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    const tag = b & TAG_MASK;
    // The key is a hash already: its first word picks the slot.
    let slot = a & mask;
    for (;;) {
      const entry = slots[slot]!;
      if (entry === 0) return slot;
      if ((entry & TAG_MASK) === tag) {
        const n = (entry >>> TAG_BITS) - 1;
        const block = this.#blocks[n >>> BLOCK_LOG]!;
        const w = (n & (BLOCK_KEYS - 1)) * WORDS;
        if (block[w] === a && block[w + 1] === b && block[w + 2] === c && block[w + 3] === d)
          return -1 - slot;
      }
      slot = (slot + 1) & mask;
    }
  }

  #put(slot: number, a: number, b: number, c: number, d: number): void {
    const n = this.#size++;
    if (n >>> BLOCK_LOG === this.#blocks.length)
      this.#blocks.push(new Int32Array(this.#memory(BLOCK_KEYS * KEY_BYTES)));
    const block = this.#blocks[n >>> BLOCK_LOG]!;
    const w = (n & (BLOCK_KEYS - 1)) * WORDS;
    block[w] = a;
    block[w + 1] = b;
    block[w + 2] = c;
    block[w + 3] = d;
    this.#slots[slot] = ((n + 1) << TAG_BITS) | (b & TAG_MASK);
    this.#written[slot >>> PAGE_SLOTS_LOG] = 1;
  }

  #grow(): void {
    const count = (this.#mask + 1) * 2;
    const slots = new Int32Array(this.#memory(count * 4));
    const mask = count - 1;
    // The keys are distinct: each goes in the first empty slot from its own, no comparison.
    for (let n = 0; n < this.#size; n++) {
      const block = this.#blocks[n >>> BLOCK_LOG]!;
      const w = (n & (BLOCK_KEYS - 1)) * WORDS;
      let at = block[w]! & mask;
      while (slots[at] !== 0) at = (at + 1) & mask;
      slots[at] = ((n + 1) << TAG_BITS) | (block[w + 1]! & TAG_MASK);
    }
    this.#slots = slots;
    this.#mask = mask;
    // Every page may hold keys now.
    this.#written = new Uint8Array(pagesOf(count)).fill(1);
  }
}

function markOf(added: 'added' | 'present' | 'full'): number {
  return added === 'added' ? KEY_NEW : added === 'present' ? KEY_REPEAT : KEY_UNKEPT;
}

/** Slots of a 4 KiB page, as a power of 2. */
const PAGE_SLOTS_LOG = 10;

/** Pages of 4 KiB `slots` 32-bit slots span. */
function pagesOf(slots: number): number {
  return (slots >>> PAGE_SLOTS_LOG) + 1;
}

/** The little-endian 32-bit word at `bytes[at]`. */
function word(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}
