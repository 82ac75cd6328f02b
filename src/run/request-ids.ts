import { keyHex, requestKey } from '../core/requests/request-key.js';
import { ChunkReader } from '../internal/chunk-reader.js';

/** Longest line read; request lines are at most 6 MB, answers rarely more. */
const MAX_LINE_BYTES = 256 * 1024 * 1024;
const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const KEY = Buffer.from('"custom_id"');

/**
 * The non-empty lines of a JSONL file, as views of one reused buffer: each is valid until the next
 * is asked for. No decoding, no copy: the run's accounting reads millions of lines a minute this way.
 */
export async function* jsonlBuffers(path: string): AsyncGenerator<Buffer> {
  const reader = new ChunkReader(path, path, MAX_LINE_BYTES);
  try {
    let consumed = 0;
    for (;;) {
      const { data, last } = await reader.next(consumed);
      let start = 0;
      for (;;) {
        let stop = data.indexOf(LF, start);
        if (stop === -1) {
          if (!last) break;
          stop = data.length;
        }
        let end = stop;
        if (end > start && data[end - 1] === CR) end--;
        if (end > start) yield data.subarray(start, end);
        start = stop + 1;
        if (start >= data.length) break;
      }
      consumed = Math.min(start, data.length);
      if (last) return;
    }
  } finally {
    await reader.close();
  }
}

/** The non-empty lines of a JSONL file, as text. */
export async function* jsonlLines(path: string): AsyncGenerator<string> {
  for await (const line of jsonlBuffers(path)) yield line.toString('utf8');
}

/**
 * The custom_id of a request or result line, read from the bytes where it can be (a plain string
 * value), else by parsing the line.
 */
export function customIdOf(line: Buffer | string): string | undefined {
  const bytes = typeof line === 'string' ? Buffer.from(line) : line;
  const at = bytes.indexOf(KEY);
  if (at !== -1) {
    let p = at + KEY.length;
    while (bytes[p] === 0x20) p++;
    if (bytes[p] === 0x3a) {
      p++;
      while (bytes[p] === 0x20) p++;
      if (bytes[p] === QUOTE) {
        const close = bytes.indexOf(QUOTE, p + 1);
        const escaped = bytes.indexOf(BACKSLASH, p + 1);
        if (close !== -1 && (escaped === -1 || escaped > close)) return bytes.toString('utf8', p + 1, close);
      }
    }
  }
  try {
    const value = JSON.parse(typeof line === 'string' ? line : line.toString('utf8')) as {
      custom_id?: unknown;
    };
    return typeof value?.custom_id === 'string' ? value.custom_id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A request's content hash: SHA-256 of the line without its custom_id's value, so two rows that ask
 * the same thing (same url, model, messages, parameters) hash alike whatever their ids; the first 32
 * hex digits, the result cache's key (requestKey) as text.
 */
export function contentHash(line: Buffer): string {
  return keyHex(requestKey(line));
}
