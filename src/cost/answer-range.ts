import type { CountTokens } from './model-tokenizer.js';
import type { TokenRange } from './request-tokens.js';

type Schema = Record<string, unknown>;

/** How deep the walk follows a schema; deeper parts count as unbounded. */
const MAX_DEPTH = 32;

/**
 * The tokens of the shortest and longest answers a JSON Schema allows, from the shortest and longest
 * JSON texts it admits: an enum's values, a string's maxLength, an array's maxItems, each property's
 * name. Unbounded (`max` null) where the schema sets no limit (a free string, an array without maxItems).
 * Labels are the enum case: `{"label":"positive"}` against `{"label":"negative"}`.
 */
export function answerRange(schema: unknown, count: CountTokens): TokenRange {
  const texts = shortestLongest(schema, 0);
  return { min: count(texts.min), max: texts.max === null ? null : count(texts.max) };
}

interface Texts {
  min: string;
  max: string | null;
}

function shortestLongest(schema: unknown, depth: number): Texts {
  if (depth > MAX_DEPTH || schema === null || typeof schema !== 'object') return { min: '""', max: null };
  const s = schema as Schema;
  if (Array.isArray(s.enum) && s.enum.length > 0) return byLength(s.enum.map((v) => JSON.stringify(v)));
  if ('const' in s) {
    const text = JSON.stringify(s.const);
    return { min: text, max: text };
  }
  const variants = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(variants) && variants.length > 0) {
    const each = variants.map((v) => shortestLongest(v, depth + 1));
    const min = byLength(each.map((t) => t.min)).min;
    const max = each.some((t) => t.max === null) ? null : byLength(each.map((t) => t.max!)).max;
    return { min, max };
  }
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'object':
      return objectTexts(s, depth);
    case 'array': {
      const item = shortestLongest(s.items, depth + 1);
      const minItems = typeof s.minItems === 'number' ? s.minItems : 0;
      const maxItems = typeof s.maxItems === 'number' ? s.maxItems : null;
      const list = (text: string, n: number) => `[${Array(n).fill(text).join(',')}]`;
      return {
        min: list(item.min, minItems),
        max: maxItems === null || item.max === null ? null : list(item.max, maxItems),
      };
    }
    case 'string': {
      const minLength = typeof s.minLength === 'number' ? s.minLength : 0;
      const maxLength = typeof s.maxLength === 'number' ? s.maxLength : null;
      // A plain word a character: "a" repeated is one token per few characters in every tokenizer,
      // so the longest answer is written with varied text to count near a real one.
      return {
        min: JSON.stringify('a'.repeat(minLength)),
        max: maxLength === null ? null : JSON.stringify(prose(maxLength)),
      };
    }
    case 'integer':
      return { min: '0', max: String(Number.MIN_SAFE_INTEGER) };
    case 'number':
      return { min: '0', max: '-1.2345678901234567e+300' };
    case 'boolean':
      return { min: 'true', max: 'false' };
    case 'null':
      return { min: 'null', max: 'null' };
    default:
      return { min: '""', max: null };
  }
}

function objectTexts(s: Schema, depth: number): Texts {
  const properties = (s.properties ?? {}) as Record<string, unknown>;
  let min = '';
  let max: string | null = '';
  for (const [name, value] of Object.entries(properties)) {
    const child = shortestLongest(value, depth + 1);
    const key = JSON.stringify(name);
    min += `${min ? ',' : ''}${key}:${child.min}`;
    max = max === null || child.max === null ? null : `${max ? `${max},` : ''}${key}:${child.max}`;
  }
  // Open objects may carry any more keys.
  const open = s.additionalProperties !== false && Object.keys(properties).length === 0;
  return { min: `{${min}}`, max: open || max === null ? null : `{${max}}` };
}

function byLength(texts: string[]): { min: string; max: string } {
  let min = texts[0]!;
  let max = texts[0]!;
  for (const t of texts) {
    if (t.length < min.length) min = t;
    if (t.length > max.length) max = t;
  }
  return { min, max };
}

const WORDS = 'the quick brown fox jumps over a lazy dog while seven bright ideas wait patiently ';
function prose(chars: number): string {
  return WORDS.repeat(Math.ceil(chars / WORDS.length)).slice(0, chars);
}
