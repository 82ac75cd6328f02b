import { createHash } from 'node:crypto';
import { exceedsCodePoints } from '../../internal/code-points.js';

/**
 * DashScope: "The custom_id supports a maximum of 256 characters. If this limit is exceeded, the task
 * validation fails." (ref/modelstudio-batch-file-input.txt). Characters are Unicode code points: not
 * UTF-16 units, not UTF-8 bytes. The default of `customIdFor`; prepare passes its profile's
 * `limits.maxCustomIdChars`.
 */
export const MAX_CUSTOM_ID_CHARS = 256;
/** @deprecated The limit counts characters (code points): use MAX_CUSTOM_ID_CHARS. Same value. */
export const MAX_CUSTOM_ID_BYTES = MAX_CUSTOM_ID_CHARS;

/** The longest id `customIdFor` makes of a long key: `sha256-` and 64 hex digits. */
export const DERIVED_ID_BYTES = 71;

/**
 * The custom_id of a row (docs/custom-id.md):
 * - without a key column: `row-<n>`, n the 1-based row number;
 * - with one: the key's value as a string, verbatim, so a result file downloaded by hand joins on the
 *   same column;
 * - a key value that cannot be a custom_id gets a deterministic derived id a join can recompute:
 *   empty (or null) -> `row-<n>`; longer than 256 characters -> `sha256-<hex of the value>`.
 * Numbers, booleans and bigints are their decimal text; objects and arrays their JSON text.
 */
export function customIdFor(index: number, key?: unknown, maxChars = MAX_CUSTOM_ID_CHARS): string {
  if (key === undefined || key === null) return `row-${index}`;
  const text = typeof key === 'string' ? key : typeof key === 'object' ? JSON.stringify(key) : String(key);
  if (text === '') return `row-${index}`;
  if (!exceedsCodePoints(text, maxChars)) return text;
  return derivedId(text);
}

function derivedId(text: string): string {
  return `sha256-${createHash('sha256').update(text).digest('hex')}`;
}

/**
 * The key results are matched on: an id that earlier releases derived (they counted the 256 in UTF-8
 * bytes, so a key of at most 256 characters but over 256 bytes became `sha256-<hex>`) and the same
 * key kept verbatim under the character rule meet on one key, so result files made under either
 * rule join. Other ids are their own key.
 */
export function joinKeyOf(id: string, maxChars = MAX_CUSTOM_ID_CHARS): string {
  // Under 86 UTF-16 units a string is at most 255 UTF-8 bytes: most ids stop here.
  if (id.length * 3 <= maxChars) return id;
  if (exceedsCodePoints(id, maxChars) || Buffer.byteLength(id) <= maxChars) return id;
  return derivedId(id);
}
