import { createHash } from 'node:crypto';

/** DashScope: "The custom_id supports a maximum of 256 characters" (counted here in UTF-8 bytes). The
 *  default of `customIdFor`; prepare passes its profile's `limits.maxCustomIdBytes`. */
export const MAX_CUSTOM_ID_BYTES = 256;

/** The longest id `customIdFor` makes of a long key: `sha256-` and 64 hex digits. */
export const DERIVED_ID_BYTES = 71;

/**
 * The custom_id of a row (docs/custom-id.md):
 * - without a key column: `row-<n>`, n the 1-based row number;
 * - with one: the key's value as a string, verbatim, so a result file downloaded by hand joins on the
 *   same column;
 * - a key value that cannot be a custom_id gets a deterministic derived id a join can recompute:
 *   empty (or null) -> `row-<n>`; longer than 256 UTF-8 bytes -> `sha256-<hex of the value>`.
 * Numbers, booleans and bigints are their decimal text; objects and arrays their JSON text.
 */
export function customIdFor(index: number, key?: unknown, maxBytes = MAX_CUSTOM_ID_BYTES): string {
  if (key === undefined || key === null) return `row-${index}`;
  const text = typeof key === 'string' ? key : typeof key === 'object' ? JSON.stringify(key) : String(key);
  if (text === '') return `row-${index}`;
  // A string of n UTF-16 units is at most 3n UTF-8 bytes: skip the exact count for short ids.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  return `sha256-${createHash('sha256').update(text).digest('hex')}`;
}
