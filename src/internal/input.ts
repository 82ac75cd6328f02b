import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { readError } from './read-error.js';

/** A file path, or any byte/text stream (a Node Readable, a web stream turned async-iterable). */
export type SourceInput = string | URL | Readable | AsyncIterable<Uint8Array | string>;

/** Read size for files: large enough that per-chunk work is noise, small enough to stay flat. */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** The name errors use for an input: its path, or the name given to a stream. */
export function inputName(input: SourceInput, name: string | undefined): string {
  if (name) return name;
  if (typeof input === 'string') return input;
  if (input instanceof URL) return input.pathname;
  return '<stream>';
}

/** Chunks of an input as Buffers, with read failures turned into errors that name the file. */
export async function* readChunks(input: SourceInput, file: string): AsyncGenerator<Buffer> {
  const stream =
    typeof input === 'string' || input instanceof URL
      ? createReadStream(input, { highWaterMark: READ_CHUNK_BYTES })
      : input;
  try {
    for await (const chunk of stream as AsyncIterable<Uint8Array | string>) {
      yield typeof chunk === 'string'
        ? Buffer.from(chunk)
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk);
    }
  } catch (error) {
    throw readError(error, file);
  }
}
