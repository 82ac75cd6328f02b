import { Readable } from 'node:stream';
import type { SourceInput } from './input.js';
import { readChunks } from './input.js';

/** Objects a source has parsed from one chunk, handed out as the consumer asks for them. */
export interface ChunkParser<T> {
  /** Parses one chunk (`last` marks the end of input) and returns what it completed. */
  parse(chunk: Buffer, last: boolean): T[];
}

const EMPTY = Buffer.alloc(0);

/**
 * An object-mode Readable over a chunked input: reads a chunk only when the consumer wants more,
 * so memory is one chunk and its parsed items, whatever the file size. Cheaper per item than
 * Readable.from(asyncGenerator), which matters at a million rows.
 */
export class ItemSource<T> extends Readable {
  readonly #chunks: AsyncGenerator<Buffer>;
  readonly #parser: ChunkParser<T>;
  #items: T[] = [];
  #next = 0;
  #reading = false;
  #ended = false;

  constructor(input: SourceInput, file: string, parser: ChunkParser<T>, highWaterMark = 1024) {
    super({ objectMode: true, highWaterMark });
    this.#chunks = readChunks(input, file);
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
    this.#chunks.next().then(
      ({ value, done }) => {
        this.#reading = false;
        if (this.destroyed) return;
        try {
          this.#items = done ? this.#parser.parse(EMPTY, true) : this.#parser.parse(value, false);
        } catch (error) {
          this.destroy(error as Error);
          return;
        }
        this.#next = 0;
        this.#ended = done === true;
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
    this.#chunks.return(undefined).then(
      () => callback(error),
      () => callback(error),
    );
  }
}
