import { z } from 'zod';
import { parseOptions } from '../options.js';
import { DASHSCOPE_STORAGE } from '../providers/profiles.js';
import { FAIL_CODE } from './engine/knobs.js';
import { FaultRuleSchema } from './faults.js';

const rate = z.number().min(0).max(1);
const MB = 1024 * 1024;
// "10,000 files / 100 GB per account" (ref/dashscope-batch-api.txt), read as 100 x 10^9 bytes, the
// client's reading (src/providers/profiles.ts): both sides agree on when an account is full.
const DOCUMENTED_STORAGE_BYTES = DASHSCOPE_STORAGE.maxBytes;
const count = z.number().int().positive().max(1_000_000);

/** Limits the service enforces; the file limits default to the profile's documented ones. */
const LimitsOptions = z.strictObject({
  /** Requests per input file (DashScope and OpenAI: 50,000). Over it, the batch fails at validation. */
  maxLinesPerFile: z.number().int().positive().optional(),
  /** Bytes per input file (DashScope: 500 MB, OpenAI: 200 MB). Over it, the batch fails at validation. */
  maxBytesPerFile: z.number().int().positive().optional(),
  /** Bytes per line (6 MB). A longer line fails the batch at validation. */
  maxLineBytes: z.number().int().positive().optional(),
  /** Characters (code points) of a custom_id (256). */
  maxCustomIdChars: z.number().int().positive().optional(),
  /** Largest upload `POST /files` accepts; beyond it the upload is refused with 413. Default 1 GiB. */
  maxUploadBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * MB),
  /** Largest JSON request body (batch create, chat, embeddings). Default 16 MiB (a line may be 6 MB). */
  maxJsonBodyBytes: z
    .number()
    .int()
    .positive()
    .default(16 * MB),
  /** `errors.data` items reported for a file that fails validation. Default 100. */
  maxValidationErrors: z.number().int().positive().default(100),
  /**
   * Real ms a connection may stay silent while the client still owes bytes (the rest of a body) or
   * stops reading a reply; then it is closed. Waits of the service's own (a queued Batch Chat call,
   * latency, an upstream call, a fault's delay) never count. Default 300,000.
   */
  idleTimeoutMs: z.number().int().positive().default(300_000),
  /** Real ms a client has to send one whole request. Default 3,600,000: 500 MB at ~150 KB/s. */
  requestTimeoutMs: z.number().int().positive().default(3_600_000),
});

/** Shares of answers the test engine spoils, so clients meet what real models do. */
export const KnobFields = {
  /** Share of JSON-mode answers that are not valid JSON (prose around it, or a missing brace). */
  invalidJsonRate: rate.default(0),
  /** Share of answers cut short with `finish_reason: "length"`. */
  truncateRate: rate.default(0),
  /** Share of requests refused with a line-level error (400 `data_inspection_failed`). */
  refuseRate: rate.default(0),
  /** Simulated time per request, in real milliseconds (not scaled by `timeScale`). */
  latencyMs: z.number().nonnegative().max(600_000).default(0),
  /** Share of requests that fail with one of `failCodes` (a throttled or failing provider). */
  failRate: rate.default(0),
  /** Codes failed requests get (`code` or `code:status`). Default: rate_limit_exceeded, server_error, invalid_parameter_error. */
  failCodes: z
    .array(z.string().regex(FAIL_CODE, 'expected an error code, optionally with :status'))
    .max(32)
    .default([]),
};

/**
 * The account limits DashScope documents (ref/dashscope-batch-api.txt: "Create 1,000/min (1,000
 * concurrent), query 1,000/min, list 100/min, cancel 1,000/min"; "10,000 files / 100 GB per
 * account"). Rates count calls admitted in a sliding window of service time (`timeScale`).
 */
