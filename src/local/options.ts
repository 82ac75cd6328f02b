import { z } from 'zod';
import { parseOptions } from '../options.js';

const rate = z.number().min(0).max(1);
const MB = 1024 * 1024;

/** Limits the service enforces; the file limits default to the profile's documented ones. */
const LimitsOptions = z.strictObject({
  /** Requests per input file (DashScope and OpenAI: 50,000). Over it, the batch fails at validation. */
  maxLinesPerFile: z.number().int().positive().optional(),
  /** Bytes per input file (DashScope: 500 MB, OpenAI: 200 MB). Over it, the batch fails at validation. */
  maxBytesPerFile: z.number().int().positive().optional(),
  /** Bytes per line (6 MB). A longer line fails the batch at validation. */
  maxLineBytes: z.number().int().positive().optional(),
  /** UTF-8 bytes of a custom_id (256). */
  maxCustomIdBytes: z.number().int().positive().optional(),
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
};

export const LocalServiceOptions = z.strictObject({
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
  /** What answers requests. Only "test" (deterministic, no inference) for now. */
  engine: z.enum(['test']).default('test'),
  /** Service seconds per real second: 3600 makes an hour pass in a second. Default 1. */
  timeScale: z.number().positive().finite().default(1),
  /** Seed of every deterministic choice of the test engine. Default 0. */
  seed: z.number().int().nonnegative().default(0),
  /**
   * How usage is counted: "estimate" (~4.3 alphabetic characters or ~1.3 CJK characters a token, within
   * about 20% of o200k, ~0.5 us a request) or "o200k" (the real tokenizer, loaded on first use: exact
   * for the o200k_base encoding, but 10-80 us a request, which would make the service a pipeline's
   * bottleneck). Default "estimate".
   */
  tokenizer: z.enum(['o200k', 'estimate']).default('estimate'),
  /** Requests in flight at once across all batches (matters when `latencyMs` > 0). Default 64. */
  concurrency: z.number().int().positive().max(100_000).default(64),
  /** Batches validated or run at once; more wait in `validating`, as providers queue. Default 8. */
  maxActiveBatches: z.number().int().positive().default(8),
  /** Only these models are offered; a batch naming another fails. Default: any model. */
  models: z.array(z.string().min(1)).min(1).optional(),
  /** How often a running batch makes its progress durable, in real ms. Default 250. */
  checkpointMs: z.number().int().nonnegative().default(250),
  limits: LimitsOptions.default({
    maxUploadBytes: 1024 * MB,
    maxJsonBodyBytes: 16 * MB,
    maxValidationErrors: 100,
  }),
  /** One line per API call (method, path, status, ms). Never given keys or bodies. */
  log: z
    .custom<(line: string) => void>((value) => typeof value === 'function', 'expected a function')
    .optional(),
  ...KnobFields,
});

export type LocalServiceOptions = z.input<typeof LocalServiceOptions>;
export type ServiceConfig = z.output<typeof LocalServiceOptions>;

export function parseServiceOptions(options: LocalServiceOptions | undefined): ServiceConfig {
  return parseOptions(LocalServiceOptions, options ?? {}, 'startLocalService');
}
