import { BatchpipeError } from '../errors.js';

/** More distinct labels than this is not a classification to score. */
const MAX_LABELS = 10_000;

/**
 * Pairs of (gold, answer) labels, counted. Each scored row is kept as the id of its distinct pair, so a
 * bootstrap can resample rows without holding them: 4 bytes a scored row.
 */
export class Confusion {
  readonly labels: string[] = [];
  readonly #index = new Map<string, number>();
  /** Distinct (gold, answer) pairs, as gold * MAX_LABELS + answer, and each one's id. */
  readonly #pairIds = new Map<number, number>();
  readonly #pairs: number[] = [];
  #rows = new Uint32Array(1024);
  #count = 0;

  add(gold: string, answer: string): void {
    const key = this.#label(gold) * MAX_LABELS + this.#label(answer);
    let id = this.#pairIds.get(key);
    if (id === undefined) {
      id = this.#pairs.length;
      this.#pairs.push(key);
      this.#pairIds.set(key, id);
    }
    if (this.#count === this.#rows.length) {
      const grown = new Uint32Array(this.#rows.length * 2);
      grown.set(this.#rows);
      this.#rows = grown;
    }
    this.#rows[this.#count++] = id;
  }

  /** Rows scored. */
  get size(): number {
    return this.#count;
  }

  /** How many rows have each distinct pair. */
  counts(): Float64Array {
    const counts = new Float64Array(this.#pairs.length);
    for (let i = 0; i < this.#count; i++) counts[this.#rows[i]!]!++;
    return counts;
  }

  /** A bootstrap resample: `size` rows drawn with replacement, counted by pair. */
  resample(random: () => number): Float64Array {
    const counts = new Float64Array(this.#pairs.length);
    const n = this.#count;
    for (let i = 0; i < n; i++) counts[this.#rows[Math.floor(random() * n)]!]!++;
    return counts;
  }

  /** Counts by pair as a matrix: labels sorted, matrix[gold][answer]. */
  matrix(counts: Float64Array): { labels: string[]; matrix: number[][] } {
    const order = this.labels.map((_, i) => i).sort((x, y) => compare(this.labels[x]!, this.labels[y]!));
    const rank = new Array<number>(order.length);
    order.forEach((label, r) => {
      rank[label] = r;
    });
    const k = order.length;
    const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    this.#pairs.forEach((key, id) => {
      matrix[rank[Math.floor(key / MAX_LABELS)]!]![rank[key % MAX_LABELS]!]! += counts[id]!;
    });
    return { labels: order.map((i) => this.labels[i]!), matrix };
  }

  #label(label: string): number {
    let i = this.#index.get(label);
    if (i === undefined) {
      if (this.labels.length === MAX_LABELS)
        throw new BatchpipeError(
          'BP_INVALID_OPTION',
          `evaluate: more than ${MAX_LABELS} distinct labels; this is not a classification to score`,
        );
      i = this.labels.length;
      this.labels.push(label);
      this.#index.set(label, i);
    }
    return i;
  }
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
