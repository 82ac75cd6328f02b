import { createHash } from 'node:crypto';
import { open, unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { writeAll } from '../internal/durable-write.js';
import { ApiError, storageFailure } from './api-error.js';
import { randomToken } from './ids.js';

/** A multipart upload received to a temp file, fsynced, not yet a stored file. */
export interface Upload {
  tmpPath: string;
  filename: string;
  bytes: number;
  sha256: string;
  fields: Record<string, string>;
}

const MAX_FILENAME = 1024;
const WRITE_BYTES = 1024 * 1024;

/**
 * Streams the `file` part of a multipart body to disk (never held in memory), hashing it on the way,
 * and collects the other fields. Works with and without content-length (chunked), as clients send
 * both. Refuses a body that is not multipart, a second file, or a file over `maxBytes` (413).
 */
export async function receiveUpload(req: IncomingMessage, tmpDir: string, maxBytes: number): Promise<Upload> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      limits: { files: 1, fileSize: maxBytes, fields: 16, fieldSize: 4096, fieldNameSize: 100, parts: 24 },
    });
  } catch (error) {
    throw new ApiError(
      400,
      `expected a multipart/form-data body with a "file" part (${(error as Error).message})`,
      'invalid_multipart',
    );
  }
  const tmpPath = join(tmpDir, `${randomToken(16)}.upload`);
  const fields: Record<string, string> = {};
  let failure: ApiError | undefined;
  let written: Promise<{ bytes: number; sha256: string }> | undefined;
  let filename = '';
  const fail = (error: ApiError) => {
    failure ??= error;
  };

  parser.on('file', (name, stream, info) => {
    if (name !== 'file' || written) {
      fail(
        new ApiError(
          400,
          `unexpected file part "${name}": send one file, in the part named "file"`,
          null,
          'file',
        ),
      );
      stream.resume();
      return;
    }
    filename = info.filename || 'upload.jsonl';
    stream.on('limit', () =>
      fail(
        new ApiError(
          413,
          `the file is larger than this service accepts (${maxBytes} bytes)`,
          'file_too_large',
          'file',
        ),
      ),
    );
    // A client that hangs up while the temp file is still being opened makes busboy fail this part
    // before writeToDisk iterates it: without a listener of its own that error would be uncaught and
    // take the whole service down. writeToDisk still sees the failure when it starts reading.
    stream.on('error', () => {});
    written = writeToDisk(stream, tmpPath);
    written.catch(() => {});
  });
  parser.on('field', (name, value, info) => {
    if (info.nameTruncated || info.valueTruncated)
      fail(new ApiError(400, `form field "${name}" is too long`, null, name));
    else fields[name] = value;
  });
  parser.on('filesLimit', () => fail(new ApiError(400, 'send exactly one file per upload', null, 'file')));
  parser.on('fieldsLimit', () => fail(new ApiError(400, 'too many form fields', null, null)));
  parser.on('partsLimit', () => fail(new ApiError(400, 'too many form parts', null, null)));

  try {
    await pipeline(req, parser);
  } catch (error) {
    if (error instanceof ApiError) fail(error);
    else
      fail(new ApiError(400, `malformed multipart body: ${(error as Error).message}`, 'invalid_multipart'));
  }
  let result: { bytes: number; sha256: string } | undefined;
  try {
    result = written ? await written : undefined;
  } catch (error) {
    // The service's own disk refused (full): its fault, not the client's; nothing is stored.
    fail(
      storageFailure(error) ??
        new ApiError(
          400,
          `the upload was interrupted: ${(error as Error).message}`,
          'upload_interrupted',
          'file',
        ),
    );
  }
  if (!failure && !result) fail(new ApiError(400, 'a "file" part is required', null, 'file'));
  if (!failure && filename.length > MAX_FILENAME)
    fail(new ApiError(400, `the file name is longer than ${MAX_FILENAME} characters`, null, 'file'));
  if (failure || !result) {
    await unlink(tmpPath).catch(() => {});
    throw failure;
  }
  return { tmpPath, filename, bytes: result.bytes, sha256: result.sha256, fields };
}

/**
 * Copies the part into two reused 1 MB buffers and writes each when full, one write in flight while
 * the other buffer fills. Parts arrive in socket-sized pieces (16-64 KB): a file write per piece is a
 * thread-pool round trip each, and gathering with Buffer.concat pays for fresh pages every time.
 * When the disk refuses a write (full), the rest of the part is read and dropped: a part left unread
 * would stall the multipart parser, and the request with it, for good.
 */
async function writeToDisk(stream: Readable, path: string) {
  const hash = createHash('sha256');
  let bytes = 0;
  let refused: unknown;
  const handle = await open(path, 'w');
  try {
    let current = Buffer.allocUnsafeSlow(WRITE_BYTES);
    let spare = Buffer.allocUnsafeSlow(WRITE_BYTES);
    let used = 0;
    let writing: Promise<void> = Promise.resolve();
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (refused !== undefined) continue;
      hash.update(chunk);
      bytes += chunk.length;
      for (let at = 0; at < chunk.length; ) {
        const n = Math.min(chunk.length - at, WRITE_BYTES - used);
        chunk.copy(current, used, at, at + n);
        used += n;
        at += n;
        if (used < WRITE_BYTES) continue;
        try {
          await writing; // the spare buffer is free again once its write is done
        } catch (error) {
          refused = error;
          break;
        }
        writing = writeAll(handle, current);
        // Seen at the next await; until then it must not count as unhandled.
        writing.catch(() => {});
        [current, spare] = [spare, current];
        used = 0;
      }
    }
    if (refused !== undefined) throw refused;
    await writing;
    if (used > 0) await writeAll(handle, current.subarray(0, used));
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes, sha256: hash.digest('hex') };
}