const QuotaOptions = z.strictObject({
  /** Default: on with the dashscope profile, off with openai (whose limits depend on the account's tier). */
  enabled: z.boolean().optional(),
  /** The rate window, service ms. Default 60,000 (the documents' "per minute"). */
  rateWindowMs: z.number().int().positive().max(3_600_000).default(60_000),
  /** Batch creates per window. Default 1,000. */
  createRate: count.default(1000),
  /** Batch retrieves per window. Default 1,000. */
  queryRate: count.default(1000),
  /** Batch lists per window. Default 100. */
  listRate: count.default(100),
  /** Batch cancels per window. Default 1,000. */
  cancelRate: count.default(1000),
  /** Batches not yet in a terminal state. Default 1,000. */
  maxUnfinishedBatches: count.default(1000),
  /** Stored files, uploads and result files alike. Default 10,000. */
  maxFiles: count.default(DASHSCOPE_STORAGE.maxFiles),
  /** Bytes of stored files. Default 100 GB, read as 100 x 10^9 bytes (not GiB). */
  maxStorageBytes: z.number().int().positive().default(DOCUMENTED_STORAGE_BYTES),
});

/** The free format check: model batch-test-model, endpoint /v1/chat/ds-test (DashScope profile). */
const DryRunOptions = z.strictObject({
  /** Dry runs not yet finished at once (documented: 2); one more is refused with 429. */
  maxConcurrent: count.default(2),
  /** Requests per dry-run file (documented: 100). */
  maxLines: count.default(100),
  /** Bytes per dry-run file (documented: 1 MB, read as 1,000,000 bytes like every MB limit: the stricter reading). */
  maxBytes: z.number().int().positive().default(1_000_000),
});

/**
 * Batch Chat (ref/modelstudio-batch-chat.txt): `POST /v1/chat/completions` queues; a call waits up
 * to its timeout (60-3600 s, default 3600, service time) and is refused when its model has too many
 * pending calls or the call rate is over the caps.
 */
const BatchChatOptions = z.strictObject({
  enabled: z.boolean().default(false),
  /** Calls queued or running per model (documented: 10,000 per model per account). */
  maxPendingPerModel: count.default(10_000),
  /** Calls admitted per second of service time (`timeScale`; documented: 1,000 QPS). */
  maxPerSecond: count.default(1000),
  /** Calls admitted per 10 seconds of service time (documented: 10,000 calls per 10 s). */
  maxPer10s: count.default(10_000),
});

/** How the gateway route (`POST /api/v1/batches`) answers. */
const GatewayOptions = z.strictObject({
  /**
   * `data` of a create: `all` the Batch object's fields, or only the `documented` ones (id, object,
   * endpoint, input_file_id, completion_window, status, created_at: ref/gateway-create-batch.txt).
   */
  data: z.enum(['all', 'documented']).default('all'),
  /**
   * The HTTP status of a refusal the create itself makes (a missing file, a bad window): `same` as its
   * code, or `200` with `success: false` (the document does not say which a gateway uses).
   */
  refusalStatus: z.enum(['same', '200']).default('same'),
});

/** An OpenAI-compatible chat/embeddings server that answers the requests (`engine: "upstream"`). */
const UpstreamOptions = z.strictObject({
  /** Base URL of the upstream API, ending where `/chat/completions` is appended (e.g. http://127.0.0.1:11434/v1). */
  url: z.url({ protocol: /^https?$/ }),
  /** Sent as `Authorization: Bearer <apiKey>`. Never logged or written. */
  apiKey: z.string().min(1).optional(),
  /** Real ms one upstream call may take. Default 600,000. */
  timeoutMs: z.number().int().positive().max(86_400_000).default(600_000),
  /** Retries of a call that got 408/409/429/5xx or no answer. Default 4. */
  retries: z.number().int().nonnegative().max(20).default(4),
  /** First backoff between retries, real ms (doubling, with jitter; `retry-after` wins). Default 500. */
  backoffMs: z.number().int().nonnegative().max(600_000).default(500),
  /** Longest backoff, real ms. Default 30,000. */
  maxBackoffMs: z.number().int().nonnegative().max(3_600_000).default(30_000),
});

