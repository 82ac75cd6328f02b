import { ApiError, badRequest, notFound } from '../api-error.js';
import { batchFaultsFrom, withDrawnFailure } from '../batch-faults.js';
import { BATCH_STATUSES, type BatchObject, type BatchRecord, type BatchStatus } from '../batches-store.js';
import { type BatchEndpoint, DRY_RUN_ENDPOINT, type EngineEndpoint } from '../engine/engine.js';
import { knobsFrom } from '../engine/knobs.js';
import { readJsonBody } from '../http.js';
import { isBatchId, isFileId, newBatchId } from '../ids.js';
import { checkUnfinished } from '../quotas.js';
import { DS_DESCRIPTION_MAX, DS_NAME_MAX, MAX_INPUT_FILE_IDS, type ServiceRules } from '../rules.js';
import type { Route, RouteContext, ServiceState } from '../state.js';
import { intParam } from './query.js';

const CREATE_FIELDS = new Set([
  'input_file_id',
  'endpoint',
  'completion_window',
  'metadata',
  'output_expires_after',
]);
/** OpenAI's bounds for `GET /batches?limit=`. */
const BATCHES_LIMIT = { min: 1, max: 100, default: 20 };
// OpenAI metadata: at most 16 pairs, keys up to 64 characters, values up to 512.
const OPENAI_METADATA = { pairs: 16, key: 64, value: 512 };
const STATUSES: ReadonlySet<string> = new Set(BATCH_STATUSES);
const DAY = 86_400;

function batchOr404(ctx: RouteContext): BatchRecord {
  const id = ctx.params[0]!;
  const record = isBatchId(id) ? ctx.state.batches.get(id) : undefined;
  if (!record) throw notFound(`No such Batch object: ${id}`, 'batch_id');
  return record;
}

export const batchRoutes: Route[] = [
  {
    name: 'batches.create',
    method: 'POST',
    pattern: /^\/v1\/batches$/,
    handler: createBatch,
  },
  {
    name: 'batches.list',
    method: 'GET',
    pattern: /^\/v1\/batches$/,
    async handler({ state, query }) {
      const limit = intParam(query, 'limit', BATCHES_LIMIT);
      const keep = listFilter(query, state);
      let all = state.batches.all().reverse();
      const after = query.get('after');
      if (after) {
        const at = all.findIndex((r) => r.batch.id === after);
        all = at === -1 ? [] : all.slice(at + 1);
      }
      const data: BatchObject[] = [];
      let hasMore = false;
      for (const record of all) {
        if (!keep(record.batch)) continue;
        if (data.length === limit) {
          hasMore = true;
          break;
        }
        data.push(record.batch);
      }
      return {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data[data.length - 1]?.id ?? null,
        has_more: hasMore,
      };
    },
  },
  {
    name: 'batches.retrieve',
    method: 'GET',
    pattern: /^\/v1\/batches\/([^/]+)$/,
    async handler(ctx) {
      return batchOr404(ctx).batch;
    },
  },
  {
    name: 'batches.cancel',
    method: 'POST',
    pattern: /^\/v1\/batches\/([^/]+)\/cancel$/,
    async handler(ctx) {
      const record = batchOr404(ctx);
      const { state } = ctx;
      const wasCancelling = record.batch.status === 'cancelling';
      await state.scheduler.cancel(record);
      if (!wasCancelling)
        await state.records.append({ at: state.clock.now(), op: 'batch.cancel', id: record.batch.id });
      return record.batch;
    },
  },
];

/** `POST /v1/batches` (and the gateway's): checks, stores, records and starts a batch; returns it. */
export async function createBatch({ req, state }: RouteContext): Promise<BatchObject> {
  const { value } = await readJsonBody(req, state.rules.maxJsonBodyBytes);
  const record = newBatch(value, state);
  await state.batches.create(record);
  const { batch } = record;
  await state.records.append({
    at: batch.created_at,
    op: 'batch.create',
    id: batch.id,
    input_file_id: batch.input_file_id,
    endpoint: batch.endpoint,
    ds_name: batch.metadata?.ds_name ?? null,
  });
  state.scheduler.launch(record);
  return batch;
}

