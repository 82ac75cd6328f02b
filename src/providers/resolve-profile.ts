import { z } from 'zod';
import { parseOptions } from '../options.js';
import { snapshotBase } from './model-snapshots.js';
import type { ApiPaths, FileLimits, ModelInfo, ProviderName, ProviderProfile } from './profile.js';
import { API_PATH_NAMES, PROVIDER_NAMES } from './profile.js';
import { PROFILES } from './profiles.js';

const ProfileOverrides = z.strictObject({
  provider: z.enum(PROVIDER_NAMES).default('local'),
  baseURL: z.url().optional(),
  /** Extra model ids the provider offers (lists change faster than releases). */
  models: z.array(z.string().min(1)).optional(),
  /** Accept any model id (the provider decides). */
  anyModel: z.boolean().optional(),
  /** Known context windows, tokens by model id. */
  contextWindows: z.record(z.string(), z.number().int().positive()).optional(),
  maxLinesPerFile: z.number().int().positive().optional(),
  maxBytesPerFile: z.number().int().positive().optional(),
  maxLineBytes: z.number().int().positive().optional(),
  /**
   * Where each Files and Batches call goes, relative to the base URL: `create`, `files`, `list`,
   * `retrieve`, `cancel` (`{batch_id}` stands for the id). Those left out keep the profile's.
   */
  apiPaths: z
    .strictObject(
      Object.fromEntries(
        API_PATH_NAMES.map((name) => [name, z.string().regex(/^\//, 'a path starting with /').optional()]),
      ) as Record<(typeof API_PATH_NAMES)[number], z.ZodOptional<z.ZodString>>,
    )
    .optional(),
});
export type ProfileOptions = z.input<typeof ProfileOverrides>;

/**
 * A built-in profile with the user's overrides applied. Lowering limits is always allowed (smaller
 * shards); raising them past the provider's is the user's call, so it is allowed too.
 */
export function resolveProfile(options: ProfileOptions | ProviderName = {}): ProviderProfile {
  const opts = parseOptions(
    ProfileOverrides,
    typeof options === 'string' ? { provider: options } : options,
    'profile',
  );
  const base = PROFILES[opts.provider];
  const limits: FileLimits = {
    ...base.limits,
    ...(opts.maxLinesPerFile !== undefined && { maxLinesPerFile: opts.maxLinesPerFile }),
    ...(opts.maxBytesPerFile !== undefined && { maxBytesPerFile: opts.maxBytesPerFile }),
    ...(opts.maxLineBytes !== undefined && { maxLineBytes: opts.maxLineBytes }),
  };
  let models: ModelInfo[] = [...base.models];
  for (const id of opts.models ?? []) {
    if (!models.some((m) => m.id === id))
      models.push({ id, kind: id.includes('embedding') ? 'embedding' : 'chat' });
  }
  if (opts.contextWindows) {
    models = models.map((m) => ({ ...m, contextWindow: opts.contextWindows?.[m.id] ?? m.contextWindow }));
    for (const [id, contextWindow] of Object.entries(opts.contextWindows)) {
      if (!models.some((m) => m.id === id)) models.push({ id, kind: 'chat', contextWindow });
    }
  }
  return {
    ...base,
    baseURL: opts.baseURL ?? base.baseURL,
    limits,
    paths: { ...base.paths, ...definedPaths(opts.apiPaths) },
    models,
    modelsExclusive: opts.anyModel ? false : base.modelsExclusive,
  };
}

function definedPaths(paths: Partial<Record<string, string | undefined>> | undefined): Partial<ApiPaths> {
  return Object.fromEntries(Object.entries(paths ?? {}).filter(([, v]) => v !== undefined));
}

/** The profile's entry for a model, if it knows it. */
export function findModel(profile: ProviderProfile, model: string): ModelInfo | undefined {
  return profile.models.find((m) => m.id === model);
}

/**
 * The listed model a dated snapshot id pins (`qwen-plus-2025-07-28` -> qwen-plus), when `model` is
 * not itself listed (src/providers/model-snapshots.ts: accepted with a warning, batchpipe's policy).
 */
export function snapshotOf(profile: ProviderProfile, model: string): ModelInfo | undefined {
  if (findModel(profile, model)) return undefined;
  const base = snapshotBase(model);
  return base === undefined ? undefined : findModel(profile, base);
}

/**
 * True when the model thinks unless told `enable_thinking: false`: the models the documents name
 * ("The qwen3.7, qwen3.6, and qwen3.5 series models have thinking mode enabled by default"). Models
 * that only reason (qwq-plus, deepseek-r1) are not among them: enable_thinking does not switch them.
 */
export function thinksByDefault(profile: ProviderProfile, model: string): boolean {
  if (findModel(profile, model)?.thinksByDefault) return true;
  return profile.thinkingByDefaultPrefixes.some((prefix) => model.startsWith(prefix));
}

/** True for a resolved ProviderProfile (as stages take instead of a provider name). */
export function isProfile(value: unknown): value is ProviderProfile {
  return (
    value !== null &&
    typeof value === 'object' &&
    'limits' in value &&
    'endpoints' in value &&
    'name' in value
  );
}

/** The `provider` option of a stage: a provider's name, or a profile already resolved. Default "local". */
export const providerOption = z
  .union([
    z.enum(PROVIDER_NAMES),
    z.custom<ProviderProfile>(isProfile, 'expected a provider name or profile'),
  ])
  .default('local');

/** The profile a `provider` option names. */
export function profileOf(provider: ProviderName | ProviderProfile): ProviderProfile {
  return typeof provider === 'string' ? resolveProfile(provider) : provider;
}
