import { readFileSync } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Slice } from '../core/rows/row-slice.js';
import { BatchpipeError } from '../errors.js';
import { writeFileAtomic } from '../internal/durable-write.js';
import type { ContentHashes } from './content-hashes.js';
import type { ShardSummary } from './sharder.js';
import type { TaskLabel } from './task-metadata.js';

export const MANIFEST_FILE = 'manifest.json';

/**
 * The journal of a manifest's generation `n`: one JSON line per saved job record, appended (and
 * fsynced) after the snapshot in `manifest.json` was written. Read, the snapshot plus its journal
 * replayed in order is the run's state; a snapshot names its generation (`journal`), so a journal of
 * another generation (left by a crash during a compaction) is never replayed.
 */
export function journalFile(generation: number): string {
  return `manifest.journal-${generation}.jsonl`;
}
const JOURNAL_NAME = /^manifest\.journal-(\d+)\.jsonl$/;

/** Batch statuses as the API reports them. */
export type BatchStatus =
  | 'validating'
  | 'failed'
  | 'in_progress'
  | 'finalizing'
  | 'completed'
  | 'expired'
  | 'cancelling'
  | 'cancelled';
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set([
  'completed',
  'failed',
  'expired',
  'cancelled',
]);

/**
 * Where a job stands. An `uploading` or `creating` job has recorded its intent before the call: the
 * call may or may not have landed, so the next step looks for its effect before calling again.
 */
export type JobState =
  | 'pending'
  | 'uploading'
  | 'uploaded'
  | 'creating'
  | 'submitted'
  | 'downloading'
  | 'done';

/** One batch: a shard's first attempt, or a later attempt with the requests worth sending again. */
export interface JobRecord {
  /** `<shard>-a<attempt>`, unique in the run. */
  id: string;
  shard: string;
  attempt: number;
  /** The request lines of this job, relative to the run dir. */
  input: string;
  lines: number;
  bytes: number;
  sha256: string;
  model: string;
  endpoint: string;
  /** Upload file name, unique to run and job: how an upload that lost its reply is found again. */
  file_name: string;
  input_file_id: string | null;
  /**
   * When the upload and create intents were saved (unix seconds, this machine's clock), and when the
   * provider stored the input file (its clock): lookups stop paging at what is older than these, as
   * nothing made before an intent can be its effect. Absent in manifests of older versions.
   */
  upload_intent_at?: number | null;
  create_intent_at?: number | null;
  input_file_created_at?: number | null;
  /**
   * When the last upload or create call of this job was sent (unix ms, this machine's clock): a
   * lookup for its effect waits until the provider can no longer be committing it.
   */
  call_sent_at?: number | null;
  /** `metadata.ds_name`, unique to run and job: how a create that lost its reply is found again. */
  ds_name: string;
  batch_id: string | null;
  state: JobState;
  status: BatchStatus | null;
  request_counts: { total: number; completed: number; failed: number } | null;
  output_file_id: string | null;
  error_file_id: string | null;
  /** Downloaded files, relative to the run dir. */
  output_path: string | null;
  error_path: string | null;
  /** The batch's own errors (file-level failures: line, code, message). */
  errors: Array<{
    code: string | null;
    line: number | null;
    message: string | null;
    param: string | null;
  }> | null;
  /** When its batch was last retrieved (unix ms, this machine's clock): the poll gap counts from it. */
  polled_at?: number | null;
  /** API calls made for this job, by kind (more than one upload or create means a retry). */
  calls: { upload: number; create: number; lookup: number; poll: number; download: number };
  created_at: string;
  submitted_at: string | null;
  /** Provider timestamps (unix seconds) of creation and expiry, for the "stuck" check. */
  batch_created_at: number | null;
  batch_expires_at: number | null;
  finished_at: string | null;
  /** Per-request outcome once downloaded: ok/failed (final), retry (sent again in the next attempt). */
  outcome: { ok: number; failed: number; expired: number; cancelled: number; retry: number } | null;
  /** True once its files were deleted at the provider as the run's options said (input, results or both). */
  files_deleted?: boolean;
  /** True when its batch was made by an earlier run of the same work (another run directory) and taken over. */
  adopted?: boolean;
  /** Why the job stopped short, if it did (a stuck batch, an unrecoverable error). */
  note: string | null;
}

