import { setMaxListeners } from 'node:events';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { BatchpipeError } from '../errors.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { linkedSignal } from '../internal/linked-signal.js';
import { outputError } from '../internal/output-error.js';
import { settledAll } from '../internal/settled-all.js';
import { type Connection, redactURL } from '../providers/connection.js';
import { retryableRequest, unrunReason } from '../providers/retry.js';
import { type BatchApi, type BatchObject, type BatchTag, sleep, type UploadedFile } from './batch-api.js';
import {
  type EarlierWork,
  type JobRecord,
  type RunManifest,
  readManifest,
  TERMINAL_STATUSES,
} from './manifest.js';
import { crashAfterJournalWrites, ManifestJournal } from './manifest-journal.js';
import { customIdOf, jsonlBuffers } from './request-ids.js';
import { exists } from './run-dir.js';
import { RunLock, takeoverNote } from './run-lock.js';
import type { ShardSummary } from './sharder.js';
import { storageUsage, storageWarning } from './storage.js';
import { type TaskLabel, taskDsName } from './task-metadata.js';

/** What a run tells its caller as it goes (progress lines, never secrets). */
export type RunEvent =
  /** `uploaded` of the run's `jobs` files are at the provider now (for progress). */
  | { type: 'uploaded'; job: string; file_id: string; uploaded: number; jobs: number }
  | { type: 'created'; job: string; batch_id: string }
  | {
      type: 'status';
      job: string;
      batch_id: string;
      status: string;
      completed: number;
      failed: number;
      total: number;
    }
  | {
      type: 'finished';
      job: string;
      status: string;
      ok: number;
      failed: number;
      expired: number;
      cancelled: number;
      retry: number;
    }
  | { type: 'retry'; job: string; requests: number }
  /**
   * What an earlier run of the same work (another run directory, or one deleted) had made at the
   * provider and this run took over instead of sending again: `batches` created, `uploads` without a
   * batch yet; `toSend` jobs of `jobs` still to upload or create.
   */
  | { type: 'adopted'; run: string; batches: number; uploads: number; jobs: number; toSend: number }
  | { type: 'stuck'; job: string; batch_id: string; status: string }
  /**
   * An option given to a resumed run differs from the one it began with: `applied` ones hold from
   * now on; the others cannot change for batches already created, and the run keeps `was`.
   */
  | { type: 'option'; option: string; value: string; was: string; applied: boolean }
  | { type: 'note'; message: string }
  /**
   * Rows through a stage of `prepare`, `joinTable` or `runTable` so far (looked at a few times a
   * second, not per row): `prepare` counts rows read into requests or rejections, `join` rows written
   * to the table, of `total` when known. `final` is the stage's last report.
   */
  | { type: 'rows'; stage: 'prepare' | 'join'; rows: number; total?: number; final: boolean };

export interface RunSettings {
  /**
   * How often to poll a running batch, ms. Without `pollGapMs`, with ±20% jitter and the first polls
   * sooner (the local service); with it, between the interval and 20% more.
   */
  pollIntervalMs: number;
  /**
   * The least time between two retrieves of one batch, ms, jitter included, across rounds and
   * processes (the last poll is kept in the manifest); 0 or unset for none. See `pollPolicy`.
   */
  pollGapMs?: number | undefined;
  /** Batches uploaded and created at once. */
  concurrency: number;
  /** How long past its completion window a batch may stay unfinished before it is reported stuck, ms. */
  stuckGraceMs: number;
  onEvent?: ((event: RunEvent) => void) | undefined;
  /** Aborting detaches: the batches keep running at the provider, the run resumes later. */
  signal?: AbortSignal | undefined;
  /** Warn before the run's first upload when it would take the account past the provider's storage. */
  checkStorage?: boolean | undefined;
}

/** Per-request totals of a run; they add up to its rows. */
export interface RunCounts {
  rows: number;
  rejected: number;
  ok: number;
  failed: number;
  expired: number;
  cancelled: number;
  /** Requests whose batch has not finished yet. */
  pending: number;
}

export type RunState = 'done' | 'running' | 'stuck' | 'detached';

/** Options a resumed run may be given again; those that differ from the manifest's are reported. */
export interface GivenOptions {
  completionWindow?: string | undefined;
  maxAttempts?: number | undefined;
  resubmitExpired?: boolean | undefined;
  deleteInputFiles?: boolean | undefined;
  deleteOutputFiles?: boolean | undefined;
}

/** Files the storage check reads at most (10 list calls at DashScope, within its list rate's burst). */
const STORAGE_SCAN_FILES = 1000;
/** Error codes of an upload refused because the account's file storage is full (the local service's; kept as data). */
const STORAGE_FULL_CODES: ReadonlySet<string> = new Set(['storage_quota_exceeded']);

/** A job that has not reached the provider as a batch (or may have, when its intent is saved). */
const UNSENT: ReadonlySet<string> = new Set(['pending', 'uploading', 'uploaded', 'creating']);

/**
 * A durable run: its manifest, its jobs, and the API it talks to. Every state change is written to
 * the manifest before the next step, and an intent is written before each upload or create, so a
 * run killed at any moment resumes without losing or repeating anything. A run opened with `open`
 * holds its directory's lock until `close`.
 */
export class BatchRun {
  readonly dir: string;
  readonly manifest: RunManifest;
  readonly #api: BatchApi;
  readonly #settings: RunSettings;
  readonly #lock: RunLock | undefined;
  /** The storage check, started before the first upload (see #checkStorage). */
  #storageChecked: Promise<void> | undefined;
  /** Where the manifest is saved: job records to its journal, the rest as whole snapshots. */
  readonly #journal: ManifestJournal;

  constructor(dir: string, manifest: RunManifest, api: BatchApi, settings: RunSettings, lock?: RunLock) {
    this.dir = dir;
    this.manifest = manifest;
    this.#api = api;
    this.#settings = { ...settings, signal: this.#detach(settings.signal) };
    this.#lock = lock;
    this.#journal = new ManifestJournal(dir, manifest, crashAfterJournalWrites());
  }

  /** Unlinks the run's own detach signal from the caller's once the run is closed. */
  #unlink: (() => void) | undefined;

