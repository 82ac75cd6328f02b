import type {
  ApiPaths,
  EmbeddingLimits,
  FileLimits,
  MetadataLimits,
  ModelInfo,
  ProviderName,
  ProviderProfile,
  StorageLimits,
  SyncLimits,
} from './profile.js';

// The documents give limits in "MB" without saying which; decimal (10^6) is the smaller, so a file or
// line within it is within the limit whichever way the provider counts. MiB would pass a 6.1-million-byte
// line that a decimal-counting provider fails at validation, after the upload.
const MB = 1_000_000;

// DashScope: 50,000 requests and 500 MB per file, 6 MB per line, custom_id <= 256 characters
// (ref/modelstudio-batch-file-input.txt), characters being Unicode code points.
const DASHSCOPE_LIMITS: FileLimits = {
  maxLinesPerFile: 50_000,
  maxBytesPerFile: 500 * MB,
  maxLineBytes: 6 * MB,
  maxCustomIdChars: 256,
};

// OpenAI: 50,000 requests and 200 MB per input file (Batch API guide). "Note that `/v1/embeddings`
// batches are also restricted to a maximum of 50,000 embedding inputs across all requests in the
// batch." (ref/openai-batch-openapi.yaml, CreateBatchRequest.endpoint)
const OPENAI_LIMITS: FileLimits = {
  maxLinesPerFile: 50_000,
  maxBytesPerFile: 200 * MB,
  maxLineBytes: 6 * MB,
  maxCustomIdChars: 256,
  maxEmbeddingInputsPerFile: 50_000,
};

// OpenAI, CreateEmbeddingRequest.input (ref/openai-openapi-full.yaml): "The input must not exceed the
// max input tokens for the model (8192 tokens for all embedding models), cannot be an empty string, and
// any array must be 2048 dimensions or less. ... all embedding models enforce a maximum of 300,000
// tokens summed across all inputs in a single request." DashScope's text-embedding-v4 has no such
// figures in ref/: its profiles carry none rather than borrow these.
const OPENAI_EMBEDDING_LIMITS: EmbeddingLimits = {
  maxInputs: 2048,
  maxTokensPerInput: 8192,
  maxTokensPerRequest: 300_000,
};

// "In the batch processing scenario, the maximum context tokens per request is 256 K for qwen3.7-max,
// qwen3.7-plus, qwen3.6-plus, qwen3.5-plus, and qwen3.5-flash" (ref/modelstudio-batch-file-input.txt).
const QWEN3_BATCH_CONTEXT = 256 * 1024;
// "The qwen3.7, qwen3.6, and qwen3.5 series models have thinking mode enabled by default."
const THINKING_BY_DEFAULT = ['qwen3.5', 'qwen3.6', 'qwen3.7'];

// "Create 1,000/min (1,000 concurrent), query 1,000/min, list 100/min, cancel 1,000/min"
// (ref/dashscope-batch-api.txt).
const DASHSCOPE_RATES = {
  createPerMinute: 1000,
  queryPerMinute: 1000,
  cancelPerMinute: 1000,
  listPerMinute: 100,
  concurrentBatches: 1000,
};

// "File storage: 10,000 files / 100 GB per account. Delete old files to free space."
// (ref/dashscope-batch-api.txt). GB read as 10^9 bytes, like every MB here: the smaller reading, so an
// account within it is within the limit whichever way the provider counts.
export const DASHSCOPE_STORAGE: StorageLimits = { maxFiles: 10_000, maxBytes: 100 * 1_000_000_000 };

// "Task retention: Only tasks from the last 30 days are queryable via list." (ref/dashscope-batch-api.txt)
const DASHSCOPE_LIST_WINDOW_DAYS = 30;

const chat = (id: string, extra: Partial<ModelInfo> = {}): ModelInfo => ({ id, kind: 'chat', ...extra });
const vision = (id: string): ModelInfo => ({ id, kind: 'vision' });

// Singapore: "Supported models: qwen-max, qwen-plus, qwen-flash, qwen-turbo."
const SINGAPORE_MODELS: ModelInfo[] = [
  chat('qwen-max'),
  chat('qwen-plus'),
  chat('qwen-flash'),
  chat('qwen-turbo'),
];

