/**
 * The shared memory the page decoder writes batches into, used again once every batch over it is
 * released. Shared memory is not counted as the collector's external memory, so a buffer made per
 * batch lived until some unrelated full collection on every thread that had seen it: reading 1M bench
 * rows held 400-600 MB of dead batches. Recycled, the buffers are those of the batches in flight.
 */

/** Buffers the main thread keeps for the decode threads, handed to them with each request. */
export class SharedBufferPool {
  readonly #free: SharedArrayBuffer[] = [];
  readonly #maxBytes: number;
  #bytes = 0;

  /** `maxBytes`: what the pool keeps at most; buffers given back beyond it are left to the collector. */
  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Bytes kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Buffers nothing reads any more (a released batch's, or a thread's unused ones). */
  give(buffers: Iterable<SharedArrayBuffer>): void {
    for (const buffer of buffers) {
      if (this.#bytes + buffer.byteLength > this.#maxBytes) continue;
      this.#free.push(buffer);
      this.#bytes += buffer.byteLength;
    }
  }

  /** Every buffer kept, for a decode thread to write the next batch into (it sends back what it did not use). */
  takeAll(): SharedArrayBuffer[] {
    const all = this.#free.splice(0);
    this.#bytes = 0;
    return all;
  }
}

/** New buffers have this much room over the size asked for, so a later, slightly larger batch fits one. */
const HEADROOM = 1.125;
/** A free buffer is used for a request of at least this part of its size (not a large one for a small need). */
const FIT = 4;
const PAGE = 4096;

/**
 * A decode thread's buffers for the batch it writes: the pool's (the smallest that fits), else new
 * ones. Contents are undefined: the page decoder writes every byte it hands out.
 */
export class BatchBuffers {
  readonly #free: SharedArrayBuffer[];

  constructor(free: SharedArrayBuffer[] = []) {
    this.#free = free.sort((a, b) => a.byteLength - b.byteLength);
  }

  /** `size` bytes of shared memory. */
  take(size: number): Uint8Array {
    if (size === 0) return new Uint8Array(new SharedArrayBuffer(0));
    const free = this.#free;
    for (let i = 0; i < free.length; i++) {
      const buffer = free[i]!;
      if (buffer.byteLength < size) continue;
      if (buffer.byteLength > size * FIT + PAGE) break;
      free.splice(i, 1);
      return new Uint8Array(buffer, 0, size);
    }
    const room = Math.ceil((size * HEADROOM) / PAGE) * PAGE;
    return new Uint8Array(new SharedArrayBuffer(room), 0, size);
  }

  /** A buffer taken and then not handed out (outgrown): it can be taken again. */
  drop(view: Uint8Array): void {
    const buffer = view.buffer;
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength === 0) return;
    const at = this.#free.findIndex((b) => b.byteLength >= buffer.byteLength);
    this.#free.splice(at === -1 ? this.#free.length : at, 0, buffer);
  }

  /** The buffers not used, to go back to the pool. */
  unused(): SharedArrayBuffer[] {
    return this.#free.splice(0);
  }
}
