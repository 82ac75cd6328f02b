import type { ServiceConfig } from '../options.js';
import type { ServiceRules } from '../rules.js';
import type { Engine } from './engine.js';
import { createTestEngine } from './test-engine.js';

/** The engine the service's options ask for. */
export function createServiceEngine(config: ServiceConfig, rules: ServiceRules): Engine {
  return createTestEngine({ tokenizer: config.tokenizer, thinksByDefault: rules.thinksByDefault });
}
