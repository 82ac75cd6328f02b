import { snapshotBase } from '../providers/model-snapshots.js';
import type { EmbeddingLimits, FileLimits, ProviderProfile } from '../providers/profile.js';
import { BATCH_CHAT_MODELS, PROFILES } from '../providers/profiles.js';
import { findModel, thinksByDefault } from '../providers/resolve-profile.js';
import { DRY_RUN_ENDPOINT, ENGINE_ENDPOINTS, type EngineEndpoint } from './engine/engine.js';
import type { ServiceConfig } from './options.js';

/** Whose rules the service enforces. */
export type ServiceProfileName = 'dashscope' | 'openai';

/** The provider rules one service enforces, as data (the facts come from src/providers). */
export interface ServiceRules {
  profile: ServiceProfileName;
  limits: FileLimits;
  /** `completion_window` bounds, in hours. */
  windowHours: { min: number; max: number };
  /** Endpoints a batch may target here (the provider's, as far as an engine answers them). */
  endpoints: readonly EngineEndpoint[];
  /** Endpoints the provider offers that this service does not answer (named in the refusal). */
  unservedEndpoints: readonly string[];
  metadata: 'dashscope' | 'openai';
  /** DashScope's list filters (ds_name, input_file_ids, status, create_after/create_before). */
  listFilters: boolean;
  /** Only batches created in this many days are listed (DashScope: 30); null lists all. */
  listWindowDays: number | null;
  /** Lines a batch never ran when it expired: written to the error file (OpenAI) or left out. */
  unrunOnExpiry: 'error_file' | 'omit';
  /** Models offered, or null for any. */
  models: ReadonlySet<string> | null;
  /**
   * Models Batch Chat offers (when it is on), or null for any: its own document's list
   * (ref/modelstudio-batch-chat.txt), not the file-batch one.
   */
  batchChatModels: ReadonlySet<string> | null;
  thinksByDefault(model: string): boolean;
  /** The model's context window in tokens, when the profile knows it. */
  contextWindow(model: string): number | undefined;
  /** Embeddings limits the profile documents (OpenAI's; none for DashScope in ref/). */
  embeddingLimits: EmbeddingLimits | null;
  maxUploadBytes: number;
  maxJsonBodyBytes: number;
  maxValidationErrors: number;
  /** The free format check, where the provider offers it: its model and limits. */
  dryRun: { model: string; maxLines: number; maxBytes: number; maxConcurrent: number } | null;
}

/** DashScope: `ds_name` <= 100 and `ds_description` <= 200 characters (ref/dashscope-batch-api.txt). */
export const DS_NAME_MAX = 100;
export const DS_DESCRIPTION_MAX = 200;
/** DashScope: `input_file_ids` takes at most 20 ids. */
export const MAX_INPUT_FILE_IDS = 20;
/** DashScope: "Only tasks from the last 30 days are queryable via list." */
const DASHSCOPE_LIST_DAYS = 30;

export function serviceRules(config: ServiceConfig): ServiceRules {
  // The service's DashScope is the Beijing region: it offers both chat and embeddings for batches.
  const base: ProviderProfile = config.profile === 'openai' ? PROFILES.openai : PROFILES['dashscope-cn'];
  const served = ENGINE_ENDPOINTS.filter((e) => base.endpoints.includes(e));
  const limits: FileLimits = {
    maxLinesPerFile: config.limits.maxLinesPerFile ?? base.limits.maxLinesPerFile,
    maxBytesPerFile: config.limits.maxBytesPerFile ?? base.limits.maxBytesPerFile,
    maxLineBytes: config.limits.maxLineBytes ?? base.limits.maxLineBytes,
    maxCustomIdChars: config.limits.maxCustomIdChars ?? base.limits.maxCustomIdChars,
    ...(base.limits.maxEmbeddingInputsPerFile !== undefined && {
      maxEmbeddingInputsPerFile: base.limits.maxEmbeddingInputsPerFile,
    }),
  };
  const dashscope = config.profile === 'dashscope';
  return {
    profile: config.profile,
    limits,
    windowHours: base.completionWindowHours,
    endpoints: served,
    unservedEndpoints: base.endpoints.filter((e) => !served.includes(e as EngineEndpoint)),
    metadata: dashscope ? 'dashscope' : 'openai',
    listFilters: dashscope,
    listWindowDays: dashscope ? DASHSCOPE_LIST_DAYS : null,
    // OpenAI's guide: requests not run before the window ends go to the error file as batch_expired.
    // The DashScope documents say only that unprocessed requests are terminated.
    unrunOnExpiry: dashscope ? 'omit' : 'error_file',
    models: offeredModels(config, base),
    batchChatModels: offeredModels(config, { ...base, models: [...BATCH_CHAT_MODELS] }),
    // The engine reasons for a reasoning-only model (qwq-plus, deepseek-r1) as for one that thinks by default.
    thinksByDefault: (model) =>
      thinksByDefault(base, model) || findModel(base, model)?.reasoningOnly === true,
    contextWindow: (model) => findModel(base, model)?.contextWindow,
    embeddingLimits: base.embeddingLimits ?? null,
    maxUploadBytes: config.limits.maxUploadBytes,
    maxJsonBodyBytes: config.limits.maxJsonBodyBytes,
    maxValidationErrors: config.limits.maxValidationErrors,
    // Only a profile whose provider documents the dry run offers it (DashScope: ref/dashscope-batch-api.txt).
    dryRun:
      base.dryRun && base.dryRun.endpoint === DRY_RUN_ENDPOINT
        ? {
            model: base.dryRun.model,
            maxLines: config.dryRun.maxLines,
            maxBytes: config.dryRun.maxBytes,
            maxConcurrent: config.dryRun.maxConcurrent,
          }
        : null,
  };
}

/**
 * The models a batch or call may name. DashScope offers a fixed list per region and fails a batch
 * naming another (ref/modelstudio-batch-file-input.txt): the dashscope profile takes the Beijing list as
 * that document gives it (chat and embeddings; the service has no region), and dated snapshots of
 * listed models (`offers`, batchpipe's policy as the client's). The dry run's model is taken
 * by dry runs alone (routes/batches.ts). OpenAI's list is not exclusive, and an upstream engine's
 * server decides for itself: any model. `models: "any"` lifts the list, a list of ids replaces it.
 */
function offeredModels(config: ServiceConfig, base: ProviderProfile): ReadonlySet<string> | null {
  if (config.models === 'any') return null;
  if (config.models) return new Set(config.models);
  if (config.engine === 'upstream' || !base.modelsExclusive) return null;
  return new Set(base.models.map((m) => m.id));
}

/**
 * Whether `models` (null for every model) offers `model`: listed, or a dated snapshot of a listed model
 * (`qwen-plus-2025-07-28`), which the client accepts with a warning (src/providers/model-snapshots.ts).
 */
export function offers(models: ReadonlySet<string> | null, model: string): boolean {
  if (models === null || models.has(model)) return true;
  const base = snapshotBase(model);
  return base !== undefined && models.has(base);
}
