/**
 * Where the buffers of a record batch's columns come from. `FRESH_COLUMNS` makes new ones for every
 * batch; a ColumnMemory hands out the same ones again, batch after batch, once the batch before has
 * been copied (Parquet's writers copy a batch before their `write` resolves). A batch of a CSV
 * table's text column is 2-3 MB: made fresh, such buffers were external memory enough to run the
 * collector's full collections over and over.
 */
export interface ColumnBuffers {
  /** `size` bytes whose contents the caller writes (undefined until then). */
  bytes(size: number): Uint8Array;
  /** `size` bytes, all zero. */
  zeroed(size: number): Uint8Array;
  /** `n` 32-bit integers whose contents the caller writes. */
  int32(n: number): Int32Array;
}

/** New buffers for every batch (`bytes` not zeroed: the caller writes what it hands on). */
export const FRESH_COLUMNS: ColumnBuffers = {
  bytes: (size) => new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size),
  zeroed: (size) => new Uint8Array(size),
  int32: (n) => new Int32Array(n),
};

/** Room over the size asked for, so a slightly larger next batch fits the same buffer. */
const HEADROOM = 1.25;

/**
 * Buffers handed out in the order asked and asked for again in the same order by every batch (a
 * batch's columns are made in schema order), so the n-th buffer of a batch is the n-th of the last.
 * A buffer too small for what is asked is replaced by a larger one. Memory: one batch's columns.
 */
export class ColumnMemory implements ColumnBuffers {
  readonly #buffers: ArrayBuffer[] = [];
  #next = 0;

  bytes(size: number): Uint8Array {
    return new Uint8Array(this.#take(size), 0, size);
  }

  zeroed(size: number): Uint8Array {
    return this.bytes(size).fill(0);
  }

  int32(n: number): Int32Array {
    return new Int32Array(this.#take(n * 4), 0, n);
  }

  /** The last batch is copied: its buffers are handed out again, from the first. */
  reuse(): void {
    this.#next = 0;
  }

  #take(size: number): ArrayBuffer {
    const at = this.#next++;
    const buffer = this.#buffers[at];
    if (buffer && buffer.byteLength >= size) return buffer;
    const made = new ArrayBuffer(Math.ceil((size * HEADROOM) / 8) * 8);
    this.#buffers[at] = made;
    return made;
  }
}
