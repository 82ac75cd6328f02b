import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BatchStore } from './batches-store.js';
import type { ServiceClock } from './clock.js';
import type { Engine } from './engine/engine.js';
import type { Knobs } from './engine/knobs.js';
import type { FileStore } from './files-store.js';
import type { ServiceConfig } from './options.js';
import type { RecordLog } from './records.js';
import type { ServiceRules } from './rules.js';
import type { Scheduler } from './scheduler.js';

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
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  state: ServiceState;
  /** Decoded path parameters, in order. */
  params: string[];
  query: URLSearchParams;
}

/** Returns the JSON body of a 200 reply, or undefined when it has replied itself (streams). */
export type Handler = (ctx: RouteContext) => Promise<unknown>;

/** A route: method, path pattern and a stable name (limits and faults will attach by name). */
export interface Route {
  name: string;
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  handler: Handler;
}