// Beijing, as ref/modelstudio-batch-file-input.txt lists it (not a superset of Singapore's: it names no
// Turbo): "Text generation models: The stable versions and some latest versions of Qwen-Max, Plus,
// Flash, and Long. The QwQ series (qwq-plus) and some third-party models (deepseek-r1, deepseek-v3.2,
// deepseek-v3) are also supported." "Multimodal models: The stable versions and some latest versions of
// Qwen-VL-Max, Plus, and Flash. The Qwen-OCR model is also supported." "Text embedding models: The
// text-embedding-v4 model." And the qwen3.x ids it names with their batch context window. Which
// "latest" versions are meant is not said: the -latest aliases are listed; dated snapshots of any listed
// model are accepted with a warning (src/providers/model-snapshots.ts).
const BEIJING_MODELS: ModelInfo[] = [
  chat('qwen-max'),
  chat('qwen-max-latest'),
  chat('qwen-plus'),
  chat('qwen-plus-latest'),
  chat('qwen-flash'),
  chat('qwen-flash-latest'),
  chat('qwen-long'),
  chat('qwen-long-latest'),
  chat('qwq-plus', { reasoningOnly: true }),
  chat('deepseek-r1', { reasoningOnly: true }),
  chat('deepseek-v3'),
  chat('deepseek-v3.2'),
  chat('qwen3.7-max', { contextWindow: QWEN3_BATCH_CONTEXT, thinksByDefault: true }),
  chat('qwen3.7-plus', { contextWindow: QWEN3_BATCH_CONTEXT, thinksByDefault: true }),
  chat('qwen3.6-plus', { contextWindow: QWEN3_BATCH_CONTEXT, thinksByDefault: true }),
  chat('qwen3.5-plus', { contextWindow: QWEN3_BATCH_CONTEXT, thinksByDefault: true }),
  chat('qwen3.5-flash', { contextWindow: QWEN3_BATCH_CONTEXT, thinksByDefault: true }),
  vision('qwen-vl-max'),
  vision('qwen-vl-max-latest'),
  vision('qwen-vl-plus'),
  vision('qwen-vl-plus-latest'),
  vision('qwen-vl-flash'),
  vision('qwen-vl-ocr'),
  vision('qwen-vl-ocr-latest'),
  // ref/ gives no per-input or per-request limits for text-embedding-v4 (the OpenAI spec's 2,048 inputs
  // and 8,192 tokens are OpenAI's): none are assumed here.
  { id: 'text-embedding-v4', kind: 'embedding' },
];

// Batch Chat (synchronous; Beijing only) has its own list (ref/modelstudio-batch-chat.txt): "Text
// generation models: qwen3.5-plus, qwen3.5-flash, qwen3-max, qwen-plus, qwen-flash, deepseek-v3.2";
// "Image and video understanding models: qwen3.5-plus, qwen3.5-flash, qwen3-vl-plus, qwen3-vl-flash".
// "The qwen3.5 series (such as qwen3.5-plus and qwen3.5-flash) enable thinking mode by default."
export const BATCH_CHAT_MODELS: readonly ModelInfo[] = [
  chat('qwen3.5-plus', { thinksByDefault: true, images: true }),
  chat('qwen3.5-flash', { thinksByDefault: true, images: true }),
  chat('qwen3-max'),
  chat('qwen-plus'),
  chat('qwen-flash'),
  chat('deepseek-v3.2'),
  vision('qwen3-vl-plus'),
  vision('qwen3-vl-flash'),
];

// The free format check: "model batch-test-model with endpoint /v1/chat/ds-test ... validate your file
// format without inference costs. Limits: 1 MB file, 100 lines, 2 concurrent tasks." The international
// page says so; the Beijing pages in ref/ do not describe it (batchpipe still offers it there, with a warning).
const DASHSCOPE_DRY_RUN = {
  model: 'batch-test-model',
  endpoint: '/v1/chat/ds-test',
  maxLines: 100,
  maxBytes: MB,
  maxConcurrent: 2,
  documented: true,
};

// The OpenAI-compatible paths, relative to a base URL that ends in /v1.
const OPENAI_PATHS: ApiPaths = {
  create: '/batches',
  files: '/files',
  list: '/batches',
  retrieve: '/batches/{batch_id}',
  cancel: '/batches/{batch_id}/cancel',
};

// The gateway (ref/gateway-create-batch.txt) documents only `POST {BASE_URL}/api/v1/batches`; the rest
// are the OpenAI-compatible /v1 paths under the same BASE_URL, as gateways in front of it serve them.
const GATEWAY_PATHS: ApiPaths = {
  create: '/api/v1/batches',
  files: '/v1/files',
  list: '/v1/batches',
  retrieve: '/v1/batches/{batch_id}',
  cancel: '/v1/batches/{batch_id}/cancel',
};

