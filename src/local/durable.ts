import { type FileHandle, open, readFile } from 'node:fs/promises';

/**
 * Durable writes for the data dir. A state file is written whole to a temp file, fsynced, renamed
 * over the old one and the directory fsynced, so a crash leaves either the old or the new version,
 * never a torn one. Logs are append-only JSON lines; a torn last line is ignored on read.
 */

import { writeAll } from '../internal/durable-write.js';

export { fsyncDir, fsyncFile, writeAll, writeFileAtomic } from '../internal/durable-write.js';

export async function readJsonFile(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown;
}

/**
 * An append-only JSON-lines file kept open; every append is fsynced before it resolves. An append
 * that fails (a full disk) is cut off again, so the records after it are not hidden behind a torn
 * line (reading stops at the first line that does not parse).
 */
export class AppendLog {
  readonly path: string;
  #handle: FileHandle | undefined;
  /** Bytes of whole records, where the next one starts. */
  #size = 0;
  #queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  append(record: unknown): Promise<void> {
    const line = Buffer.from(`${JSON.stringify(record)}\n`);
    const next = this.#queue.then(async () => {
      if (!this.#handle) {
        this.#handle = await open(this.path, 'a');
        this.#size = (await this.#handle.stat()).size;
      }
      try {
        await writeAll(this.#handle, line);
        await this.#handle.sync();
        this.#size += line.length;
      } catch (error) {
        await this.#handle.truncate(this.#size).catch(() => {});
        throw error;
      }
    });
    // Keep the chain alive after a failure; the caller still sees its own error.
    this.#queue = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    await this.#queue;
    await this.#handle?.close();
    this.#handle = undefined;
  }

  /** Every complete record; a torn last line (a crash mid-append) is skipped. */
  static async read(path: string): Promise<unknown[]> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const records: unknown[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        records.push(JSON.parse(line));
      } catch {
        // Only the last line can be torn; anything after it was never acknowledged.
        break;
      }
    }
    return records;
  }
}
