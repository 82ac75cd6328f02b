import { InvalidArgumentError } from 'commander';
import { readByteSize } from '../internal/byte-size.js';

export function byteSizeArg(value: string): number {
  const bytes = readByteSize(value);
  if (bytes === undefined)
    throw new InvalidArgumentError(`expected a size such as 500MB or 1048576, got "${value}"`);
  return bytes;
}
