/**
 * Below this many bytes a copy is a loop here, above it one call into the runtime: a call and its
 * subarray cost about what 40 bytes copied one at a time cost (2M copies of 20, 40, 80 and 150
 * bytes: loop 69, 125, 239, 432 ms; `set` of a subarray 135, 137, 142, 149 ms; Buffer#copy within
 * 5% of `set`).
 */
const SHORT_COPY = 40;

/** Copies `source[start, end)` into `target` at `pos`; the position after. */
export function copyBytes(
  source: Uint8Array,
  start: number,
  end: number,
  target: Uint8Array,
  pos: number,
): number {
  if (end - start < SHORT_COPY) {
    for (let k = start; k < end; k++) target[pos++] = source[k]!;
    return pos;
  }
  target.set(source.subarray(start, end), pos);
  return pos + end - start;
}