/** An upload an earlier run of the same work left at the provider, found by its name. */
export interface EarlierUpload {
  id: string;
  bytes: number;
  /** The provider's clock, unix seconds; null when it did not say. */
  created_at: number | null;
  /** Older uploads of the same name (a run that uploaded twice): a batch on any of them is the job's. */
  older_ids?: string[];
}

/** A batch an earlier run of the same work left at the provider, found by its ds_name and metadata. */
export interface EarlierBatch {
  id: string;
  input_file_id: string;
  created_at: number | null;
  /** Requests in it, where the provider said. */
  total: number | null;
}

/**
 * What a run of the same work (another run directory, or one deleted) made at the provider, looked up
 * once before this run sends anything: `pending` until then. Kept for jobs made later (retry attempts),
 * whose uploads and batches the earlier run may have made too.
 */
export interface EarlierWork {
  state: 'pending' | 'done';
  checked_at: string | null;
  /** By upload file name. */
  files: Record<string, EarlierUpload>;
  /** By job id (`metadata.bp_job`). */
  batches: Record<string, EarlierBatch>;
}

/** A run's durable state: enough to resume, report and download from this file alone. */
export interface RunManifest {
  version: 1;
  /**
   * The generation of this snapshot: the job records saved since are in `journalFile(journal)`, to be
   * replayed over it. Absent in manifests of older versions (no journal).
   */
  journal?: number;
  run_id: string;
  /**
   * The id this work has without `newRun`: the same as `run_id`, except for a run forced fresh, whose
   * id adds a random part (so its batches' names are its own). Absent in manifests of older versions.
   */
  work_id?: string;
  created_at: string;
  updated_at: string;
  /** Provider and base URL, credentials in the URL redacted (`***`); never the key. */
  provider: {
    name: string;
    base_url: string | null;
    /** Where each Files and Batches call went (`--api-path`), so `status`/`resume` call the same; absent in older manifests. */
    api_paths?: Record<string, string>;
  };
  endpoint: string;
  completion_window: string;
  /** Set by `cancel`: nothing more is uploaded or created, what ran is collected. */
  cancelled_at?: string | null;
  options: {
    max_attempts: number;
    resubmit_expired: boolean;
    delete_input_files: boolean;
    delete_output_files: boolean;
  };
  /** When the account's storage was checked before the first upload (once per run). */
  storage_checked_at?: string;
  /** The user's names and metadata for every batch of the run (`--task-name` ...); absent when none were given. */
  task?: TaskLabel;
  /** Rows seen and rejected before upload (rejections.jsonl in the run dir). */
  rows: number;
  rejected: number;
  shards: ShardSummary[];
  /** The slice of a table this run is of (`{ index, count }`); absent: the whole table. */
  slice?: Slice;
  /** What an earlier run of the same work made at the provider (absent or null: not looked up, `newRun`). */
  earlier?: EarlierWork | null;
  /**
   * How a keyed run's requests were keyed (REQUEST_KEYS_FORMAT), which its id depends on; absent in
   * runs without keys and in keyed runs of older versions (SHA-256).
   */
  request_keys?: string;
  /** Per shard, the request content hashes (identical requests hash alike). */
  content_hashes?: ContentHashes[];
  jobs: JobRecord[];
}

/** Reads a run's manifest (its snapshot and its journal replayed), naming the file when it is missing or damaged. */
export async function readManifest(runDir: string): Promise<RunManifest> {
  const path = join(runDir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw notFound(runDir, path, error);
  }
  const manifest = parseSnapshot(path, text);
  if (manifest.journal !== undefined) {
    const journal = join(runDir, journalFile(manifest.journal));
    const lines = await readFile(journal, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw corrupt(journal, error);
    });
    replayJournal(manifest, lines, journal);
  }
  return manifest;
}