/** Checks a create request the way the API does and builds the batch (status validating). */
function newBatch(value: unknown, state: ServiceState): BatchRecord {
  const { rules } = state;
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw badRequest('the request body must be a JSON object');
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body))
    if (!CREATE_FIELDS.has(key)) throw badRequest(`Unrecognized request argument supplied: ${key}`, key);

  const inputFileId = requiredString(body, 'input_file_id');
  const input = isFileId(inputFileId) ? state.files.get(inputFileId) : undefined;
  if (!input) throw badRequest(`No such File object: ${inputFileId}`, 'input_file_id', 'file_not_found');
  if (input.purpose !== 'batch')
    throw badRequest(
      `the input file must have purpose "batch", ${inputFileId} has ${JSON.stringify(input.purpose)}`,
      'input_file_id',
    );

  const endpoint = checkEndpoint(requiredString(body, 'endpoint'), rules);
  const window = requiredString(body, 'completion_window');
  const hours = windowHours(window, rules);
  const metadata = checkMetadata(body.metadata, rules);
  checkExpiresAfter(body.output_expires_after);
  const knobs = knobsFrom(metadata, state.knobs, 'metadata');
  const faults = batchFaultsFrom(metadata);
  checkUnfinished(state.quotas.limits, state.batches.unfinished());
  const dryRun = endpoint === DRY_RUN_ENDPOINT ? rules.dryRun : null;
  if (dryRun) checkDryRuns(state, dryRun.maxConcurrent);
  const seq = state.batches.nextSeq();

  const now = state.clock.now();
  return {
    batch: {
      id: newBatchId(),
      object: 'batch',
      endpoint,
      model: null,
      errors: null,
      input_file_id: inputFileId,
      completion_window: window,
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: now,
      in_progress_at: null,
      expires_at: now + hours * 3600,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      usage: {
        input_tokens: 0,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 0,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 0,
      },
      metadata,
    },
    internal: {
      seq,
      knobs,
      faults: withDrawnFailure(faults, seq, state.config),
      // A dry run keeps its own smaller limits and takes its model only.
      limits: dryRun
        ? {
            ...rules.limits,
            maxLinesPerFile: Math.min(rules.limits.maxLinesPerFile, dryRun.maxLines),
            maxBytesPerFile: Math.min(rules.limits.maxBytesPerFile, dryRun.maxBytes),
          }
        : rules.limits,
      models: dryRun ? [dryRun.model] : rules.models ? [...rules.models] : null,
      dryRunModel: rules.dryRun?.model ?? null,
      unrunOnExpiry: rules.unrunOnExpiry,
      maxValidationErrors: rules.maxValidationErrors,
      validated: false,
      ending: null,
      errorLines: 0,
    },
  };
}

function requiredString(body: Record<string, unknown>, key: string): string {
  const value = body[key];
  if (value === undefined || value === null) throw badRequest(`Missing required parameter: '${key}'.`, key);
  if (typeof value !== 'string' || value === '')
    throw badRequest(`${key} must be a non-empty string, got ${JSON.stringify(value)}`, key);
  return value;
}

function checkEndpoint(endpoint: string, rules: ServiceRules): BatchEndpoint {
  if ((rules.endpoints as readonly string[]).includes(endpoint)) return endpoint as EngineEndpoint;
  if (rules.dryRun && endpoint === DRY_RUN_ENDPOINT) return DRY_RUN_ENDPOINT;
  if (rules.unservedEndpoints.includes(endpoint))
    throw badRequest(
      `endpoint ${endpoint} is offered by the provider but not served by this local service; use ${rules.endpoints.join(' or ')}`,
      'endpoint',
      'unsupported_endpoint',
    );
  throw badRequest(
    `Invalid value for 'endpoint': expected one of ${rules.endpoints.join(', ')}${rules.dryRun ? `, ${DRY_RUN_ENDPOINT} (dry run)` : ''}, got ${JSON.stringify(endpoint)}`,
    'endpoint',
    'invalid_endpoint',
  );
}

/** DashScope allows 2 dry runs at once ("2 concurrent tasks"); one more is refused until one ends. */
function checkDryRuns(state: ServiceState, max: number): void {
  const running = state.batches.unfinished((r) => r.batch.endpoint === DRY_RUN_ENDPOINT);
  if (running >= max)
    throw new ApiError(
      429,
      `At most ${max} dry runs (endpoint ${DRY_RUN_ENDPOINT}) may be unfinished at once; ${running} are. Wait for one to finish.`,
      'dry_run_limit_exceeded',
    );
}

/** `completion_window` in hours, as the API takes it: `24h`..`336h` (DashScope) or `24h` (OpenAI). */
function windowHours(window: string, rules: ServiceRules): number {
  const { min, max } = rules.windowHours;
  // The canonical form only ("24h", not "0024h"), as the API lists its values.
  const match = /^([1-9]\d{0,3})h$/.exec(window);
  const hours = match ? Number(match[1]) : Number.NaN;
  if (hours >= min && hours <= max) return hours;
  const allowed = min === max ? `"${min}h"` : `"${min}h" to "${max}h" (whole hours)`;
  const hint = /^\d+d$/.test(window)
    ? ` (the API takes hours: ${Number.parseInt(window, 10)} days is ${Number.parseInt(window, 10) * 24}h)`
    : '';
  throw badRequest(
    `Invalid value for 'completion_window': expected ${allowed}, got ${JSON.stringify(window)}${hint}`,
    'completion_window',
    'invalid_completion_window',
  );
}