export const LocalServiceOptions = z
  .strictObject({
    /** Interface to bind. Default 127.0.0.1 (this machine only). */
    host: z.string().min(1).default('127.0.0.1'),
    /** Port; 0 picks a free one. Default 0. */
    port: z.number().int().min(0).max(65_535).default(0),
    /** Where state lives. Default: a new temporary directory, removed by `close()`. */
    dataDir: z.string().min(1).optional(),
    /** When set, every call must send `Authorization: Bearer <apiKey>`. */
    apiKey: z.string().min(1).optional(),
    /** Whose rules to enforce. Default "dashscope". */
    profile: z.enum(['dashscope', 'openai']).default('dashscope'),
    /** What answers requests: "test" (deterministic, no inference) or "upstream" (forwarded to `upstream.url`). */
    engine: z.enum(['test', 'upstream']).default('test'),
    /** Where the upstream engine sends requests. Required with `engine: "upstream"`. */
    upstream: UpstreamOptions.optional(),
    /** Service seconds per real second: 3600 makes an hour pass in a second. Default 1. */
    timeScale: z.number().positive().finite().default(1),
    /** Seed of every deterministic choice of the test engine. Default 0. */
    seed: z.number().int().nonnegative().default(0),
    /**
     * How usage is counted: "o200k" (the real tokenizer of OpenAI's current models, loaded on first use:
     * exact for them, but 10-80 us a request), "estimate" (~4.3 alphabetic characters or ~1.3 CJK
     * characters a token, within about 20% of o200k, ~0.5 us a request), or "auto" (default): o200k
     * under the openai profile, where it is the provider's own tokenizer; the estimate under dashscope,
     * whose Qwen tokenizer batchpipe does not ship (o200k would be another estimate there, and counting at
     * 10-80 us a request would make the service a pipeline's bottleneck).
     */
    tokenizer: z.enum(['auto', 'o200k', 'estimate']).default('auto'),
    /** Requests in flight at once across all batches (matters when `latencyMs` > 0). Default 64. */
    concurrency: z.number().int().positive().max(100_000).default(64),
    /** Batches validated or run at once; more wait in `validating`, as providers queue. Default 8. */
    maxActiveBatches: z.number().int().positive().default(8),
    /**
     * The models offered; a batch naming another fails validation (`model_not_found`), a call gets
     * 404. Default: with the dashscope profile and the test engine, DashScope's models (the Beijing
     * list, as DashScope refuses others); otherwise any. `"any"` accepts any model.
     */
    models: z.union([z.literal('any'), z.array(z.string().min(1)).min(1)]).optional(),
    /** How often a running batch makes its progress durable, in real ms. Default 250. */
    checkpointMs: z.number().int().nonnegative().default(250),
    limits: LimitsOptions.default({
      maxUploadBytes: 1024 * MB,
      maxJsonBodyBytes: 16 * MB,
      maxValidationErrors: 100,
      idleTimeoutMs: 300_000,
      requestTimeoutMs: 3_600_000,
    }),
    /** Faults armed from the start (more can be armed while it runs). Default none. */
    faults: z.array(FaultRuleSchema).default([]),
    /** Share of batches that fail at validation as if their file were bad (drawn per batch). Default 0. */
    fileFailRate: rate.default(0),
    quotas: QuotaOptions.default({
      rateWindowMs: 60_000,
      createRate: 1000,
      queryRate: 1000,
      listRate: 100,
      cancelRate: 1000,
      maxUnfinishedBatches: 1000,
      maxFiles: 10_000,
      maxStorageBytes: DOCUMENTED_STORAGE_BYTES,
    }),
    dryRun: DryRunOptions.default({ maxConcurrent: 2, maxLines: 100, maxBytes: 1_000_000 }),
    gateway: GatewayOptions.default({ data: 'all', refusalStatus: 'same' }),
    batchChat: BatchChatOptions.default({
      enabled: false,
      maxPendingPerModel: 10_000,
      maxPerSecond: 1000,
      maxPer10s: 10_000,
    }),
    /** One line per API call (method, path, status, ms). Never given keys or bodies. */
    log: z
      .custom<(line: string) => void>((value) => typeof value === 'function', 'expected a function')
      .optional(),
    ...KnobFields,
  })
  .refine((options) => options.engine !== 'upstream' || options.upstream !== undefined, {
    message: 'engine "upstream" needs upstream.url',
    path: ['upstream'],
  });

export type LocalServiceOptions = z.input<typeof LocalServiceOptions>;
export type ServiceConfig = z.output<typeof LocalServiceOptions>;

export function parseServiceOptions(options: LocalServiceOptions | undefined): ServiceConfig {
  return parseOptions(LocalServiceOptions, options ?? {}, 'startLocalService');
}
