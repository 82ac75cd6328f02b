import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import OpenAI from 'openai';
import { BatchpipeError } from '../errors.js';
import { fsyncFile } from '../internal/durable-write.js';
import { linkedSignal } from '../internal/linked-signal.js';
import { outputError } from '../internal/output-error.js';
import { RateLimiter } from '../internal/rate-limiter.js';
import { type Connection, redact, splitBaseURL } from '../providers/connection.js';
import type { ApiPaths, StorageLimits } from '../providers/profile.js';
import { backoffMs, retryAfterMs, retryableCall } from '../providers/retry.js';
import { envelopeFetch, GatewayRefusal, gatewayBatch } from './gateway-reply.js';
import type { BatchStatus, EarlierBatch, EarlierUpload, JobRecord } from './manifest.js';
import { neverReached, probeAddress } from './reachability.js';
import { hasIdentity } from './task-metadata.js';
import { uploadFile } from './upload-file.js';

/** A batch as the API returns it (OpenAI's Batch object; DashScope adds nothing we rely on). */
export interface BatchObject {
  id: string;
  status: BatchStatus;
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  created_at: number;
  expires_at?: number | null;
  output_file_id?: string | null;
  error_file_id?: string | null;
  request_counts?: { total: number; completed: number; failed: number } | null;
  metadata?: Record<string, string> | null;
  errors?: {
    data?: Array<{
      code?: string | null;
      line?: number | null;
      message?: string | null;
      param?: string | null;
    }> | null;
  } | null;
}

/** A file as the Files API lists it. */
export interface FileObject {
  id: string;
  filename: string;
  bytes: number;
  purpose: string;
  created_at: number;
}

/** A file as the Files API lists it, reduced to what a run keeps. */
export interface UploadedFile {
  id: string;
  /** The provider's clock, unix seconds; null when it did not say. */
  created_at: number | null;
}

/** What a run's batch carries in `metadata`; a lookup matches all of it exactly. */
export interface BatchTag {
  ds_name: string;
  bp_run: string;
  bp_job: string;
}

/** What `findEarlier` looks for: the uploads and batches a run of the same work would have made. */
export interface EarlierQuery {
  runId: string;
  /** What every batch of the run has in its ds_name (`bp-<run>-`; DashScope's ds_name filter is a substring match). */
  dsPrefix: string;
  /** The identity a job's ds_name ends with (`bp-<run>-<job>`), after the task name a run may have put first. */
  dsName: (jobId: string) => string;
  /** The upload file name prefix every job of the run has (`<run>-`). */
  filePrefix: string;
  /** The jobs known now (first attempts): once each is found, what is older cannot be of this run. */
  files: ReadonlySet<string>;
  jobs: ReadonlySet<string>;
}

export interface BatchApiOptions {
  /** Attempts for one upload or create before giving up (each retry first looks for the effect). */
  callAttempts?: number;
  /** Attempts for each list call of a lookup (a lookup that gets no answer stops the run; it never guesses). */
  lookupAttempts?: number;
  /** Per-call timeout in ms (uploads of 500 MB need minutes). */
  timeoutMs?: number;
  /** First backoff between attempts, ms. */
  backoffMs?: number;
  /** Called with a line for each retry, for progress output (never holds the key). */
  onRetry?: (message: string) => void;
  /**
   * How long after an upload or create was sent its effect may still appear at the provider, ms: a
   * lookup made sooner (a retry, or a resume after a crash) could miss a call the provider is still
   * committing and send it again. Default: 1 s for the local service, 30 s for remote providers.
   */
  settleMs?: number;
  /**
   * Minutes of the provider's clock per real minute, for a simulated provider whose clock runs fast
   * (the local service's `timeScale`): the documented per-minute rates are kept in its minutes. Default 1.
   */
  providerTimeScale?: number;
}

/**
 * Thrown when the detach signal aborts a call: not a failure. The intent stays in the manifest and
 * the next resume looks for the call's effect before calling again.
 */
export class RunDetached extends Error {
  override readonly name = 'RunDetached';
  constructor(what: string) {
    super(`${what} was interrupted: detached`);
  }
}

