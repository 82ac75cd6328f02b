/** Room one output buffer offers before a new one is started. */
const BLOCK_BYTES = 2 * 1024 * 1024;

/**
 * Output space for serialized lines: `reserve(n)` guarantees n contiguous bytes, starting a new
 * block (never moving old ones) when the current one is full, so ranges handed out stay valid until
 * `reset`, which reuses the block once its lines have been copied away.
 */
export class ByteWriter {
  buffer: Buffer = Buffer.allocUnsafe(BLOCK_BYTES);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  reserve(bytes: number): void {
    if (this.pos + bytes > this.buffer.length) {
      this.buffer = Buffer.allocUnsafe(Math.max(bytes, BLOCK_BYTES));
      this.pos = 0;
    }
  }
}
