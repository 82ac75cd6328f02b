/**
 * Buffers of one size, handed back when their holder is done and handed out again. A million-row
 * run reads and writes hundreds of 1-2 MiB buffers; made afresh, each is garbage that V8 counts only
 * as external memory and frees late, so peak memory grew with the run (prepare at 1M rows: 200 MB with
 * fresh buffers per batch). A pool keeps it to the buffers in flight.
 */
export class BufferPool {
  readonly size: number;
  readonly #max: number;
  readonly #shared: boolean;
  readonly #free: Buffer[] = [];

  /**
   * `max`: buffers kept for reuse at most (more given back are left to the collector). `shared`: the
   * buffers are in shared memory, which another thread can read without a copy.
   */
  constructor(size: number, max: number, shared = false) {
    this.size = size;
    this.#max = max;
    this.#shared = shared;
  }

  /** A buffer of `size` bytes, contents undefined. */
  take(): Buffer {
    const free = this.#free.pop();
    if (free) return free;
    return this.#shared ? Buffer.from(new SharedArrayBuffer(this.size)) : Buffer.allocUnsafeSlow(this.size);
  }

  /**
   * Hands a buffer back; one of another size is left alone, one already given back is kept once (two
   * holders would share it). Nothing may use it afterwards.
   */
  give(buffer: Buffer | undefined): void {
    if (
      buffer &&
      buffer.length === this.size &&
      buffer.byteOffset === 0 &&
      this.#free.length < this.#max &&
      !this.#free.includes(buffer)
    )
      this.#free.push(buffer);
  }
}

/** Read chunks of tables and result files (in shared memory: a render thread reads rows where they are). */
export const READ_POOL = new BufferPool(1024 * 1024, 16, true);

/** The serialized request lines of a batch (in shared memory: a render thread writes them). */
export const LINES_POOL = new BufferPool(2 * 1024 * 1024, 16, true);

/** Write buffers of files (two a file: one filling while the other is written). */
export const WRITE_POOL = new BufferPool(1024 * 1024, 8);

/** Write buffers of files hashed on the hashing thread, which reads them where they are. */
export const SHARED_WRITE_POOL = new BufferPool(1024 * 1024, 8, true);
