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
  'gateway',
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
  /** Characters (Unicode code points) of a custom_id. */
  maxCustomIdChars: number;
  /** Embedding inputs (strings or token arrays) across all requests of one file (one batch), if limited. */
  maxEmbeddingInputsPerFile?: number;
}

export type ModelKind = 'chat' | 'vision' | 'embedding';

export interface ModelInfo {
  id: string;
  kind: ModelKind;
  /** Tokens per request, where the provider documents it. */
  contextWindow?: number;
  /** Thinks unless a request sets `enable_thinking: false` (thinking tokens bill as output). */
  thinksByDefault?: boolean;
  /** A chat model that also takes images and video (a `vision` model always does). */
  images?: boolean;
  /** Always reasons (qwq-plus, deepseek-r1): `enable_thinking` does not switch it, so no advice to set it. */
  reasoningOnly?: boolean;
}

/** What one embeddings request may hold, as the provider documents it. */
export interface EmbeddingLimits {
  /** Inputs (strings or token arrays) in one request. */
  maxInputs: number;
  /** Tokens of one input. */
  maxTokensPerInput: number;
  /** Tokens of all inputs of one request. */
  maxTokensPerRequest: number;
}

/** An account's file storage. */
export interface StorageLimits {
  maxFiles: number;
  /** Bytes, decimal as the document's "GB" is read (10^9). */
  maxBytes: number;
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
 * Where each Files and Batches call goes, relative to the base URL. `{batch_id}` stands for a batch's
 * id; a file's content and deletion are `<files>/<id>/content` and `<files>/<id>`.
 */
export interface ApiPaths {
  /** `POST`: create a batch. */
  create: string;
  /** `POST` upload, `GET` list; `<files>/<id>` delete, `<files>/<id>/content` download. */
  files: string;
  /** `GET`: list batches. */
  list: string;
  /** `GET`: one batch. */
  retrieve: string;
  /** `POST`: cancel a batch. */
  cancel: string;
}
export const API_PATH_NAMES = ['create', 'files', 'list', 'retrieve', 'cancel'] as const;

/** Custom metadata a batch may carry, where the provider bounds it (lengths in characters). */
export interface MetadataLimits {
  /** Pairs per batch, batchpipe's own keys included. */
  maxPairs: number;
  maxKeyChars: number;
  maxValueChars: number;
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
  /**
   * Files an account may store and their bytes (uploads and result files alike), where the provider
   * documents it; null otherwise.
   */
  storage?: StorageLimits | null;
  /** Limits on embeddings requests, where the provider documents them; null or absent otherwise. */
  embeddingLimits?: EmbeddingLimits | null;
  /** Batches per list page a run asks for (`limit`) when it polls by the list; default 100, the documented maximum. */
  batchListLimit?: number;
  /** A free format-check run, where the provider offers one. */
  dryRun: {
    model: string;
    endpoint: string;
    maxLines: number;
    maxBytes: number;
    /** Format-check batches unfinished at once. */
    maxConcurrent: number;
    /** False where the region's documents do not describe it (a warning, not a refusal). */
    documented: boolean;
  } | null;
  /** Where each Files and Batches call goes, relative to `baseURL`. */
  paths: ApiPaths;
  /**
   * How a create answers: the Batch object, or (the gateway) the envelope `{success, code, message,
   * data}` whose `data` holds only some of the batch's fields.
   */
  createReply: 'batch' | 'envelope';
  /** `ds_name` / `ds_description` lengths, where the provider reads them (characters). */
  taskName: { maxNameChars: number; maxDescriptionChars: number };
  /** Bounds on custom metadata; null where the documents set none. */
  metadataLimits: MetadataLimits | null;
  /** The limits of its synchronous endpoint, where documented (Batch Chat). */
  sync?: SyncLimits;
  /** True when it has no Batch API (files and batches), only the synchronous endpoint: sync runs only. */
  syncOnly?: boolean;
}