/** `readManifest`, synchronously: for tools that watch a run directory as it changes. */
export function readManifestSync(runDir: string): RunManifest {
  const path = join(runDir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw notFound(runDir, path, error);
  }
  const manifest = parseSnapshot(path, text);
  if (manifest.journal !== undefined) {
    const journal = join(runDir, journalFile(manifest.journal));
    let lines = '';
    try {
      lines = readFileSync(journal, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw corrupt(journal, error);
    }
    replayJournal(manifest, lines, journal);
  }
  return manifest;
}

function notFound(runDir: string, path: string, error: unknown): BatchpipeError {
  const code = (error as NodeJS.ErrnoException).code;
  return new BatchpipeError(
    'BP_RUN_NOT_FOUND',
    code === 'ENOENT'
      ? `no run at ${runDir} (no ${MANIFEST_FILE})`
      : `cannot read ${path}: ${(error as Error).message}`,
    { file: path },
    { cause: error },
  );
}

function corrupt(path: string, error: unknown): BatchpipeError {
  return new BatchpipeError(
    'BP_MANIFEST_CORRUPT',
    `${path} cannot be read as a run manifest: ${(error as Error).message}`,
    { file: path },
    { cause: error },
  );
}

function parseSnapshot(path: string, text: string): RunManifest {
  try {
    const manifest = JSON.parse(text) as RunManifest;
    if (manifest.version !== 1 || !Array.isArray(manifest.jobs))
      throw new Error('not a batchpipe run manifest');
    return manifest;
  } catch (error) {
    throw corrupt(path, error);
  }
}

/**
 * Applies a journal's job records over the snapshot, in order: a record replaces the job of its id,
 * or is a new job (a retry attempt). A last line cut short (a crash or a full disk mid-append) was
 * never reported saved, so it is left out; a damaged line before the last is corruption.
 */
export function replayJournal(manifest: RunManifest, text: string, path: string): void {
  if (text === '') return;
  const lines = text.split('\n');
  // The text after the last newline is a line whose append did not complete.
  lines.pop();
  const at = new Map<string, number>();
  for (const [i, job] of manifest.jobs.entries()) at.set(job.id, i);
  lines.forEach((line, i) => {
    let job: JobRecord;
    try {
      job = (JSON.parse(line) as { job: JobRecord }).job;
      if (typeof job?.id !== 'string') throw new Error('no job record');
    } catch (error) {
      throw corrupt(path, new Error(`line ${i + 1}: ${(error as Error).message}`));
    }
    const index = at.get(job.id);
    if (index === undefined) {
      at.set(job.id, manifest.jobs.length);
      manifest.jobs.push(job);
    } else manifest.jobs[index] = job;
  });
}

/**
 * Writes the manifest whole, as a new generation: a temporary file, fsync, rename over the old one,
 * fsync of the directory; then the journals of older generations are removed. A crash leaves the old
 * snapshot with its journal or the new one (whose journal starts empty), never half of either.
 */
export async function writeManifest(runDir: string, manifest: RunManifest): Promise<void> {
  manifest.updated_at = new Date().toISOString();
  const generation = (manifest.journal ?? 0) + 1;
  await writeFileAtomic(
    join(runDir, MANIFEST_FILE),
    `${JSON.stringify({ ...manifest, journal: generation }, null, 2)}\n`,
  );
  manifest.journal = generation;
  await removeJournals(runDir, generation);
}

/** Removes journals of generations other than `keep` (a removal that fails is left for the next one). */
async function removeJournals(runDir: string, keep: number): Promise<void> {
  const names = await readdir(runDir).catch(() => [] as string[]);
  for (const name of names) {
    const match = JOURNAL_NAME.exec(name);
    if (match && Number(match[1]) !== keep) await unlink(join(runDir, name)).catch(() => undefined);
  }
}
