/**
 * A set of strings kept as 64-bit hashes: 8 bytes a slot, at most 80% full, so a million custom_ids
 * cost 10-16 MB instead of ~80 MB of strings in a Set. Two different strings share a 64-bit hash with
 * probability ~n^2/2^65 (about 3e-8 for a million ids); such a pair reads as a duplicate, so a
 * duplicate is never missed.
 */
export class IdSet {
  /** Slot i holds hash words [2i, 2i+1]; (0, 0) marks an empty slot. */
  #slots: Uint32Array;
  #capacity: number;
  #size = 0;

  /** `expected`: how many ids to make room for up front (avoids growing, which briefly doubles memory). */
  constructor(expected = 1024) {
    this.#capacity = capacityFor(expected);
    this.#slots = new Uint32Array(this.#capacity * 2);
  }

  /** Makes room for about `expected` ids in all (rebuilding the table once, while it is small). */
  reserve(expected: number): void {
    const capacity = capacityFor(expected);
    if (capacity > this.#capacity) this.#rebuild(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds `id`; false when it was already there. */
  add(id: string): boolean {
    const [hi, lo] = hash64(id);
    const slots = this.#slots;
    const capacity = this.#capacity;
    let slot = home(hi, capacity);
    for (;;) {
      const a = slots[slot * 2]!;
      const b = slots[slot * 2 + 1]!;
      if (a === 0 && b === 0) break;
      if (a === hi && b === lo) return false;
      slot = slot + 1 === capacity ? 0 : slot + 1;
    }
    slots[slot * 2] = hi;
    slots[slot * 2 + 1] = lo;
    if (++this.#size > this.#capacity * MAX_LOAD) this.#grow();
    return true;
  }

  #grow(): void {
    this.#rebuild(Math.ceil(this.#capacity * GROWTH));
  }

  #rebuild(capacity: number): void {
    const old = this.#slots;
    const oldCapacity = this.#capacity;
    this.#capacity = capacity;
    this.#slots = new Uint32Array(this.#capacity * 2);
    for (let i = 0; i < oldCapacity; i++) {
      const hi = old[i * 2]!;
      const lo = old[i * 2 + 1]!;
      if (hi === 0 && lo === 0) continue;
      let slot = home(hi, this.#capacity);
      while (this.#slots[slot * 2] !== 0 || this.#slots[slot * 2 + 1] !== 0)
        slot = slot + 1 === this.#capacity ? 0 : slot + 1;
      this.#slots[slot * 2] = hi;
      this.#slots[slot * 2 + 1] = lo;
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