// "ds_name <= 100 characters, ds_description <= 200 characters" (ref/dashscope-batch-api.txt); kept
// for every provider, so a run's names are the same wherever it goes.
const TASK_NAME = { maxNameChars: 100, maxDescriptionChars: 200 };

// OpenAI: "Set of 16 key-value pairs ... Keys are strings with a maximum length of 64 characters. Values
// are strings with a maximum length of 512 characters." (ref/openai-batch-openapi.yaml, Metadata).
const OPENAI_METADATA: MetadataLimits = { maxPairs: 16, maxKeyChars: 64, maxValueChars: 512 };

// OpenAI's GPT-4o and GPT-4.1 models take image inputs (the OpenAI vision guide).
// "Maximum 10,000 pending requests per model per account"; "Maximum 1000 QPS per account, or 10,000
// calls per 10 seconds"; "Default timeout is 3600 seconds"; "Custom timeout range: 60–3600 seconds"
// (ref/modelstudio-batch-chat.txt).
const BATCH_CHAT_LIMITS: SyncLimits = {
  maxPerSecond: 1000,
  maxPer10s: 10_000,
  maxPendingPerModel: 10_000,
  timeoutSeconds: { min: 60, max: 3600, default: 3600 },
};

const OPENAI_MODELS: ModelInfo[] = [
  chat('gpt-4o', { contextWindow: 128_000, images: true }),
  chat('gpt-4o-mini', { contextWindow: 128_000, images: true }),
  chat('gpt-4.1', { contextWindow: 1_047_576, images: true }),
  chat('gpt-4.1-mini', { contextWindow: 1_047_576, images: true }),
  chat('gpt-4.1-nano', { contextWindow: 1_047_576, images: true }),
  // "8192 tokens for all embedding models" (ref/openai-openapi-full.yaml).
  { id: 'text-embedding-3-small', kind: 'embedding', contextWindow: 8_192 },
  { id: 'text-embedding-3-large', kind: 'embedding', contextWindow: 8_192 },
];

