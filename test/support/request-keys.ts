/** Request keys as docs/cache.md defines them, computed the plain way, for tests to compare with. */
import { createXXHash128 } from 'hash-wasm';
import { customIdValueRange } from '../../src/core/requests/request-key.js';

/** A hasher of its own: not the one the code under test uses. */
const plain = await createXXHash128();

/**
 * XXH3-128 (seed 0, canonical byte order) of the line without its custom_id's value (and trailing
 * newline), hex: the line's bytes around the id fed as two updates, where the code moves them together.
 */
export function definedKey(line: string): string {
  const bytes = Buffer.from(line.endsWith('\n') ? line.slice(0, -1) : line);
  const value = customIdValueRange(bytes);
  plain.init();
  if (value) plain.update(bytes.subarray(0, value[0])).update(bytes.subarray(value[1]));
  else plain.update(bytes);
  return plain.digest('hex');
}
