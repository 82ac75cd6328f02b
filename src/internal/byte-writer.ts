import type { BufferPool } from './buffer-pool.js';

/**
 * Bytes written one after another into a buffer that grows (by copying) when a write needs more
 * room. Positions into it stay valid across growth, so a batch of serialized lines can be recorded as
 * offsets and handed on as one buffer.
 */
export class ByteWriter {
  buffer: Buffer;
  pos = 0;
  readonly #pool: BufferPool | undefined;

  /**
   * `pool`: where the buffer comes from when `bytes` fits its buffers (and where an outgrown one goes
   * back). `buffer`: write into this one to begin with (it was taken from the pool by someone else).
   */
  constructor(bytes: number, pool?: BufferPool, buffer?: Buffer) {
    this.#pool = pool;
    // Off the shared small-buffer pool: the buffer is handed on whole and lives as long as its batch.
    this.buffer =
      buffer ?? (pool && bytes <= pool.size ? pool.take() : Buffer.allocUnsafeSlow(Math.max(bytes, 256)));
  }

  /** Makes room for `bytes` more bytes; returns the buffer to write them into (it may be a new one). */
  ensure(bytes: number): Buffer {
    const needed = this.pos + bytes;
    if (needed > this.buffer.length) {
      const size = Math.max(needed, this.buffer.length * 2);
      // Shared memory stays shared: another thread may be the one writing.
      const bigger =
        this.buffer.buffer instanceof SharedArrayBuffer
          ? Buffer.from(new SharedArrayBuffer(size))
          : Buffer.allocUnsafeSlow(size);
      this.buffer.copy(bigger, 0, 0, this.pos);
      this.#pool?.give(this.buffer);
      this.buffer = bigger;
    }
    return this.buffer;
  }

  /** Appends a string's UTF-8 bytes. */
  writeText(text: string): void {
    this.ensure(text.length * 3);
    this.pos += this.buffer.write(text, this.pos, 'utf8');
  }

  /**
   * Appends `text.slice(from, to)` as UTF-8 without making the slice while it is ASCII (char by char:
   * most stored JSON is, and a slice and Buffer#write cost more than short copies); the rest, from the
   * first character past ASCII, by Buffer#write.
   */
  writeTextRange(text: string, from: number, to: number): void {
    const buffer = this.ensure(to - from);
    let pos = this.pos;
    let k = from;
    for (; k < to; k++) {
      const code = text.charCodeAt(k);
      if (code >= 0x80) break;
      buffer[pos++] = code;
    }
    this.pos = pos;
    if (k < to) this.writeText(text.slice(k, to));
  }

  /** Appends `source[start, end)`. */
  writeRange(source: Buffer, start: number, end: number): void {
    const buffer = this.ensure(end - start);
    this.pos += source.copy(buffer, this.pos, start, end);
  }

  /** Hands the buffer back to the pool it came from: the writer must not be used after this. */
  release(): void {
    this.#pool?.give(this.buffer);
  }

  /** Appends bytes. */
  writeBytes(bytes: Uint8Array): void {
    const buffer = this.ensure(bytes.length);
    const n = bytes.length;
    // Short pieces by hand, where a native call costs more than the copy.
    if (n > 64) buffer.set(bytes, this.pos);
    else for (let i = 0; i < n; i++) buffer[this.pos + i] = bytes[i]!;
    this.pos += n;
  }
}
