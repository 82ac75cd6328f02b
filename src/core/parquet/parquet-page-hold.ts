/**
 * Where a row group's compressed pages wait until the group is written: a column chunk's pages must
 * lie together in the file, so none can be written before the group's last row is encoded. In memory
 * that is the whole group's compressed bytes at once (~21 MB per 122,880 bench rows), which the C heap
 * then kept as its own: a 1M-row join into Parquet peaked 1.24x the 100k one, against 1.13x with
 * 8,192-row groups. A spill file in the output's directory holds them instead, through the page
 * cache; its space is used again by every group, and it is removed as soon as it is open (where the
 * platform allows), so a crash leaves nothing behind.
 */
import { type FileHandle, open, rm } from 'node:fs/promises';
import { writeAll } from '../../internal/durable-write.js';
import { outputError } from '../../internal/output-error.js';

/** A page kept: where its header and compressed body are in the spill file. */
export interface KeptPage {
  at: number;
  length: number;
}

/** Writes bytes on, resolving once they are taken (the caller may then reuse them). */
export type WriteOut = (bytes: Uint8Array) => Promise<void>;

/** Bytes read back from the spill file at a time (the output's write buffer is 1 MiB). */
const READ_BYTES = 1 << 20;

/** Pages held in a spill file at `path`, written there as they are compressed. */
export class FilePageHold {
  readonly #path: string;
  #handle: Promise<FileHandle> | undefined;
  /** Whether the file is still to be removed at close (it could not be while open). */
  #named = true;
  /** Where the next page goes: the end of the current group's pages. */
  #end = 0;
  #buffer: Buffer | undefined;
  #closed = false;

  constructor(path: string) {
    this.#path = path;
  }

  /** Keeps a page's header and compressed body until its group is written. */
  async keep(header: Uint8Array, body: Uint8Array): Promise<KeptPage> {
    // The page's place is taken now, so pages compressed at once are written side by side.
    const at = this.#end;
    this.#end += header.length + body.length;
    const handle = await this.#open();
    try {
      // One call for both; what a short write left is written again.
      const { bytesWritten } = await handle.writev([header, body], at);
      if (bytesWritten < header.length) {
        await writeAll(handle, header.subarray(bytesWritten), at + bytesWritten);
        await writeAll(handle, body, at + header.length);
      } else if (bytesWritten < header.length + body.length) {
        const done = bytesWritten - header.length;
        await writeAll(handle, body.subarray(done), at + header.length + done);
      }
    } catch (error) {
      throw outputError(this.#path, error);
    }
    return { at, length: header.length + body.length };
  }

  /** Writes the pages, in order, through `out`. */
  async writeOut(pages: readonly KeptPage[], out: WriteOut): Promise<void> {
    const handle = await this.#open();
    this.#buffer ??= Buffer.allocUnsafeSlow(READ_BYTES);
    const buffer = this.#buffer;
    let i = 0;
    while (i < pages.length) {
      const first = pages[i]!;
      // Pages that lie one after another are read as one span.
      let from = first.at;
      let to = from + first.length;
      for (i++; i < pages.length; i++) {
        const next = pages[i]!;
        if (next.at !== to) break;
        to += next.length;
      }
      while (from < to) {
        const want = Math.min(READ_BYTES, to - from);
        let got = 0;
        try {
          while (got < want) {
            const { bytesRead } = await handle.read(buffer, got, want - got, from + got);
            if (bytesRead === 0) throw new Error(`the spill file ended at byte ${from + got}, before ${to}`);
            got += bytesRead;
          }
        } catch (error) {
          throw outputError(this.#path, error);
        }
        await out(buffer.subarray(0, want));
        from += want;
      }
    }
  }

  /** The group is written: its room is used again. */
  clear(): void {
    this.#end = 0;
  }

  /** Closes and removes the file; safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const handle = await this.#handle?.catch(() => undefined);
    await handle?.close().catch(() => undefined);
    if (this.#handle && this.#named) await rm(this.#path, { force: true }).catch(() => undefined);
  }

  #open(): Promise<FileHandle> {
    if (this.#closed && !this.#handle) throw new Error('the Parquet writer was stopped');
    this.#handle ??= (async () => {
      let handle: FileHandle;
      try {
        handle = await open(this.#path, 'w+');
      } catch (error) {
        throw outputError(this.#path, error);
      }
      // Removed while open: the pages stay readable through the handle, and no crash leaves the file.
      // Where an open file cannot be removed (Windows), it is removed at close.
      this.#named = !(await rm(this.#path).then(
        () => true,
        () => false,
      ));
      return handle;
    })();
    return this.#handle;
  }
}
