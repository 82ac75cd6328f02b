import type { RecordBatch } from 'apache-arrow';

/** Where a writer's bytes go: append, and wait only when a promise comes back. */
export type WriteBytes = (chunk: Uint8Array) => Promise<void> | undefined;

/** Writes record batches of one schema into a file's bytes (Parquet, Arrow IPC). */
export interface ColumnarWriter {
  /** Takes a batch; resolves once it is written or held within the writer's bound. */
  write(batch: RecordBatch): Promise<void>;
  /** Writes what closes the file. */
  finish(): Promise<void>;
  /** Stops without finishing (the file is discarded). */
  abort(): Promise<void>;
  /**
   * `write` has copied every buffer of its batch when it resolves (Parquet's writers encode pages
   * from them): the batch's buffers may be written again once it is released. Arrow IPC writers
   * hand the buffers on as they are, and leave this unset.
   */
  readonly copies?: boolean;
}
