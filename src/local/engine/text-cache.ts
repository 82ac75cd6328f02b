/**
 * A memo keyed by text, bounded by the characters of its keys rather than their number: a thousand
 * keys of 6 MB each (one line may be that long) would hold gigabytes. Full, it starts over, which
 * is cheap for what it holds (values recomputed on a miss) and keeps the hot path a single Map lookup.
 */
export class TextCache<V> {
  readonly #map = new Map<string, V>();
  readonly #maxChars: number;
  readonly #maxKeyChars: number;
  #chars = 0;

  /** `maxKeyChars`: longer keys are never kept (a miss every time costs less than evicting for them). */
  constructor(maxChars: number, maxKeyChars = maxChars >> 4) {
    this.#maxChars = maxChars;
    this.#maxKeyChars = maxKeyChars;
  }

  get(key: string): V | undefined {
    return this.#map.get(key);
  }

  set(key: string, value: V): void {
    if (key.length > this.#maxKeyChars) return;
    if (this.#chars + key.length > this.#maxChars) {
      this.#map.clear();
      this.#chars = 0;
    }
    this.#map.set(key, value);
    this.#chars += key.length;
  }
}
