import { badRequest } from '../api-error.js';
import { hashString, unitOf } from './random.js';

/** How the test engine spoils answers and how slow it is; set per service, batch or request. */
/** A fail code as the options take it: `code` or `code:status` (`Throttling:429`). */
export const FAIL_CODE = /^[A-Za-z][\w.-]{0,99}(:[1-5]\d\d)?$/;

export interface Knobs {
  invalidJsonRate: number;
  truncateRate: number;
  refuseRate: number;
  latencyMs: number;
  seed: number;
  /** Share of requests failing with one of `failCodes` (the service's failures, not the model's). */
  failRate: number;
  /** Codes (or `code:status`) failed requests get; empty: the default mix (engine/failures.ts). */
  failCodes: readonly string[];
}

/** What happens to one request. */
export type Fate = 'answer' | 'refuse' | 'invalid_json' | 'truncate';

const METADATA_KEYS = {
  bp_invalid_json_rate: 'invalidJsonRate',
  bp_truncate_rate: 'truncateRate',
  bp_refuse_rate: 'refuseRate',
  bp_latency_ms: 'latencyMs',
  bp_seed: 'seed',
  bp_fail_rate: 'failRate',
} as const satisfies Record<string, keyof Knobs>;

/** Metadata keys that set knobs (`metadata.bp_refuse_rate: "0.1"` on a batch or a request body). */
export const KNOB_KEYS = Object.keys(METADATA_KEYS) as Array<keyof typeof METADATA_KEYS>;
const FAIL_CODES_KEY = 'bp_fail_codes';

/**
 * Knobs from `metadata` (batch metadata, or a request body's `metadata`) over `base`. Values may be
 * strings (metadata values are strings in the API) or numbers; a bad value is a 400 naming the key.
 */
export function knobsFrom(metadata: unknown, base: Knobs, param: string): Knobs {
  if (metadata === null || typeof metadata !== 'object') return base;
  let knobs = base;
  for (const key of KNOB_KEYS) {
    const raw = (metadata as Record<string, unknown>)[key];
    if (raw === undefined) continue;
    const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
    const field = METADATA_KEYS[key];
    const isRate = field.endsWith('Rate');
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      value >= 0 &&
      (isRate ? value <= 1 : field === 'seed' ? Number.isInteger(value) : value <= 600_000);
    if (!ok) {
      const expected = isRate
        ? 'a number from 0 to 1'
        : field === 'seed'
          ? 'a non-negative integer'
          : 'milliseconds from 0 to 600000';
      throw badRequest(`${param}.${key} must be ${expected}, got ${JSON.stringify(raw)}`, `${param}.${key}`);
    }
    knobs = { ...knobs, [field]: value };
  }
  const codes = (metadata as Record<string, unknown>)[FAIL_CODES_KEY];
  if (codes !== undefined)
    knobs = { ...knobs, failCodes: failCodesFrom(codes, `${param}.${FAIL_CODES_KEY}`) };
  return knobs;
}

/** `"rate_limit_exceeded,server_error:503"` (or an array) as a list of fail codes; a 400 otherwise. */
function failCodesFrom(raw: unknown, param: string): string[] {
  const list =
    typeof raw === 'string'
      ? raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : raw;
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    list.length > 32 ||
    !list.every((code) => typeof code === 'string' && FAIL_CODE.test(code))
  )
    throw badRequest(
      `${param} must be a comma-separated list of error codes, each optionally with :status (e.g. "rate_limit_exceeded,server_error:503"), got ${JSON.stringify(raw)}`,
      param,
    );
  return list as string[];
}

/**
 * The fate of the request keyed `key`: one uniform draw split into consecutive shares, so the
 * shares are exact in expectation and a request's fate never depends on the order it ran in.
 */
export function fateOf(key: string, knobs: Knobs, jsonMode: boolean): Fate {
  if (knobs.refuseRate === 0 && knobs.invalidJsonRate === 0 && knobs.truncateRate === 0) return 'answer';
  const u = unitOf(hashString(key, knobs.seed ^ 0x5bd1e995));
  let edge = knobs.refuseRate;
  if (u < edge) return 'refuse';
  edge += knobs.invalidJsonRate;
  if (u < edge) return jsonMode ? 'invalid_json' : 'answer';
  edge += knobs.truncateRate;
  if (u < edge) return 'truncate';
  return 'answer';
}
