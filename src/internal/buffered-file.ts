import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { type BufferPool, SHARED_WRITE_POOL, WRITE_POOL } from './buffer-pool.js';
import { writeAll } from './durable-write.js';
import { StreamHash } from './hash-thread.js';
import { outputError } from './output-error.js';

/**
 * Bytes gathered before one write: large enough that syscalls are noise, small enough to stay flat.
 * Buffers come from a pool and go back when a file closes: a run writes a file per shard (20 at a
 * million rows), and each file's buffers left to the collector were reclaimed late, so peak RSS grew
 * with the number of files (measured: 18 MB more at 1M rows).
 */
const BUFFER_BYTES = WRITE_POOL.size;

/**
 * Written bytes after which the file is synced in the background while writing goes on: the sync at
 * `close` then has at most this much left to flush, instead of the whole file while the job waits
 * (measured at 1M rows: 0.3 s of a 5.7 s join spent in its final sync of 740 MB).
 */
const SYNC_EVERY_BYTES = 64 * 1024 * 1024;

export interface BufferedFileOptions {
  /** Hash the bytes as they are written (sha256, from `close`); large files are hashed on a thread of their own. */
  hash?: boolean;
  /**
   * Writes in flight while the next buffer fills (default 1): more lets the writer run ahead of a
   * disk thread that is slow to be scheduled (a busy machine), a buffer each.
   */
  writesAhead?: number;
  /** Written bytes after which a background sync starts (default 64 MiB). */
  syncEveryBytes?: number;
}

/**
 * A file written through reused buffers (one filling while the other, or `writesAhead` others, are
 * written), optionally hashed as it goes, under a temporary name until `close` renames it into place:
 * a crash never leaves a half-written file under the final name. Memory is `writesAhead + 1`
 * buffers, whatever the file size, and writing makes no garbage.
 */
export class BufferedFile {
  readonly path: string;
  readonly #temp: string;
  readonly #hash: StreamHash | undefined;
  /** Where the buffers come from: shared memory when the hashing thread reads them. */
  readonly #pool: BufferPool;
  #handle: Promise<FileHandle> | undefined;
  #writing: Promise<void> | undefined;
  #buffer: Buffer;
  /** Buffers being written, oldest first, each with the write (and hash) that frees it. */
  #inFlight: Array<{ buffer: Buffer; done: Promise<void> }> = [];
  readonly #writesAhead: number;
  readonly #syncEvery: number;
  #pos = 0;
  #bytes = 0;
  /** Bytes written since the last background sync began, and that sync while it runs. */
  #unsynced = 0;
  #syncing: Promise<void> | undefined;
  #ended = false;
  #discarded = false;

  constructor(path: string, options: BufferedFileOptions = {}) {
    this.path = path;
    this.#temp = `${path}.partial`;
    this.#hash = options.hash ? new StreamHash(BUFFER_BYTES / 2) : undefined;
    this.#pool = options.hash ? SHARED_WRITE_POOL : WRITE_POOL;
    this.#buffer = this.#pool.take();
    this.#writesAhead = Math.max(1, options.writesAhead ?? 1);
    this.#syncEvery = options.syncEveryBytes ?? SYNC_EVERY_BYTES;
  }

  /** Bytes written so far, including what is still buffered. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends text of `bytes` UTF-8 bytes; returns a promise only when it had to wait for a write. */
  append(text: string, bytes: number): Promise<void> | undefined {
    if (this.#ended) this.#afterEnd();
    if (bytes > this.#buffer.length - this.#pos)
      return this.#flushThen(
        () => this.append(text, bytes),
        bytes,
        () => Buffer.from(text, 'utf8'),
      );
    this.#pos += this.#buffer.write(text, this.#pos, 'utf8');
    this.#bytes += bytes;
    return undefined;
  }

  /**
   * Appends `data[start, end)` where it is, not copied: what is buffered is written first, then these
   * bytes. The promise says when `data` may be written again. For bytes in shared memory, which a
   * copy reads a byte at a time when the two addresses differ mod 8 (~12 ms of the main thread for a
   * million rows' key records, against ~2 aligned).
   */
  async appendInPlace(data: Buffer, start: number, end: number): Promise<void> {
    if (this.#ended) this.#afterEnd();
    await this.#flush();
    await this.#writeWhole(data.subarray(start, end));
  }

  /** Appends a copy of `data[start, end)`. */
  appendBytes(data: Buffer, start: number, end: number): Promise<void> | undefined {
    if (this.#ended) this.#afterEnd();
    const bytes = end - start;
    if (bytes > this.#buffer.length - this.#pos) {
      return this.#flushThen(
        () => this.appendBytes(data, start, end),
        bytes,
        () => data.subarray(start, end),
      );
    }
    this.#pos += data.copy(this.#buffer, this.#pos, start, end);
    this.#bytes += bytes;
    return undefined;
  }

  /** Writes what is buffered, then appends; something larger than a buffer is written on its own. */
  async #flushThen(
    append: () => Promise<void> | undefined,
    bytes: number,
    whole: () => Buffer,
  ): Promise<void> {
    // The file outgrows its buffer: it is hashed as a large one, from its first part on.
    this.#hash?.expect(this.#bytes + bytes);
    await this.#flush();
    if (bytes <= this.#buffer.length) {
      await append();
      return;
    }
    await this.#writeWhole(whole());
  }

  /** Writes `data` on its own, after what is buffered was flushed, hashed with the rest. */
  async #writeWhole(data: Buffer): Promise<void> {
    const hashed = this.#hash?.update(data);
    this.#bytes += data.length;
    await this.#write(data);
    await hashed;
  }

