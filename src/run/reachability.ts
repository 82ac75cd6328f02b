import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BatchpipeError } from '../errors.js';

/**
 * Failures that prove a call never reached the server: the connection was refused, the host name did
 * not resolve, or the TLS handshake failed. Nothing was sent that could land, so there is nothing to
 * look up and no reason to keep retrying a base URL that has never answered.
 */
const NEVER_REACHED: Array<[RegExp, (url: URL, code: string) => string]> = [
  [
    /^ECONNREFUSED$/,
    (url) => `connection refused: nothing listens at ${url.host} (is the service running, the port right?)`,
  ],
  [
    /^(ENOTFOUND|EAI_AGAIN|EAI_NONAME|EAI_FAIL)$/,
    (url, code) =>
      `the host name ${url.hostname} does not resolve (${code}): a typo in the base URL, or no network`,
  ],
  [
    /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$|HOSTNAME_MISMATCH)/,
    (_url, code) =>
      `the TLS handshake failed (${code}): an https:// URL to a plain-HTTP port, or a certificate this system does not trust`,
  ],
];

/** The error codes along an error's cause chain (the SDK wraps fetch's TypeError, which wraps node's error). */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let e = error, depth = 0; e !== null && typeof e === 'object' && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    // Connecting to a name with several addresses fails with an AggregateError of each attempt.
    const each = (e as { errors?: unknown }).errors;
    if (Array.isArray(each)) codes.push(...each.flatMap(codesOf));
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

/** Why `error` shows the call never reached `baseURL`, or undefined when it may have. */
export function neverReached(error: unknown, baseURL: string): string | undefined {
  const url = new URL(baseURL);
  for (const code of codesOf(error))
    for (const [pattern, why] of NEVER_REACHED) if (pattern.test(code)) return why(url, code);
  return undefined;
}

/** The base URL as it may be shown: no credentials, no query (a key may sit there). */
export function shownURL(baseURL: string): string {
  const url = new URL(baseURL);
  url.username = '';
  url.password = '';
  url.search = '';
  return url.toString();
}

/**
 * One more try at the address, a second after a call never reached it. Any HTTP answer (even a 404)
 * proves it reachable. Returns the error that says it is not, or undefined. node:http, as uploads use,
 * not fetch (which refuses some ports outright).
 */
export async function probeAddress(
  baseURL: string,
  signal?: AbortSignal,
): Promise<BatchpipeError | undefined> {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const url = new URL(baseURL);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const failure = await new Promise<unknown>((resolve) => {
    const req = send(url, { method: 'GET', signal, timeout: 5000 }, (res) => {
      res.resume();
      resolve(undefined);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', resolve);
    req.end();
  });
  const why = failure === undefined ? undefined : neverReached(failure, baseURL);
  if (why === undefined) return undefined;
  return new BatchpipeError(
    'BP_PROVIDER_UNREACHABLE',
    `cannot reach ${shownURL(baseURL)}: ${why}`,
    {},
    { cause: failure },
  );
}
