import { LINES_BUFFER_BYTES, LINES_MEMORY_BUFFERS, LINES_MEMORY_LOW, linesMemory } from './lines-memory.js';

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
  readonly #region: PoolRegion | undefined;
  /** Buffers carved from the region so far. */
  #carved = 0;

  /**
   * `max`: buffers kept for reuse at most (more given back are left to the collector). `shared`: the
   * buffers are in shared memory, which another thread can read without a copy. `region`: where the
   * first buffers are carved from (the rest are made as usual).
   */
  constructor(size: number, max: number, shared = false, region?: PoolRegion) {
    this.size = size;
    this.#max = max;
    this.#shared = shared;
    this.#region = region;
  }

  /** A buffer of `size` bytes, contents undefined. */
  take(): Buffer {
    const free = this.#free.pop();
    if (free) return free;
    const region = this.#region;
    const memory = region && this.#carved < region.count ? region.memory() : undefined;
    if (memory) return Buffer.from(memory, region!.at + this.size * this.#carved++, this.size);
    return this.#shared ? Buffer.from(new SharedArrayBuffer(this.size)) : Buffer.allocUnsafeSlow(this.size);
  }

  /**
   * Hands a buffer back; one of another size is left alone, one already given back is kept once (two
   * holders would share it). Nothing may use it afterwards. A buffer of the region is always kept
   * (it is never freed): the pool keeps room for them.
   */
  give(buffer: Buffer | undefined): void {
    if (!buffer || buffer.length !== this.size || this.#free.includes(buffer)) return;
    const memory = this.#region?.memory();
    if (memory && buffer.buffer === memory) {
      // Full, it holds one of another memory (the region's buffers are no more than `max`).
      if (this.#free.length >= this.#max)
        this.#free.splice(
          this.#free.findIndex((b) => b.buffer !== memory),
          1,
        );
      this.#free.push(buffer);
    } else if (buffer.byteOffset === 0 && this.#free.length < this.#max) this.#free.push(buffer);
  }
}

/**
 * A pool's region: `count` buffers one after another from `at` in `memory()`, made when first taken
 * (undefined: no region could be made).
 */
export interface PoolRegion {
  memory: () => SharedArrayBuffer | undefined;
  at: number;
  count: number;
}

/** Read chunks of tables and result files (in shared memory: a render thread reads rows where they are). */
export const READ_POOL = new BufferPool(1024 * 1024, 16, true);

/** The serialized request lines of a batch (in shared memory: a render thread writes them). */
export const LINES_POOL = new BufferPool(LINES_BUFFER_BYTES, LINES_MEMORY_BUFFERS, true, {
  memory: () => linesMemory()?.buffer,
  at: LINES_MEMORY_LOW,
  count: LINES_MEMORY_BUFFERS,
});

/** Write buffers of files (two a file: one filling while the other is written). */
export const WRITE_POOL = new BufferPool(1024 * 1024, 8);

/** Write buffers of files hashed on the hashing thread, which reads them where they are. */
export const SHARED_WRITE_POOL = new BufferPool(1024 * 1024, 8, true);
