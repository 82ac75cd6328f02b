import { isAscii } from 'node:buffer';
import { type FileHandle, open } from 'node:fs/promises';
import { BatchpipeError } from '../../errors.js';
import { copyBytes } from '../../internal/copy-bytes.js';
import { decodeText } from '../../internal/decode-text.js';
import { writeAll } from '../../internal/durable-write.js';

/**
 * Bytes a partition gathers before it goes to disk as one block: big enough that writes are few, and
 * small because every partition of every file being written holds one (a join writes three files
 * of 128 partitions at once, and at 64 KiB their filled blocks alone put 24 MB on the peak RSS of a
 * million rows, against about 8 MB at 100,000, whose blocks never fill).
 */
const BLOCK_BYTES = 32 * 1024;
/** UTF-8 bytes a UTF-16 unit can take. */
const MAX_BYTES_PER_CHAR = 3;
/** Block writes in flight before `append` asks the caller to wait. */
const MAX_WRITES = 8;
const LF = 0x0a;
const TAB = 0x09;

/**
 * Lines sorted into partitions on disk, all in one file: each partition gathers text in memory and
 * writes it as a block at the end of the file, and an in-memory index (two numbers per block)
 * says where each partition's blocks are. One file handle whatever the partition count, sequential
 * writes, and a partition reads back in order as its blocks. Lines must end with "\n".
 * `partitions` are made at once; a partition past them is added when first written (a join by row
 * ranges does not know how many ranges its results reach), and reads as empty in a file that has none.
 */
export class SpillFile {
  readonly path: string;
  readonly partitions: number;
  /** Per partition: the block being filled (bytes stay off the JS heap, and nothing is garbage until written). */
  readonly #pending: Array<Buffer | undefined>;
  readonly #filled: number[];
  /** Per partition: offset, length, offset, length, ... */
  readonly #blocks: number[][];
  readonly #writes = new Set<Promise<void>>();
  /**
   * Written blocks, reused: a fresh buffer per block is freed memory the allocator keeps, and
   * peak RSS grew with the input by that churn alone.
   */
  readonly #free: Buffer[] = [];
  #readBuffer: Buffer = Buffer.alloc(0);
  #reading = false;
  #handle: Promise<FileHandle> | undefined;
  /** "w+" for a file this one writes; "r" for one another thread wrote. */
  readonly #mode: 'w+' | 'r';
  #end = 0;
  #failure: unknown;

  constructor(path: string, partitions: number, blocks?: number[][]) {
    this.path = path;
    this.partitions = partitions;
    this.#pending = new Array<Buffer | undefined>(partitions).fill(undefined);
    this.#filled = new Array<number>(partitions).fill(0);
    this.#blocks = blocks ?? Array.from({ length: partitions }, () => []);
    this.#mode = blocks ? 'r' : 'w+';
  }

  /** A spill file another thread wrote, to read back with the index it reported. */
  static written(path: string, blocks: number[][]): SpillFile {
    return new SpillFile(path, blocks.length, blocks);
  }

  /** Where each partition's blocks are (after `flush`): what `written` needs to read the file back. */
  get index(): number[][] {
    return this.#blocks;
  }

  /** Bytes on disk so far. */
  get bytes(): number {
    return this.#end;
  }

  /** Adds text (whole lines) to a partition; returns a promise only when the caller should wait. */
  append(partition: number, text: string): Promise<void> | undefined {
    const waiting = this.#reserve(partition, text.length * MAX_BYTES_PER_CHAR);
    const filled = this.#filled[partition]!;
    this.#filled[partition] = filled + this.#pending[partition]!.write(text, filled, 'utf8');
    return waiting;
  }

