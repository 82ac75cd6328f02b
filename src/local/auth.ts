import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './api-error.js';

/**
 * Checks `Authorization: Bearer <key>` in constant time: both sides are hashed first, so neither the
 * key's length nor its first differing byte shows in the timing. Refusals never echo the key.
 */
export function makeAuthCheck(apiKey: string | undefined): (req: IncomingMessage) => void {
  if (apiKey === undefined) return () => {};
  const expected = digest(apiKey);
  return (req) => {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(\S.*)$/i.exec(header) : null;
    if (!match)
      throw new ApiError(
        401,
        "You didn't provide an API key. Send it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY).",
        'missing_api_key',
      );
    if (!timingSafeEqual(digest(match[1]!.trim()), expected))
      throw new ApiError(401, 'Incorrect API key provided.', 'invalid_api_key');
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
