import type { RecordBatch, RecordBatchWriter } from 'apache-arrow';
import type { ArrowModule } from './arrow-lib.js';
import type { ColumnarWriter, WriteBytes } from './columnar-writer.js';

/** The two Arrow IPC layouts: the file format (random access, a footer) and the stream format. */
export type ArrowIpcFormat = 'file' | 'stream';

/**
 * Writes record batches as Arrow IPC through apache-arrow's writer. That writer queues its output
 * without limit (`write` never waits), so after each batch its queue is drained into the file before
 * the next batch is taken: memory stays at a batch.
 */
export function arrowWriter(arrow: ArrowModule, format: ArrowIpcFormat, write: WriteBytes): ColumnarWriter {
  const writer: RecordBatchWriter =
    format === 'file' ? new arrow.RecordBatchFileWriter() : new arrow.RecordBatchStreamWriter();
  const queue = writer as unknown as { _sink?: { _values?: Uint8Array[] } };
  const drain = async (): Promise<void> => {
    // The queue apache-arrow's writer appends to (its own async iterator reads the same array).
    const values = queue._sink?._values;
    if (!Array.isArray(values))
      throw new Error(
        "apache-arrow's writer no longer queues its output as this drains it (a batchpipe bug: pinned version changed)",
      );
    while (values.length > 0) {
      const pending = write(values.shift()!);
      if (pending) await pending;
    }
  };
  return {
    async write(batch: RecordBatch) {
      writer.write(batch);
      await drain();
    },
    async finish() {
      writer.finish();
      await drain();
      writer.close();
    },
    async abort() {
      writer.abort();
    },
  };
}
