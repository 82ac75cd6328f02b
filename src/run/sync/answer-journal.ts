import { type FileHandle, open, stat, truncate } from 'node:fs/promises';
import { writeAll } from '../../internal/durable-write.js';
import { outputError } from '../../internal/output-error.js';
import { customIdOf, jsonlBuffers } from '../request-ids.js';

/** Longest a written answer waits for its fsync, ms: a power cut loses at most this much. */
const SYNC_EVERY_MS = 200;

/**
 * The answers of one shard of a sync run, as they arrive: an append-only JSON-lines file in the
 * Batch API's output-file shape, one line per row that reached its last attempt. Lines that arrive in
 * the same turn of the event loop are written together, at once (a process killed with SIGKILL loses
 * only what had not reached the kernel: answers of that very moment), and fsynced in groups, every
 * 200 ms at most (a machine that loses power loses at most that much; those rows are asked again).
 */
export class AnswerJournal {
  readonly path: string;
  readonly #handle: FileHandle;
  #pending: string[] = [];
  #writing: Promise<void> = Promise.resolve();
  #syncing: Promise<void> = Promise.resolve();
  #scheduled = false;
  #dirty = false;
  #syncTimer: NodeJS.Timeout | undefined;
  #failure: unknown;

  private constructor(path: string, handle: FileHandle) {
    this.path = path;
    this.#handle = handle;
  }

  /**
   * Opens the journal to append. A last line cut short by a crash (no newline) is cut off first:
   * appended to, it would spoil the next answer too.
   */
  static async open(path: string): Promise<AnswerJournal> {
    try {
      const size = await stat(path).then(
        (s) => s.size,
        () => 0,
      );
      if (size > 0) {
        const end = await lastNewline(path, size);
        if (end < size) await truncate(path, end);
      }
      return new AnswerJournal(path, await open(path, 'a'));
    } catch (error) {
      throw outputError(path, error);
    }
  }

  /** Adds one line (JSON text, no newline); rejects when the file cannot be written. */
  append(line: string): void {
    if (this.#failure) throw this.#failure;
    this.#pending.push(line);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        this.#write();
      });
    }
  }

  /** What went wrong writing, if anything did: the run stops on it. */
  get failure(): unknown {
    return this.#failure;
  }

  #write(): Promise<void> {
    if (this.#pending.length === 0) return this.#writing;
    const text = `${this.#pending.join('\n')}\n`;
    this.#pending = [];
    // Writes never wait for an fsync: a line in the kernel survives a kill, one held back does not.
    this.#writing = this.#writing.then(async () => {
      if (this.#failure) return;
      try {
        await writeAll(this.#handle, Buffer.from(text));
        this.#dirty = true;
        this.#syncTimer ??= setTimeout(() => {
          this.#syncTimer = undefined;
          void this.#sync();
        }, SYNC_EVERY_MS);
      } catch (error) {
        this.#failure = outputError(this.path, error);
      }
    });
    return this.#writing;
  }

  /** One fsync at a time, beside the writes; resolves once what was written before it is on disk. */
  #sync(): Promise<void> {
    this.#syncing = this.#syncing.then(async () => {
      if (!this.#dirty || this.#failure) return;
      this.#dirty = false;
      try {
        await this.#handle.sync();
      } catch (error) {
        this.#failure = outputError(this.path, error);
      }
    });
    return this.#syncing;
  }

  /** Writes and fsyncs what has come; throws what went wrong writing. */
  async flush(): Promise<void> {
    await this.#write();
    clearTimeout(this.#syncTimer);
    this.#syncTimer = undefined;
    await this.#sync();
    if (this.#failure) throw this.#failure;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.#handle.close();
    }
  }
}

/** The offset just past the file's last newline (0 when it has none). */
async function lastNewline(path: string, size: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, end - start, start);
      const at = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (at !== -1) return start + at + 1;
      end = start;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

/** Where a row stands in a journal: answered for good, or last seen failing in a way worth trying later. */
export type JournalState = 'ok' | 'failed' | 'retry';

/**
 * The state of each row a journal holds (the last line of a row wins: a row retried later may fail
 * first and succeed after). Lines that do not parse (none should) are skipped: their rows go again.
 */
export async function readJournal(path: string): Promise<Map<string, JournalState>> {
  const states = new Map<string, JournalState>();
  const found = await stat(path).then(
    () => true,
    () => false,
  );
  if (!found) return states;
  for await (const bytes of jsonlBuffers(path)) {
    const id = customIdOf(bytes);
    if (id === undefined) continue;
    let line: { error?: unknown; response?: { status_code?: unknown } | null; bp_retry?: unknown };
    try {
      line = JSON.parse(bytes.toString('utf8')) as typeof line;
    } catch {
      continue;
    }
    const ok = (line.error === null || line.error === undefined) && line.response?.status_code === 200;
    states.set(id, ok ? 'ok' : line.bp_retry === true ? 'retry' : 'failed');
  }
  return states;
}
