import type { FileLimits, ModelInfo, ProviderName, ProviderProfile, SyncLimits } from './profile.js';

// The documents give limits in "MB" without saying which; decimal (10^6) is the smaller, so a file or
// line within it is within the limit whichever way the provider counts. MiB would pass a 6.1-million-byte
// line that a decimal-counting provider fails at validation, after the upload.
const MB = 1_000_000;

// DashScope: 50,000 requests and 500 MB per file, 6 MB per line, custom_id <= 256 characters
// (ref/modelstudio-batch-file-input.txt). We count the custom_id in UTF-8 bytes, the strictest reading.
const DASHSCOPE_LIMITS: FileLimits = {
  maxLinesPerFile: 50_000,
  maxBytesPerFile: 500 * MB,
  maxLineBytes: 6 * MB,
  maxCustomIdBytes: 256,
};

// OpenAI: 50,000 requests and 200 MB per input file (Batch API guide).
const OPENAI_LIMITS: FileLimits = {
  maxLinesPerFile: 50_000,
  maxBytesPerFile: 200 * MB,
  maxLineBytes: 6 * MB,
  maxCustomIdBytes: 256,
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

// Beijing: stable and some latest versions of Qwen-Max/Plus/Flash/Long, qwq-plus, deepseek-r1,
// deepseek-v3.2, deepseek-v3, Qwen-VL-Max/Plus/Flash, Qwen-OCR, text-embedding-v4, and the qwen3.x
// models named with their batch context window.
const BEIJING_MODELS: ModelInfo[] = [
  ...SINGAPORE_MODELS,
  chat('qwen-max-latest'),
  chat('qwen-plus-latest'),
  chat('qwen-flash-latest'),
  chat('qwen-turbo-latest'),
  chat('qwen-long'),
  chat('qwen-long-latest'),
  chat('qwq-plus', { thinksByDefault: true }),
  chat('deepseek-r1', { thinksByDefault: true }),
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
  // text-embedding-v4 takes at most 8,192 tokens per input (Model Studio model list).
  { id: 'text-embedding-v4', kind: 'embedding', contextWindow: 8_192 },
];

// The free format check: "model batch-test-model with endpoint /v1/chat/ds-test ... 1 MB file, 100 lines".
const DASHSCOPE_DRY_RUN = {
  model: 'batch-test-model',
  endpoint: '/v1/chat/ds-test',
  maxLines: 100,
  maxBytes: MB,
};

// Batch Chat, Chinese Mainland only: "Text generation models: qwen3.5-plus, qwen3.5-flash, qwen3-max,
// qwen-plus, qwen-flash, deepseek-v3.2"; "Image and video understanding models: qwen3.5-plus,
// qwen3.5-flash, qwen3-vl-plus, qwen3-vl-flash"; "The qwen3.5 series ... enable thinking mode by
// default" (ref/modelstudio-batch-chat.txt).
const BATCH_CHAT_MODELS: ModelInfo[] = [
  chat('qwen3.5-plus', { thinksByDefault: true }),
  chat('qwen3.5-flash', { thinksByDefault: true }),
  chat('qwen3-max'),
  chat('qwen-plus'),
  chat('qwen-flash'),
  chat('deepseek-v3.2'),
  vision('qwen3-vl-plus'),
  vision('qwen3-vl-flash'),
];

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
  chat('gpt-4o', { contextWindow: 128_000 }),
  chat('gpt-4o-mini', { contextWindow: 128_000 }),
  chat('gpt-4.1', { contextWindow: 1_047_576 }),
  chat('gpt-4.1-mini', { contextWindow: 1_047_576 }),
  chat('gpt-4.1-nano', { contextWindow: 1_047_576 }),
  { id: 'text-embedding-3-small', kind: 'embedding', contextWindow: 8_191 },
  { id: 'text-embedding-3-large', kind: 'embedding', contextWindow: 8_191 },
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
    dryRun: DASHSCOPE_DRY_RUN,
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
    dryRun: DASHSCOPE_DRY_RUN,
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
    dryRun: null,
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
    dryRun: DASHSCOPE_DRY_RUN,
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
    dryRun: null,
  },
};
