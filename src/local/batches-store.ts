import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FileLimits } from '../providers/profile.js';
import type { BatchFaults } from './batch-faults.js';
import { readJsonFile, writeFileAtomic } from './durable.js';
import type { BatchEndpoint } from './engine/engine.js';
import type { Knobs } from './engine/knobs.js';
import { isBatchId } from './ids.js';
import type { BatchErrorItem } from './validate-input.js';

export const BATCH_STATUSES = [
  'validating',
  'failed',
  'in_progress',
  'finalizing',
  'completed',
  'expired',
  'cancelling',
  'cancelled',
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
export const TERMINAL: ReadonlySet<BatchStatus> = new Set(['completed', 'failed', 'expired', 'cancelled']);

export interface BatchUsage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

/** The Batch object of the OpenAI API; fields not reached yet are null, as the API returns them. */
export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: BatchEndpoint;
  model: string | null;
  errors: { object: 'list'; data: BatchErrorItem[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  usage: BatchUsage;
  metadata: Record<string, string> | null;
}

/** How a batch's run ended, once its results are durable. */
export type Ending = 'completed' | 'expired' | 'cancelled';

/** What the service keeps about a batch beyond the public object. */
export interface BatchInternal {
  seq: number;
  knobs: Knobs;
  /** The rules the batch was created under (a restart with other options does not change them). */
  limits: FileLimits;
  models: string[] | null;
  /** The model reserved for dry runs under the batch's profile (a normal batch may not name it). */
  dryRunModel?: string | null;
  unrunOnExpiry: 'error_file' | 'omit';
  maxValidationErrors: number;
  /** Every line passed validation; requests may run. */
  validated: boolean;
  ending: Ending | null;
  /** Lines in the error file, set with `ending`. */
  errorLines: number;
  /** Faults set on this batch (metadata `bp_*`); absent when none. */
  faults?: BatchFaults | null;
  /** Result file ids, chosen once when finalizing starts (null: no such file), so a redo reuses them. */
  outputFileId?: string | null;
  errorFileId?: string | null;
}

export interface BatchRecord {
  batch: BatchObject;
  internal: BatchInternal;
}

/**
 * Batches in the data dir: `batches/<id>.json`, rewritten atomically on every status change, and
 * `batches/<id>/`, the work dir of a running batch (progress log, partial result files).
 */
export class BatchStore {
  readonly dir: string;
  readonly #records = new Map<string, BatchRecord>();
  readonly #saving = new Map<string, Promise<void>>();
  // Batches being created (checked against the account's limits, not yet stored).
  readonly #creating = new Set<BatchRecord>();
  #seq = 0;

  private constructor(dir: string) {
    this.dir = dir;
  }

  static async open(dir: string): Promise<BatchStore> {
    await mkdir(dir, { recursive: true });
    const store = new BatchStore(dir);
    const loaded: BatchRecord[] = [];
    const names = await readdir(dir);
    for (const name of names) {
      if (name.endsWith('.tmp')) await rm(join(dir, name), { force: true }); // a write a crash cut short
      if (!name.endsWith('.json') || !isBatchId(name.slice(0, -5))) continue;
      loaded.push((await readJsonFile(join(dir, name))) as BatchRecord);
    }
    loaded.sort((a, b) => a.internal.seq - b.internal.seq);
    for (const record of loaded) {
      store.#records.set(record.batch.id, record);
      store.#seq = Math.max(store.#seq, record.internal.seq);
      // A finished batch's work dir is removed after its final state is saved; a crash between leaves it.
      if (TERMINAL.has(record.batch.status) && names.includes(record.batch.id))
        await rm(join(dir, record.batch.id), { recursive: true, force: true });
    }
    return store;
  }

  nextSeq(): number {
    return ++this.#seq;
  }

  get(id: string): BatchRecord | undefined {
    return this.#records.get(id);
  }

  /** Oldest first. */
  all(): BatchRecord[] {
    return [...this.#records.values()];
  }

  workDir(id: string): string {
    if (!isBatchId(id)) throw new Error(`not a batch id: ${id}`);
    return join(this.dir, id);
  }

  /** Batches not in a terminal state (those being created too) that `keep` selects. */
  unfinished(keep: (record: BatchRecord) => boolean = () => true): number {
    let n = 0;
    for (const record of this.#records.values()) if (!TERMINAL.has(record.batch.status) && keep(record)) n++;
    for (const record of this.#creating) if (keep(record)) n++;
    return n;
  }

  async create(record: BatchRecord): Promise<void> {
    this.#creating.add(record);
    try {
      await mkdir(this.workDir(record.batch.id), { recursive: true });
    } finally {
      this.#creating.delete(record);
    }
    this.#records.set(record.batch.id, record);
    try {
      await this.save(record);
    } catch (error) {
      this.#records.delete(record.batch.id);
      throw error;
    }
  }

  /**
   * Writes the record as it is when the write starts. Writes of one batch run one after another, so
   * the file always ends with the latest state whatever order callers save in.
   */
  save(record: BatchRecord): Promise<void> {
    const id = record.batch.id;
    const previous = this.#saving.get(id) ?? Promise.resolve();
    const next = previous
      .catch(() => {})
      .then(() => writeFileAtomic(join(this.dir, `${id}.json`), JSON.stringify(record)));
    this.#saving.set(id, next);
    void next
      .finally(() => {
        if (this.#saving.get(id) === next) this.#saving.delete(id);
      })
      .catch(() => {});
    return next;
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.#saving.values()]);
  }

  /** Latest time stamped on any batch, so the clock never restarts behind it. */
  latestStamp(): number {
    let latest = 0;
    for (const { batch } of this.#records.values()) {
      for (const at of [
        batch.created_at,
        batch.in_progress_at,
        batch.finalizing_at,
        batch.completed_at,
        batch.failed_at,
        batch.expired_at,
        batch.cancelling_at,
        batch.cancelled_at,
      ])
        if (at !== null) latest = Math.max(latest, at);
    }
    return latest;
  }
}