  /**
   * The run's own detach signal, aborted with the caller's: every upload, poll and download of the
   * run listens on it (each call removes its listener when done), so many at once are by design, and
   * raising the listener cap belongs on a signal of the run's own, not on the caller's.
   */
  #detach(signal: AbortSignal | undefined): AbortSignal | undefined {
    if (!signal) return undefined;
    const own = linkedSignal(signal);
    setMaxListeners(0, own.signal);
    this.#unlink = own.unlink;
    return own.signal;
  }

  /**
   * Opens a run to work on it: takes the run directory's lock (BP_RUN_LOCKED while another process
   * holds it; a lock left by a process that is gone is taken over, with a note), then reads the
   * manifest (`held`: a lock the caller took already). Call `close` when done.
   */
  static async open(dir: string, api: BatchApi, settings: RunSettings, held?: RunLock): Promise<BatchRun> {
    let lock = held;
    if (!lock) {
      // Read first: a directory with no run is BP_RUN_NOT_FOUND, not a lock error.
      await readManifest(dir);
      lock = await RunLock.acquire(dir, (stale) =>
        settings.onEvent?.({ type: 'note', message: takeoverNote(dir, stale) }),
      );
    }
    try {
      // Read again under the lock: the last holder may have saved since.
      return new BatchRun(dir, await readManifest(dir), api, settings, lock);
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  /** Waits for the last manifest write and releases the run directory. */
  async close(): Promise<void> {
    this.#unlink?.();
    await this.#journal.close();
    await this.#lock?.release();
  }

  /**
   * Saves the manifest: the records of `jobs` (appended to its journal), or with no job the whole
   * manifest (a new snapshot); see ManifestJournal. A save resolves once it is on disk. One that fails
   * (a full disk) leaves what was saved before, and says so: BP_OUTPUT_WRITE, or BP_RUN_DIR_GONE when
   * the run directory was removed.
   */
  save(...jobs: JobRecord[]): Promise<void> {
    const saved =
      jobs.length === 0
        ? this.#journal.saveAll()
        : Promise.all(jobs.map((job) => this.#journal.saveJob(job))).then(() => undefined);
    return saved.catch(async (error: unknown) => {
      throw await this.#gone(error);
    });
  }

  /**
   * `error` as BP_RUN_DIR_GONE when the run directory no longer exists (removed while the run was
   * going: whatever failed, that is the cause to report), else `error` itself.
   */
  async #gone(error: unknown): Promise<unknown> {
    if ((error as BatchpipeError | null)?.code === 'BP_RUN_DIR_GONE' || (await exists(this.dir)))
      return error;
    const batches = this.manifest.jobs.flatMap((j) => (j.batch_id ? [j.batch_id] : []));
    const made =
      batches.length === 0
        ? 'no batch had been created yet'
        : `the batches it had created keep running at the provider (${batches.slice(0, 10).join(', ')}${batches.length > 10 ? `, and ${batches.length - 10} more` : ''}; \`batchpipe download <batch-id>\` fetches each one's results)`;
    return new BatchpipeError(
      'BP_RUN_DIR_GONE',
      `the run directory ${this.dir} was removed while the run was in progress; ${made}`,
      {},
      { cause: error },
    );
  }

  /** Runs a step of the run, reporting a failure caused by a removed run directory as such. */
  async #guard<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      throw await this.#gone(error);
    }
  }

  /** Makes a folder inside the run directory, never the run directory itself again once it is removed. */
  async #subdir(name: string): Promise<string> {
    const dir = join(this.dir, name);
    try {
      await mkdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw await this.#gone(outputError(dir, error));
    }
    return dir;
  }

  #emit(event: RunEvent): void {
    this.#settings.onEvent?.(event);
  }

  get #aborted(): boolean {
    return this.#settings.signal?.aborted === true;
  }

  /** True once the detach signal has aborted: the run stopped where it stood, intents saved. */
  get detached(): boolean {
    return this.#aborted;
  }

  /** True once `cancel` was asked for: nothing more is sent, what ran is collected. */
  get cancelled(): boolean {
    return Boolean(this.manifest.cancelled_at);
  }

  /**
   * Compares options given to a resumed run with those it began with, and says so for each that
   * differs, never silently. Attempts, the expired policy and the delete flags apply from now on; the
   * completion window cannot change for batches already created, so the run keeps its own.
   */
  async applyOptions(given: GivenOptions, windowBounds: { min: number; max: number }): Promise<void> {
    const options = this.manifest.options;
    let changed = false;
    const apply = <K extends keyof RunManifest['options']>(
      option: string,
      key: K,
      value: RunManifest['options'][K] | undefined,
    ) => {
      if (value === undefined || value === options[key]) return;
      this.#emit({ type: 'option', option, value: String(value), was: String(options[key]), applied: true });
      options[key] = value;
      changed = true;
    };
    apply('maxAttempts', 'max_attempts', given.maxAttempts);
    apply('resubmitExpired', 'resubmit_expired', given.resubmitExpired);
    apply('deleteInputFiles', 'delete_input_files', given.deleteInputFiles);
    apply('deleteOutputFiles', 'delete_output_files', given.deleteOutputFiles);
    if (given.completionWindow !== undefined) {
      const window = completionWindowHours(given.completionWindow, windowBounds);
      if (window !== this.manifest.completion_window)
        this.#emit({
          type: 'option',
          option: 'completionWindow',
          value: window,
          was: this.manifest.completion_window,
          applied: false,
        });
    }
    if (changed) await this.save();
  }

  /** Uploads and creates every job not yet submitted, a few at a time (a cancelled run sends nothing). */
  submit(): Promise<void> {
    return this.#guard(() => this.#submitAll());
  }

  async #submitAll(): Promise<void> {
    if (this.cancelled) return this.#settleCancelled();
    if (this.manifest.earlier?.state === 'pending') await this.#lookEarlier(this.manifest.earlier);
    if (this.#aborted) return;
    const limit = pLimit(this.#settings.concurrency);
    const waiting = this.manifest.jobs.filter((j) => UNSENT.has(j.state));
    // Within the provider's cap on unfinished batches: the rest wait for a later round.
    const room = this.#room();
    const next = waiting
      .filter((j) => j.state !== 'pending')
      .concat(this.#storageAllows(waiting.filter((j) => j.state === 'pending')));
    this.#refused = false;
    await this.#settle(next.slice(0, room).map((job) => limit(() => this.#submitOrHold(job))));
  }

  /** True once the provider refused an upload for its storage this round: the rest wait. */
  #refused = false;

  /**
   * Submits a job; an upload the provider refuses because the account's storage is full (files of
   * other runs count too) holds this round's uploads back while batches run whose end frees room. The
   * job keeps its upload intent, looked up before it is uploaded again.
   */
  async #submitOrHold(job: JobRecord): Promise<void> {
    if (this.#refused && UNSENT.has(job.state) && !job.input_file_id) return;
    try {
      await this.#submitJob(job);
    } catch (error) {
      const code = ((error as BatchpipeError).cause as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string' || !STORAGE_FULL_CODES.has(code)) throw error;
      const freeing = this.manifest.jobs.some((j) => j.state !== 'done' && !UNSENT.has(j.state));
      if (!freeing)
        throw new BatchpipeError(
          'BP_STORAGE_FULL',
          `the provider refused the upload of ${job.id}: the account's file storage is full (${code}), and no batch of ${this.manifest.run_id} is running whose end would free room; delete files at the provider, then resume`,
          {},
          { cause: error },
        );
      if (!this.#refused)
        this.#emit({
          type: 'note',
          message: `the provider refused an upload: the account's file storage is full (${code}); uploads wait until running batches end and free room`,
        });
      this.#refused = true;
    }
  }

  /**
   * The jobs of `pending` whose uploads fit the provider's file storage now (DashScope: 10,000 files,
   * 100 GB per account, result files included), in order; the rest are held back until finished
   * batches free room (their files are deleted once ended and downloaded, unless kept). Held with
   * nothing running that could free any: BP_STORAGE_FULL.
   */
  #storageAllows(pending: JobRecord[]): JobRecord[] {
    const storage = this.#api.storageLimits;
    if (!storage || pending.length === 0) return pending;
    const used = this.#storedFiles();
    const fits: JobRecord[] = [];
    for (const job of pending) {
      // A batch may leave three files: its input, output and error files, results about as large.
      if (used.files + 3 > storage.maxFiles || used.bytes + 3 * job.bytes > storage.maxBytes) break;
      used.files += 3;
      used.bytes += 3 * job.bytes;
      fits.push(job);
    }
    if (fits.length < pending.length) {
      const held = pending.length - fits.length;
      const freeing = this.manifest.jobs.some((j) => j.state !== 'done' && !UNSENT.has(j.state));
      if (!freeing && fits.length === 0)
        throw new BatchpipeError(
          'BP_STORAGE_FULL',
          `${held} batches of ${this.manifest.run_id} are held back: the run's files at the provider (${used.files} files, ${used.bytes} bytes, counting three files a batch) leave no room within the account's ${storage.maxFiles} files / ${storage.maxBytes} bytes, and no batch is running whose end would free any; delete files at the provider${this.manifest.options.delete_output_files ? '' : ' or run without --keep-files'}, then resume`,
        );
      if (this.#heldNote !== held) {
        this.#heldNote = held;
        this.#emit({
          type: 'note',
          message: `holding ${held} uploads back until finished batches free the provider's file storage (${storage.maxFiles} files / ${storage.maxBytes} bytes per account)`,
        });
      }
    }
    return fits;
  }

  #heldNote = 0;

  /** The files this run has (or may soon have) at the provider, and their bytes (results estimated as large as requests). */
  #storedFiles(): { files: number; bytes: number } {
    const { delete_input_files: dropInput, delete_output_files: dropOutput } = this.manifest.options;
    let files = 0;
    let bytes = 0;
    for (const job of this.manifest.jobs) {
      if (job.state === 'pending') continue;
      if (job.state !== 'done') {
        files += 3;
        bytes += 3 * job.bytes;
        continue;
      }
      if (job.input_file_id && !(dropInput && job.files_deleted)) {
        files++;
        bytes += job.bytes;
      }
      if (!(dropOutput && job.files_deleted))
        for (const id of [job.output_file_id, job.error_file_id])
          if (id) {
            files++;
            bytes += job.bytes;
          }
    }
    return { files, bytes };
  }

  /**
   * Waits for every task: a failed one does not leave others running on after the run has stopped.
   * After a detach, failures are the interrupted calls themselves: their intents stay for resume.
   */
  async #settle(tasks: Array<Promise<unknown>>): Promise<void> {
    try {
      await settledAll(tasks);
    } catch (error) {
      if (!this.#aborted) throw error;
    }
  }

  /** How many more batches may be created now (the provider caps unfinished ones). */
  #room(): number {
    // Stuck batches too: unfinished at the provider, they count toward its cap.
    const running = this.manifest.jobs.filter((j) => j.state === 'submitted').length;
    return Math.max(0, (this.#api.concurrentBatches ?? Number.POSITIVE_INFINITY) - running);
  }

  async #submitJob(job: JobRecord): Promise<void> {
    const signal = this.#settings.signal;
    if (this.#aborted) return;
    if (job.state === 'pending' || job.state === 'uploading') {
      if (job.state === 'uploading') this.#adoptUpload(job, await this.#lostUpload(job));
      if (!job.input_file_id) {
        // Once, before the first upload this run makes (a run that adopts everything lists no files).
        this.#storageChecked ??= this.#checkStorage();
        await this.#storageChecked;
        job.state = 'uploading';
        // The earliest intent bounds the lookups: an upload from any attempt is no older.
        job.upload_intent_at ??= nowSeconds();
        await this.save(job);
        this.#adoptUpload(
          job,
          await this.#api.upload(job, join(this.dir, job.input), signal, () => this.save(job)),
        );
      }
      job.state = 'uploaded';
      await this.save(job);
      this.#emit({
        type: 'uploaded',
        job: job.id,
        file_id: job.input_file_id!,
        uploaded: this.manifest.jobs.filter((j) => j.input_file_id).length,
        jobs: this.manifest.jobs.length,
      });
    }
    if (this.#aborted || this.cancelled) return;
    if (job.state === 'uploaded' || job.state === 'creating') {
      let batch = job.state === 'creating' ? await this.#lostBatch(job) : undefined;
      if (!batch) {
        job.state = 'creating';
        job.create_intent_at ??= nowSeconds();
        await this.save(job);
        batch = await this.#api.create(
          job,
          this.manifest.completion_window,
          this.#metadata(job),
          signal,
          () => this.save(job),
        );
      }
      this.#submitted(job, batch);
      await this.save(job);
      this.#emit({ type: 'created', job: job.id, batch_id: batch.id });
    }
  }

  /**
   * Before this run sends anything: what a run of the same work made at the provider from another run
   * directory (or one since deleted), found by the names the run id fixes, is adopted, so the same
   * command from anywhere never uploads or creates (and bills) a shard twice. An upload older than the
   * provider's batch list reaches back, with no batch found, stops the run with BP_RUN_UNVERIFIABLE:
   * a batch may exist that cannot be seen, and sending again could bill the work twice.
   */
  async #lookEarlier(earlier: EarlierWork, cancelling = false): Promise<void> {
    const jobs = this.manifest.jobs.filter((j) => j.state === 'pending');
    const runId = this.manifest.run_id;
    try {
      const found = await this.#api.findEarlier(
        {
          runId,
          dsPrefix: dsIdentity(runId, ''),
          dsName: (id) => dsIdentity(runId, id),
          filePrefix: `${runId}-`,
          files: new Set(jobs.map((j) => j.file_name)),
          jobs: new Set(jobs.map((j) => j.id)),
        },
        this.#settings.signal,
      );
      earlier.files = found.files;
      earlier.batches = found.batches;
    } catch (error) {
      if (this.#aborted) return;
      throw error;
    }
    const unverifiable = jobs.filter((job) => this.#earlierOutcome(job, earlier) === 'unverifiable');
    // A run being cancelled sends nothing more: what cannot be verified is only not adopted.
    if (unverifiable.length > 0 && !cancelling) throw this.#unverifiable(unverifiable, earlier);
    let batches = 0;
    let uploads = 0;
    for (const job of jobs) {
      if (unverifiable.includes(job)) continue;
      const adopted = this.#adoptEarlier(job, earlier);
      if (adopted === 'batch') batches++;
      else if (adopted === 'upload') uploads++;
    }
    earlier.state = 'done';
    earlier.checked_at = new Date().toISOString();
    await this.save();
    if (batches + uploads > 0)
      this.#emit({
        type: 'adopted',
        run: runId,
        batches,
        uploads,
        jobs: jobs.length,
        toSend: jobs.length - batches,
      });
  }

  /** What an earlier run left for a job: its batch, its upload alone, nothing, or what cannot be told. */
  #earlierOutcome(job: JobRecord, earlier: EarlierWork): 'batch' | 'upload' | 'unverifiable' | undefined {
    const file = earlier.files[job.file_name];
    const upload = file && file.bytes === job.bytes ? file : undefined;
    const batch = earlier.batches[job.id];
    // The same ds_name and metadata, on an upload of this job's name (or one no longer listed: deleted
    // once its batch ended, or an older copy past where the list was read), never on an upload of
    // another name; with as many requests where the provider says.
    if (
      batch &&
      uploadName(earlier, batch.input_file_id, job.file_name) === job.file_name &&
      (batch.total === null || batch.total === 0 || batch.total === job.lines)
    )
      return 'batch';
    if (!upload) return undefined;
    const window = this.#api.listWindowSeconds;
    if (
      window !== undefined &&
      upload.created_at !== null &&
      upload.created_at < this.#api.providerNow() - window
    )
      return 'unverifiable';
    return 'upload';
  }

  /** Takes over what an earlier run left for a job (see #lookEarlier); says what it took. */
  #adoptEarlier(job: JobRecord, earlier: EarlierWork): 'batch' | 'upload' | undefined {
    const outcome = this.#earlierOutcome(job, earlier);
    if (outcome === 'unverifiable') throw this.#unverifiable([job], earlier);
    if (outcome === undefined) return undefined;
    const upload = earlier.files[job.file_name];
    if (outcome === 'upload') {
      this.#adoptUpload(job, upload);
      job.state = 'uploaded';
      return 'upload';
    }
    const batch = earlier.batches[job.id]!;
    job.input_file_id = batch.input_file_id;
    job.input_file_created_at = upload?.id === batch.input_file_id ? upload.created_at : null;
    if (upload && upload.id !== batch.input_file_id)
      this.#emit({
        type: 'note',
        message: `${job.id}: ${job.file_name} was uploaded more than once by an earlier run; its batch ${batch.id} is on ${batch.input_file_id}, the newest upload ${upload.id} is not used`,
      });
    job.batch_id = batch.id;
    job.batch_created_at = batch.created_at;
    job.state = 'submitted';
    // Its status comes with the next poll.
    job.submitted_at = new Date(
      batch.created_at !== null ? batch.created_at * 1000 : Date.now(),
    ).toISOString();
    job.adopted = true;
    return 'batch';
  }

  #unverifiable(jobs: JobRecord[], earlier: EarlierWork): BatchpipeError {
    const days = Math.round((this.#api.listWindowSeconds ?? 0) / 86_400);
    const oldest = Math.min(
      ...jobs.map((j) => earlier.files[j.file_name]?.created_at ?? Number.POSITIVE_INFINITY),
    );
    const when = Number.isFinite(oldest)
      ? ` (from ${new Date(oldest * 1000).toISOString().slice(0, 10)})`
      : '';
    const names = jobs.map((j) => j.id);
    return new BatchpipeError(
      'BP_RUN_UNVERIFIABLE',
      `${names.length} of ${this.manifest.jobs.length} shards of ${this.manifest.run_id} (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}) were uploaded by an earlier run of the same work${when}, longer ago than the ${days} days the provider lists batches for: whether batches were created on them (and billed) cannot be verified, so nothing was sent. Check at the provider, then run with --new-run (newRun: true) to submit anyway`,
    );
  }

  /** The upload a call left behind (its intent is saved), once that call can no longer be landing. */
  async #lostUpload(job: JobRecord): Promise<UploadedFile | undefined> {
    await this.#api.settle(job, this.#settings.signal);
    return this.#api.findUpload(job, this.#settings.signal);
  }

  /**
   * The batch a call left behind (its intent is saved), once that call can no longer be landing. An
   * intent older than the provider lists batches for, with no batch found, cannot be told from a
   * batch the list no longer shows: BP_RUN_UNVERIFIABLE, never a second create.
   */
  async #lostBatch(job: JobRecord): Promise<BatchObject | undefined> {
    await this.#api.settle(job, this.#settings.signal);
    const batch = await this.#api.findBatch(job, this.#metadata(job), this.#settings.signal);
    const window = this.#api.listWindowSeconds;
    const since = job.input_file_created_at ?? null;
    if (!batch && window !== undefined && since !== null && since < this.#api.providerNow() - window)
      throw new BatchpipeError(
        'BP_RUN_UNVERIFIABLE',
        `${job.id} of ${this.manifest.run_id} was being created (its input ${job.input_file_id} uploaded ${new Date(since * 1000).toISOString().slice(0, 10)}), longer ago than the ${Math.round(window / 86_400)} days the provider lists batches for: whether its batch exists cannot be verified, so it is not created again. Check at the provider; --new-run submits the work afresh`,
      );
    return batch;
  }

  /**
   * Warns (an event, never a failure) when the uploads still to make would take the account past the
   * provider's documented storage: each adds its input file and up to an output and an error file. The
   * Files list is read up to STORAGE_SCAN_FILES items; a list that fails says so and the run goes on
   * (the provider's refusal of an upload is the real check). Once per run: the manifest remembers it.
   */
  async #checkStorage(): Promise<void> {
    const limits = this.#api.storageLimits;
    if (!limits || this.#settings.checkStorage === false || this.manifest.storage_checked_at) return;
    const toUpload = this.manifest.jobs.filter(
      (j) => !j.input_file_id && (j.state === 'pending' || j.state === 'uploading'),
    );
    try {
      const usage = await storageUsage(this.#api, STORAGE_SCAN_FILES);
      const adding = { files: toUpload.length * 3, bytes: toUpload.reduce((sum, j) => sum + j.bytes, 0) };
      const warning = storageWarning(limits, usage, adding);
      if (warning) this.#emit({ type: 'note', message: warning });
    } catch (error) {
      if (this.#aborted) return;
      this.#emit({
        type: 'note',
        message: `could not count the account's stored files (${(error as Error).message}); going on`,
      });
      return;
    }
    this.manifest.storage_checked_at = new Date().toISOString();
    await this.save();
  }

  #adoptUpload(job: JobRecord, file: UploadedFile | undefined): void {
    job.input_file_id = file?.id ?? null;
    job.input_file_created_at = file?.created_at ?? null;
  }

  #submitted(job: JobRecord, batch: BatchObject): void {
    this.#record(job, batch);
    job.state = 'submitted';
    job.submitted_at ??= new Date().toISOString();
  }

  #metadata(job: JobRecord): BatchTag & Record<string, string> {
    const run = this.manifest.run_id;
    const task = this.manifest.task;
    return {
      // The user's first, so batchpipe's own keys (checked not to be among them) always win.
      ...task?.metadata,
      ds_name: job.ds_name,
      ds_description:
        task?.description ??
        `batchpipe ${run}: ${job.shard}, attempt ${job.attempt}, ${job.lines} requests`.slice(0, 200),
      bp_run: run,
      bp_job: job.id,
      // Said plainly for a person reading the provider's console (the run id ends in the slice too).
      ...(this.manifest.slice && { bp_slice: `${this.manifest.slice.index}/${this.manifest.slice.count}` }),
    };
  }

  #record(job: JobRecord, batch: BatchObject): void {
    job.batch_id = batch.id;
    job.status = batch.status;
    job.request_counts = batch.request_counts ?? job.request_counts;
    job.output_file_id = batch.output_file_id ?? null;
    job.error_file_id = batch.error_file_id ?? null;
    job.batch_created_at = batch.created_at ?? job.batch_created_at;
    job.batch_expires_at = batch.expires_at ?? job.batch_expires_at;
    const errors = batch.errors?.data;
    if (errors && errors.length > 0) {
      job.errors = errors.map((e) => ({
        code: e.code ?? null,
        line: e.line ?? null,
        message: e.message ?? null,
        param: e.param ?? null,
      }));
    }
  }

  /**
   * Polls every running batch once, those reported stuck included (a stuck batch may still end,
   * and is collected when it does); finishes those that ended. Returns true when jobs remain to wait
   * for (stuck ones are not waited for).
   */
  poll(): Promise<boolean> {
    return this.#guard(() => this.#pollAll());
  }

  async #pollAll(): Promise<boolean> {
    const limit = pLimit(16);
    const gap = this.#settings.pollGapMs ?? 0;
    const now = Date.now();
    const cpu = process.cpuUsage();
    // A batch retrieved (or created) less than the gap ago is not asked again yet.
    const running = this.manifest.jobs.filter((j) => j.state === 'submitted' && pollDue(j, now, gap));
    const listed = await this.#pollByList(running);
    const rest = running.filter((job) => !listed.has(job));
    await this.#settle(rest.map((job) => limit(() => this.#pollJob(job))));
    const used = process.cpuUsage(cpu);
    this.#pollCalls.cpuMs += (used.user + used.system) / 1000;
    // Kept across processes (a line per job in the journal): a resume right after a kill does not ask again within the gap.
    if (gap > 0 && running.length > 0) await this.save(...running);
    for (const job of this.manifest.jobs.filter((j) => j.state === 'downloading')) {
      if (this.#aborted) break;
      try {
        await this.#finish(job);
      } catch (error) {
        // Interrupted by a detach: the job stays `downloading` and resume fetches its files again.
        if (this.#aborted) break;
        throw error;
      }
    }
    return this.manifest.jobs.some((j) => j.state !== 'done' && j.note === null);
  }

  /**
   * Polls running batches through the Batches list, a page (100 batches) a call, instead of one
   * retrieve each, where that saves calls: on DashScope the list is narrowed to this run's batches
   * (`ds_name` prefix) created since the oldest one running (`create_after`). Pages are read newest
   * first until every running batch was seen, the list reaches past the oldest, or the pages read
   * would outnumber the retrieves left (so a list never costs more calls than retrieving); a batch
   * older than the provider's list window (DashScope: 30 days) is never looked for there. Returns the
   * jobs seen; the caller retrieves the others by id. A list that fails leaves them all to retrieves.
   */
  async #pollByList(running: JobRecord[]): Promise<Set<JobRecord>> {
    const seen = new Set<JobRecord>();
    const window = this.#api.listWindowSeconds;
    // A day of margin: a batch near the window's edge may drop out of the list between two reads.
    const edge = window === undefined ? undefined : this.#api.providerNow() - window + 86_400;
    const byId = new Map<string, JobRecord>();
    let oldest = Number.POSITIVE_INFINITY;
    for (const job of running) {
      const at = job.batch_created_at;
      if (!job.batch_id || at === null || (edge !== undefined && at < edge)) continue;
      byId.set(job.batch_id, job);
      oldest = Math.min(oldest, at);
    }
    if (byId.size < 2 || this.#aborted) return seen;
    let pages = 0;
    try {
      for await (const page of this.#api.listRunPages(
        dsNameFor(this.manifest.run_id, ''),
        oldest,
        this.#settings.signal,
      )) {
        pages++;
        let older = false;
        const observed: Array<Promise<void>> = [];
        for (const batch of page) {
          const job = byId.get(batch.id);
          if (job && !seen.has(job)) {
            seen.add(job);
            job.calls.poll++;
            job.polled_at = Date.now();
            observed.push(this.#observe(job, batch));
          }
          if (typeof batch.created_at === 'number' && batch.created_at < oldest) older = true;
        }
        // Saved together: one journal write for the page's changes.
        await Promise.all(observed);
        if (seen.size === byId.size || older || pages >= byId.size - seen.size || this.#aborted) break;
      }
    } catch (error) {
      if (this.#aborted) return seen;
      this.#emit({
        type: 'note',
        message: `polling by the batch list failed (${(error as Error).message}); retrieving each batch`,
      });
    }
    this.#pollCalls.list += pages;
    return seen;
  }

  /**
   * What polling cost since the run was opened (list pages, retrieves, and this process's CPU ms while
   * polling, downloads apart; other work running at the same time counts too): for benchmarks.
   */
  readonly #pollCalls = { list: 0, retrieve: 0, cpuMs: 0 };
  get pollCalls(): { list: number; retrieve: number; cpuMs: number } {
    return { ...this.#pollCalls };
  }

  async #pollJob(job: JobRecord): Promise<void> {
    if (this.#aborted) return;
    let batch: BatchObject;
    try {
      job.calls.poll++;
      // A retrieve sent counts, answered or not.
      job.polled_at = Date.now();
      this.#pollCalls.retrieve++;
      batch = await this.#api.retrieve(job.batch_id!, this.#settings.signal);
    } catch (error) {
      if (this.#aborted) return;
      const status = (error as BatchpipeError).context?.status;
      if (status === 404 || status === 401 || status === 403) {
        throw new BatchpipeError(
          'BP_PROVIDER_HTTP',
          `batch ${job.batch_id} of ${job.id} cannot be read at the provider (HTTP ${status}): wrong provider, base URL or key, or was it deleted?`,
          { status, batch_id: job.batch_id ?? undefined },
          { cause: error },
        );
      }
      // A query that keeps failing after the SDK's retries is reported and tried next round.
      this.#emit({
        type: 'note',
        message: `polling ${job.batch_id} failed: ${(error as Error).message}`,
      });
      return;
    }
    await this.#observe(job, batch);
  }

  /** Records what a poll saw of a job's batch: progress, its end (to download), or that it is stuck. */
  async #observe(job: JobRecord, batch: BatchObject): Promise<void> {
    const before = `${job.status} ${JSON.stringify(job.request_counts)}`;
    this.#record(job, batch);
    const changed = `${job.status} ${JSON.stringify(job.request_counts)}` !== before;
    if (changed) {
      const counts = job.request_counts ?? { total: 0, completed: 0, failed: 0 };
      this.#emit({ type: 'status', job: job.id, batch_id: batch.id, status: batch.status, ...counts });
    }
    if (TERMINAL_STATUSES.has(batch.status)) {
      job.state = 'downloading';
      job.note = null;
      await this.save(job);
    } else if (job.note === null && this.#stuck(job)) {
      job.note = `still ${job.status} well past its ${this.manifest.completion_window} completion window; resume later (it is looked at again) or cancel it`;
      await this.save(job);
      this.#emit({
        type: 'stuck',
        job: job.id,
        batch_id: job.batch_id!,
        status: job.status ?? 'unknown',
      });
    } else if (changed) await this.save(job);
  }

  #stuck(job: JobRecord): boolean {
    if (!job.submitted_at) return false;
    const hours = Number.parseInt(this.manifest.completion_window, 10);
    const deadline = Date.parse(job.submitted_at) + hours * 3_600_000 + this.#settings.stuckGraceMs;
    return Date.now() > deadline;
  }

  /**
   * Submits what is not submitted, then polls until every batch has ended and been downloaded (or
   * the signal detaches, or what is left is stuck).
   */
  async wait(): Promise<RunState> {
    let round = 0;
    // A resumed run polls what runs before it submits more: sending the rest (up to a thousand
    // uploads and creates, and the lookups of intents) must not keep ended batches waiting.
    if (this.manifest.jobs.some((j) => j.state === 'submitted' || j.state === 'downloading')) {
      await this.poll();
      if (this.#aborted) return 'detached';
    }
    for (;;) {
      await this.submit();
      if (this.#aborted) return 'detached';
      const waiting = await this.poll();
      if (this.#aborted) return 'detached';
      // Retry jobs made by finishing batches are submitted on the next round.
      if (!waiting && !this.manifest.jobs.some((j) => j.state !== 'done' && j.note === null)) {
        return this.manifest.jobs.some((j) => j.note !== null && j.state !== 'done') ? 'stuck' : 'done';
      }
      // New jobs (retries) go out at once when the provider's cap leaves room.
      if (this.manifest.jobs.some((j) => j.state === 'pending') && this.#room() > 0) continue;
      await sleep(this.#delay(round++), this.#settings.signal);
    }
  }

  #delay(round: number): number {
    return pollDelayMs(this.#settings, round, Math.random());
  }

  /**
   * Cancels the run: the cancellation is saved first, so nothing more is uploaded or created (by this
   * process or a later resume) and no retry job is made; running batches are cancelled at the
   * provider (completed requests are kept and billed); jobs that never got a batch end as cancelled.
   * A job whose upload or create intent is saved is looked up first: its batch may exist.
   */
  async cancel(): Promise<void> {
    if (!this.manifest.cancelled_at) {
      this.manifest.cancelled_at = new Date().toISOString();
      await this.save();
    }
    // Batches an earlier run of the same work made are this run's to cancel too.
    if (this.manifest.earlier?.state === 'pending') await this.#lookEarlier(this.manifest.earlier, true);
    await this.#settleCancelled();
    for (const job of this.manifest.jobs) {
      if (job.state !== 'submitted' || !job.batch_id) continue;
      await this.#cancelBatch(job);
    }
  }

  async #cancelBatch(job: JobRecord): Promise<void> {
    if (job.status && (TERMINAL_STATUSES.has(job.status) || job.status === 'cancelling')) return;
    let batch: BatchObject;
    try {
      batch = await this.#api.cancel(job.batch_id!);
    } catch (error) {
      // It ended meanwhile (a finished batch cannot be cancelled): record how it ended.
      if ((error as BatchpipeError).context?.status !== 400) throw error;
      batch = await this.#api.retrieve(job.batch_id!);
    }
    this.#record(job, batch);
    await this.save(job);
  }

  /** Settles the jobs of a cancelled run that have no batch; adopts (and cancels) a batch an intent made. */
  async #settleCancelled(): Promise<void> {
    for (const job of this.manifest.jobs) {
      if (!UNSENT.has(job.state) || this.#aborted) continue;
      if (job.state === 'uploading') {
        const file = await this.#lostUpload(job);
        if (file) {
          this.#adoptUpload(job, file);
          job.state = 'uploaded';
          await this.save(job);
        }
      }
      if (job.state === 'creating') {
        const batch = await this.#lostBatch(job);
        if (batch) {
          this.#submitted(job, batch);
          await this.save(job);
          this.#emit({ type: 'created', job: job.id, batch_id: batch.id });
          await this.#cancelBatch(job);
          continue;
        }
      }
      job.status = 'cancelled';
      job.state = 'done';
      job.outcome = { ok: 0, failed: 0, expired: 0, cancelled: job.lines, retry: 0 };
      job.finished_at = new Date().toISOString();
      await this.save(job);
      if (this.manifest.options.delete_input_files && job.input_file_id)
        await this.#api.deleteFile(job.input_file_id).catch(() => undefined);
      this.#emit({ type: 'finished', job: job.id, status: 'cancelled', ...job.outcome });
    }
  }

  /**
   * Downloads an ended batch's output and error files and settles each of its requests: ok, failed,
   * expired or cancelled; requests that failed with a retryable code (and, by option, those an expiry
   * left unsent) go into a new job, the next attempt, until attempts run out or the run is cancelled.
   */
  async #finish(job: JobRecord): Promise<void> {
    await this.#subdir('results');
    const signal = this.#settings.signal;
    if (job.output_file_id && !job.output_path) {
      const path = join('results', `${job.id}.output.jsonl`);
      job.calls.download++;
      await this.#api.download(job.output_file_id, join(this.dir, path), signal);
      job.output_path = path;
      await this.save(job);
    }
    if (job.error_file_id && !job.error_path) {
      const path = join('results', `${job.id}.errors.jsonl`);
      job.calls.download++;
      await this.#api.download(job.error_file_id, join(this.dir, path), signal);
      job.error_path = path;
      await this.save(job);
    }
    const noMore = job.attempt >= this.manifest.options.max_attempts || this.cancelled;
    const resubmitExpired = !noMore && this.manifest.options.resubmit_expired;
    const seen = new Set<string>();
    const retry = new Set<string>();
    const outcome = { ok: 0, failed: 0, expired: 0, cancelled: 0, retry: 0 };
    if (job.output_path) {
      for await (const line of jsonlBuffers(join(this.dir, job.output_path))) {
        const id = customIdOf(line);
        if (id === undefined || seen.has(id)) continue;
        seen.add(id);
        outcome.ok++;
      }
    }
    if (job.error_path) {
      for await (const line of jsonlBuffers(join(this.dir, job.error_path))) {
        const parsed = safeParse(line.toString('utf8'));
        const id = typeof parsed?.custom_id === 'string' ? parsed.custom_id : undefined;
        if (id === undefined || seen.has(id)) continue;
        seen.add(id);
        const { code, statusCode } = lineError(parsed);
        // OpenAI lists what a batch did not run in the error file (batch_expired, batch_cancelled).
        const unrun = unrunReason(code);
        if (unrun === 'expired') {
          if (resubmitExpired) retry.add(id);
          else outcome.expired++;
        } else if (unrun === 'cancelled') outcome.cancelled++;
        else if (!noMore && retryableRequest(code, statusCode)) retry.add(id);
        else outcome.failed++;
      }
    }
    // Requests with no line at all: the batch expired, was cancelled or failed before running them.
    for await (const line of jsonlBuffers(join(this.dir, job.input))) {
      const id = customIdOf(line);
      if (id === undefined || seen.has(id)) continue;
      if (job.status === 'expired') {
        if (resubmitExpired) retry.add(id);
        else outcome.expired++;
      } else if (job.status === 'cancelled') outcome.cancelled++;
      else if (job.status === 'completed' && !noMore) retry.add(id);
      else outcome.failed++;
    }
    outcome.retry = retry.size;
    const next = retry.size > 0 ? await this.#retryJob(job, retry) : undefined;
    if (this.manifest.options.delete_input_files && job.input_file_id)
      await this.#api.deleteFile(job.input_file_id).catch(() => undefined);
    if (this.manifest.options.delete_output_files) {
      for (const id of [job.output_file_id, job.error_file_id])
        if (id) await this.#api.deleteFile(id).catch(() => undefined);
    }
    job.files_deleted = this.manifest.options.delete_input_files || this.manifest.options.delete_output_files;
    job.outcome = outcome;
    job.state = 'done';
    job.finished_at = new Date().toISOString();
    // In one write, the new attempt's line first: a write cut short keeps it, and not the end of this
    // job alone (whose finishing, done again, finds the attempt made).
    await (next ? this.save(next, job) : this.save(job));
    this.#emit({ type: 'finished', job: job.id, status: job.status ?? 'unknown', ...outcome });
  }

  /**
   * Writes the requests worth another try into the next attempt's file and adds its job (returned,
   * unsaved; undefined when an earlier try at finishing added it already).
   */
  async #retryJob(job: JobRecord, ids: Set<string>): Promise<JobRecord | undefined> {
    const attempt = job.attempt + 1;
    const id = `${job.shard.replace(/\.jsonl$/, '')}-a${attempt}`;
    if (this.manifest.jobs.some((j) => j.id === id)) return undefined;
    const input = join('jobs', `${id}.jsonl`);
    await this.#subdir('jobs');
    const file = new BufferedFile(join(this.dir, input), { hash: true });
    let lines = 0;
    let sha256: string;
    try {
      for await (const line of jsonlBuffers(join(this.dir, job.input))) {
        const custom = customIdOf(line);
        if (custom === undefined || !ids.has(custom)) continue;
        lines++;
        // The line's bytes as stored (they live in a reused buffer: appendBytes copies them).
        let pending = file.appendBytes(line, 0, line.length);
        if (pending) await pending;
        pending = file.appendBytes(NEWLINE, 0, 1);
        if (pending) await pending;
      }
      sha256 = await file.close();
    } catch (error) {
      // No half-written retry file is left behind: the next attempt at finishing writes it again.
      await file.discard();
      throw error;
    }
    const { size } = await stat(join(this.dir, input));
    const next = newJob(
      this.manifest.run_id,
      {
        id,
        shard: job.shard,
        attempt,
        input,
        lines,
        bytes: size,
        sha256,
        model: job.model,
        endpoint: job.endpoint,
      },
      this.manifest.task?.name,
    );
    this.manifest.jobs.push(next);
    this.#emit({ type: 'retry', job: id, requests: lines });
    // An earlier run of the same work may have sent this attempt too: what it made was looked up with the rest.
    const earlier = this.manifest.earlier;
    if (earlier?.state === 'done') {
      const adopted = this.#adoptEarlier(next, earlier);
      if (adopted)
        this.#emit({
          type: 'adopted',
          run: this.manifest.run_id,
          batches: adopted === 'batch' ? 1 : 0,
          uploads: adopted === 'upload' ? 1 : 0,
          jobs: 1,
          toSend: adopted === 'batch' ? 0 : 1,
        });
    }
    return next;
  }

  /** Per-request totals so far. */
  counts(): RunCounts {
    const counts: RunCounts = {
      rows: this.manifest.rows,
      rejected: this.manifest.rejected,
      ok: 0,
      failed: 0,
      expired: 0,
      cancelled: 0,
      pending: 0,
    };
    for (const job of this.manifest.jobs) {
      if (job.outcome) {
        counts.ok += job.outcome.ok;
        counts.failed += job.outcome.failed;
        counts.expired += job.outcome.expired;
        counts.cancelled += job.outcome.cancelled;
      } else {
        counts.pending += job.lines;
      }
    }
    return counts;
  }

  /** Jobs that could not finish, with why. */
  stuck(): JobRecord[] {
    return this.manifest.jobs.filter((j) => j.note !== null && j.state !== 'done');
  }
}

