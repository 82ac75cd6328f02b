/** How batchpipe writes Parquet: the settings every Parquet writer takes. */

/** Parquet compressions batchpipe writes. */
export const PARQUET_COMPRESSIONS = ['snappy', 'zstd'] as const;
export type ParquetCompression = (typeof PARQUET_COMPRESSIONS)[number];

/** How a Parquet file is written. */
export interface ParquetWriteSettings {
  /** Rows per row group (a column chunk's pages wait until its group is full). */
  rowGroupSize: number;
  compression: ParquetCompression;
}
