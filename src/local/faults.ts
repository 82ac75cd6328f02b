import { z } from 'zod';
import { parseOptions } from '../options.js';
import { hashString, unitOf } from './engine/random.js';

/**
 * What a fault does to an API call:
 * - `error`: answers with an HTTP error (default 503) before the call does anything;
 * - `slow`: waits `delayMs` before handling the call;
 * - `reset`: drops the connection before the call does anything (nothing committed);
 * - `lose`: handles the call (an upload is stored, a batch created, both recorded), then drops the
 *   connection instead of replying: the reply is lost after the commit;
 * - `stall`: handles the call, then holds the reply `delayMs` (past the client's timeout).
 */
export const FAULT_KINDS = ['error', 'slow', 'late', 'reset', 'lose', 'stall'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const HOUR_MS = 3_600_000;

export const FaultRuleSchema = z.strictObject({
  /**
   * The calls it applies to: a route name (`files.create`, `batches.create`, `batches.retrieve`,
   * `batches.list`, `batches.cancel`, `files.content`, ...) or a pattern where `*` matches anything
   * (`files.*`, `*.list`, `*`).
   */
  route: z.string().min(1).max(200),
  kind: z.enum(FAULT_KINDS),
  /** `error`: the HTTP status, 400..599. Default 503. */
  status: z.number().int().min(400).max(599).optional(),
  /** `error`: `error.code` of the body. Default by status (429 `rate_limit_exceeded`, 500 `server_error`, ...). */
  code: z.string().min(1).max(200).optional(),
  /** `error`: `error.message` of the body. */
  message: z.string().min(1).max(2000).optional(),
  /** `error`: sends `retry-after-ms` and `retry-after` (whole seconds, rounded up). Default 1000 for 429. */
  retryAfterMs: z.number().int().nonnegative().max(HOUR_MS).optional(),
  /**
   * `slow`: real ms before the call is handled (default 1000); `late`: between the body's arrival and
   * the call being acted on (default 1000); `stall`: before the reply (default 60,000).
   */
  delayMs: z.number().int().nonnegative().max(HOUR_MS).optional(),
  /** Matching calls let through before the rule starts firing. Default 0. */
  after: z.number().int().nonnegative().default(0),
  /** Fires this many times, then is spent. Default: until disarmed. */
  times: z.number().int().positive().optional(),
  /** Fires on this share of matching calls, drawn from the service seed. Default: every call. */
  rate: z.number().min(0).max(1).optional(),
});

/** A fault to arm: `{ route: 'batches.create', kind: 'error', status: 503, times: 2 }`. */
export type FaultRule = z.input<typeof FaultRuleSchema>;
type FaultConfig = z.output<typeof FaultRuleSchema>;

/** An armed fault, as `faults.list()` and `GET /_batchpipe/faults` show it. */
export interface ArmedFault extends FaultConfig {
  id: string;
  /** Matching calls seen so far. */
  seen: number;
  /** Times it fired. */
  fired: number;
  /** True once it fired `times` times. */
  spent: boolean;
}

/** What the server does to one call. */
export type FaultAction =
  | { kind: 'error'; status: number; code: string | null; message: string; retryAfterMs: number | null }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'late'; delayMs: number }
  | { kind: 'reset' }
  | { kind: 'lose' }
  | { kind: 'stall'; delayMs: number };

/** One fault that fired, in order (`GET /_batchpipe/faults` lists the latest). */
export interface FaultEvent {
  fault: string;
  route: string;
  kind: FaultKind;
  status: number | null;
  /** Real time, ms since the epoch. */
  at: number;
}

const EVENTS_KEPT = 1000;
const SLOW_MS = 1000;
const STALL_MS = 60_000;
const RATE_LIMIT_RETRY_MS = 1000;
const INJECTED = ' [fault injected by the local service]';

// The codes and messages the OpenAI API answers with for these statuses.
const DEFAULT_ERRORS: Record<number, { code: string; message: string }> = {
  408: { code: 'request_timeout', message: 'The request timed out.' },
  429: { code: 'rate_limit_exceeded', message: 'Rate limit reached for requests. Please try again later.' },
  500: { code: 'server_error', message: 'The server had an error while processing your request.' },
  502: { code: 'bad_gateway', message: 'Bad gateway.' },
  503: { code: 'service_unavailable', message: 'The server is overloaded or not ready yet.' },
  504: { code: 'timeout', message: 'The server timed out while processing your request.' },
};