/** The name of the earlier upload with this id, `fallback` when no listed upload has it. */
function uploadName(earlier: EarlierWork, id: string, fallback: string): string {
  for (const [name, file] of Object.entries(earlier.files))
    if (file.id === id || file.older_ids?.includes(id)) return name;
  return fallback;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

const NEWLINE = Buffer.from('\n');

/** A failed request's code and HTTP status, wherever the line keeps them (`error`, or the response body's `error`). */
export function lineError(line: Record<string, unknown> | undefined): {
  code: string | undefined;
  statusCode: number | undefined;
} {
  const error = line?.error as { code?: unknown; type?: unknown } | string | null | undefined;
  const response = line?.response as
    | { status_code?: unknown; body?: { error?: { code?: unknown; type?: unknown } } }
    | null
    | undefined;
  const statusCode = typeof response?.status_code === 'number' ? response.status_code : undefined;
  const candidates = [
    typeof error === 'object' ? error?.code : undefined,
    typeof error === 'object' ? error?.type : undefined,
    response?.body?.error?.code,
    response?.body?.error?.type,
  ];
  const code = candidates.find((c): c is string => typeof c === 'string' && c !== '');
  return { code, statusCode };
}

function safeParse(line: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(line) as unknown;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A job's `ds_name`: unique to run and job, at most DashScope's 100 characters: `bp-<run>-<job>`, after
 * the task name when the run has one (cut so the identity still fits).
 */
export function dsNameFor(runId: string, jobId: string, taskName?: string | null): string {
  return taskDsName(dsIdentity(runId, jobId), taskName, DS_NAME_MAX);
}

/** The part of a job's `ds_name` that is the run's and job's own (`bp-<run>-<job>`): what adoption matches. */
export function dsIdentity(runId: string, jobId: string): string {
  return `bp-${runId.replace(/^run-/, '')}-${jobId}`;
}

/** "ds_name <= 100 characters" (ref/dashscope-batch-api.txt), for every provider alike. */
const DS_NAME_MAX = 100;

/** A new job record for a file of requests, nothing sent yet. */
export function newJob(
  runId: string,
  fields: Pick<
    JobRecord,
    'id' | 'shard' | 'attempt' | 'input' | 'lines' | 'bytes' | 'sha256' | 'model' | 'endpoint'
  >,
  taskName?: string | null,
): JobRecord {
  return {
    ...fields,
    file_name: `${runId}-${fields.id}.jsonl`,
    input_file_id: null,
    upload_intent_at: null,
    create_intent_at: null,
    input_file_created_at: null,
    ds_name: dsNameFor(runId, fields.id, taskName),
    batch_id: null,
    state: 'pending',
    status: null,
    request_counts: null,
    output_file_id: null,
    error_file_id: null,
    output_path: null,
    error_path: null,
    errors: null,
    calls: { upload: 0, create: 0, lookup: 0, poll: 0, download: 0 },
    created_at: new Date().toISOString(),
    submitted_at: null,
    batch_created_at: null,
    batch_expires_at: null,
    finished_at: null,
    outcome: null,
    note: null,
  };
}

export interface NewRunOptions {
  runId: string;
  /** The run id of this work without `newRun` (the same as `runId` unless forced fresh). */
  workId?: string;
  /** Look up, before sending, what a run of the same work already made at the provider (not for a fresh run). */
  lookEarlier?: boolean;
  connection: Connection;
  shards: ShardSummary[];
  rows: number;
  rejected: number;
  completionWindow: string;
  maxAttempts: number;
  resubmitExpired: boolean;
  deleteInputFiles: boolean;
  deleteOutputFiles: boolean;
  /** The user's names and metadata for the run's batches. */
  task?: TaskLabel | undefined;
}

/** The manifest of a new run: one job per shard, nothing sent. */
export function newManifest(o: NewRunOptions): RunManifest {
  const now = new Date().toISOString();
  const endpoints = new Set(o.shards.map((s) => s.endpoint));
  if (endpoints.size > 1) {
    throw new BatchpipeError(
      'BP_ENDPOINT_MISMATCH',
      `a run serves one endpoint; these requests name ${[...endpoints].join(', ')}`,
    );
  }
  return {
    version: 1,
    run_id: o.runId,
    work_id: o.workId ?? o.runId,
    created_at: now,
    updated_at: now,
    provider: {
      name: o.connection.provider,
      base_url: o.connection.provider === 'local' ? null : redactURL(o.connection.baseURL ?? null),
      ...(o.connection.provider !== 'local' && { api_paths: { ...o.connection.profile.paths } }),
    },
    endpoint: o.shards[0]?.endpoint ?? '/v1/chat/completions',
    completion_window: o.completionWindow,
    cancelled_at: null,
    options: {
      max_attempts: o.maxAttempts,
      resubmit_expired: o.resubmitExpired,
      delete_input_files: o.deleteInputFiles,
      delete_output_files: o.deleteOutputFiles,
    },
    rows: o.rows,
    rejected: o.rejected,
    earlier: o.lookEarlier ? { state: 'pending', checked_at: null, files: {}, batches: {} } : null,
    ...(o.task && { task: o.task }),
    shards: o.shards,
    jobs: o.shards.map((s) =>
      newJob(
        o.runId,
        {
          id: `${s.file.replace(/\.jsonl$/, '')}-a1`,
          shard: s.file,
          attempt: 1,
          input: s.file,
          lines: s.lines,
          bytes: s.bytes,
          sha256: s.sha256,
          model: s.model,
          endpoint: s.endpoint,
        },
        o.task?.name,
      ),
    ),
  };
}

/** `24h`, `336h`, `14d`, `2d` -> hours as the API takes them (`336h`), within the provider's bounds. */
export function completionWindowHours(window: string, bounds: { min: number; max: number }): string {
  const match = /^\s*(\d+)\s*([hd])\s*$/i.exec(window);
  if (!match) {
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `completion window must look like 24h or 14d, got ${JSON.stringify(window)}`,
      { option: 'completionWindow' },
    );
  }
  const hours = Number(match[1]) * (match[2]!.toLowerCase() === 'd' ? 24 : 1);
  if (hours < bounds.min || hours > bounds.max) {
    const allowed = bounds.min === bounds.max ? `${bounds.min}h` : `${bounds.min}h to ${bounds.max}h`;
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `completion window ${window} is ${hours}h; the provider takes ${allowed}`,
      { option: 'completionWindow' },
    );
  }
  return `${hours}h`;
}

