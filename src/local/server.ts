import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ApiError } from './api-error.js';
import { makeAuthCheck } from './auth.js';
import { sendJson } from './http.js';
import { randomToken } from './ids.js';
import { batchRoutes } from './routes/batches.js';
import { fileRoutes } from './routes/files.js';
import { inferenceRoutes } from './routes/inference.js';
import { serviceRoutes } from './routes/service.js';
import type { Route, ServiceState } from './state.js';

const ROUTES: Route[] = [...fileRoutes, ...batchRoutes, ...inferenceRoutes, ...serviceRoutes];
/** Longest path looked at; longer ones are refused before any matching. */
const MAX_PATH = 2048;

/** The HTTP face of the service: routing, auth, request ids, and errors in the OpenAI shape. */
export function createHttpServer(state: ServiceState, log: (line: string) => void): Server {
  const authorize = makeAuthCheck(state.config.apiKey);
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    void handle(req, res, state, authorize, log);
  });
  // Uploads of hundreds of MB can outlast Node's 5-minute default; headers still have their own timeout.
  server.requestTimeout = 0;
  return server;
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
  res.setHeader('x-request-id', `req_${randomToken(24)}`);
  try {
    const url = new URL(req.url ?? '/', 'http://local');
    path = url.pathname;
    if (path.length > MAX_PATH) throw new ApiError(414, 'the URL is too long');
    authorize(req);
    const { route, params } = match(method, path);
    const body = await route.handler({ req, res, state, params, query: url.searchParams });
    if (body !== undefined && !res.headersSent) sendJson(res, 200, body);
  } catch (error) {
    reply(req, res, error, log);
  } finally {
    log(`${method} ${path} ${res.statusCode} ${Math.round(performance.now() - started)}ms`);
  }
}

function match(method: string, path: string): { route: Route; params: string[] } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw new ApiError(404, `Invalid URL (${method} ${path})`);
  }
  for (const route of ROUTES) {
    if (route.method !== method) continue;
    // Match on the raw path so an encoded "/" stays inside its segment; decode parameters only.
    const found = route.pattern.exec(path);
    if (found) return { route, params: found.slice(1).map(safeDecode) };
  }
  throw new ApiError(404, `Invalid URL (${method} ${decoded})`);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function reply(req: IncomingMessage, res: ServerResponse, error: unknown, log: (line: string) => void): void {
  const apiError =
    error instanceof ApiError
      ? error
      : new ApiError(500, 'The server had an error while processing your request.', 'server_error');
  if (!(error instanceof ApiError)) log(`error: ${(error as Error)?.stack ?? String(error)}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // A refusal before the body was read: close the connection rather than read a large body for nothing.
  if (!req.complete) res.setHeader('connection', 'close');
  sendJson(res, apiError.status, apiError.toBody());
}
