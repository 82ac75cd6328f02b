/** Endpoints a batch line's `url` may name. */
export const ENDPOINTS = [
  '/v1/chat/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/completions',
] as const;
export type Endpoint = (typeof ENDPOINTS)[number];

export const PROVIDER_NAMES = ['dashscope', 'dashscope-cn', 'openai', 'gateway', 'local', 'custom'] as const;
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

/** Files an account may keep at the provider, where it documents a bound (output and error files count). */
export interface StorageLimits {
  maxFiles: number;
  /** Bytes, read as decimal (100 GB = 100 x 10^9). */
  maxBytes: number;
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
  /** Files the account may keep; null where the documents set none. */
  storage: StorageLimits | null;
}
