import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, badRequest } from '../api-error.js';
import type { EngineEndpoint } from '../engine/engine.js';
import { failureOf } from '../engine/failures.js';
import { knobsFrom } from '../engine/knobs.js';
import { readJsonBody, sendJsonText } from '../http.js';
import type { Route, RouteContext } from '../state.js';

/**
 * `POST /v1/chat/completions` and `POST /v1/embeddings`, answered by the same engine as batches,
 * one request per call. A request waits for a slot of the shared pool, then `latencyMs`.
 */
async function infer(ctx: RouteContext, endpoint: EngineEndpoint): Promise<undefined> {
  const { req, res, state } = ctx;
  if (!(state.rules.endpoints as readonly string[]).includes(endpoint))
    throw new ApiError(404, `Invalid URL (POST ${endpoint})`, null, null);
  const { value, text } = await readJsonBody(req, state.rules.maxJsonBodyBytes);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw badRequest('the request body must be a JSON object');
  const body = value as Record<string, unknown>;
  const model = body.model;
  if (state.rules.models && typeof model === 'string' && !state.rules.models.has(model))
    throw new ApiError(
      404,
      `The model \`${model}\` does not exist or you do not have access to it.`,
      'model_not_found',
      'model',
    );
  const knobs = knobsFrom(body.metadata, state.knobs, 'metadata');
  await state.engine.ready();
  const signal = state.scheduler.stopSignal;
  await state.scheduler.pool.acquire(signal);
  try {
    if (knobs.latencyMs > 0) await sleep(knobs.latencyMs, undefined, { signal });
    // Each call draws anew (its count is the salt): a failed call sent again may pass.
    const answer =
      failureOf(text, ++state.syncCalls, knobs) ??
      (await state.engine.answer({
        endpoint,
        body,
        key: text,
        knobs: state.knobs,
        now: state.clock.now(),
      }));
    sendJsonText(res, answer.status, answer.json);
  } finally {
    state.scheduler.pool.release();
  }
  return undefined;
}

export const inferenceRoutes: Route[] = [
  {
    name: 'chat.completions',
    method: 'POST',
    pattern: /^\/v1\/chat\/completions$/,
    handler: (ctx) => infer(ctx, '/v1/chat/completions'),
  },
  {
    name: 'embeddings',
    method: 'POST',
    pattern: /^\/v1\/embeddings$/,
    handler: (ctx) => infer(ctx, '/v1/embeddings'),
  },
];
