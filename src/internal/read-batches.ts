import { finished, type Readable } from 'node:stream';

/** Items one batch holds at most. */
const BATCH = 4096;

/**
 * Reads an object-mode stream as arrays of what it has buffered: the consumer pays one promise per
 * batch, not one per item as `for await` over the stream does. Destroys the stream if the consumer
 * stops early; rethrows the stream's error.
 */
export async function* readBatches<T>(stream: Readable): AsyncGenerator<T[]> {
  let ended = false;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const stop = finished(stream, { writable: false }, (error) => {
    failure = error ?? undefined;
    ended = true;
    wake?.();
  });
  const onReadable = () => wake?.();
  stream.on('readable', onReadable);
  try {
    for (;;) {
      const batch: T[] = [];
      while (batch.length < BATCH) {
        const item = stream.read() as T | null;
        if (item === null) break;
        batch.push(item);
      }
      if (batch.length > 0) {
        yield batch;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      // 'readable' and the end are announced on a later tick, so nothing is missed between the
      // empty read above and setting `wake` here.
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    stream.off('readable', onReadable);
    stop();
    if (!stream.readableEnded && !stream.destroyed) stream.destroy();
  }
}
