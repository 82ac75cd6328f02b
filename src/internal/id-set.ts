/**
 * A set of strings kept as 64-bit hashes, each with the row that added it: 12 bytes an entry instead
 * of a string and a map slot (about 60 bytes for a short id), so a million custom_ids cost ~24 MB at
 * worst, not ~80 MB. Two different strings share a 64-bit hash with probability ~n^2/2^65 (about
 * 3e-8 for a million ids); such a pair would be reported as a duplicate, never missed.
 */
export class IdSet {
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);
  /** Row number + 1 of the entry; 0 marks an empty slot. */
  #row = new Uint32Array(1024);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds `id` for `row` and returns 0, or returns the row that added it first. */
  add(id: string, row: number): number {
    const [hi, lo] = hash64(id);
    const mask = this.#row.length - 1;
    let slot = lo & mask;
    for (;;) {
      const owner = this.#row[slot]!;
      if (owner === 0) break;
      if (this.#hi[slot] === hi && this.#lo[slot] === lo) return owner - 1;
      slot = (slot + 1) & mask;
    }
    this.#hi[slot] = hi;
    this.#lo[slot] = lo;
    this.#row[slot] = row + 1;
    if (++this.#size * 2 > this.#row.length) this.#grow();
    return 0;
  }

  #grow(): void {
    const hi = this.#hi;
    const lo = this.#lo;
    const rows = this.#row;
    const capacity = rows.length * 2;
    this.#hi = new Uint32Array(capacity);
    this.#lo = new Uint32Array(capacity);
    this.#row = new Uint32Array(capacity);
    const mask = capacity - 1;
    for (let i = 0; i < rows.length; i++) {
      if (rows[i] === 0) continue;
      let slot = lo[i]! & mask;
      while (this.#row[slot] !== 0) slot = (slot + 1) & mask;
      this.#hi[slot] = hi[i]!;
      this.#lo[slot] = lo[i]!;
      this.#row[slot] = rows[i]!;
    }
  }
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
