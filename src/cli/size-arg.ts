import { InvalidArgumentError } from 'commander';
import { parseByteSize } from '../options.js';

export function byteSizeArg(value: string): number {
  try {
    return parseByteSize(value);
  } catch {
    throw new InvalidArgumentError(`expected a size such as 500MB or 1048576, got "${value}"`);
  }
}
