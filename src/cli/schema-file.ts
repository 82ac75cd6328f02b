import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { BatchpipeError } from '../errors.js';
import { tooDeepAt, tooDeepMessage } from '../internal/json-depth.js';

/** `--schema file.json`: the file's JSON Schema object, read when the command line is parsed. */
export function schemaFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`${path} is not JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new InvalidArgumentError(`${path} must hold a JSON Schema object`);
  const deep = tooDeepAt(value);
  // A coded error (commander passes on what is not its own): every walk of the schema would overflow.
  if (deep !== undefined)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `--schema ${path}: ${tooDeepMessage('the JSON Schema', deep)}; flatten it, or name a part used again in $defs and point at it with $ref`,
      { option: 'schema' },
    );
  return value as Record<string, unknown>;
}
