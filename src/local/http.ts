import type { IncomingMessage, ServerResponse } from 'node:http';
import { tooDeepAt, tooDeepMessage } from '../internal/json-depth.js';
import { ApiError } from './api-error.js';

/** Sends a JSON body with the headers every reply carries. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

export function sendJsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Reads a JSON request body of at most `limit` bytes. Refuses early on a declared length over the
 * limit, stops reading once the limit is passed, and names what was wrong: never a 500 for a bad body.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limit: number,
): Promise<{ value: unknown; text: string }> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type))
    throw new ApiError(
      400,
      `expected a JSON body with content-type application/json, got ${type ? JSON.stringify(type) : 'none'}`,
      'invalid_content_type',
    );
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '')
    throw new ApiError(400, 'the request body is empty; expected a JSON object', 'invalid_json');
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    throw new ApiError(
      400,
      `We could not parse the JSON body of your request. (${(error as Error).message})`,
      'invalid_json',
    );
  }
  const deep = tooDeepAt(value);
  if (deep !== undefined)
    throw new ApiError(
      400,
      tooDeepMessage('the request body', deep),
      'invalid_json',
      deep.split(/[.[]/)[0] || null,
    );
  return { value, text };
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `the request body is larger than ${limit} bytes`, 'request_too_large');
}

/**
 * The client owes nothing now: silence on the connection is the service's own (a queued call,
 * latency, an upstream call, a fault's delay), so the idle timeout armed for each call is lifted.
 */
export function ourTurn(req: IncomingMessage): void {
  req.socket.setTimeout(0);
}

/** Drains what is left of a request so the connection can be reused after an early reply. */
export function drain(req: IncomingMessage): void {
  if (!req.readableEnded) req.resume();
}
