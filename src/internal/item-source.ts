import { Readable } from 'node:stream';
import { ChunkReader } from './chunk-reader.js';
import type { SourceInput } from './input.js';

/** What a parser made of a chunk: the items it completed and how many bytes it used up. */
export interface Parsed<T> {
  items: T[];
  /** Bytes consumed from the front of the chunk; the rest comes back, followed by more input. */
  consumed: number;
  /** Set when the parser stopped early to let a direct sink catch up: await it before the next chunk. */
  waiting?: Promise<void> | undefined;
}

/** Turns chunks of bytes into items. */
export interface ChunkParser<T> {
  /**
   * Parses a chunk (`last` marks the end of input). The chunk is only valid during the call. A plain
   * array means the whole chunk was consumed (the parser keeps its own copy of anything unfinished).
   */
  parse(chunk: Buffer, last: boolean): Parsed<T> | T[];
}

/**
 * An object-mode Readable over a chunked input: reads a chunk only when the consumer wants more,
 * so memory is one chunk and its parsed items, whatever the file size. Cheaper per item than
 * Readable.from(asyncGenerator), which matters at a million rows.
 */
export class ItemSource<T> extends Readable {
  readonly #reader: ChunkReader;
  readonly #parser: ChunkParser<T>;
  #items: T[] = [];
  #next = 0;
  #consumed = 0;
  #reading = false;
  #ended = false;

  constructor(
    input: SourceInput,
    file: string,
    parser: ChunkParser<T>,
    maxRowBytes = Number.MAX_SAFE_INTEGER,
    highWaterMark = 1024,
  ) {
    super({ objectMode: true, highWaterMark });
    this.#reader = new ChunkReader(input, file, maxRowBytes);
    this.#parser = parser;
  }

  override _read(): void {
    this.#drain();
  }

  /** Pushes parsed items until the consumer is full; when they run out, parses the next chunk. */
  #drain(): void {
    while (this.#next < this.#items.length) {
      if (!this.push(this.#items[this.#next++])) return;
    }
    if (this.#ended) {
      this.push(null);
      return;
    }
    // A _read while a chunk is on its way is answered when it arrives.
    if (this.#reading) return;
    this.#reading = true;
    this.#reader.next(this.#consumed).then(
      ({ data, last }) => {
        this.#reading = false;
        if (this.destroyed) return;
        try {
          const parsed = this.#parser.parse(data, last);
          this.#items = Array.isArray(parsed) ? parsed : parsed.items;
          this.#consumed = Array.isArray(parsed) ? data.length : parsed.consumed;
        } catch (error) {
          this.destroy(error as Error);
          return;
        }
        this.#next = 0;
        this.#ended = last;
        this.#drain();
      },
      (error: unknown) => {
        this.#reading = false;
        this.destroy(error as Error);
      },
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Closes the file when a consumer stops early.
    this.#reader.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}
