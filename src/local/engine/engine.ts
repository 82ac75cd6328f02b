import type { Knobs } from './knobs.js';

/** Endpoints an engine answers. */
export const ENGINE_ENDPOINTS = ['/v1/chat/completions', '/v1/embeddings'] as const;
export type EngineEndpoint = (typeof ENGINE_ENDPOINTS)[number];

/** DashScope's free format check: batches on this endpoint, with model batch-test-model, run no inference. */
export const DRY_RUN_ENDPOINT = '/v1/chat/ds-test';
/** Endpoints a batch may name: the engine's, and the dry run's. */
export type BatchEndpoint = EngineEndpoint | typeof DRY_RUN_ENDPOINT;

/** One request for an engine, from a batch line or a synchronous call. */
export interface EngineRequest {
  endpoint: EngineEndpoint;
  /** The request body as sent (already known to be a JSON object). */
  body: Record<string, unknown>;
  /** What deterministic choices hang on: the custom_id in a batch, the body text for a sync call. */
  key: string;
  knobs: Knobs;
  /** Service time, unix seconds (the response's `created`). */
  now: number;
  /** Aborted when the answer is no longer wanted (the service stops, the caller went away). */
  signal?: AbortSignal;
}

export interface EngineUsage {
  prompt_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
}

/**
 * An HTTP-like answer: a status and the body as JSON text (the response, or `{error}`), and usage
 * when billed. Text, not an object: batches write it into result lines as it is, and an engine that
 * forwards requests gets text back anyway.
 */
export interface EngineAnswer {
  status: number;
  json: string;
  usage: EngineUsage | null;
}

/**
 * What answers requests. The test engine answers synchronously; an engine that forwards requests
 * elsewhere returns promises. Latency and concurrency are the caller's business, not the engine's.
 */
export interface Engine {
  readonly name: string;
  /** True when `answer` never returns a promise: batches then run it in a tight loop. */
  readonly synchronous: boolean;
  /** Loads what the engine needs (a tokenizer); called before the first answer. */
  ready(): Promise<void>;
  answer(request: EngineRequest): EngineAnswer | Promise<EngineAnswer>;
}
