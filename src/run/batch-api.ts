import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import OpenAI from 'openai';
import { BatchpipeError } from '../errors.js';
import { fsyncFile } from '../internal/durable-write.js';
import { RateLimiter } from '../internal/rate-limiter.js';
import { type Connection, redact } from '../providers/connection.js';
import { backoffMs, retryAfterMs, retryableCall } from '../providers/retry.js';
import type { BatchStatus, JobRecord } from './manifest.js';
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

interface FileObject {
  id: string;
  filename: string;
  bytes: number;
  purpose: string;
  created_at: number;
}

export interface BatchApiOptions {
  /** Attempts for one upload or create before giving up (each retry first looks for the effect). */
  callAttempts?: number;
  /** Per-call timeout in ms (uploads of 500 MB need minutes). */
  timeoutMs?: number;
  /** First backoff between attempts, ms. */
  backoffMs?: number;
  /** Called with a line for each retry, for progress output (never holds the key). */
  onRetry?: (message: string) => void;
}

/**
 * The Files and Batches calls a run makes, through the openai SDK. Uploads and creates are never
 * retried blindly: the SDK's own retries are off for them, and before each retry (and on resume)
 * the file is looked for by its unique name and the batch by its unique ds_name and input file, so
 * a call whose reply was lost is adopted, not repeated. Queries keep the SDK's retries (429/5xx,
 * honouring retry-after).
 */
