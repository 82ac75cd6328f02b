import { Readable } from 'node:stream';
import { type BatchEmitter, type ItemBatch, kEmitBatches } from './batch-protocol.js';

/**
 * An object-mode Readable over batches that a reader makes itself (record batches of a columnar
 * file, not chunks of bytes: see BatchReadable for those): the next batch is read only when the
 * consumer wants more. It hands each batch whole to a batchpipe stage that asked for batches, and its
 * items one at a time to anything else.
 */
export class BatchIteratorReadable<T, B extends ItemBatch<T> = ItemBatch<T>>
  extends Readable
  implements BatchEmitter
{
  readonly #open: () => AsyncIterator<B>;
  #batches = false;
  #iterator: AsyncIterator<B> | undefined;
  #batch: B | undefined;
  #next = 0;
  #reading = false;

  constructor(open: () => AsyncIterator<B>) {
    super({ objectMode: true, highWaterMark: 1 });
    this.#open = open;
  }

  [kEmitBatches](): void {
    this.#batches = true;
  }

  override _read(): void {
    this.#drain();
  }

  #drain(): void {
    const batch = this.#batch;
    if (batch) {
      if (this.#batches) {
        this.#batch = undefined;
        if (!this.push(batch)) return;
      } else {
        while (this.#next < batch.length) if (!this.push(batch.item(this.#next++))) return;
        this.#batch = undefined;
        batch.release?.();
      }
    }
    if (this.#reading) return;
    this.#reading = true;
    this.#iterator ??= this.#open();
    this.#iterator.next().then(
      (next) => {
        this.#reading = false;
        if (this.destroyed) {
          // Destroyed while this batch was read: close the reader now (see _destroy).
          if (!next.done) this.#iterator?.return?.(undefined).catch(() => undefined);
          return;
        }
        if (next.done) {
          this.push(null);
          return;
        }
        this.#batch = next.value;
        this.#next = 0;
        this.#drain();
      },
      (error: unknown) => {
        this.#reading = false;
        this.destroy(error as Error);
      },
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // A consumer that stops early closes the reader (its finally blocks free the file).
    const iterator = this.#iterator;
    if (!iterator?.return || this.#reading) {
      callback(error);
      return;
    }
    iterator.return(undefined).then(
      () => callback(error),
      () => callback(error),
    );
  }
}