/** Items per list page (the Batches API's maximum; files pages are kept the same size). */
const PAGE_SIZE = 100;
/**
 * How far this machine's clock may be ahead of the provider's. A file uploaded after its intent was
 * saved has a provider `created_at` no older than the intent minus this; older files cannot be ours.
 */
const CLOCK_SLACK_S = 24 * 3600;

/**
 * The Files and Batches calls a run makes, through the openai SDK. Uploads and creates are never
 * retried blindly: the SDK's own retries are off for them, and before each retry (and on resume)
 * the file is looked for by its unique name and the batch by its unique ds_name, run, job and input
 * file, so a call whose reply was lost is adopted, not repeated. A lookup that gets no answer is an
 * error, never "not found". Queries keep the SDK's retries (429/5xx, honouring retry-after); list
 * calls are retried here, one page at a time, each within the provider's list rate.
 */
export class BatchApi {
  readonly client: OpenAI;
  readonly #connection: Connection;
  readonly #attempts: number;
  readonly #lookupAttempts: number;
  readonly #backoff: number;
  readonly #onRetry: ((message: string) => void) | undefined;
  readonly #timeoutMs: number;
  readonly settleMs: number;
  /** Whether the base URL has answered a call (any HTTP status): see #reach. */
  #reached = false;
  /** Where each call goes, relative to the base URL (the profile's, with the user's overrides). */
  get #paths(): ApiPaths {
    return this.#connection.profile.paths;
  }
  /** Where uploads go: the base URL apart from its credentials. */
  readonly #target: { baseURL: string; query: Record<string, string>; authorization: string | undefined };
  /** The provider's clock (unix seconds, from the `date` header of its last list reply) and when it was read. */
  #providerClock: { at: number; read: number } | undefined;
  /** The provider's documented rate limits, kept on this side (429s are still handled). */
  readonly #limiters: Partial<Record<'create' | 'query' | 'cancel' | 'list', RateLimiter>> = {};

  constructor(connection: Connection, options: BatchApiOptions = {}) {
    if (!connection.baseURL) {
      throw new BatchpipeError(
        'BP_USAGE',
        'no base URL: start the local service (startLocalService) or name a provider',
      );
    }
    this.#connection = connection;
    this.#attempts = options.callAttempts ?? 6;
    this.#lookupAttempts = options.lookupAttempts ?? 10;
    this.#backoff = options.backoffMs ?? 1000;
    this.#onRetry = options.onRetry;
    this.#timeoutMs = options.timeoutMs ?? 10 * 60_000;
    this.settleMs = options.settleMs ?? (connection.profile.name === 'local' ? 1000 : 30_000);
    const rates = connection.profile.rateLimits;
    if (rates) {
      const scale = options.providerTimeScale ?? 1;
      this.#limiters = {
        create: new RateLimiter(rates.createPerMinute, scale),
        query: new RateLimiter(rates.queryPerMinute, scale),
        cancel: new RateLimiter(rates.cancelPerMinute, scale),
        list: new RateLimiter(rates.listPerMinute, scale),
      };
    }
    // Credentials in the URL travel apart from it (see splitBaseURL): user info as Basic authentication.
    const parts = splitBaseURL(connection.baseURL);
    this.#target = {
      baseURL: parts.url,
      query: parts.query,
      authorization: parts.basic && `Basic ${Buffer.from(parts.basic).toString('base64')}`,
    };
    this.client = new OpenAI({
      baseURL: parts.url,
      ...(Object.keys(parts.query).length > 0 && { defaultQuery: parts.query }),
      ...(this.#target.authorization && { defaultHeaders: { authorization: this.#target.authorization } }),
      apiKey: connection.apiKey ?? 'none',
      timeout: this.#timeoutMs,
      maxRetries: 3,
      ...(connection.profile.createReply === 'envelope' && { fetch: envelopeFetch() }),
    });
  }

  /** Uploads a job's input file, unless an earlier attempt already did. */
  async upload(
    job: JobRecord,
    path: string,
    signal?: AbortSignal,
    persist?: () => Promise<void>,
  ): Promise<UploadedFile> {
    return this.#exactlyOnce(
      'upload',
      job,
      persist,
      () => this.findUpload(job, signal),
      async () => {
        job.calls.upload++;
        const uploaded = await uploadFile(
          {
            ...this.#target,
            filesPath: this.#paths.files,
            apiKey: this.#connection.apiKey,
            timeoutMs: this.#timeoutMs,
            signal,
          },
          path,
          job.file_name,
        );
        return { id: uploaded.id, created_at: uploaded.created_at ?? null };
      },
      signal,
    );
  }

  /**
   * The file this run uploaded for the job, found by its unique name and size, newest first, down to
   * the moment of the upload intent. Throws BP_LOOKUP_FAILED when the provider does not answer.
   */
  async findUpload(job: JobRecord, signal?: AbortSignal): Promise<UploadedFile | undefined> {
    job.calls.lookup++;
    const intent = job.upload_intent_at ?? null;
    const file = await this.#scan<FileObject>(
      'files',
      // No `order`: newest first is OpenAI's default, and a provider that refuses the parameter would
      // fail every lookup; a list that is not newest first is read whole (see #scan).
      { purpose: 'batch', limit: PAGE_SIZE },
      intent === null ? undefined : intent - CLOCK_SLACK_S,
      (f) => f.filename === job.file_name && f.bytes === job.bytes,
      lookupFailed(`the upload of ${job.id} (${job.file_name})`),
      signal,
    );
    return file && { id: file.id, created_at: typeof file.created_at === 'number' ? file.created_at : null };
  }

  /** Creates the job's batch, unless an earlier attempt already did; returns it. */
  async create(
    job: JobRecord,
    completionWindow: string,
    metadata: BatchTag & Record<string, string>,
    signal?: AbortSignal,
    persist?: () => Promise<void>,
  ): Promise<BatchObject> {
    return this.#exactlyOnce(
      'create',
      job,
      persist,
      () => this.findBatch(job, metadata, signal),
      async () => {
        job.calls.create++;
        await this.#limit('create');
        const body = {
          input_file_id: job.input_file_id,
          endpoint: job.endpoint,
          completion_window: completionWindow,
          metadata,
        };
        // The generic post: DashScope's windows (up to 336h) and dry-run endpoint are outside the SDK's types.
        const reply = await withCallSignal(signal, (own) =>
          this.client.post<unknown>(this.#paths.create, { body, maxRetries: 0, signal: own }),
        );
        if (this.#connection.profile.createReply === 'batch') return reply as BatchObject;
        // The gateway's `data` holds some of the batch's fields: the whole batch is read after it. The
        // create has landed; should that read fail, the next step finds the batch by its ds_name.
        const created = gatewayBatch<BatchObject>(reply);
        try {
          return await this.retrieve(created.id, signal);
        } catch (error) {
          if (signal?.aborted) throw error;
          this.#onRetry?.(
            `reading batch ${created.id} after its create failed (${this.#describe(error)}); going on with the fields the create returned`,
          );
          return created;
        }
      },
      signal,
    );
  }

  /**
   * The batch this run created for the job. DashScope's filters narrow the list where they exist
   * (`ds_name` is fuzzy, a substring match, so `bp-x-1` also lists `bp-x-10`); what comes back must
   * match exactly: ds_name, the run and job in its metadata, and the input file. Pages are read newest
   * first down to the input file's upload (a batch on it cannot be older), each within the list rate.
   * Throws BP_LOOKUP_FAILED when the provider does not answer.
   */
  async findBatch(job: JobRecord, tag: BatchTag, signal?: AbortSignal): Promise<BatchObject | undefined> {
    if (!job.input_file_id) return undefined;
    job.calls.lookup++;
    const query: Record<string, string | number> = { limit: PAGE_SIZE };
    if (this.#filtersBatches) {
      query.input_file_ids = job.input_file_id;
      query.ds_name = tag.ds_name;
    }
    const intent = job.create_intent_at ?? null;
    const floor = job.input_file_created_at ?? (intent === null ? undefined : intent - CLOCK_SLACK_S);
    return this.#scan<BatchObject>(
      'batches',
      query,
      floor,
      (batch) => batchMatches(batch, job.input_file_id!, tag),
      lookupFailed(`the batch of ${job.id} (ds_name ${tag.ds_name})`),
      signal,
    );
  }

  /**
   * The uploads and batches a run of the same work (same run id) made at the provider, from any run
   * directory, matching exactly: ds_name, `metadata.bp_run` and `metadata.bp_job` for batches, the
   * run's name prefix for uploads. On DashScope the Batches list narrowed by the run's `ds_name`
   * prefix, then (only when a known job has no batch) the Files list; elsewhere the Files list, then
   * every page of the Batches list down to the oldest upload found when every known job's was. Each
   * list is read newest first until every known job is found (what a run makes later, retry attempts,
   * is newer) or to its end. Throws BP_LOOKUP_FAILED when the provider does not answer: a run that
   * cannot look never sends.
   */
  async findEarlier(
    q: EarlierQuery,
    signal?: AbortSignal,
  ): Promise<{ files: Record<string, EarlierUpload>; batches: Record<string, EarlierBatch> }> {
    const files: Record<string, EarlierUpload> = {};
    const batches: Record<string, EarlierBatch> = {};
    let missingFiles = q.files.size;
    let missingJobs = q.jobs.size;
    const scanFiles = () =>
      this.#walk<FileObject>(
        'files',
        { purpose: 'batch', limit: this.#filesPage },
        undefined,
        (f) => {
          if (typeof f.filename !== 'string' || !f.filename.startsWith(q.filePrefix)) return false;
          const newer = files[f.filename];
          if (newer) {
            newer.older_ids = [...(newer.older_ids ?? []), f.id];
            return false;
          }
          files[f.filename] = {
            id: f.id,
            bytes: f.bytes,
            created_at: typeof f.created_at === 'number' ? f.created_at : null,
          };
          if (q.files.has(f.filename)) missingFiles--;
          return missingFiles === 0;
        },
        lookupFailed(`the uploads of an earlier run of ${q.runId}`),
        signal,
      );
    const scanBatches = (query: Record<string, string | number>, floor: number | undefined) =>
      this.#walk<BatchObject>(
        'batches',
        query,
        floor,
        (batch) => {
          const metadata = batch.metadata ?? {};
          const job = metadata.bp_job;
          const dsName = metadata.ds_name ?? (batch as { ds_name?: unknown }).ds_name;
          if (
            typeof job !== 'string' ||
            batches[job] ||
            metadata.bp_run !== q.runId ||
            !hasIdentity(dsName, q.dsName(job))
          )
            return false;
          batches[job] = {
            id: batch.id,
            input_file_id: batch.input_file_id,
            created_at: typeof batch.created_at === 'number' ? batch.created_at : null,
            total: batch.request_counts?.total ?? null,
          };
          if (q.jobs.has(job)) missingJobs--;
          return missingJobs === 0;
        },
        lookupFailed(`the batches of an earlier run of ${q.runId}`),
        signal,
      );
    if (this.#filtersBatches) {
      // The ds_name filter lists the run's batches alone; uploads matter only for jobs without one.
      await scanBatches({ limit: PAGE_SIZE, ds_name: q.dsPrefix }, undefined);
      if (missingJobs > 0) await scanFiles();
    } else {
      // Unfiltered, the Batches list is read down to the oldest upload of the run, when all are found.
      await scanFiles();
      const known = [...q.files].map((name) => files[name]?.created_at);
      const floor =
        q.files.size > 0 && known.every((at) => typeof at === 'number')
          ? Math.min(...(known as number[])) - CLOCK_SLACK_S
          : undefined;
      await scanBatches({ limit: PAGE_SIZE }, floor);
    }
    return { files, batches };
  }

  /**
   * Files per list page when a whole Files list may be read: OpenAI documents up to 10,000 (and the
   * local service takes as many); elsewhere the batches' page size, which every provider takes.
   */
  get #filesPage(): number {
    const name = this.#connection.profile.name;
    return name === 'openai' || name === 'local' ? 10_000 : PAGE_SIZE;
  }

  /** True where the batch list takes DashScope's filters (`ds_name`, `input_file_ids`). */
  get #filtersBatches(): boolean {
    const name = this.#connection.profile.name;
    return name.startsWith('dashscope') || name === 'local';
  }

  /**
   * The provider's time now, unix seconds: its clock as the `date` header of its last list reply gave
   * it, carried forward; this machine's clock before any list reply.
   */
  providerNow(): number {
    const clock = this.#providerClock;
    if (!clock) return Math.floor(Date.now() / 1000);
    return clock.at + Math.floor((Date.now() - clock.read) / 1000);
  }

  /** How far back the provider lists batches, seconds; undefined when it lists them all. */
  get listWindowSeconds(): number | undefined {
    const days = this.#connection.profile.batchListWindowDays;
    return days === null ? undefined : days * 86_400;
  }

  async retrieve(batchId: string, signal?: AbortSignal): Promise<BatchObject> {
    await this.#limit('query');
    return this.#call(() =>
      withCallSignal(signal, (own) =>
        this.client.get<BatchObject>(pathFor(this.#paths.retrieve, batchId), {
          signal: own,
          ...this.#sdkRetries,
        }),
      ),
    );
  }

  async cancel(batchId: string): Promise<BatchObject> {
    await this.#limit('cancel');
    return this.#call(() =>
      this.client.post<BatchObject>(pathFor(this.#paths.cancel, batchId), this.#sdkRetries),
    );
  }

  /** Streams a file's content to `path` (via a temporary name, renamed when complete). */
  async download(fileId: string, path: string, signal?: AbortSignal): Promise<void> {
    const temp = `${path}.partial`;
    await this.#retrying(
      `the download of ${fileId}`,
      this.#attempts,
      async () => {
        let file: WriteStream | undefined;
        try {
          // The body streams after the call returns: the call's own signal lives until it is written.
          await withCallSignal(signal, async (own) => {
            const response = await this.client.get<Response>(
              `${this.#paths.files}/${encodeURIComponent(fileId)}/content`,
              {
                signal: own,
                ...this.#sdkRetries,
                headers: { accept: 'application/binary' },
                __binaryResponse: true,
              },
            );
            if (!response.body) throw new Error('empty response body');
            file = createWriteStream(temp);
            await pipeline(
              Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>),
              file,
              { signal: own },
            );
          });
          await fsyncFile(temp);
          await rename(temp, path).catch((error: unknown) => {
            throw outputError(path, error);
          });
        } catch (error) {
          await rm(temp, { force: true });
          // The disk refused (full, removed, not writable): no provider's fault, and no retry fixes
          // it. (A WriteStream writes every byte or fails: nothing short passes for whole.) A body cut
          // off mid-stream errors the file stream too, with the network's error: only a file system
          // call's failure (it names its syscall) is the disk's.
          const refused = (file as WriteStream | undefined)?.errored as
            | NodeJS.ErrnoException
            | null
            | undefined;
          throw refused && typeof refused.syscall === 'string' ? outputError(path, refused) : error;
        }
      },
      (error) => this.#wrap(error, `download of ${fileId}`),
      signal,
    );
  }

  async deleteFile(fileId: string): Promise<void> {
    await this.#call(() =>
      this.client.delete(`${this.#paths.files}/${encodeURIComponent(fileId)}`, this.#sdkRetries),
    );
  }

  /** The account's files as the provider lists them (every purpose), newest first where it says so. */
  files(): AsyncGenerator<FileObject> {
    return this.#pages<FileObject>('files', { limit: this.#filesPage }, (error) =>
      this.#wrap(error, 'listing files'),
    );
  }

  /** Batches as the provider lists them, newest first, with DashScope's filters passed through. */
  list(query: Record<string, string | number>): AsyncGenerator<BatchObject> {
    return this.#pages<BatchObject>('batches', query, (error) => this.#wrap(error, 'listing batches'));
  }

  /** The account's documented storage, if the provider documents it. */
  get storageLimits(): StorageLimits | undefined {
    return this.#connection.profile.storage ?? undefined;
  }

  /**
   * The batches of a run as the Batches list shows them, a page at a time, newest first: on DashScope
   * (and the local service) narrowed by the run's `ds_name` prefix and, when given, `create_after`
   * (provider seconds); elsewhere the account's whole list, which the caller stops reading. Each page
   * passes the list rate. Throws BP_PROVIDER_HTTP when a page gets no answer.
   */
  async *listRunPages(
    dsPrefix: string,
    createdSince: number | undefined,
    signal?: AbortSignal,
  ): AsyncGenerator<BatchObject[]> {
    const query: Record<string, string | number> = { limit: this.#batchPage };
    if (this.#filtersBatches) {
      query.ds_name = dsPrefix;
      if (createdSince !== undefined) query.create_after = listStamp(createdSince);
    }
    yield* this.#pageLists<BatchObject>(
      'batches',
      query,
      (error) => this.#wrap(error, 'listing batches'),
      signal,
    );
  }

  /** Batches per list page: the profile's, else 100 (the documented maximum). */
  get #batchPage(): number {
    return this.#connection.profile.batchListLimit ?? PAGE_SIZE;
  }

  /** Batches the provider lets run at once, if it says. */
  get concurrentBatches(): number | undefined {
    return this.#connection.profile.rateLimits?.concurrentBatches;
  }

  #limit(kind: 'create' | 'query' | 'cancel' | 'list'): Promise<void> {
    return this.#limiters[kind]?.take() ?? Promise.resolve();
  }

  /** The first listed item that `match`es, reading as `#walk` does. */
  async #scan<T extends { id: string; created_at?: number }>(
    path: 'files' | 'batches',
    query: Record<string, string | number>,
    floor: number | undefined,
    match: (item: T) => boolean,
    fail: (error: unknown, describe: string) => BatchpipeError,
    signal?: AbortSignal,
  ): Promise<T | undefined> {
    let found: T | undefined;
    await this.#walk<T>(
      path,
      query,
      floor,
      (item) => {
        if (match(item)) found = item;
        return found !== undefined;
      },
      fail,
      signal,
    );
    return found;
  }

  /**
   * Hands listed items to `visit` until it returns true, reading newest first until items are older
   * than `floor` (provider seconds). Should a list turn out not to be newest first, it is read to its end.
   */
  async #walk<T extends { id: string; created_at?: number }>(
    path: 'files' | 'batches',
    query: Record<string, string | number>,
    floor: number | undefined,
    visit: (item: T) => boolean,
    fail: (error: unknown, describe: string) => BatchpipeError,
    signal?: AbortSignal,
  ): Promise<void> {
    let previous = Number.POSITIVE_INFINITY;
    let newestFirst = true;
    for await (const item of this.#pages<T>(path, query, fail, signal)) {
      if (visit(item)) return;
      const at = typeof item.created_at === 'number' ? item.created_at : undefined;
      if (at === undefined) continue;
      if (at > previous) newestFirst = false;
      previous = at;
      if (newestFirst && floor !== undefined && at < floor) return;
    }
  }

  /**
   * A list, page by page (`after` the last id): each page passes the list rate limiter and is
   * retried here with backoff, honouring retry-after (the SDK's own paging and retries would make
   * calls the limiter never sees). A page that gets no answer within the attempts throws `fail`.
   */
  async *#pages<T extends { id: string }>(
    path: 'files' | 'batches',
    query: Record<string, string | number>,
    fail: (error: unknown, describe: string) => BatchpipeError,
    signal?: AbortSignal,
  ): AsyncGenerator<T> {
    for await (const data of this.#pageLists<T>(path, query, fail, signal)) yield* data;
  }

  /** `#pages`, one array per list call. */
  async *#pageLists<T extends { id: string }>(
    path: 'files' | 'batches',
    query: Record<string, string | number>,
    fail: (error: unknown, describe: string) => BatchpipeError,
    signal?: AbortSignal,
  ): AsyncGenerator<T[]> {
    let after: string | undefined;
    for (;;) {
      const pageQuery = after === undefined ? query : { ...query, after };
      const page = await this.#retrying(
        path === 'files' ? 'listing files' : 'listing batches',
        this.#lookupAttempts,
        async () => {
          await this.#limit('list');
          const { data, response } = await withCallSignal(signal, (own) =>
            this.client
              .get<{ data?: T[]; has_more?: boolean }>(
                path === 'files' ? this.#paths.files : this.#paths.list,
                {
                  query: pageQuery,
                  maxRetries: 0,
                  signal: own,
                },
              )
              .withResponse(),
          );
          this.#readClock(response.headers.get('date'));
          return data;
        },
        (error) => fail(error, this.#describe(error)),
        signal,
      );
      const data = page.data ?? [];
      yield data;
      // A provider that leaves out has_more is read on while its pages come back full.
      const more = page.has_more ?? data.length >= Number(query.limit ?? PAGE_SIZE);
      if (!more || data.length === 0) return;
      after = data[data.length - 1]!.id;
    }
  }

  /** Keeps the provider's clock from a reply's `date` header (whole seconds, as HTTP dates are). */
  #readClock(date: string | null): void {
    const ms = date ? Date.parse(date) : Number.NaN;
    if (Number.isFinite(ms)) this.#providerClock = { at: Math.floor(ms / 1000), read: Date.now() };
  }

  /**
   * Calls until it answers, retrying what a retry can fix with backoff (honouring retry-after), up to
   * `attempts`; a detach ends it with RunDetached, anything else that cannot go on with `fail`.
   */
  async #retrying<T>(
    what: string,
    attempts: number,
    call: () => Promise<T>,
    fail: (error: unknown) => Error,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new RunDetached(what);
      try {
        return await this.#reach(call, signal);
      } catch (error) {
        if (signal?.aborted) throw new RunDetached(what);
        // An address that never answered is said as such, not as the call's own failure.
        if (error instanceof BatchpipeError && error.code === 'BP_PROVIDER_UNREACHABLE') throw error;
        if (attempt + 1 >= attempts || !retryableCall(error)) throw fail(error);
        await this.#pause(error, attempt, what, 'retrying', signal);
      }
    }
  }

  async #exactlyOnce<T>(
    what: 'upload' | 'create',
    job: JobRecord,
    persist: (() => Promise<void>) | undefined,
    find: () => Promise<T | undefined>,
    call: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        await this.settle(job, signal);
        // A lookup that gets no answer throws: calling again without knowing would risk paying twice.
        const found = await find();
        if (found !== undefined) return found;
      }
      if (signal?.aborted) throw new RunDetached(`the ${what} for ${job.id}`);
      // Saved before every attempt, so a resume after a crash knows how recently a call may have gone out.
      job.call_sent_at = Date.now();
      await persist?.();
      try {
        return await this.#reach(call, signal);
      } catch (error) {
        if (signal?.aborted) throw new RunDetached(`the ${what} for ${job.id}`);
        if (attempt + 1 >= this.#attempts || !retryableCall(error))
          throw this.#wrap(error, `${what} for ${job.id}`);
        await this.#pause(
          error,
          attempt,
          `${what} for ${job.id}`,
          'looking for its effect and retrying',
          signal,
        );
      }
    }
  }

  /**
   * Waits until the job's last upload or create can no longer be in flight at the provider (see
   * `settleMs`): a lookup before then could miss a call still being committed and send it twice.
   */
  async settle(job: JobRecord, signal?: AbortSignal): Promise<void> {
    const wait = (job.call_sent_at ?? 0) + this.settleMs - Date.now();
    if (wait <= 0) return;
    this.#onRetry?.(
      `waiting ${Math.ceil(wait / 1000)}s before looking for the last call of ${job.id}: the provider may still be committing it`,
    );
    await sleep(wait, signal);
    if (signal?.aborted) throw new RunDetached(`the lookup for ${job.id}`);
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await this.#reach(call);
    } catch (error) {
      throw this.#wrap(error, 'API call');
    }
  }

  /**
   * Runs one call and notes that the base URL answers. Until it has answered once, a failure that proves
   * the call never reached it (refused, unresolved, TLS) gets one more try at the address, then stops
   * with BP_PROVIDER_UNREACHABLE: the retries and lookups meant for a provider that answered before
   * would only take minutes to say the same.
   */
  async #reach<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      const result = await call();
      this.#reached = true;
      return result;
    } catch (error) {
      if (typeof (error as { status?: unknown }).status === 'number') this.#reached = true;
      else if (!this.#reached && neverReached(error, this.#connection.baseURL!) !== undefined) {
        const unreachable = await probeAddress(this.#connection.baseURL!, signal);
        if (unreachable) throw unreachable;
        this.#reached = true;
      }
      throw error;
    }
  }

  /** The SDK's own retries, once the address has answered; before that #reach decides. */
  get #sdkRetries(): { maxRetries?: number } {
    return this.#reached ? {} : { maxRetries: 0 };
  }

  async #pause(
    error: unknown,
    attempt: number,
    what: string,
    next: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const wait = retryAfterMs(error) ?? backoffMs(attempt, this.#backoff, 60_000);
    this.#onRetry?.(`${what} failed (${this.#describe(error)}); ${next} in ${Math.round(wait / 100) / 10}s`);
    await sleep(wait, signal);
  }

  #describe(error: unknown): string {
    // A gateway's refusal came under HTTP 200: its code is no HTTP status, and is in its message.
    const status = error instanceof GatewayRefusal ? undefined : (error as { status?: number }).status;
    return redact(`${status ? `HTTP ${status}: ` : ''}${(error as Error).message}`, this.#connection);
  }

  #wrap(error: unknown, what: string): BatchpipeError {
    if (error instanceof BatchpipeError) return error;
    return new BatchpipeError(
      'BP_PROVIDER_HTTP',
      `${what} failed: ${this.#describe(error)}`,
      httpContext(error),
      {
        cause: error,
      },
    );
  }
}