  /**
   * Starts writing the filled buffer and switches to another; resolves once no more than
   * `writesAhead` writes are in flight, so one (or more) is always under way while the caller fills
   * the next buffer.
   */
  async #flush(): Promise<void> {
    if (this.#pos === 0) return;
    const filled = this.#buffer.subarray(0, this.#pos);
    // The buffer is reused once both its write and its hash are done.
    const hashed = this.#hash?.update(filled);
    const previous = this.#writing;
    const written = this.#writeAfter(previous, filled);
    this.#writing = hashed ? Promise.all([written, hashed]).then(() => undefined) : written;
    // Unhandled until awaited: a failed write surfaces at the next flush or at close.
    this.#writing.catch(() => undefined);
    this.#inFlight.push({ buffer: this.#buffer, done: this.#writing });
    // The oldest write is waited for (and its buffer filled next) once `writesAhead` are in flight.
    const oldest = this.#inFlight.length > this.#writesAhead ? this.#inFlight.shift() : undefined;
    if (!oldest) {
      this.#buffer = this.#pool.take();
      this.#pos = 0;
      return;
    }
    try {
      await oldest.done;
    } finally {
      // Even when that write failed: the filled buffer is now only in flight, so a discard gives
      // each buffer back to the pool once (twice, two files would later share one).
      this.#buffer = oldest.buffer;
      this.#pos = 0;
    }
  }

  async #writeAfter(previous: Promise<void> | undefined, data: Buffer): Promise<void> {
    await previous;
    try {
      this.#handle ??= open(this.#temp, 'w');
      // Every byte, or the disk's refusal: a short write must not pass for a whole one.
      const handle = await this.#handle;
      await writeAll(handle, data);
      this.#unsynced += data.length;
      if (this.#unsynced >= this.#syncEvery && this.#syncing === undefined) {
        this.#unsynced = 0;
        // Not awaited here: it runs beside the next writes; its failure surfaces at `close`.
        const syncing = handle.datasync();
        this.#syncing = syncing;
        syncing.then(
          () => {
            if (this.#syncing === syncing) this.#syncing = undefined;
          },
          () => undefined,
        );
      }
    } catch (error) {
      throw outputError(this.path, error);
    }
  }

  async #write(data: Buffer): Promise<void> {
    const previous = this.#writing;
    this.#writing = this.#writeAfter(previous, data);
    await this.#writing;
  }

  /** Closed or discarded: a late write would make a file nothing removes. */
  #afterEnd(): never {
    throw new Error(`${this.path} was written after it was closed or discarded (a batchpipe bug)`);
  }

  /**
   * Flushes, syncs to disk, renames into place; returns the file's sha256 (when hashing, else "").
   * When anything fails (a write, the sync, the rename), the temporary file is removed and the error
   * (BP_OUTPUT_WRITE or BP_OUTPUT_PATH, naming the file) thrown: nothing is left under either name.
   */
  async close(): Promise<string> {
    try {
      await this.#flush();
      await this.#writing;
      this.#handle ??= open(this.#temp, 'w');
      const handle = await this.#handle;
      this.#handle = undefined;
      try {
        // A failed background sync keeps its promise, so its error is thrown here.
        await this.#syncing;
        // A lazy file system reports a full disk here, at the latest.
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await rename(this.#temp, this.path);
    } catch (error) {
      await this.discard();
      throw outputError(this.path, error);
    }
    this.#ended = true;
    // In place: nothing is left for a discard to undo.
    this.#discarded = true;
    this.#release();
    return this.#hash ? await this.#hash.digest() : '';
  }

  /** Hands the buffers on to the next file: every write from them has finished. */
  #release(): void {
    this.#pool.give(this.#buffer);
    for (const { buffer } of this.#inFlight) this.#pool.give(buffer);
    this.#inFlight = [];
    this.#buffer = Buffer.alloc(0);
  }

  /** Drops the temporary file (after a failed run); a second call does nothing. */
  async discard(): Promise<void> {
    if (this.#discarded) return;
    this.#discarded = true;
    this.#ended = true;
    this.#pos = 0;
    await this.#writing?.catch(() => undefined);
    await this.#syncing?.catch(() => undefined);
    if (this.#handle) await (await this.#handle.catch(() => undefined))?.close().catch(() => undefined);
    this.#handle = undefined;
    await rm(this.#temp, { force: true }).catch(() => undefined);
    // Lets the hashing thread drop this file's state (the digest itself is of no use).
    await this.#hash?.digest().catch(() => undefined);
    this.#release();
  }
}
