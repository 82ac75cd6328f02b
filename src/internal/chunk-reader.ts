import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { BatchpipeError } from '../errors.js';
import { READ_POOL } from './buffer-pool.js';
import { READ_CHUNK_BYTES, type SourceInput } from './input.js';
import { readError } from './read-error.js';

/** The bytes a read made available: valid until the next `next` call. */
export interface Chunk {
  data: Buffer;
  /** The input has ended: `data` is all that is left. */
  last: boolean;
}

/**
 * Reads an input into one reused buffer, keeping the bytes the caller did not consume (an unfinished
 * row) at its front: no allocation per chunk and no copy of whole chunks to join a row across two
 * reads. The buffer grows only for a row longer than half of it, up to `maxRowBytes`.
 */
export class ChunkReader {
  readonly #file: string;
  readonly #maxRowBytes: number;
  readonly #input: SourceInput;
  #handle: FileHandle | undefined;
  #iterator: AsyncIterator<Uint8Array | string> | undefined;
  #buffer = READ_POOL.take();
  /** The buffer was handed to the caller (`detach`): the next read goes into a new one. */
  #detached = false;
  #filled = 0;
  #ended = false;
  /** Bytes of a stream chunk that did not fit the buffer yet. */
  #pending: Buffer | undefined;
  #size: number | undefined;

  constructor(input: SourceInput, file: string, maxRowBytes: number) {
    this.#input = input;
    this.#file = file;
    this.#maxRowBytes = maxRowBytes;
  }

  /**
   * Drops the first `consumed` bytes of the last chunk and reads more after the rest; with
   * `read: false` (the caller stopped early and has whole rows left) only hands back the rest.
   */
  async next(consumed: number, read = true): Promise<Chunk> {
    const tail = this.#filled - consumed;
    if (this.#detached) {
      // The last chunk now belongs to the caller: its unfinished row starts the next buffer.
      this.#detached = false;
      const fresh =
        tail * 2 > READ_POOL.size ? Buffer.allocUnsafe(Math.max(tail * 2, READ_POOL.size)) : READ_POOL.take();
      this.#buffer.copy(fresh, 0, consumed, this.#filled);
      this.#buffer = fresh;
    } else if (tail > 0 && consumed > 0) this.#buffer.copyWithin(0, consumed, this.#filled);
    this.#filled = tail;
    if (this.#ended || (!read && tail > 0))
      return { data: this.#buffer.subarray(0, tail), last: this.#ended };
    // What is left is one unfinished row: it must fit, with room to read the rest of it.
    if (tail > this.#maxRowBytes) {
      throw new BatchpipeError(
        'BP_ROW_TOO_LARGE',
        `a row is longer than ${this.#maxRowBytes} bytes (the maxRowSize option); is a quote left open?`,
        { file: this.#file },
      );
    }
    if (tail * 2 > this.#buffer.length) {
      const bigger = Buffer.allocUnsafe(this.#buffer.length * 2);
      this.#buffer.copy(bigger, 0, 0, tail);
      READ_POOL.give(this.#buffer);
      this.#buffer = bigger;
    }
    try {
      await this.#fill();
    } catch (error) {
      throw readError(error, this.#file);
    }
    return { data: this.#buffer.subarray(0, this.#filled), last: this.#ended };
  }

  async #fill(): Promise<void> {
    const input = this.#input;
    if (typeof input === 'string' || input instanceof URL) {
      if (!this.#handle) {
        this.#handle = await open(input, 'r');
        this.#size = (await this.#handle.stat()).size;
      }
      const { bytesRead } = await this.#handle.read(
        this.#buffer,
        this.#filled,
        this.#buffer.length - this.#filled,
        null,
      );
      if (bytesRead === 0) {
        this.#ended = true;
        await this.#closeInput();
      }
      this.#filled += bytesRead;
      return;
    }
    // Streams: copy what they hand out into the buffer, until it holds at least one chunk's worth.
    this.#iterator ??= (input as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
    let added = 0;
    while (added === 0 || (this.#filled < READ_CHUNK_BYTES / 2 && !this.#ended)) {
      let bytes = this.#pending;
      this.#pending = undefined;
      if (!bytes) {
        const { value, done } = await this.#iterator.next();
        if (done) {
          this.#ended = true;
          return;
        }
        bytes =
          typeof value === 'string'
            ? Buffer.from(value)
            : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      }
      const room = this.#buffer.length - this.#filled;
      if (room === 0) {
        this.#pending = bytes;
        return;
      }
      const take = Math.min(room, bytes.length);
      bytes.copy(this.#buffer, this.#filled, 0, take);
      this.#filled += take;
      added += take;
      if (take < bytes.length) this.#pending = bytes.subarray(take);
    }
  }

  /** Bytes the input file held when it was opened; undefined for a stream (or before the first read). */
  get size(): number | undefined {
    return this.#size;
  }

  /**
   * Hands the last chunk's buffer to the caller, who keeps pointing into it (a batch of rows): the
   * reader reads on into a new one.
   */
  detach(): void {
    this.#detached = true;
  }

  /** Closes the file (idempotent), stops a stream input, and hands its buffer back to the pool. */
  async close(): Promise<void> {
    if (!this.#detached) READ_POOL.give(this.#buffer);
    this.#buffer = EMPTY;
    this.#filled = 0;
    await this.#closeInput();
  }

  async #closeInput(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close();
    if (this.#iterator && !this.#ended) {
      this.#ended = true;
      await this.#iterator.return?.();
      (this.#input as Readable).destroy?.();
    }
  }
}

const EMPTY = Buffer.alloc(0);
