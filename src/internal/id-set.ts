import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Ids kept in memory before the set moves them to disk: 3.9 MB of table (hash and tag). */
const MEMORY_IDS = 256 * 1024;
/** Disk partitions (by hash), and the ids each buffers before a write. */
const PARTITIONS = 256;
const PARTITION_BUFFER = 512;
/** Bloom filter: 14.4 bits and 10 probes an id give a 0.1% false-positive rate. */
const BLOOM_BITS_PER_ID = 14.4;
const BLOOM_PROBES = 10;

/** What `claim` answers for an id not seen before. */
export const NEW_ID = -1;

/**
 * A set of strings kept as 64-bit hashes, each with a 32-bit tag the caller chooses (where the id was
 * first seen), so a duplicate can name its first holder at no extra pass. Two different strings share
 * a 64-bit hash with probability ~n^2/2^65 (about 3e-8 for a million ids); such a pair reads as a
 * duplicate, so a duplicate is never missed. Up to 256k ids live in an in-memory table (12 bytes a
 * slot); past that the hashes move to files on disk, partitioned by hash, with a Bloom filter in front
 * (1.8 bytes an id), so memory stays flat whatever the run's size: a new id costs one filter check and
 * a buffered append; only the 0.1% the filter cannot rule out (and true duplicates) read one partition
 * file. `close` removes the files.
 */
export class IdSet {
  /** Slot i holds hash words [2i, 2i+1]; (0, 0) marks an empty slot. */
  #slots: Uint32Array;
  /** Slot i's tag. */
  #tags: Uint32Array;
  #capacity: number;
  #size = 0;
  #disk: DiskIds | undefined;
  #expected: number;

  /** `expected`: how many ids to make room for up front. */
  constructor(expected = 1024) {
    this.#expected = expected;
    this.#capacity = capacityFor(Math.min(expected, MEMORY_IDS));
    this.#slots = new Uint32Array(this.#capacity * 2);
    this.#tags = new Uint32Array(this.#capacity);
  }

