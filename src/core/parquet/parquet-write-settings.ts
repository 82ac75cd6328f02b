/** How batchpipe writes Parquet: the settings every Parquet writer takes. */

/** Parquet compressions batchpipe writes. */
export const PARQUET_COMPRESSIONS = ['snappy', 'zstd'] as const;
export type ParquetCompression = (typeof PARQUET_COMPRESSIONS)[number];

/** How a Parquet file is written. */
export interface ParquetWriteSettings {
  /** Rows per row group (a column chunk's pages wait, in `spill` or memory, until its group is full). */
  rowGroupSize: number;
  compression: ParquetCompression;
  /**
   * A file for a row group's compressed pages to wait in until the group is written (removed once
   * open); without one they wait in memory. The sinks put it beside the output.
   */
  spill?: string | undefined;
}
