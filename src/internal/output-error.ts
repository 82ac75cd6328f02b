import { BatchpipeError } from '../errors.js';

/**
 * Why the file system refused, in a few words, per errno. Codes that freeing space can fix are
 * `BP_OUTPUT_WRITE`; those that need another path or other permissions are `BP_OUTPUT_PATH`.
 */
const REASONS: Record<string, { code: 'BP_OUTPUT_WRITE' | 'BP_OUTPUT_PATH'; reason: string }> = {
  ENOSPC: { code: 'BP_OUTPUT_WRITE', reason: 'no space left on the device' },
  EDQUOT: { code: 'BP_OUTPUT_WRITE', reason: 'the disk quota is used up' },
  EFBIG: { code: 'BP_OUTPUT_WRITE', reason: 'the file would be larger than the file system allows' },
  EIO: { code: 'BP_OUTPUT_WRITE', reason: 'an I/O error (the disk or the file system failed)' },
  ESHORT: { code: 'BP_OUTPUT_WRITE', reason: 'the disk took none of the bytes written' },
  EISDIR: { code: 'BP_OUTPUT_PATH', reason: 'it is a directory' },
  ENOTDIR: { code: 'BP_OUTPUT_PATH', reason: 'a part of its path is a file, not a directory' },
  EEXIST: { code: 'BP_OUTPUT_PATH', reason: 'it is a file, not a directory' },
  ENOENT: { code: 'BP_OUTPUT_PATH', reason: 'its directory does not exist (was it removed meanwhile?)' },
  EACCES: { code: 'BP_OUTPUT_PATH', reason: 'permission denied' },
  EPERM: { code: 'BP_OUTPUT_PATH', reason: 'permission denied' },
  EROFS: { code: 'BP_OUTPUT_PATH', reason: 'the file system is read-only' },
  ENAMETOOLONG: { code: 'BP_OUTPUT_PATH', reason: 'the name is too long' },
};

/** The errno code of a system error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/** True for an error that freeing space (or fixing the disk) may cure: the write itself failed. */
export function isStorageFailure(error: unknown): boolean {
  const errno = errnoOf(error);
  return errno !== undefined && REASONS[errno]?.code === 'BP_OUTPUT_WRITE';
}

/**
 * A file system failure while writing `path`, as a coded error naming it (the final name the caller
 * asked for, not a temporary one): BP_OUTPUT_WRITE when the write failed (a full disk, an I/O error),
 * BP_OUTPUT_PATH when the path cannot be written at all. A BatchpipeError passes through.
 */
export function outputError(path: string, error: unknown): BatchpipeError {
  if (error instanceof BatchpipeError) return error;
  const errno = errnoOf(error);
  const known = errno ? REASONS[errno] : undefined;
  const reason = known ? `${known.reason} (${errno})` : ((error as Error | null)?.message ?? String(error));
  return new BatchpipeError(
    known?.code ?? 'BP_OUTPUT_WRITE',
    `cannot be written: ${reason}`,
    { file: path },
    { cause: error },
  );
}

/** A write that took no bytes and raised nothing, as an errno error `outputError` can name. */
export function shortWriteError(written: number, length: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`wrote ${written} of ${length} bytes, then the disk took no more`), {
    code: 'ESHORT',
  });
}