/** The built-in profiles. Lists change: override `models` rather than editing these. */
export const PROFILES: Readonly<Record<ProviderName, ProviderProfile>> = {
  dashscope: {
    name: 'dashscope',
    title: 'Alibaba Cloud Model Studio, international (Singapore)',
    baseURL: 'https://dashscope-intl.aliyuncs.com/compatible-mode/v1',
    apiKeyEnv: 'DASHSCOPE_API_KEY',
    limits: DASHSCOPE_LIMITS,
    // The Singapore documents say /v1/chat/completions for all requests; embeddings are Beijing only.
    endpoints: ['/v1/chat/completions'],
    completionWindowHours: { min: 24, max: 336 },
    models: SINGAPORE_MODELS,
    modelsExclusive: true,
    thinkingByDefaultPrefixes: THINKING_BY_DEFAULT,
    // The batch documents do not promise json_schema response formats; JSON mode is documented.
    structuredOutput: 'json_object',
    rateLimits: DASHSCOPE_RATES,
    batchListWindowDays: DASHSCOPE_LIST_WINDOW_DAYS,
    storage: DASHSCOPE_STORAGE,
    dryRun: DASHSCOPE_DRY_RUN,
    paths: OPENAI_PATHS,
    createReply: 'batch',
    taskName: TASK_NAME,
    metadataLimits: null,
  },
  'dashscope-cn': {
    name: 'dashscope-cn',
    title: 'Alibaba Cloud Model Studio, China (Beijing)',
    baseURL: 'https://dashscope.aliyuncs.com/compatible-mode/v1',
    apiKeyEnv: 'DASHSCOPE_API_KEY',
    limits: DASHSCOPE_LIMITS,
    endpoints: ['/v1/chat/completions', '/v1/embeddings'],
    completionWindowHours: { min: 24, max: 336 },
    models: BEIJING_MODELS,
    modelsExclusive: true,
    thinkingByDefaultPrefixes: THINKING_BY_DEFAULT,
    structuredOutput: 'json_object',
    rateLimits: DASHSCOPE_RATES,
    batchListWindowDays: DASHSCOPE_LIST_WINDOW_DAYS,
    dryRun: { ...DASHSCOPE_DRY_RUN, documented: false },
    paths: OPENAI_PATHS,
    createReply: 'batch',
    taskName: TASK_NAME,
    metadataLimits: null,
    storage: DASHSCOPE_STORAGE,
  },
  'dashscope-batch-chat': {
    name: 'dashscope-batch-chat',
    title: 'Alibaba Cloud Model Studio Batch Chat, China (Beijing): synchronous calls, queued',
    baseURL: 'https://batch.dashscope.aliyuncs.com/compatible-mode/v1',
    apiKeyEnv: 'DASHSCOPE_API_KEY',
    // Requests are still cut into files on disk (the run directory); the file limits bound those.
    limits: DASHSCOPE_LIMITS,
    endpoints: ['/v1/chat/completions'],
    completionWindowHours: { min: 24, max: 336 },
    models: BATCH_CHAT_MODELS,
    modelsExclusive: true,
    thinkingByDefaultPrefixes: THINKING_BY_DEFAULT,
    structuredOutput: 'json_object',
    rateLimits: null,
    batchListWindowDays: null,
    dryRun: null,
    // No Files or Batches calls are made: sync runs only.
    paths: OPENAI_PATHS,
    createReply: 'batch',
    taskName: TASK_NAME,
    metadataLimits: null,
    storage: null,
    sync: BATCH_CHAT_LIMITS,
    syncOnly: true,
  },
  openai: {
    name: 'openai',
    title: 'OpenAI',
    baseURL: 'https://api.openai.com/v1',
    apiKeyEnv: 'OPENAI_API_KEY',
    limits: OPENAI_LIMITS,
    endpoints: ['/v1/chat/completions', '/v1/embeddings', '/v1/responses', '/v1/completions'],
    completionWindowHours: { min: 24, max: 24 },
    models: OPENAI_MODELS,
    modelsExclusive: false,
    thinkingByDefaultPrefixes: [],
    structuredOutput: 'json_schema',
    rateLimits: null,
    batchListWindowDays: null,
    storage: null,
    embeddingLimits: OPENAI_EMBEDDING_LIMITS,
    dryRun: null,
    paths: OPENAI_PATHS,
    createReply: 'batch',
    taskName: TASK_NAME,
    metadataLimits: OPENAI_METADATA,
  },
  gateway: {
    name: 'gateway',
    title: 'A batch gateway (POST {BASE_URL}/api/v1/batches; give --base-url)',
    baseURL: null,
    apiKeyEnv: 'BATCHPIPE_API_KEY',
    // The document names no limits; it serves "Alibaba Cloud's Qwen series", so DashScope's per-line and
    // per-file counts hold, with OpenAI's smaller 200 MB per file (a smaller shard costs nothing).
    limits: OPENAI_LIMITS,
    endpoints: ['/v1/chat/completions', '/v1/embeddings'],
    completionWindowHours: { min: 24, max: 336 },
    models: [],
    modelsExclusive: false,
    thinkingByDefaultPrefixes: THINKING_BY_DEFAULT,
    structuredOutput: 'json_object',
    rateLimits: null,
    batchListWindowDays: null,
    dryRun: null,
    paths: GATEWAY_PATHS,
    createReply: 'envelope',
    taskName: TASK_NAME,
    metadataLimits: null,
    storage: null,
  },
  local: {
    name: 'local',
    title: 'batchpipe local service (embedded, no key, test engine)',
    baseURL: null,
    apiKeyEnv: null,
    limits: DASHSCOPE_LIMITS,
    endpoints: ['/v1/chat/completions', '/v1/embeddings'],
    completionWindowHours: { min: 24, max: 336 },
    models: BEIJING_MODELS,
    modelsExclusive: false,
    thinkingByDefaultPrefixes: THINKING_BY_DEFAULT,
    structuredOutput: 'json_schema',
    rateLimits: DASHSCOPE_RATES,
    batchListWindowDays: DASHSCOPE_LIST_WINDOW_DAYS,
    storage: DASHSCOPE_STORAGE,
    dryRun: DASHSCOPE_DRY_RUN,
    paths: OPENAI_PATHS,
    createReply: 'batch',
    taskName: TASK_NAME,
    metadataLimits: null,
  },
  custom: {
    name: 'custom',
    title: 'Any OpenAI-compatible Batch API (give --base-url)',
    baseURL: null,
    apiKeyEnv: 'BATCHPIPE_API_KEY',
    limits: OPENAI_LIMITS,
    endpoints: ['/v1/chat/completions', '/v1/embeddings', '/v1/responses', '/v1/completions'],
    completionWindowHours: { min: 24, max: 336 },
    models: [],
    modelsExclusive: false,
    thinkingByDefaultPrefixes: [],
    structuredOutput: 'json_schema',
    rateLimits: null,
    batchListWindowDays: null,
    storage: null,
    dryRun: null,
    paths: OPENAI_PATHS,
    createReply: 'batch',
    taskName: TASK_NAME,
    metadataLimits: null,
  },
};
