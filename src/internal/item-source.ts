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
    if (this.#reading) return;
    this.#reading = true;
    this.#pump().then(
      () => {
        this.#reading = false;
      },
      (error: unknown) => {
        this.#reading = false;
        this.destroy(error as Error);
      },
    );
  }

  async #pump(): Promise<void> {
    for (;;) {
      while (this.#next < this.#items.length) {
        if (!this.push(this.#items[this.#next++])) return;
      }
      this.#items = [];
      this.#next = 0;
      if (this.#ended) {
        this.push(null);
        return;
      }
      const { value, done } = await this.#chunks.next();
      if (this.destroyed) return;
      if (done) {
        this.#ended = true;
        this.#items = this.#parser.parse(EMPTY, true);
      } else {
        this.#items = this.#parser.parse(value, false);
      }
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Closes the file when a consumer stops early.
    this.#chunks.return(undefined).then(
      () => callback(error),
      () => callback(error),
    );
  }
}
