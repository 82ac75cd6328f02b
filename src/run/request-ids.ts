import { createHash } from 'node:crypto';
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
 * the same thing (same url, model, messages, parameters) hash alike whatever their ids.
 */
export function contentHash(line: Buffer): string {
  const hash = createHash('sha256');
  const value = customIdValueRange(line);
  if (value) {
    hash.update(line.subarray(0, value[0]));
    hash.update(line.subarray(value[1]));
  } else {
    hash.update(line);
  }
  return hash.digest('hex').slice(0, 32);
}

/** Where a line's custom_id string value sits (between its quotes), escapes included. */
function customIdValueRange(line: Buffer): [number, number] | undefined {
  const at = line.indexOf(KEY);
  if (at === -1) return undefined;
  let p = at + KEY.length;
  while (line[p] === 0x20) p++;
  if (line[p] !== 0x3a) return undefined;
  p++;
  while (line[p] === 0x20) p++;
  if (line[p] !== QUOTE) return undefined;
  const start = p + 1;
  for (p = start; p < line.length; p++) {
    if (line[p] === BACKSLASH) p++;
    else if (line[p] === QUOTE) return [start, p];
  }
  return undefined;
}