  /** Adds the bytes `data[start, end)` (whole lines) to a partition; as `append`. */
  appendBytes(partition: number, data: Buffer, start: number, end: number): Promise<void> | undefined {
    const waiting = this.#reserve(partition, end - start);
    this.#filled[partition] = copyBytes(
      data,
      start,
      end,
      this.#pending[partition]!,
      this.#filled[partition]!,
    );
    return waiting;
  }

  /**
   * Adds the line `a[aStart, aEnd)`, a tab, `b[bStart, bEnd)` and a newline to a partition, from
   * bytes (no string made); returns a promise only when the caller should wait.
   */
  appendLine(
    partition: number,
    a: Buffer,
    aStart: number,
    aEnd: number,
    b: Buffer,
    bStart: number,
    bEnd: number,
  ): Promise<void> | undefined {
    const waiting = this.#reserve(partition, aEnd - aStart + bEnd - bStart + 2);
    const block = this.#pending[partition]!;
    let filled = copyBytes(a, aStart, aEnd, block, this.#filled[partition]!);
    block[filled++] = TAB;
    filled = copyBytes(b, bStart, bEnd, block, filled);
    block[filled++] = LF;
    this.#filled[partition] = filled;
    return waiting;
  }

  /**
   * Makes room for `most` bytes in a partition's pending block: a full block goes to disk first (the
   * promise returned, when there is one, is the caller's to wait on). A line longer than a block gets
   * a block of its own size.
   */
  #reserve(partition: number, most: number): Promise<void> | undefined {
    if (partition >= this.#blocks.length) this.#add(partition);
    const block = this.#pending[partition];
    if (block && this.#filled[partition]! + most <= block.length) return undefined;
    const waiting = block ? this.flushPartition(partition) : undefined;
    this.#pending[partition] =
      most > BLOCK_BYTES ? Buffer.allocUnsafe(most) : (this.#free.pop() ?? Buffer.allocUnsafe(BLOCK_BYTES));
    this.#filled[partition] = 0;
    return waiting;
  }

  /** Adds partitions up to `partition`. */
  #add(partition: number): void {
    for (let p = this.#blocks.length; p <= partition; p++) {
      this.#pending.push(undefined);
      this.#filled.push(0);
      this.#blocks.push([]);
    }
  }

  /** Partitions so far: `partitions`, and any added past them. */
  get partitionCount(): number {
    return this.#blocks.length;
  }

  /** Writes `block[0, length)`; a full-size block goes back to the free list once written. */
  #write(partition: number, block: Buffer, length: number): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    const data = block.subarray(0, length);
    const at = this.#end;
    this.#end += data.length;
    this.#blocks[partition]!.push(at, data.length);
    this.#handle ??= open(this.path, this.#mode);
    const handle = this.#handle;
    // Each block has its own place in the file, so writes may run side by side in any order.
    const write: Promise<void> = handle
      // Every byte at its place: a short write would leave a hole read back as zeros.
      .then((h) => writeAll(h, data, at))
      .then(
        () => {
          this.#writes.delete(write);
          if (block.length === BLOCK_BYTES) this.#free.push(block);
        },
        (error: unknown) => {
          this.#writes.delete(write);
          this.#failure ??= writeError(this.path, error);
        },
      );
    this.#writes.add(write);
    if (this.#writes.size < MAX_WRITES) return undefined;
    return Promise.race(this.#writes).then(() => this.#check());
  }

  #check(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Writes what one partition holds now (a partition that is done need not hold its block to the end). */
  flushPartition(partition: number): Promise<void> | undefined {
    const block = this.#pending[partition];
    const filled = this.#filled[partition]!;
    if (!block || filled === 0) return undefined;
    this.#pending[partition] = undefined;
    this.#filled[partition] = 0;
    return this.#write(partition, block, filled);
  }

  /**
   * Writes what every partition holds and waits for all writes. The reused blocks are let go: a file
   * is flushed when its writing is done, and a join's three files held a block per partition each
   * through the output pass for nothing (more appends simply allocate again).
   */
  async flush(): Promise<void> {
    for (let p = 0; p < this.#pending.length; p++) {
      const waiting = this.flushPartition(p);
      if (waiting) await waiting;
    }
    await Promise.all(this.#writes);
    this.#free.length = 0;
    this.#check();
  }

  /** How many blocks a partition has on disk (after `flush`). */
  blockCount(partition: number): number {
    return (this.#blocks[partition]?.length ?? 0) / 2;
  }

  /** Bytes of one block of a partition. */
  blockLength(partition: number, block: number): number {
    return this.#blocks[partition]![block * 2 + 1]!;
  }

  /** Bytes of all a partition's blocks (after `flush`). */
  partitionLength(partition: number): number {
    let length = 0;
    for (let b = 0; b < this.blockCount(partition); b++) length += this.blockLength(partition, b);
    return length;
  }

  /** Reads one block of a partition into the front of `into` (at least `blockLength` bytes). */
  async readBlockInto(partition: number, block: number, into: Buffer): Promise<void> {
    const at = this.#blocks[partition]![block * 2]!;
    const length = this.#blocks[partition]![block * 2 + 1]!;
    this.#handle ??= open(this.path, this.#mode);
    const handle = await this.#handle;
    let read = 0;
    while (read < length) {
      const { bytesRead } = await handle.read(into, read, length - read, at + read);
      if (bytesRead === 0) throw writeError(this.path, new Error(`unexpected end of file at ${at + read}`));
      read += bytesRead;
    }
  }

  /** The text of one block of a partition. */
  async readBlock(partition: number, block: number): Promise<string> {
    const length = this.blockLength(partition, block);
    // One read at a time reuses one buffer (decoding copies the text out).
    const reuse = !this.#reading;
    this.#reading = true;
    if (reuse && this.#readBuffer.length < length)
      this.#readBuffer = Buffer.allocUnsafe(Math.max(length, BLOCK_BYTES));
    const data = reuse ? this.#readBuffer : Buffer.allocUnsafe(length);
    try {
      await this.readBlockInto(partition, block, data);
      return decodeText(data, 0, length);
    } finally {
      if (reuse) this.#reading = false;
    }
  }

  /** Closes the file (it is removed with its temporary directory). */
  async close(): Promise<void> {
    await Promise.allSettled(this.#writes);
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) await (await handle.catch(() => undefined))?.close().catch(() => undefined);
  }
}

/**
 * Reads one partition's lines in the order they were appended, a block at a time: `next()` answers
 * synchronously while the block lasts, and `load()` brings the next block.
 */
export class SpillCursor {
  readonly #file: SpillFile;
  readonly #partition: number;
  /** The loaded block, in a buffer of the cursor's own, reused block after block. */
  #buffer: Buffer = Buffer.alloc(0);
  #end = 0;
  #at = 0;
  #ascii = true;
  #block = 0;

  constructor(file: SpillFile, partition: number) {
    this.#file = file;
    this.#partition = partition;
  }

  /**
   * The next line, or undefined when the loaded block is used up (then `load`). Lines are decoded one
   * at a time: a cursor per partition holding its whole block as strings kept the old generation full
   * of text read once.
   */
  next(): string | undefined {
    const at = this.#at;
    if (at >= this.#end) return undefined;
    let nl = this.#buffer.indexOf(LF, at);
    if (nl === -1 || nl >= this.#end) nl = this.#end;
    this.#at = nl + 1;
    return this.#buffer.toString(this.#ascii ? 'latin1' : 'utf8', at, nl);
  }

  /** Loads the next block; false when there is none. */
  async load(): Promise<boolean> {
    this.#at = 0;
    this.#end = 0;
    if (this.#block >= this.#file.blockCount(this.#partition)) return false;
    const length = this.#file.blockLength(this.#partition, this.#block);
    if (this.#buffer.length < length) this.#buffer = Buffer.allocUnsafe(length);
    await this.#file.readBlockInto(this.#partition, this.#block++, this.#buffer);
    this.#end = length;
    this.#ascii = isAscii(this.#buffer.subarray(0, length));
    return true;
  }
}

function writeError(path: string, error: unknown): BatchpipeError {
  if (error instanceof BatchpipeError) return error;
  return new BatchpipeError(
    'BP_OUTPUT_WRITE',
    `cannot use the temporary file ${path}: ${(error as Error).message}`,
    {},
    { cause: error },
  );
}
