/**
 * batchpipe/providers: the providers as data (where they are, their limits, models and quirks) and the
 * functions that resolve a profile or a connection from options.
 */
export type { Connection, ConnectionOptions } from './connection.js';
export { defaultProvider, resolveConnection } from './connection.js';
export type {
  Endpoint,
  FileLimits,
  ModelInfo,
  ModelKind,
  ProviderName,
  ProviderProfile,
  RateLimits,
} from './profile.js';
export { ENDPOINTS, PROVIDER_NAMES } from './profile.js';
export { PROFILES } from './profiles.js';
export type { ProfileOptions } from './resolve-profile.js';
export { findModel, resolveProfile, snapshotOf, thinksByDefault } from './resolve-profile.js';
