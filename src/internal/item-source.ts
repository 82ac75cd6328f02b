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
  /** Called before the first chunk of each input, when a source reads several one after another. */
  startFile?(file: string): void;
}

/**
 * An object-mode Readable over chunked inputs (one, or several read one after another): reads a chunk
 * only when the consumer wants more, so memory is one chunk and its parsed items, whatever the file
 * size. Cheaper per item than Readable.from(asyncGenerator), which matters at a million rows.
 */
export class ItemSource<T> extends Readable {
  readonly #inputs: SourceInput[];
  readonly #files: string[];
  readonly #parser: ChunkParser<T>;
  readonly #maxRowBytes: number;
  #input = -1;
  #reader: ChunkReader | undefined;
  #items: T[] = [];
  #next = 0;
  #consumed = 0;
  #reading = false;
  #ended = false;

  constructor(
    input: SourceInput | SourceInput[],
    file: string | string[],
    parser: ChunkParser<T>,
    maxRowBytes = Number.MAX_SAFE_INTEGER,
    highWaterMark = 1024,
  ) {
    super({ objectMode: true, highWaterMark });
    this.#inputs = Array.isArray(input) ? input : [input];
    this.#files = Array.isArray(file) ? file : [file];
    this.#parser = parser;
    this.#maxRowBytes = maxRowBytes;
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
    this.#step().then(
      () => {
        this.#reading = false;
        if (!this.destroyed) this.#drain();
      },
      (error: unknown) => {
        this.#reading = false;
        this.destroy(error as Error);
      },
    );
  }

  /** Parses the next chunk, moving to the next input when one ends. */
  async #step(): Promise<void> {
    this.#items = [];
    this.#next = 0;
    if (!this.#reader) {
      if (++this.#input >= this.#inputs.length) {
        this.#ended = true;
        return;
      }
      const file = this.#files[this.#input] ?? '<stream>';
      this.#reader = new ChunkReader(this.#inputs[this.#input]!, file, this.#maxRowBytes);
      this.#parser.startFile?.(file);
      this.#consumed = 0;
    }
    const { data, last } = await this.#reader.next(this.#consumed);
    if (this.destroyed) return;
    const parsed = this.#parser.parse(data, last);
    this.#items = Array.isArray(parsed) ? parsed : parsed.items;
    this.#consumed = Array.isArray(parsed) ? data.length : parsed.consumed;
    if (last) {
      await this.#reader.close();
      this.#reader = undefined;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Closes the file when a consumer stops early.
    const reader = this.#reader;
    this.#reader = undefined;
    (reader ? reader.close() : Promise.resolve()).then(
      () => callback(error),
      () => callback(error),
    );
  }
}
