import { type FileHandle, open } from 'node:fs/promises';
import { BatchpipeError } from '../errors.js';
import { decodeText } from './decode-text.js';

/** Bytes a partition gathers before it goes to disk as one block: big enough that writes are few. */
const BLOCK_BYTES = 64 * 1024;
/** UTF-8 bytes a UTF-16 unit can take. */
const MAX_BYTES_PER_CHAR = 3;
/** Block writes in flight before `append` asks the caller to wait. */
const MAX_WRITES = 8;

/**
 * Lines sorted into partitions on disk, all in one file: each partition gathers text in memory and
 * writes it as a block at the end of the file, and an in-memory index (two numbers per 64 KiB block)
 * says where each partition's blocks are. One file handle whatever the partition count, sequential
 * writes, and a partition reads back in order as its blocks. Lines must end with "\n".
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
    let block = this.#pending[partition];
    let filled = this.#filled[partition]!;
    let waiting: Promise<void> | undefined;
    const most = text.length * MAX_BYTES_PER_CHAR;
    if (block && filled + most > block.length) {
      waiting = this.flushPartition(partition);
      block = undefined;
      filled = 0;
    }
    // A line longer than a block gets a block of its own size.
    block ??= this.#pending[partition] = Buffer.allocUnsafe(Math.max(BLOCK_BYTES, most));
    this.#filled[partition] = filled + block.write(text, filled, 'utf8');
    return waiting;
  }

  #write(partition: number, data: Buffer): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    const at = this.#end;
    this.#end += data.length;
    this.#blocks[partition]!.push(at, data.length);
    this.#handle ??= open(this.path, this.#mode);
    const handle = this.#handle;
    // Each block has its own place in the file, so writes may run side by side in any order.
    const write: Promise<void> = handle
      .then((h) => h.write(data, 0, data.length, at))
      .then(
        () => {
          this.#writes.delete(write);
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
    return this.#write(partition, block.subarray(0, filled));
  }

  /** Writes what every partition holds and waits for all writes. */
  async flush(): Promise<void> {
    for (let p = 0; p < this.partitions; p++) {
      const waiting = this.flushPartition(p);
      if (waiting) await waiting;
    }
    await Promise.all(this.#writes);
    this.#check();
  }

  /** How many blocks a partition has on disk (after `flush`). */
  blockCount(partition: number): number {
    return this.#blocks[partition]!.length / 2;
  }

  /** The text of one block of a partition. */
  async readBlock(partition: number, block: number): Promise<string> {
    const blocks = this.#blocks[partition]!;
    const at = blocks[block * 2]!;
    const length = blocks[block * 2 + 1]!;
    this.#handle ??= open(this.path, this.#mode);
    const handle = await this.#handle;
    const data = Buffer.allocUnsafe(length);
    let read = 0;
    while (read < length) {
      const { bytesRead } = await handle.read(data, read, length - read, at + read);
      if (bytesRead === 0) throw writeError(this.path, new Error(`unexpected end of file at ${at + read}`));
      read += bytesRead;
    }
    return decodeText(data);
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
  #lines: string[] = [];
  #next = 0;
  #block = 0;

  constructor(file: SpillFile, partition: number) {
    this.#file = file;
    this.#partition = partition;
  }

  /** The next line, or undefined when the loaded block is used up (then `load`). */
  next(): string | undefined {
    if (this.#next < this.#lines.length) return this.#lines[this.#next++];
    return undefined;
  }

  /** Loads the next block; false when there is none. */
  async load(): Promise<boolean> {
    if (this.#block >= this.#file.blockCount(this.#partition)) {
      this.#lines = [];
      this.#next = 0;
      return false;
    }
    const text = await this.#file.readBlock(this.#partition, this.#block++);
    // Blocks hold whole lines, each ending with "\n": the last split piece is empty.
    this.#lines = text.split('\n');
    this.#lines.pop();
    this.#next = 0;
    return true;
  }

  /** True when every line has been read. */
  get done(): boolean {
    return this.#next >= this.#lines.length && this.#block >= this.#file.blockCount(this.#partition);
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
