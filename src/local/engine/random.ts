/**
 * Deterministic choices for the test engine: a string hash (FNV-1a, 32-bit, seeded) and a small
 * PRNG (mulberry32). Same seed and key, same answer, in any order and across restarts.
 */

export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (murmur3 fmix32) so nearby keys ("row-1", "row-2") spread over the range.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A hash as a number in [0, 1). */
export function unitOf(hash: number): number {
  return hash / 0x1_0000_0000;
}

export type Random = () => number;

/** mulberry32: a fast 32-bit PRNG, plenty for picking words and vector components. */
export function rng(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** A 32-bit hash as 8 hex digits (a table: toString(16) + padStart shows up in profiles). */
export function hex8(hash: number): string {
  return HEX[hash >>> 24]! + HEX[(hash >>> 16) & 255]! + HEX[(hash >>> 8) & 255]! + HEX[hash & 255]!;
}
