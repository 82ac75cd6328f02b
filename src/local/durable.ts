import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Durable writes for the data dir. A state file is written whole to a temp file, fsynced, renamed
 * over the old one and the directory fsynced, so a crash leaves either the old or the new version,
 * never a torn one. Logs are append-only JSON lines; a torn last line is ignored on read.
 */

export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await fsyncDir(dirname(path));
}

/** Makes a rename or a new entry in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function readJsonFile(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown;
}

/** An append-only JSON-lines file kept open; every append is fsynced before it resolves. */
export class AppendLog {
  readonly path: string;
  #handle: FileHandle | undefined;
  #queue: Promise<void> = Promise.resolve();

  constructor(path: string) {
    this.path = path;
  }

  append(record: unknown): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    const next = this.#queue.then(async () => {
      this.#handle ??= await open(this.path, 'a');
      await this.#handle.write(line);
      await this.#handle.sync();
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
