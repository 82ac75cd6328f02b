import { z } from 'zod';
import { BatchpipeError } from './errors.js';
import { readByteSize } from './internal/byte-size.js';

/**
 * Checks a stage's options once, at call time, with its zod schema. Throws BP_INVALID_OPTION naming
 * the stage, the option and what was expected and got, so a typo never surfaces mid-stream.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, stage: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const option = issue.path.map(String).join('.');
  const got = describeValue(valueAt(input, issue.path));
  const where = option ? `option "${option}"` : 'options';
  throw new BatchpipeError('BP_INVALID_OPTION', `${stage}: ${where}: ${issue.message}, got ${got}`, {
    option: option || undefined,
  });
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** A short, safe rendering of a value for error messages (never a whole object). */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === 'object') return 'an object';
  return String(value);
}

/** Byte sizes written by people: `500MB`, `6 MiB`, `1048576`. */
export const byteSize = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\s*\d+(\.\d+)?\s*([kmg]i?b?|b)?\s*$/i, 'expected a size such as 500MB or 1048576')
    .transform(parseByteSize),
]);

export function parseByteSize(text: string): number {
  const bytes = readByteSize(text);
  if (bytes === undefined)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `expected a size such as 500MB, got ${describeValue(text)}`,
    );
  return bytes;
}
