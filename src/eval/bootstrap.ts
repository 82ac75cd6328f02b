import type { Confusion } from './confusion.js';
import { scores } from './metrics.js';

/** A 95% percentile bootstrap interval. */
export interface Interval {
  low: number;
  high: number;
}

export interface Intervals {
  accuracy: Interval;
  macroF1: Interval;
  weightedF1: Interval;
  kappa: Interval | null;
  /** Resamples drawn, and the seed that makes them again. */
  resamples: number;
  seed: number;
}

/**
 * Percentile bootstrap: `resamples` tables of the same size drawn with replacement from the scored
 * rows, each scored again; the interval is the 2.5th and 97.5th percentiles. Seeded, so the same
 * table and seed give the same interval.
 */
export function bootstrap(confusion: Confusion, resamples: number, seed: number): Intervals {
  const random = mulberry32(seed);
  const draws = {
    accuracy: [] as number[],
    macroF1: [] as number[],
    weightedF1: [] as number[],
    kappa: [] as number[],
  };
  for (let r = 0; r < resamples; r++) {
    const { labels, matrix } = confusion.matrix(confusion.resample(random));
    const s = scores(labels, matrix);
    draws.accuracy.push(s.accuracy);
    draws.macroF1.push(s.macroF1);
    draws.weightedF1.push(s.weightedF1);
    if (s.kappa !== null) draws.kappa.push(s.kappa);
  }
  return {
    accuracy: percentiles(draws.accuracy),
    macroF1: percentiles(draws.macroF1),
    weightedF1: percentiles(draws.weightedF1),
    // A resample whose kappa is undefined (one label only) has no kappa to rank: kept out.
    kappa: draws.kappa.length === 0 ? null : percentiles(draws.kappa),
    resamples,
    seed,
  };
}

function percentiles(values: number[]): Interval {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => {
    // Linear interpolation between closest ranks (numpy's default).
    const pos = q * (sorted.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
  };
  return { low: at(0.025), high: at(0.975) };
}

/** A small seeded generator (mulberry32): fast, and the same sequence everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