/**
 * The wait before poll round `round` (from 0), given a random number in [0, 1). With a poll gap (a
 * real provider: "Poll every 1-2 minutes", ref/dashscope-batch-api.txt), between the interval and 20%
 * more, never less: jitter only lengthens it. Without (the local service), polls come sooner at first
 * (short batches), then settle at the interval, with ±20% jitter.
 */
export function pollDelayMs(
  settings: Pick<RunSettings, 'pollIntervalMs' | 'pollGapMs'>,
  round: number,
  random: number,
): number {
  const interval = settings.pollIntervalMs;
  if ((settings.pollGapMs ?? 0) > 0)
    return Math.ceil(Math.max(interval, settings.pollGapMs!) * (1 + random * 0.2));
  const base = Math.min(interval, (interval / 8) * 1.5 ** round);
  return Math.round(base * (0.8 + random * 0.4));
}

/** Whether a job's batch may be retrieved at `now`: its last retrieve (or its creation) is `gap` ms past. */
export function pollDue(
  job: Pick<JobRecord, 'polled_at' | 'submitted_at'>,
  now: number,
  gap: number,
): boolean {
  if (gap <= 0) return true;
  const submitted = job.submitted_at === null ? 0 : Date.parse(job.submitted_at);
  const last = Math.max(job.polled_at ?? 0, Number.isNaN(submitted) ? 0 : submitted);
  return now - last >= gap;
}
