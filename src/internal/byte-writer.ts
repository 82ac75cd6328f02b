/** Room one output buffer offers before a new one is started. */
const BLOCK_BYTES = 4 * 1024 * 1024;

/**
 * Output space for serialized lines: `reserve(n)` guarantees n contiguous bytes, starting a new
 * block (never moving old ones) when the current one is full, so ranges handed out stay valid.
 */
export class ByteWriter {
  buffer: Buffer = Buffer.allocUnsafe(BLOCK_BYTES);
  pos = 0;

  reserve(bytes: number): void {
    if (this.pos + bytes > this.buffer.length) {
      this.buffer = Buffer.allocUnsafe(Math.max(bytes, BLOCK_BYTES));
      this.pos = 0;
    }
  }
}
