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
