import type { Readable } from 'node:stream';
import { RequestBatch } from '../core/requests/request-batch.js';
import { inputName, type SourceInput } from '../internal/input.js';
import { crOnlyHint, LineScanner } from '../internal/line-scanner.js';
import { BatchReadable } from '../streams/batch-readable.js';
import type { Rejection, RequestItem, RequestLine } from '../types.js';

/** Longest line read; the provider's limit (6 MB) is checked later, this only bounds memory. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** Lines a batch holds at most. */
const MAX_BATCH_LINES = 2048;

/** The stream `requestSource` returns. */
export interface RequestSourceStream extends Readable {
  /** True once the input turned out to start with a UTF-8 byte-order mark (left out of line 1). */
  readonly byteOrderMark: boolean;
}

/**
 * Streams a Batch API input file (JSONL of request lines) as RequestItems that keep each line's text
 * exactly as stored, so validateRequests checks, and the batch sink uploads, the bytes the user wrote
 * (integers beyond 2^53 included). Lines that are empty, not UTF-8 or not JSON become Rejections.
 * Shapes are not checked here: that is validateRequests' job. A byte-order mark at the start is left
 * out (`byteOrderMark` says there was one), so line 1 is checked as the JSON it holds.
 */
export function requestSource(input: SourceInput, options: { name?: string } = {}): RequestSourceStream {
  const file = inputName(input, options.name);
  const lines = new LineScanner(file, MAX_LINE_BYTES);
  let index = 0;
  const parser = {
    parse(chunk: Buffer, last: boolean) {
      const items: Array<RequestItem | Rejection> = [];
      const { consumed, stopped } = lines.scan(
        chunk,
        last,
        MAX_BATCH_LINES,
        ({ text, line, bytes, utf8 }) => {
          const at = { index: ++index, file, line };
          const reject = (code: Rejection['code'], message: string) =>
            items.push({ kind: 'rejection', ...at, custom_id: null, code, message });
          if (!utf8) reject('BP_LINE_NOT_UTF8', 'line is not valid UTF-8');
          else if (text.trim() === '')
            reject('BP_LINE_NOT_JSON', 'empty line; the file must hold one JSON object per line');
          else {
            try {
              const request = JSON.parse(text) as RequestLine;
              items.push({ kind: 'request', ...at, request, text, bytes });
            } catch (error) {
              reject('BP_LINE_NOT_JSON', `invalid JSON: ${(error as Error).message}${crOnlyHint(text)}`);
            }
          }
        },
      );
      return { batch: items.length > 0 ? RequestBatch.of(items) : undefined, consumed, stopped };
    },
  };
  const stream = new BatchReadable<RequestItem | Rejection, RequestBatch>(
    input,
    file,
    parser,
  ) as unknown as RequestSourceStream;
  Object.defineProperty(stream, 'byteOrderMark', { get: () => lines.byteOrderMark, enumerable: true });
  return stream;
}