export class BatchApi {
  readonly client: OpenAI;
  readonly #connection: Connection;
  readonly #attempts: number;
  readonly #backoff: number;
  readonly #onRetry: ((message: string) => void) | undefined;
  readonly #timeoutMs: number;
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
    this.#backoff = options.backoffMs ?? 1000;
    this.#onRetry = options.onRetry;
    this.#timeoutMs = options.timeoutMs ?? 10 * 60_000;
    const rates = connection.profile.rateLimits;
    if (rates) {
      this.#limiters = {
        create: new RateLimiter(rates.createPerMinute),
        query: new RateLimiter(rates.queryPerMinute),
        cancel: new RateLimiter(rates.cancelPerMinute),
        list: new RateLimiter(rates.listPerMinute),
      };
    }
    this.client = new OpenAI({
      baseURL: connection.baseURL,
      apiKey: connection.apiKey ?? 'none',
      timeout: this.#timeoutMs,
      maxRetries: 3,
    });
  }

  /** Uploads a job's input file, unless an earlier attempt already did; returns the file id. */
  async upload(job: JobRecord, path: string, signal?: AbortSignal): Promise<string> {
    return this.#exactlyOnce(
      'upload',
      job,
      () => this.findUpload(job),
      async () => {
        job.calls.upload++;
        const uploaded = await uploadFile(
          {
            baseURL: this.#connection.baseURL!,
            apiKey: this.#connection.apiKey,
            timeoutMs: this.#timeoutMs,
            signal,
          },
          path,
          job.file_name,
        );
        return uploaded.id;
      },
      signal,
    );
  }

  /** A file this run uploaded for the job, found by its unique name and size. */
  async findUpload(job: JobRecord): Promise<string | undefined> {
    job.calls.lookup++;
    for await (const file of this.client.files.list(
      { purpose: 'batch' },
      { maxRetries: 3 },
    ) as AsyncIterable<FileObject>) {
      if (file.filename === job.file_name && file.bytes === job.bytes) return file.id;
    }
    return undefined;
  }

  /** Creates the job's batch, unless an earlier attempt already did; returns it. */
  async create(
    job: JobRecord,
    completionWindow: string,
    metadata: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<BatchObject> {
    return this.#exactlyOnce(
      'create',
      job,
      () => this.findBatch(job),
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
        return this.client.post<BatchObject>('/batches', { body, maxRetries: 0, signal });
      },
      signal,
    );
  }

  /**
   * The batch this run created for the job: by the DashScope filters where they exist (`ds_name` is
   * fuzzy, `input_file_ids` exact), matched exactly on what comes back: the job's own input file id
   * and ds_name. Providers without those filters are scanned newest first.
   */
  async findBatch(job: JobRecord): Promise<BatchObject | undefined> {
    if (!job.input_file_id) return undefined;
    job.calls.lookup++;
    await this.#limit('list');
    const query: Record<string, string | number> = { limit: 100 };
    if (this.#connection.profile.name.startsWith('dashscope') || this.#connection.profile.name === 'local') {
      query.input_file_ids = job.input_file_id;
      query.ds_name = job.ds_name;
    }
    let scanned = 0;
    for await (const batch of this.client.batches.list(undefined, {
      query,
      maxRetries: 3,
    }) as AsyncIterable<BatchObject>) {
      if (
        batch.input_file_id === job.input_file_id &&
        (batch.metadata?.ds_name ?? job.ds_name) === job.ds_name
      )
        return batch;
      // Newest first: a few pages reach far past the moment of our own create.
      if (++scanned >= 1000) break;
    }
    return undefined;
  }

  async retrieve(batchId: string, signal?: AbortSignal): Promise<BatchObject> {
    await this.#limit('query');
    return this.#call(
      () => this.client.batches.retrieve(batchId, { signal }) as unknown as Promise<BatchObject>,
    );
  }

  async cancel(batchId: string): Promise<BatchObject> {
    await this.#limit('cancel');
    return this.#call(() => this.client.batches.cancel(batchId) as unknown as Promise<BatchObject>);
  }

  /** Streams a file's content to `path` (via a temporary name, renamed when complete). */
  async download(fileId: string, path: string, signal?: AbortSignal): Promise<void> {
    const temp = `${path}.partial`;
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await this.client.files.content(fileId, { signal });
        if (!response.body) throw new Error('empty response body');
        await pipeline(
          Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>),
          createWriteStream(temp),
        );
        await fsyncFile(temp);
        await rename(temp, path);
        return;
      } catch (error) {
        await rm(temp, { force: true });
        if (attempt + 1 >= this.#attempts || !retryableCall(error) || signal?.aborted)
          throw this.#wrap(error, `download of ${fileId}`);
        await this.#pause(error, attempt, `download of ${fileId}`, signal);
      }
    }
  }

  async deleteFile(fileId: string): Promise<void> {
    await this.#call(() => this.client.files.delete(fileId));
  }

  /** Batches as the provider lists them, with DashScope's filters passed through. */
  async *list(query: Record<string, string | number>): AsyncGenerator<BatchObject> {
    await this.#limit('list');
    yield* this.client.batches.list(undefined, { query }) as AsyncIterable<BatchObject>;
  }

  /** Batches the provider lets run at once, if it says. */
  get concurrentBatches(): number | undefined {
    return this.#connection.profile.rateLimits?.concurrentBatches;
  }

  #limit(kind: 'create' | 'query' | 'cancel' | 'list'): Promise<void> {
    return this.#limiters[kind]?.take() ?? Promise.resolve();
  }

  async #exactlyOnce<T>(
    what: 'upload' | 'create',
    job: JobRecord,
    find: () => Promise<T | undefined>,
    call: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        const found = await find().catch(() => undefined);
        if (found !== undefined) return found;
      }
      try {
        return await call();
      } catch (error) {
        if (attempt + 1 >= this.#attempts || !retryableCall(error) || signal?.aborted)
          throw this.#wrap(error, `${what} for ${job.id}`);
        await this.#pause(error, attempt, `${what} for ${job.id}`, signal);
      }
    }
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw this.#wrap(error, 'API call');
    }
  }

  async #pause(error: unknown, attempt: number, what: string, signal?: AbortSignal): Promise<void> {
    const wait = retryAfterMs(error) ?? backoffMs(attempt, this.#backoff, 60_000);
    this.#onRetry?.(
      `${what} failed (${this.#describe(error)}); looking for its effect and retrying in ${Math.round(wait / 100) / 10}s`,
    );
    await sleep(wait, signal);
  }

  #describe(error: unknown): string {
    const status = (error as { status?: number }).status;
    return redact(`${status ? `HTTP ${status}: ` : ''}${(error as Error).message}`, this.#connection);
  }

  #wrap(error: unknown, what: string): BatchpipeError {
    if (error instanceof BatchpipeError) return error;
    const status = (error as { status?: number }).status;
    const requestId = (error as { requestID?: string | null }).requestID ?? undefined;
    return new BatchpipeError(
      'BP_PROVIDER_HTTP',
      `${what} failed: ${this.#describe(error)}`,
      { ...(status && { status }), ...(requestId && { request_id: requestId }) },
      { cause: error },
    );
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
