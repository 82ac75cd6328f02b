/**
 * Result lines written straight into bytes. Building each line as a template string and joining a
 * window of them costs ~6 us a line on Node 20 (every line is a rope V8 must flatten, then the join
 * is encoded again); writing the pieces into one buffer costs about a quarter of that.
 */
export class LineBuffer {
  #buffer: Buffer;
  #length = 0;
  /** Where each line ends, so a window's lines can be written in another order. */
  #ends: number[] = [];
  #spare: Buffer | undefined;
  lines = 0;

  constructor(size = 1024 * 1024) {
    this.#buffer = Buffer.allocUnsafe(size);
  }

  get byteLength(): number {
    return this.#length;
  }

  /** Text known to be ASCII (field names, numbers, ids made here). */
  ascii(text: string): this {
    this.#reserve(text.length);
    this.#length += this.#buffer.write(text, this.#length, 'latin1');
    return this;
  }

  /** Any text, as UTF-8. */
  utf8(text: string): this {
    this.#reserve(text.length * 3);
    this.#length += this.#buffer.write(text, this.#length, 'utf8');
    return this;
  }

  /** Ends the line written since the last call (its text must end with a newline). */
  endLine(): void {
    this.#ends.push(this.#length);
    this.lines++;
  }

  clear(): void {
    this.#length = 0;
    this.#ends.length = 0;
    this.lines = 0;
  }

  /** The bytes written so far (a view, valid until the next write). */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  /**
   * The lines written so far in an order drawn from `random` (never their own order when there are
   * two or more): a view, valid until the next write. One copy of the bytes, into a reused buffer.
   */
  shuffled(random: () => number): Buffer {
    const n = this.#ends.length;
    if (n < 2) return this.bytes();
    const order = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    // The draw may leave every line in place; a rotation by one then shows the order is not kept.
    if (order.every((v, i) => v === i)) order.push(order.shift()!);
    if (this.#spare === undefined || this.#spare.length < this.#length)
      this.#spare = Buffer.allocUnsafe(Math.max(this.#length, this.#buffer.length));
    let at = 0;
    for (const i of order) {
      const start = i === 0 ? 0 : this.#ends[i - 1]!;
      at += this.#buffer.copy(this.#spare, at, start, this.#ends[i]!);
    }
    return this.#spare.subarray(0, at);
  }

  #reserve(bytes: number): void {
    const need = this.#length + bytes;
    if (need <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.#buffer.length * 2));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}
