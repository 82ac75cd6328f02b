import { InvalidArgumentError } from 'commander';
import { parseSlice, type Slice } from '../core/rows/row-slice.js';

/** Option value parsers for commander: each names what it expected, as usage errors should. */
export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${value}"`);
  return n;
}

export function number(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new InvalidArgumentError(`expected a number, got "${value}"`);
  return n;
}

export function boolean(value: string): boolean {
  if (/^(true|yes|on|1)$/i.test(value)) return true;
  if (/^(false|no|off|0)$/i.test(value)) return false;
  throw new InvalidArgumentError(`expected true or false, got "${value}"`);
}

/** `i/n`: slice i (0-based) of n. */
export function slice(value: string): Slice {
  try {
    return parseSlice(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message.replace(/^--slice: /, ''));
  }
}

export function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError(`expected a JSON object, got "${value}"`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`expected a JSON object, got "${value}"`);
  }
  return parsed as Record<string, unknown>;
}

/** `model=tokens` pairs, comma-separated: `qwen-plus=131072,qwen-max=32768`. */
export function contextWindows(value: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pair of list(value)) {
    const [model, tokens] = pair.split('=');
    const n = Number(tokens);
    if (!model || !Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`expected model=tokens pairs, got "${pair}"`);
    out[model] = n;
  }
  return out;
}

/** A single character; `\t` and `tab` name a tab. */
export function character(value: string): string {
  if (value === '\\t' || value.toLowerCase() === 'tab') return '\t';
  if (value.length !== 1) throw new InvalidArgumentError(`expected one character, got "${value}"`);
  return value;
}

/**
 * `key=value`, repeatable (commander hands the pairs so far as `previous`): the value may hold `=`; an
 * empty key, or no `=`, is refused.
 */
export function keyValue(
  value: string,
  previous: Record<string, string> | undefined,
): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
}
