import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { BatchpipeError } from '../errors.js';

/** Bytes gathered before one write: large enough that syscalls are noise, small enough to stay flat. */
const FLUSH_BYTES = 1 << 20;

/**
 * A file written through a buffer, hashed as it goes, under a temporary name until `close` renames
 * it into place: a crash never leaves a half-written file under the final name. Takes text (joined
 * and encoded once per flush) or byte ranges (adjacent ranges of one buffer are merged, not copied).
 */
export class BufferedFile {
  readonly path: string;
  readonly #temp: string;
  readonly #hash: Hash;
  #handle: Promise<FileHandle> | undefined;
  #writing: Promise<void> | undefined;
  #text = '';
  #parts: Buffer[] = [];
  #pendingBytes = 0;
  #bytes = 0;

  constructor(path: string) {
    this.path = path;
    this.#temp = `${path}.partial`;
    this.#hash = createHash('sha256');
  }

  /** Bytes written so far, including what is still buffered. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Appends text of `bytes` UTF-8 bytes; returns a promise only when it flushed (backpressure). */
  append(text: string, bytes: number): Promise<void> | undefined {
    this.#text += text;
    return this.#added(bytes);
  }

  /** Appends `data[start, end)`; the bytes must stay untouched until flushed. */
  appendBytes(data: Buffer, start: number, end: number): Promise<void> | undefined {
    if (this.#text !== '') this.#textToPart();
    const last = this.#parts[this.#parts.length - 1];
    if (last && last.buffer === data.buffer && last.byteOffset + last.length === data.byteOffset + start) {
      this.#parts[this.#parts.length - 1] = data.subarray(last.byteOffset - data.byteOffset, end);
    } else {
      this.#parts.push(data.subarray(start, end));
    }
    return this.#added(end - start);
  }

  #added(bytes: number): Promise<void> | undefined {
    this.#bytes += bytes;
    this.#pendingBytes += bytes;
    return this.#pendingBytes >= FLUSH_BYTES ? this.#flush() : undefined;
  }

  #textToPart(): void {
    this.#parts.push(Buffer.from(this.#text, 'utf8'));
    this.#text = '';
  }

  /**
   * Starts writing what is buffered; resolves once the write before it is done, so one write is
   * always in flight while the caller fills the next buffer.
   */
  async #flush(): Promise<void> {
    if (this.#text !== '') this.#textToPart();
    if (this.#parts.length === 0) return;
    const parts = this.#parts;
    this.#parts = [];
    this.#pendingBytes = 0;
    for (const part of parts) this.#hash.update(part);
    const previous = this.#writing;
    this.#handle ??= open(this.#temp, 'w');
    const handle = this.#handle;
    this.#writing = (async () => {
      await previous;
      try {
        await (await handle).writev(parts);
      } catch (error) {
        throw new BatchpipeError(
          'BP_OUTPUT_WRITE',
          `cannot write ${this.#temp}: ${(error as Error).message}`,
          {},
          { cause: error },
        );
      }
    })();
    // Unhandled until awaited: a failed write surfaces at the next flush or at close.
    this.#writing.catch(() => undefined);
    await previous;
  }

  /** Flushes, syncs to disk, renames into place; returns the file's sha256. */
  async close(): Promise<string> {
    await this.#flush();
    await this.#writing;
    this.#handle ??= open(this.#temp, 'w');
    const handle = await this.#handle;
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(this.#temp, this.path);
    return this.#hash.digest('hex');
  }

  /** Drops the temporary file (after a failed run). */
  async discard(): Promise<void> {
    this.#text = '';
    this.#parts = [];
    await this.#writing?.catch(() => undefined);
    if (this.#handle) await (await this.#handle.catch(() => undefined))?.close().catch(() => undefined);
    await rm(this.#temp, { force: true });
  }
}