/** A path with `{batch_id}` filled in. */
function pathFor(template: string, batchId: string): string {
  return template.replace('{batch_id}', encodeURIComponent(batchId));
}

/** Unix seconds as DashScope's list filters take a time: `yyyyMMddHHmmss`, UTC. */
export function listStamp(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** Exactly this run's batch for this job: ds_name (in metadata, or top-level as DashScope may return it), run, job and input file. */
export function batchMatches(batch: BatchObject, inputFileId: string, tag: BatchTag): boolean {
  const metadata = batch.metadata ?? {};
  const dsName = metadata.ds_name ?? (batch as { ds_name?: unknown }).ds_name;
  return (
    dsName === tag.ds_name &&
    metadata.bp_run === tag.bp_run &&
    metadata.bp_job === tag.bp_job &&
    batch.input_file_id === inputFileId
  );
}

function httpContext(error: unknown): { status?: number; request_id?: string } {
  if (error instanceof GatewayRefusal) return {};
  const status = (error as { status?: number }).status;
  const requestId = (error as { requestID?: string | null }).requestID ?? undefined;
  return { ...(status && { status }), ...(requestId && { request_id: requestId }) };
}

/** The error of a lookup that got no answer: nothing is sent again, and resume looks again. */
function lookupFailed(what: string): (error: unknown, describe: string) => BatchpipeError {
  return (error, describe) =>
    new BatchpipeError(
      'BP_LOOKUP_FAILED',
      `could not find out whether ${what} went through: listing failed (${describe}); nothing was sent again and the intent stays in the manifest: resume looks again`,
      httpContext(error),
      { cause: error },
    );
}

/**
 * Runs an SDK call with a signal of its own, aborted when `signal` is. The openai SDK adds a listener
 * to the signal it is given and never removes it: handing it the run's one detach signal would keep a
 * listener, and what it holds, for every call of a run that may poll for 14 days.
 */
export async function withCallSignal<T>(
  signal: AbortSignal | undefined,
  call: (signal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  if (!signal) return call(undefined);
  const own = linkedSignal(signal);
  try {
    return await call(own.signal);
  } finally {
    own.unlink();
  }
}

/** Waits `ms`, or less when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
