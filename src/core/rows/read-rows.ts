import { READ_POOL } from '../../internal/buffer-pool.js';
import type { Rejection, Row, RowValues } from '../../types.js';

function giveToReadPool(buffer: Buffer): void {
  READ_POOL.give(buffer);
}

/** What a released batch's buffer is: reading it is a bug, and says so. */
const RELEASED = Buffer.alloc(0);

/**
 * Rows over the read buffer they were found in (CSV, JSON Lines): their numbers and lines, and the
 * buffer's way back to the read pool once every stage is done with them.
 */
export abstract class ReadRows {
  /** The bytes the rows are in; the batch's own (nothing else writes to them) until released. */
  buffer: Buffer;
  /** The row number of entry 0. */
  protected readonly firstIndex: number;
  /** Each entry's line in its file. */
  protected readonly lines: Int32Array;
  /** See RowBatch.estimatedRows: set by the stream that read the batch. */
  estimatedRows: number | undefined = undefined;

  constructor(buffer: Buffer, firstIndex: number, lines: Int32Array) {
    this.buffer = buffer;
    this.firstIndex = firstIndex;
    this.lines = lines;
  }

  /** Where `release` hands the bytes: the read pool, or the thread that read them. */
  #giveBack: (buffer: Buffer) => void = giveToReadPool;

  /** Hands the bytes back to the read pool: the batch must not be read after this. */
  release(): void {
    if (this.buffer !== RELEASED) this.#giveBack(this.buffer);
    this.buffer = RELEASED;
  }

  /** Makes `release` hand the bytes to `give` (a batch read on another thread goes back there). */
  giveBackTo(give: (buffer: Buffer) => void): void {
    this.#giveBack = give;
  }

  index(i: number): number {
    return this.firstIndex + i;
  }

  line(i: number): number {
    return this.lines[i]!;
  }

  abstract rejection(i: number): Rejection | undefined;
  abstract file(i: number): string;
  abstract values(i: number): RowValues;

  /** Entry `i` as one stream item: its Row (values decoded), or its Rejection. */
  item(i: number): Row | Rejection {
    return (
      this.rejection(i) ?? {
        kind: 'row',
        index: this.index(i),
        file: this.file(i),
        line: this.line(i),
        values: this.values(i),
      }
    );
  }

  /** Throws when the batch is read after its release (a batchpipe bug, not bad input). */
  protected checkLive(): void {
    if (this.buffer === RELEASED)
      throw new Error(`a batch of ${this.constructor.name} was read after it was released (a batchpipe bug)`);
  }
}
