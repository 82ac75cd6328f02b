import { BatchpipeError } from '../errors.js';

/** A read failure as an error that names the file. */
export function readError(error: unknown, file: string): BatchpipeError {
  if (error instanceof BatchpipeError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return new BatchpipeError('BP_INPUT_NOT_FOUND', `no such file: ${file}`, {}, { cause: error });
  if (code === 'EISDIR')
    return new BatchpipeError(
      'BP_INPUT_READ',
      `${file} is a directory, expected a file`,
      {},
      { cause: error },
    );
  return new BatchpipeError(
    'BP_INPUT_READ',
    `cannot read ${file}: ${(error as Error).message}`,
    {},
    { cause: error },
  );
}