interface Armed extends ArmedFault {
  matcher: RegExp;
}

/** Checks fault rules (one or a list); throws BP_INVALID_OPTION naming what is wrong. */
export function parseFaultRules(value: unknown, where: string): FaultConfig[] {
  const list = Array.isArray(value) ? value : [value];
  return list.map((rule, i) =>
    parseOptions(FaultRuleSchema, rule, Array.isArray(value) ? `${where}[${i}]` : where),
  );
}

/**
 * The faults armed on a service: rules checked in arming order against each API call's route; the
 * first that fires decides what happens to the call. Counting is per rule, so "the next 2 calls"
 * and "the first upload" are exact, and rates are drawn from the seed, the rule and its count: the
 * same sequence of calls meets the same faults.
 */
export class FaultPlan {
  readonly #seed: number;
  #rules: Armed[] = [];
  #events: FaultEvent[] = [];
  #next = 0;

  constructor(seed: number) {
    this.#seed = seed;
  }

  /** Arms rules (already checked by parseFaultRules); returns them as armed. */
  arm(rules: FaultConfig[]): ArmedFault[] {
    const armed = rules.map((rule) => {
      const item: Armed = {
        ...rule,
        id: `fault_${++this.#next}`,
        seen: 0,
        fired: 0,
        spent: false,
        matcher: globToRegExp(rule.route),
      };
      this.#rules.push(item);
      return item;
    });
    return armed.map(publicView);
  }

  /** Disarms one fault by id, or all of them; returns how many were disarmed. */
  disarm(id?: string): number {
    const before = this.#rules.length;
    this.#rules = id === undefined ? [] : this.#rules.filter((rule) => rule.id !== id);
    return before - this.#rules.length;
  }

  list(): ArmedFault[] {
    return this.#rules.map(publicView);
  }

  events(): FaultEvent[] {
    return [...this.#events];
  }

  /** The fault for a call of `route`, or null (the hot path: no rules, no work). */
  decide(route: string): FaultAction | null {
    if (this.#rules.length === 0) return null;
    for (const rule of this.#rules) {
      if (rule.spent || !rule.matcher.test(route)) continue;
      const n = ++rule.seen;
      if (n <= rule.after) continue;
      if (rule.rate !== undefined && unitOf(hashString(`${rule.id}:${n}`, this.#seed)) >= rule.rate) continue;
      rule.fired++;
      if (rule.times !== undefined && rule.fired >= rule.times) rule.spent = true;
      const action = actionOf(rule);
      this.#events.push({
        fault: rule.id,
        route,
        kind: rule.kind,
        status: action.kind === 'error' ? action.status : null,
        at: Date.now(),
      });
      if (this.#events.length > EVENTS_KEPT) this.#events.splice(0, this.#events.length - EVENTS_KEPT);
      return action;
    }
    return null;
  }
}

function actionOf(rule: FaultConfig): FaultAction {
  switch (rule.kind) {
    case 'error': {
      const status = rule.status ?? 503;
      const known = DEFAULT_ERRORS[status];
      return {
        kind: 'error',
        status,
        code: rule.code ?? known?.code ?? null,
        message: (rule.message ?? known?.message ?? `HTTP ${status}`) + INJECTED,
        retryAfterMs: rule.retryAfterMs ?? (status === 429 ? RATE_LIMIT_RETRY_MS : null),
      };
    }
    case 'slow':
      return { kind: 'slow', delayMs: rule.delayMs ?? SLOW_MS };
    case 'late':
      return { kind: 'late', delayMs: rule.delayMs ?? SLOW_MS };
    case 'stall':
      return { kind: 'stall', delayMs: rule.delayMs ?? STALL_MS };
    case 'reset':
      return { kind: 'reset' };
    case 'lose':
      return { kind: 'lose' };
  }
}

function publicView(rule: Armed): ArmedFault {
  const { matcher: _matcher, ...view } = rule;
  return { ...view };
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}
