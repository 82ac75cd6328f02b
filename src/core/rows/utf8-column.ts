/**
 * A column of UTF-8 text in Arrow's layout, made by a batch straight from the bytes it was read
 * from (no JS string a cell): entry i is `data[valueOffsets[i], valueOffsets[i + 1])`.
 */
export interface Utf8Column {
  valueOffsets: Int32Array;
  data: Uint8Array;
  /** Bit i set: entry i has a value; undefined when none is null. */
  nullBitmap: Uint8Array | undefined;
  nullCount: number;
}

/** Copies `source[start, end)` into `target` at `pos`; the position after. */
export function copyBytes(
  source: Uint8Array,
  start: number,
  end: number,
  target: Uint8Array,
  pos: number,
): number {
  // A short range costs less copied byte by byte than through a call into the runtime.
  if (end - start < 32) {
    for (let k = start; k < end; k++) target[pos++] = source[k]!;
    return pos;
  }
  target.set(source.subarray(start, end), pos);
  return pos + end - start;
}