function checkMetadata(value: unknown, rules: ServiceRules): Record<string, string> | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value))
    throw badRequest('metadata must be an object of string values', 'metadata', 'invalid_metadata');
  const metadata = value as Record<string, unknown>;
  const out: Record<string, string> = {};
  const entries = Object.entries(metadata);
  if (rules.metadata === 'openai' && entries.length > OPENAI_METADATA.pairs)
    throw badRequest(
      `metadata may hold at most ${OPENAI_METADATA.pairs} pairs, got ${entries.length}`,
      'metadata',
      'invalid_metadata',
    );
  for (const [key, item] of entries) {
    if (typeof item !== 'string')
      throw badRequest(
        `metadata.${key} must be a string, got ${JSON.stringify(item)}`,
        `metadata.${key}`,
        'invalid_metadata',
      );
    if (rules.metadata === 'openai') {
      if (key.length > OPENAI_METADATA.key)
        throw badRequest(
          `metadata keys may be at most ${OPENAI_METADATA.key} characters`,
          'metadata',
          'invalid_metadata',
        );
      if (item.length > OPENAI_METADATA.value)
        throw badRequest(
          `metadata.${key} is ${item.length} characters; at most ${OPENAI_METADATA.value} are allowed`,
          `metadata.${key}`,
          'invalid_metadata',
        );
    }
    out[key] = item;
  }
  if (rules.metadata === 'dashscope') {
    checkLength(out, 'ds_name', DS_NAME_MAX);
    checkLength(out, 'ds_description', DS_DESCRIPTION_MAX);
  }
  return out;
}

function checkLength(metadata: Record<string, string>, key: string, max: number): void {
  const value = metadata[key];
  if (value === undefined) return;
  const length = [...value].length;
  if (length > max)
    throw badRequest(
      `metadata.${key} is ${length} characters; at most ${max} are allowed`,
      `metadata.${key}`,
      'invalid_metadata',
    );
}

/** OpenAI's `output_expires_after` is accepted and checked; result files here do not expire. */
function checkExpiresAfter(value: unknown): void {
  if (value === undefined || value === null) return;
  const v = value as { anchor?: unknown; seconds?: unknown };
  const ok =
    typeof value === 'object' &&
    v.anchor === 'created_at' &&
    typeof v.seconds === 'number' &&
    Number.isInteger(v.seconds) &&
    v.seconds >= 3600 &&
    v.seconds <= 2_592_000;
  if (!ok)
    throw badRequest(
      'output_expires_after must be {anchor: "created_at", seconds: 3600..2592000}',
      'output_expires_after',
    );
}

/** The list filters: DashScope's query parameters and its 30-day window; OpenAI lists everything. */
function listFilter(query: URLSearchParams, state: ServiceState): (batch: BatchObject) => boolean {
  const { rules, clock } = state;
  if (!rules.listFilters) return () => true;
  const checks: Array<(batch: BatchObject) => boolean> = [];
  const since = clock.now() - (rules.listWindowDays ?? 0) * DAY;
  if (rules.listWindowDays !== null) checks.push((b) => b.created_at >= since);

  const name = query.get('ds_name');
  if (name) {
    const needle = name.toLowerCase();
    checks.push((b) => (b.metadata?.ds_name ?? '').toLowerCase().includes(needle));
  }
  const ids = query.get('input_file_ids');
  if (ids) {
    const list = ids
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length > MAX_INPUT_FILE_IDS)
      throw badRequest(
        `input_file_ids takes at most ${MAX_INPUT_FILE_IDS} ids, got ${list.length}`,
        'input_file_ids',
        'too_many_input_file_ids',
      );
    const set = new Set(list);
    checks.push((b) => set.has(b.input_file_id));
  }
  const status = query.get('status');
  if (status) {
    const list = status
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = list.find((s) => !STATUSES.has(s));
    if (unknown !== undefined)
      throw badRequest(
        `status must be a comma-separated list of ${BATCH_STATUSES.join(', ')}; got ${JSON.stringify(unknown)}`,
        'status',
        'invalid_status',
      );
    const set = new Set<string>(list as BatchStatus[]);
    checks.push((b) => set.has(b.status));
  }
  const after = stampParam(query, 'create_after');
  if (after !== null) checks.push((b) => b.created_at >= after);
  const before = stampParam(query, 'create_before');
  if (before !== null) checks.push((b) => b.created_at <= before);
  return (batch) => checks.every((check) => check(batch));
}

/**
 * `yyyyMMddHHmmss` as unix seconds. The documents name no time zone; the service reads UTC (its
 * clock's zone), and says so in its docs.
 */
function stampParam(query: URLSearchParams, name: string): number | null {
  const raw = query.get(name);
  if (raw === null || raw === '') return null;
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(raw);
  if (m) {
    const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
    const ms = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(ms);
    if (back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && h < 24 && mi < 60 && s < 60)
      return Math.floor(ms / 1000);
  }
  throw new ApiError(
    400,
    `${name} must be a time as yyyyMMddHHmmss (e.g. 20250131235959), got ${JSON.stringify(raw)}`,
    'invalid_time',
    name,
  );
}
