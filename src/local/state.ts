import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiError } from './api-error.js';
import type { BatchChatGate } from './batch-chat.js';
import type { BatchStore } from './batches-store.js';
import type { ServiceClock } from './clock.js';
import type { Engine } from './engine/engine.js';
import type { Knobs } from './engine/knobs.js';
import type { FaultAction, FaultPlan } from './faults.js';
import type { FileStore } from './files-store.js';
import type { ServiceConfig } from './options.js';
import type { Quotas } from './quotas.js';
import type { RecordLog } from './records.js';
import type { ServiceRules } from './rules.js';
import type { Scheduler } from './scheduler.js';
import type { SyncTally } from './sync-tally.js';

/** Everything a route handler may use. */
export interface ServiceState {
  config: ServiceConfig;
  rules: ServiceRules;
  clock: ServiceClock;
  files: FileStore;
  batches: BatchStore;
  scheduler: Scheduler;
  records: RecordLog;
  engine: Engine;
  /** The service-wide knobs; batches and requests may override them through metadata. */
  knobs: Knobs;
  tmpDir: string;
  faults: FaultPlan;
  quotas: Quotas;
  /** Batch Chat's admission on `POST /v1/chat/completions`, when it is on. */
  batchChat: BatchChatGate | null;
  /** Synchronous calls so far (the draw of a call's failure hangs on it). */
  syncCalls: number;
  /** Synchronous calls counted as a bill would (kept across restarts). */
  syncTally: SyncTally;
  /** Service-level operations the admin routes reach (they outlive one run of the server). */
  control: ServiceControl;
}

/** What the admin routes may ask of the service as a whole. */
export interface ServiceControl {
  /** Stops and starts the service on the same port and data dir; a crash skips the last checkpoint. */
  restart(options: { crash: boolean; downMs: number }): Promise<void>;
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  state: ServiceState;
  /** Decoded path parameters, in order. */
  params: string[];
  query: URLSearchParams;
  /** The fault armed for this call, when one fired (routes that stream their reply act on it). */
  fault: FaultAction | null;
}

/** Returns the JSON body of a 200 reply, or undefined when it has replied itself (streams). */
export type Handler = (ctx: RouteContext) => Promise<unknown>;

/** A route: method, path pattern and a stable name (limits and faults will attach by name). */
export interface Route {
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  handler: Handler;
  /** Service routes (records, health, admin) never meet faults or rate limits. */
  service?: boolean;
  /** The body of a refusal, when the route answers in another shape than OpenAI's (the gateway). */
  errorBody?: (error: ApiError) => unknown;
}
