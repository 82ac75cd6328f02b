/** Endpoints a batch line's `url` may name. */
export const ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/completions',
] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

export const PROVIDER_NAMES = [
  'dashscope',
  'dashscope-cn',
  'dashscope-batch-chat',
  'openai',
  'local',
  'custom',
] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** What one input file may hold. Every stage that cuts or checks files reads these, never literals. */
export interface FileLimits {
  /** Requests per file. */
  maxLinesPerFile: number;
  /** Bytes per file. */
  maxBytesPerFile: number;
  /** Bytes per line (one JSON request, without its newline). */
  maxLineBytes: number;
  /** UTF-8 bytes of a custom_id. */
  maxCustomIdBytes: number;
}

export type ModelKind = 'chat' | 'vision' | 'embedding';

export interface ModelInfo {
  id: string;
  kind: ModelKind;
  /** Tokens per request, where the provider documents it. */
  contextWindow?: number;
  /** Thinks unless a request sets `enable_thinking: false` (thinking tokens bill as output). */
  thinksByDefault?: boolean;
}

/** Calls per minute by kind, and the most batches unfinished at once. */
export interface RateLimits {
  createPerMinute: number;
  queryPerMinute: number;
  cancelPerMinute: number;
  listPerMinute: number;
  concurrentBatches: number;
}

/**
 * A synchronous chat endpoint's documented limits (Batch Chat, ref/modelstudio-batch-chat.txt): what a
 * sync run (`mode: "sync"`, chatSink) keeps to on its side; 429s and timeouts still slow it down.
 */
export interface SyncLimits {
  /** Calls per second per account. */
  maxPerSecond: number;
  /** Calls per 10 seconds per account. */
  maxPer10s: number;
  /** Calls queued or running per model per account. */
  maxPendingPerModel: number;
  /** The per-call timeout the endpoint takes, in seconds: its range and its default. */
  timeoutSeconds: { min: number; max: number; default: number };
}

/** A provider as data: where it is, what it accepts. No I/O here. */
export interface ProviderProfile {
  name: ProviderName;
  title: string;
  /** OpenAI-compatible base URL (with `/v1` or `/compatible-mode/v1`); null when the user must give one. */
  baseURL: string | null;
  /** Environment variable holding the API key; null when none is needed. */
  apiKeyEnv: string | null;
  limits: FileLimits;
  /** Endpoints a batch may target. */
  endpoints: readonly Endpoint[];
  /** `completion_window` bounds in hours, as the API takes them. */
  completionWindowHours: { min: number; max: number };
  /** Models the profile knows. */
  models: readonly ModelInfo[];
  /** True when only `models` are offered (a batch naming another model fails at the provider). */
  modelsExclusive: boolean;
  /** Model-family prefixes that think by default (beside per-model `thinksByDefault`). */
  thinkingByDefaultPrefixes: readonly string[];
  /** How structured outputs are requested: strict JSON schema, or JSON mode with the schema in the prompt. */
  structuredOutput: 'json_schema' | 'json_object';
  /** API rate limits per minute and the most batches running at once, where the provider documents them. */
  rateLimits: RateLimits | null;
  /**
   * How far back the batch list reaches, in days, where the provider documents a limit (DashScope: "only
   * tasks from the last 30 days are queryable via list"); null when it lists every batch.
   */
  batchListWindowDays: number | null;
  /** A free format-check run, where the provider offers one. */
  dryRun: { model: string; endpoint: string; maxLines: number; maxBytes: number } | null;
  /** The limits of its synchronous endpoint, where documented (Batch Chat). */
  sync?: SyncLimits;
  /** True when it has no Batch API (files and batches), only the synchronous endpoint: sync runs only. */
  syncOnly?: boolean;
}
