import { Readable } from 'node:stream';
import { ChunkReader } from '../internal/chunk-reader.js';
import type { SourceInput } from '../internal/input.js';
import { type BatchEmitter, type ItemBatch, kEmitBatches } from './batch-protocol.js';

/** Turns chunks of bytes into batches. */
export interface BatchParser<B> {
  /**
   * Parses a chunk (`last` marks the end of input); the chunk is only valid during the call. Returns
   * the batch it completed, if any, and how many bytes it used up (the rest comes back, followed by
   * more input).
   */
  parse(
    chunk: Buffer,
    last: boolean,
  ): { batch: B | undefined; consumed: number; holdsChunk?: boolean; stopped?: boolean };
  /** Called before the first chunk of each input, when a source reads several one after another. */
  startFile?(file: string): void;
}

/**
 * An object-mode Readable over chunked inputs (one, or several read one after another): reads a chunk
 * only when the consumer wants more, so memory is a chunk or two, whatever the file size. It emits
 * each chunk's batch whole to a batchpipe stage that asked for batches (see batch-protocol.ts), and
 * the batch's items one at a time to anything else.
 */
export class BatchReadable<T, B extends ItemBatch<T> = ItemBatch<T>>
  extends Readable
  implements BatchEmitter
{
  readonly #inputs: SourceInput[];
  readonly #files: string[];
  readonly #parser: BatchParser<B>;
  readonly #maxRowBytes: number;
  #batches = false;
  #input = -1;
  #reader: ChunkReader | undefined;
  /** The batch being handed on item by item, and the next item. */
  #batch: B | undefined;
  #next = 0;
  #consumed = 0;
  /** Of the file being read: bytes parsed into rows so far, and the entries they made. */
  #fileBytesUsed = 0;
  #fileEntries = 0;
  /** The parser stopped early with whole rows left: they come first, before more is read. */
  #stopped = false;
  #reading = false;
  #ended = false;

  constructor(
    input: SourceInput | SourceInput[],
    file: string | string[],
    parser: BatchParser<B>,
    maxRowBytes = Number.MAX_SAFE_INTEGER,
  ) {
    // Two objects: two batches ahead is plenty, and one row at a time costs no more per row.
    super({ objectMode: true, highWaterMark: 1 });
    this.#inputs = Array.isArray(input) ? input : [input];
    this.#files = Array.isArray(file) ? file : [file];
    this.#parser = parser;
    this.#maxRowBytes = maxRowBytes;
  }

  [kEmitBatches](): void {
    this.#batches = true;
  }

  /** Whether batches are handed on whole. */
  get emitsBatches(): boolean {
    return this.#batches;
  }

  override _read(): void {
    this.#drain();
  }

  /** Pushes what is parsed until the consumer is full; when it runs out, parses the next chunk. */
  #drain(): void {
    const batch = this.#batch;
    if (batch) {
      if (this.#batches && this.#next === 0) {
        this.#batch = undefined;
        if (!this.push(batch)) return;
      } else {
        while (this.#next < batch.length) {
          if (!this.push(batch.item(this.#next++))) return;
        }
        // Its items are copies: what the batch holds can be used again.
        this.#batch = undefined;
        batch.release?.();
      }
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
    this.#next = 0;
    for (;;) {
      if (!this.#reader) {
        if (++this.#input >= this.#inputs.length) {
          this.#ended = true;
          return;
        }
        const file = this.#files[this.#input] ?? '<stream>';
        this.#reader = new ChunkReader(this.#inputs[this.#input]!, file, this.#maxRowBytes);
        this.#parser.startFile?.(file);
        this.#consumed = 0;
        this.#fileBytesUsed = 0;
        this.#fileEntries = 0;
      }
      const { data, last } = await this.#reader.next(this.#consumed, !this.#stopped);
      if (this.destroyed) return;
      const { batch, consumed, holdsChunk, stopped } = this.#parser.parse(data, last);
      this.#consumed = consumed;
      this.#fileBytesUsed += consumed;
      this.#stopped = stopped === true;
      const size = this.#reader.size;
      // The batch points into the chunk: the reader must not read over it.
      if (holdsChunk) this.#reader.detach();
      if (last && !this.#stopped) {
        await this.#reader.close();
        this.#reader = undefined;
      }
      if (batch && batch.length > 0) {
        this.#fileEntries += batch.length;
        // The file's size over the bytes its entries so far took (a thread worth starting at once
        // for a large table: see RequestMaker). A batch that has no such field is left as it is.
        if (size !== undefined && this.#fileBytesUsed > 0 && 'estimatedRows' in batch)
          batch.estimatedRows = Math.round((this.#fileEntries * size) / this.#fileBytesUsed);
        this.#batch = batch;
        return;
      }
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
