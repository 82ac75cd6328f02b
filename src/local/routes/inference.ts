import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, badRequest } from '../api-error.js';
import { waitLimitSeconds } from '../batch-chat.js';
import type { EngineEndpoint } from '../engine/engine.js';
import { failureOf } from '../engine/failures.js';
import { knobsFrom } from '../engine/knobs.js';
import { ourTurn, readJsonBody, sendJsonText } from '../http.js';
import { offers } from '../rules.js';
import type { Route, RouteContext } from '../state.js';
import { MODELS_HINT } from '../validate-input.js';

/**
 * `POST /v1/chat/completions` and `POST /v1/embeddings`, answered by the same engine as batches,
 * one request per call. A request waits for a slot of the shared pool, then `latencyMs`. With Batch
 * Chat on, a chat call is first admitted (rate caps, pending per model) and waits at most its
 * timeout, in service time.
 */
async function infer(ctx: RouteContext, endpoint: EngineEndpoint): Promise<undefined> {
  const end = ctx.state.syncTally.begin();
  try {
    return await handleCall(ctx, endpoint);
  } finally {
    end();
  }
}

async function handleCall(ctx: RouteContext, endpoint: EngineEndpoint): Promise<undefined> {
  const { req, res, state } = ctx;
  if (!(state.rules.endpoints as readonly string[]).includes(endpoint))
    throw new ApiError(404, `Invalid URL (POST ${endpoint})`, null, null);
  const gate = endpoint === '/v1/chat/completions' ? state.batchChat : null;
  gate?.admitCall();
  const { value, text } = await readJsonBody(req, state.rules.maxJsonBodyBytes);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw badRequest('the request body must be a JSON object');
  const body = value as Record<string, unknown>;
  const model = body.model;
  // Batch Chat offers its own document's models, not the file-batch list.
  const offered = gate ? state.rules.batchChatModels : state.rules.models;
  if (typeof model === 'string' && !offers(offered, model))
    throw new ApiError(
      404,
      `The model \`${model}\` does not exist or you do not have access to it. (${MODELS_HINT})`,
      'model_not_found',
      'model',
    );
  const knobs = knobsFrom(body.metadata, state.knobs, 'metadata');
  // The body is in: waiting in the queue, latency and the engine's answer are the service's time.
  ourTurn(req);
  await state.engine.ready();
  const release = gate?.enter(typeof model === 'string' ? model : '');
  const waitLimit = gate ? waitLimitSeconds(req) : null;
  // One signal for the call: the service stopping, the caller hanging up, or the wait running out
  // abort it. Not AbortSignal.any/timeout: on Node 20 those stay reachable after the call (a leak
  // per call, and a live timer for up to an hour); everything here is undone in `finally`.
  const call = state.scheduler.calls.open();
  const signal = call.signal;
  const onClose = () => {
    if (!res.writableFinished) call.abort('caller gone');
  };
  res.once('close', onClose);
  let expired = false;
  const deadline =
    waitLimit === null
      ? undefined
      : setTimeout(
          () => {
            expired = true;
            call.abort('timeout');
          },
          Math.ceil((waitLimit * 1000) / state.clock.scale),
        );
  let slot = false;
  try {
    await state.scheduler.pool.acquire(signal);
    slot = true;
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
        signal,
      }));
    if (expired) throw timedOut(waitLimit!);
    // A caller that hung up before its close could be heard (during a fault's delay) gets no answer,
    // and is not billed for one.
    if (res.destroyed || req.socket.destroyed) return undefined;
    // Sending is the client's turn again: one that stops reading is cut off like one that stops sending.
    req.socket.setTimeout(state.config.limits.idleTimeoutMs);
    sendJsonText(res, answer.status, answer.json);
    if (answer.status === 200) state.syncTally.answered(text);
  } catch (error) {
    if (expired) throw timedOut(waitLimit!);
    // The caller went away or the service is stopping: no one is left to answer.
    if (signal.aborted) return undefined;
    throw error;
  } finally {
    clearTimeout(deadline);
    res.off('close', onClose);
    call.release();
    if (slot) state.scheduler.pool.release();
    release?.();
  }
  return undefined;
}

/** "The connection disconnects with a timeout error if the maximum wait time is exceeded." */
function timedOut(seconds: number): ApiError {
  return new ApiError(
    504,
    `The request was not answered within its timeout of ${seconds} s; it was not billed. Retry later.`,
    'request_timeout',
  );
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