  /** Makes room for about `expected` ids in all (sizing the table, or the disk filter, once). */
  reserve(expected: number): void {
    this.#expected = Math.max(this.#expected, expected);
    const capacity = capacityFor(Math.min(expected, MEMORY_IDS));
    if (!this.#disk && capacity > this.#capacity) this.#rebuild(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds `id`; false when it was already there. */
  add(id: string): boolean {
    return this.claim(id, 0) === NEW_ID;
  }

  /**
   * Adds `id` with `tag` (0 to 2^32-1) and answers NEW_ID; when `id` was already there, leaves it
   * as it was and answers the tag it was added with.
   */
  claim(id: string, tag: number): number {
    const [hi, lo] = hash64(id);
    if (this.#disk) {
      const earlier = this.#disk.claim(hi, lo, tag);
      if (earlier === NEW_ID) this.#size++;
      return earlier;
    }
    const slots = this.#slots;
    const capacity = this.#capacity;
    let slot = home(hi, capacity);
    for (;;) {
      const a = slots[slot * 2]!;
      const b = slots[slot * 2 + 1]!;
      if (a === 0 && b === 0) break;
      if (a === hi && b === lo) return this.#tags[slot]!;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
    slots[slot * 2] = hi;
    slots[slot * 2 + 1] = lo;
    this.#tags[slot] = tag;
    this.#size++;
    if (this.#size > MEMORY_IDS) this.#toDisk();
    else if (this.#size > this.#capacity * MAX_LOAD) this.#rebuild(Math.ceil(this.#capacity * GROWTH));
    return NEW_ID;
  }

  /** Removes the files of a set that moved to disk. */
  close(): void {
    this.#disk?.close();
  }

  #toDisk(): void {
    const disk = new DiskIds(Math.max(this.#expected, this.#size * 4));
    const slots = this.#slots;
    for (let i = 0; i < this.#capacity; i++) {
      const hi = slots[i * 2]!;
      const lo = slots[i * 2 + 1]!;
      if (hi !== 0 || lo !== 0) disk.claim(hi, lo, this.#tags[i]!);
    }
    this.#disk = disk;
    this.#slots = new Uint32Array(0);
    this.#tags = new Uint32Array(0);
    this.#capacity = 0;
  }

  #rebuild(capacity: number): void {
    const old = this.#slots;
    const oldTags = this.#tags;
    const oldCapacity = this.#capacity;
    this.#capacity = capacity;
    this.#slots = new Uint32Array(this.#capacity * 2);
    this.#tags = new Uint32Array(this.#capacity);
    for (let i = 0; i < oldCapacity; i++) {
      const hi = old[i * 2]!;
      const lo = old[i * 2 + 1]!;
      if (hi === 0 && lo === 0) continue;
      let slot = home(hi, this.#capacity);
      while (this.#slots[slot * 2] !== 0 || this.#slots[slot * 2 + 1] !== 0)
        slot = slot + 1 === this.#capacity ? 0 : slot + 1;
      this.#slots[slot * 2] = hi;
      this.#slots[slot * 2 + 1] = lo;
      this.#tags[slot] = oldTags[i]!;
    }
  }
}

/** Hashes and tags on disk in partition files, each with a small write buffer, behind Bloom filters. */
class DiskIds {
  readonly #dir = mkdtempSync(join(tmpdir(), 'batchpipe-ids-'));
  readonly #blooms: Bloom[];
  #bloomIds = 0;
  /** Per partition: (hi, lo, tag) triples not yet written. */
  readonly #buffers = Array.from({ length: PARTITIONS }, () => new Uint32Array(PARTITION_BUFFER * 3));
  readonly #buffered = new Uint16Array(PARTITIONS);
  readonly #written = new Uint8Array(PARTITIONS);

  constructor(expected: number) {
    this.#blooms = [new Bloom(expected)];
  }

  /** Adds a hash with its tag: NEW_ID, or the tag it already had. */
  claim(hi: number, lo: number, tag: number): number {
    if (this.#maybe(hi, lo)) {
      const earlier = this.#find(hi, lo);
      if (earlier !== NEW_ID) return earlier;
    }
    let bloom = this.#blooms[this.#blooms.length - 1]!;
    if (++this.#bloomIds > bloom.capacity) {
      // Past what the filter was sized for: a new, larger one keeps the false-positive rate.
      bloom = new Bloom(bloom.capacity * 2);
      this.#blooms.push(bloom);
      this.#bloomIds = 1;
    }
    bloom.add(hi, lo);
    const p = lo & (PARTITIONS - 1);
    const n = this.#buffered[p]!;
    const buffer = this.#buffers[p]!;
    buffer[n * 3] = hi;
    buffer[n * 3 + 1] = lo;
    buffer[n * 3 + 2] = tag;
    this.#buffered[p] = n + 1;
    if (n + 1 === PARTITION_BUFFER) this.#flush(p);
    return NEW_ID;
  }

  #maybe(hi: number, lo: number): boolean {
    for (const bloom of this.#blooms) if (bloom.has(hi, lo)) return true;
    return false;
  }

  /** The tag of a stored hash, or NEW_ID. */
  #find(hi: number, lo: number): number {
    const p = lo & (PARTITIONS - 1);
    const buffer = this.#buffers[p]!;
    for (let i = 0; i < this.#buffered[p]!; i++)
      if (buffer[i * 3] === hi && buffer[i * 3 + 1] === lo) return buffer[i * 3 + 2]!;
    if (this.#written[p] === 0) return NEW_ID;
    const bytes = readFileSync(this.#file(p));
    const stored = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    for (let i = 0; i < stored.length; i += 3)
      if (stored[i] === hi && stored[i + 1] === lo) return stored[i + 2]!;
    return NEW_ID;
  }

  #flush(p: number): void {
    const fd = openSync(this.#file(p), 'a');
    try {
      const buffer = this.#buffers[p]!;
      writeSync(fd, buffer, 0, this.#buffered[p]! * 12);
    } finally {
      closeSync(fd);
    }
    this.#buffered[p] = 0;
    this.#written[p] = 1;
  }

  #file(p: number): string {
    return join(this.#dir, `${p}.ids`);
  }

  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A Bloom filter over 64-bit hashes (double hashing from their two halves). */
class Bloom {
  readonly capacity: number;
  readonly #bits: Uint32Array;
  readonly #size: number;

  constructor(capacity: number) {
    this.capacity = Math.max(1024, capacity);
    this.#size = Math.ceil(this.capacity * BLOOM_BITS_PER_ID);
    this.#bits = new Uint32Array(Math.ceil(this.#size / 32));
  }

  has(hi: number, lo: number): boolean {
    for (let k = 0; k < BLOOM_PROBES; k++) {
      const bit = (hi + Math.imul(k, lo | 1)) >>> 0;
      const at = bit % this.#size;
      if ((this.#bits[at >>> 5]! & (1 << (at & 31))) === 0) return false;
    }
    return true;
  }

  add(hi: number, lo: number): void {
    for (let k = 0; k < BLOOM_PROBES; k++) {
      const bit = (hi + Math.imul(k, lo | 1)) >>> 0;
      const at = bit % this.#size;
      this.#bits[at >>> 5]! |= 1 << (at & 31);
    }
  }
}

const MAX_LOAD = 0.8;
const GROWTH = 1.6;

function capacityFor(expected: number): number {
  return Math.max(64, Math.ceil(expected / MAX_LOAD) + 1);
}

/** The home slot of a hash in a table of any size (multiply-shift, not a power-of-two mask). */
function home(hash: number, capacity: number): number {
  return Math.floor((hash / 4294967296) * capacity);
}

const pair: [number, number] = [0, 0];

/** Two independent 32-bit hashes (FNV-1a and a murmur-style mix), each finalised with fmix32. */
function hash64(text: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  pair[0] = fmix32(a) >>> 0;
  pair[1] = fmix32(b ^ a) >>> 0;
  // (0, 0) marks an empty slot.
  if (pair[0] === 0 && pair[1] === 0) pair[1] = 1;
  return pair;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
