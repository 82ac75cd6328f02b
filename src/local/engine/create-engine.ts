import type { ServiceConfig } from '../options.js';
import type { ServiceRules } from '../rules.js';
import type { Engine } from './engine.js';
import { createTestEngine } from './test-engine.js';
import { createUpstreamEngine } from './upstream-engine.js';

/** The engine the service's options ask for. */
export function createServiceEngine(config: ServiceConfig, rules: ServiceRules): Engine {
  if (config.engine === 'upstream' && config.upstream)
    return createUpstreamEngine({ ...config.upstream, log: config.log ?? (() => {}) });
  return createTestEngine({
    tokenizer:
      config.tokenizer === 'auto' ? (config.profile === 'openai' ? 'o200k' : 'estimate') : config.tokenizer,
    thinksByDefault: rules.thinksByDefault,
    contextWindow: rules.contextWindow,
    maxEmbeddingInputs: rules.embeddingLimits?.maxInputs,
  });
}
