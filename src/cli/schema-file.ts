import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';

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
  return value as Record<string, unknown>;
}
