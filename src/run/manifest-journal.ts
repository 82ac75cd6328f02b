import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAll } from '../internal/durable-write.js';
import { outputError } from '../internal/output-error.js';
import { type JobRecord, journalFile, type RunManifest, writeManifest } from './manifest.js';

/** Journal lines between compactions, at the least (a run of few jobs compacts this often). */
const MIN_ENTRIES = 1000;

/**
 * Saves a run's manifest at a cost per step that does not grow with the number of jobs: a saved job
 * is one line appended to the journal of the current snapshot and fsynced; once the journal holds
 * more lines than twice the jobs (at least 1,000), the whole manifest is written as a new snapshot
 * and the journal starts again, so each step pays a bounded share of one rewrite.
 *
 * Saves are group-committed: jobs saved while a write is under way go out together in the next write,
 * each with its state at the moment it is written (as the whole-manifest rewrite wrote it), and each
 * save resolves once a write that began after it is on disk. Writes and snapshots run one at a time,
 * so a line is never appended to a generation older than the state it holds.
 */
export class ManifestJournal {
  readonly #dir: string;
  readonly #manifest: RunManifest;
  #handle: FileHandle | undefined;
  #generation: number | undefined;
  #entries = 0;
  /**
   * A snapshot is due before the next append: at first (the journal read may end in a torn line,
   * and an older manifest has none), after a failed write (its line may be half written), on demand.
   */
  #snapshotDue = true;
  #dirty = new Set<JobRecord>();
  #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  #running: Promise<void> | undefined;
  /** Called right after each write is on disk, with how many lines it held (0: a snapshot). */
  readonly #afterWrite: ((lines: number) => void) | undefined;

  constructor(dir: string, manifest: RunManifest, afterWrite?: (lines: number) => void) {
    this.#dir = dir;
    this.#manifest = manifest;
    this.#afterWrite = afterWrite;
  }

  /** Lines in the current journal (since the last snapshot). */
  get entries(): number {
    return this.#entries;
  }

  /** Saves one job's record (a new job, a retry attempt, is added to the manifest by its caller first). */
  saveJob(job: JobRecord): Promise<void> {
    this.#dirty.add(job);
    return this.#wait();
  }

  /** Writes the whole manifest as a new snapshot (for changes beyond one job's record). */
  saveAll(): Promise<void> {
    this.#snapshotDue = true;
    return this.#wait();
  }

  /** Waits for the writes under way and closes the journal. */
  async close(): Promise<void> {
    await this.#running?.catch(() => undefined);
    await this.#handle?.close().catch(() => undefined);
    this.#handle = undefined;
  }

  #wait(): Promise<void> {
    const saved = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    this.#kick();
    return saved;
  }

  #kick(): void {
    if (this.#running) return;
    // Started a tick later: jobs saved together (a finished job and its retry attempt) go out in one write.
    this.#running = Promise.resolve()
      .then(() => this.#loop())
      .finally(() => {
        this.#running = undefined;
        // A save that came in as the loop was ending starts the next one.
        if (this.#waiters.length > 0) this.#kick();
      });
  }

  async #loop(): Promise<void> {
    while (this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      const jobs = [...this.#dirty];
      this.#dirty.clear();
      try {
        if (this.#snapshotDue || this.#entries + jobs.length > this.#limit()) await this.#snapshot();
        else if (jobs.length > 0) await this.#append(jobs);
        for (const w of waiters) w.resolve();
      } catch (error) {
        // Whatever went out, the next write is a whole snapshot: the file may end in half a line.
        this.#snapshotDue = true;
        for (const job of jobs) this.#dirty.add(job);
        for (const w of waiters) w.reject(error);
      }
    }
  }

  #limit(): number {
    return Math.max(MIN_ENTRIES, 2 * this.#manifest.jobs.length);
  }

  async #snapshot(): Promise<void> {
    await this.#handle?.close().catch(() => undefined);
    this.#handle = undefined;
    await writeManifest(this.#dir, this.#manifest);
    this.#generation = this.#manifest.journal;
    this.#entries = 0;
    this.#snapshotDue = false;
    this.#afterWrite?.(0);
  }

  async #append(jobs: JobRecord[]): Promise<void> {
    const path = join(this.#dir, journalFile(this.#generation!));
    try {
      // Opened on the first append of a generation: 'a' makes it when it is not there.
      this.#handle ??= await open(path, 'a');
      const text = jobs.map((job) => `${JSON.stringify({ job })}\n`).join('');
      await writeAll(this.#handle, Buffer.from(text));
      await this.#handle.datasync();
    } catch (error) {
      await this.#handle?.close().catch(() => undefined);
      this.#handle = undefined;
      throw outputError(path, error);
    }
    this.#entries += jobs.length;
    this.#afterWrite?.(jobs.length);
  }
}

/**
 * For tests of crash safety: with `BATCHPIPE_KILL_AFTER_SAVES=n` in the environment, the process
 * kills itself with SIGKILL right after its n-th manifest write is on disk (a journal append or a
 * snapshot), the exact boundary a kill -9 test aims at. Unset, nothing happens.
 */
export function crashAfterJournalWrites(
  env: NodeJS.ProcessEnv = process.env,
): ((lines: number) => void) | undefined {
  const n = Number(env.BATCHPIPE_KILL_AFTER_SAVES);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  let writes = 0;
  return () => {
    if (++writes >= n) process.kill(process.pid, 'SIGKILL');
  };
}
