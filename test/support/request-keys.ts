/** Request keys as docs/cache.md defines them, computed the plain way, for tests to compare with. */
import { createHash } from 'node:crypto';
import { customIdValueRange, KEY_BYTES } from '../../src/core/requests/request-key.js';

/** SHA-256 of the line without its custom_id's value (and trailing newline), its first 16 bytes, hex. */
export function definedKey(line: string): string {
  const bytes = Buffer.from(line.endsWith('\n') ? line.slice(0, -1) : line);
  const value = customIdValueRange(bytes);
  const hash = createHash('sha256');
  if (value) {
    hash.update(bytes.subarray(0, value[0]));
    hash.update(bytes.subarray(value[1]));
  } else hash.update(bytes);
  return hash.digest().subarray(0, KEY_BYTES).toString('hex');
}
