import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { ApiError, storageFailure } from './api-error.js';
import { makeAuthCheck } from './auth.js';
import type { FaultAction } from './faults.js';
import { ourTurn, sendJson } from './http.js';
import { randomToken } from './ids.js';
import { retryHeaders } from './quotas.js';
import { adminRoutes } from './routes/admin.js';
import { batchRoutes } from './routes/batches.js';
import { fileRoutes } from './routes/files.js';
import { gatewayRoutes } from './routes/gateway.js';
import { inferenceRoutes } from './routes/inference.js';
import { serviceRoutes } from './routes/service.js';
import type { Route, ServiceState } from './state.js';

const ROUTES: Route[] = [
  ...fileRoutes,
  ...batchRoutes,
  ...gatewayRoutes,
  ...inferenceRoutes,
  ...serviceRoutes,
  ...adminRoutes,
];
/** Longest path looked at; longer ones are refused before any matching. */
const MAX_PATH = 2048;
/** Real ms to send a request's headers (Node's default, said out loud). */
const HEADERS_TIMEOUT_MS = 60_000;

/** The HTTP server and a way to wait for the calls it is still handling. */
export interface HttpServer {
  server: Server;
  /** Resolves when every call being handled has finished (after the connections are closed). */
  settled(): Promise<void>;
}

/** The HTTP face of the service: routing, auth, faults, rate limits, request ids, errors in the API's shape. */
export function createHttpServer(state: ServiceState, log: (line: string) => void): HttpServer {
  const authorize = makeAuthCheck(state.config.apiKey);
  const inflight = new Set<Promise<void>>();
  const { idleTimeoutMs, requestTimeoutMs } = state.config.limits;
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    // A client that goes silent mid-body (or stops reading a download) is cut off after the idle
    // timeout; with no listener on the socket's 'timeout', Node's server destroys the socket. Waits
    // of the service's own lift it (ourTurn); between calls, keepAliveTimeout takes over.
    req.socket.setTimeout(idleTimeoutMs);
    const handling = handle(req, res, state, authorize, log);
    inflight.add(handling);
    void handling.finally(() => inflight.delete(handling));
  });
  // Never 0 (a slow client could hold a connection forever), and long enough for uploads of
  // hundreds of MB, which outlast Node's 5-minute default.
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = requestTimeoutMs;
  return {
    server,
    settled: async () => {
      await Promise.allSettled([...inflight]);
    },
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  state: ServiceState,
  authorize: (req: IncomingMessage) => void,
  log: (line: string) => void,
): Promise<void> {
  const started = performance.now();
  const method = req.method ?? 'GET';
  let path = '?';
  let route: Route | undefined;
  let fault: FaultAction | null = null;
  res.setHeader('x-request-id', `req_${randomToken(24)}`);
  // The service's own time (scaled, see clock.ts), as a provider's `date` header gives its time.
  res.setHeader('date', new Date(state.clock.nowMs()).toUTCString());
  let body: unknown;
  let failure: unknown;
  try {
    const url = new URL(req.url ?? '/', 'http://local');
    path = url.pathname;
    if (path.length > MAX_PATH) throw new ApiError(414, 'the URL is too long');
    const found = match(method, path);
    route = found.route;
    authorize(req);
    if (!found.route) throw new ApiError(404, `Invalid URL (${method} ${found.decoded})`);
    if (!found.route.service) {
      fault = state.faults.decide(found.route.name);
      if (fault && (await faultBefore(fault, req, state))) return;
      state.quotas.admit(found.route.name);
    }
    body = await found.route.handler({
      req: fault?.kind === 'late' ? await lateRequest(req, fault.delayMs, state) : req,
      res,
      state,
      params: found.params,
      query: url.searchParams,
      fault,
    });
  } catch (error) {
    failure = error;
  }
  try {
    // Whatever the call did is committed by now: these faults take the reply away after the fact.
    if (fault?.kind === 'lose' && !res.headersSent) {
      res.destroy();
      return;
    }
    // A route that streams its reply (a download) has acted on these faults itself.
    if (fault?.kind === 'stall' && !res.headersSent) {
      ourTurn(req);
      await state.scheduler.calls.pause(fault.delayMs);
      if (res.destroyed) return;
    }
    if (failure !== undefined) reply(req, res, failure, log, route);
    else if (body !== undefined && !res.headersSent) sendJson(res, 200, body);
  } finally {
    log(
      `${method} ${path} ${res.statusCode} ${Math.round(performance.now() - started)}ms${fault ? ` fault=${fault.kind}` : ''}`,
    );
  }
}

/** Acts on a fault before the call runs; true when the call is over (the connection was dropped). */
async function faultBefore(fault: FaultAction, req: IncomingMessage, state: ServiceState): Promise<boolean> {
  const signal = state.scheduler.stopSignal;
  if (fault.kind === 'reset') {
    req.socket.destroy();
    return true;
  }
  if (fault.kind === 'slow') {
    // The body waits in the socket meanwhile: the delay is the service's, not the client's.
    ourTurn(req);
    await state.scheduler.calls.pause(fault.delayMs);
    req.socket.setTimeout(state.config.limits.idleTimeoutMs);
  }
  if (fault.kind === 'error') {
    // Read the body first, as a server that failed while handling it would, so the client gets the
    // status rather than a connection closed under its upload.
    for await (const _ of req) if (signal.aborted) break;
    throw new ApiError(
      fault.status,
      fault.message,
      fault.code,
      null,
      fault.retryAfterMs === null ? {} : retryHeaders(fault.retryAfterMs),
    );
  }
  return false;
}

/**
 * The `late` fault: the whole body is read, then the call waits and is acted on from that copy whether
 * or not the client is still there, as a provider still committing a call whose client timed out
 * does. The size is bounded by the route's own limit as the copy is read; faults are for tests.
 */
async function lateRequest(
  req: IncomingMessage,
  delayMs: number,
  state: ServiceState,
): Promise<IncomingMessage> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  ourTurn(req);
  await state.scheduler.calls.pause(delayMs);
  const copy = Readable.from(chunks) as unknown as IncomingMessage;
  return Object.assign(copy, {
    headers: req.headers,
    method: req.method,
    url: req.url,
    socket: req.socket,
    complete: true,
  });
}

function match(
  method: string,
  path: string,
): { route: Route; params: string[]; decoded?: undefined } | { route?: undefined; decoded: string } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return { decoded: path };
  }
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    // Match on the raw path so an encoded "/" stays inside its segment; decode parameters only.
    const found = route.pattern.exec(path);
    if (found) return { route, params: found.slice(1).map(safeDecode) };
  }
  return { decoded };
}

function safeDecode(segment: string | undefined): string {
  if (segment === undefined) return '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function reply(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  log: (line: string) => void,
  route: Route | undefined,
): void {
  const apiError =
    error instanceof ApiError
      ? error
      : (storageFailure(error) ??
        new ApiError(500, 'The server had an error while processing your request.', 'server_error'));
  if (!(error instanceof ApiError)) log(`error: ${(error as Error)?.stack ?? String(error)}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // A refusal before the body was read: close the connection rather than read a large body for nothing.
  if (!req.complete) res.setHeader('connection', 'close');
  for (const [name, value] of Object.entries(apiError.headers)) res.setHeader(name, value);
  sendJson(res, apiError.status, route?.errorBody ? route.errorBody(apiError) : apiError.toBody());
}
