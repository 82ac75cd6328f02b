import { customIdValueRange } from '../core/requests/request-key.js';

const CLOSE = 0x7d;
const CACHED_MARK = Buffer.from(',"cached":true');
const NEWLINE = Buffer.from('\n');

/**
 * A result line (no newline) answering `id` instead of the id it holds: the custom_id's value is
 * replaced in the bytes, the rest left as the provider wrote it. `cached`: the line also gets
 * `"cached": true` (the join's `cached` column reads it). A line with no readable custom_id is
 * rewritten through JSON. `newline`: a newline ends it.
 */
export function withCustomId(line: Buffer, id: string, cached = false, newline = false): Buffer {
  const range = customIdValueRange(line);
  let end = line.length;
  while (end > 0 && line[end - 1]! <= 0x20) end--;
  if (!range || line[end - 1] !== CLOSE) {
    const value = JSON.parse(line.toString('utf8')) as Record<string, unknown>;
    value.custom_id = id;
    if (cached) value.cached = true;
    return Buffer.from(`${JSON.stringify(value)}${newline ? '\n' : ''}`);
  }
  const value = Buffer.from(JSON.stringify(id).slice(1, -1));
  const parts = [line.subarray(0, range[0]), value, line.subarray(range[1], end - 1)];
  if (cached) parts.push(CACHED_MARK);
  parts.push(line.subarray(end - 1, end));
  if (newline) parts.push(NEWLINE);
  return Buffer.concat(parts);
}
