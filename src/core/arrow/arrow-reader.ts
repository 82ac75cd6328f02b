import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { RecordBatch } from 'apache-arrow';
import { BatchpipeError } from '../../errors.js';
import { readError } from '../../internal/read-error.js';
import { loadArrow } from './arrow-lib.js';
import { ArrowLayout, ArrowRowBatch } from './arrow-row-batch.js';

/** Rows a batch holds at most: longer record batches are cut to the engine's batch size. */
const MAX_BATCH_ROWS = 2048;

/**
 * Reads an Arrow IPC file (the file format, Feather v2 included, read by offset from a path) or
 * stream (the stream format, from a path or any byte stream) as row batches, one record batch at a
 * time, over apache-arrow's memory.
 */
export async function* readArrowBatches(
  input: string | Readable,
  file: string,
): AsyncGenerator<ArrowRowBatch> {
  const arrow = await loadArrow();
  const handle =
    typeof input === 'string'
      ? await open(input).catch((error: unknown) => {
          throw readError(error, file);
        })
      : undefined;
  try {
    let reader: AsyncIterable<RecordBatch>;
    try {
      // A file handle (the file format is read by offset) or a byte stream (the stream format).
      const source = (handle ?? input) as unknown as FileHandle;
      const opened = await arrow.RecordBatchReader.from(source);
      await opened.open();
      reader = opened as unknown as AsyncIterable<RecordBatch>;
    } catch (error) {
      throw notArrow(file, error);
    }
    let layout: ArrowLayout | undefined;
    let index = 1;
    const iterator = reader[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<RecordBatch>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw notArrow(file, error);
      }
      if (next.done) break;
      const batch = next.value;
      layout ??= new ArrowLayout(batch.schema);
      for (let start = 0; start < batch.numRows; start += MAX_BATCH_ROWS) {
        const length = Math.min(MAX_BATCH_ROWS, batch.numRows - start);
        const part = start === 0 && length === batch.numRows ? batch : batch.slice(start, start + length);
        yield new ArrowRowBatch(layout, part.data.children, length, file, index);
        index += length;
      }
    }
  } finally {
    await handle?.close();
  }
}

function notArrow(file: string, error: unknown): BatchpipeError {
  if (error instanceof BatchpipeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BatchpipeError('BP_INPUT_PARSE', `cannot read it as Arrow IPC: ${message}`, { file });
}
