import type { Random } from './random.js';

type Schema = Record<string, unknown>;

/** Nesting beyond this ends in the smallest value (recursive schemas would never stop). */
const MAX_DEPTH = 12;
/**
 * Characters of JSON one answer may hold. A real model stops at its output limit (tens of thousands
 * of tokens) with `finish_reason: "length"`; without a cap, `{"type": "array", "minItems": 2e7}` in
 * a ~200-byte request would fill the heap and take the service down (and again on every restart, from
 * a batch). 256 KiB is far past any schema a model fills in practice.
 */
export const MAX_ANSWER_CHARS = 256 * 1024;
const WORDS = [
  'alpha',
  'bravo',
  'charlie',
  'delta',
  'echo',
  'foxtrot',
  'golf',
  'hotel',
  'india',
  'juliet',
  'kilo',
  'lima',
];

/** A value for a schema, and whether it is whole (false: the answer budget ran out first). */
export interface SchemaValue {
  value: unknown;
  complete: boolean;
}

/**
 * A value that satisfies a JSON schema, chosen by `random`: an enum member (so a label schema gets
 * one of its labels), a const, an object with every property, arrays within min/maxItems, strings
 * within min/maxLength and of common formats, numbers within bounds. `pattern` is not honoured.
 * Generation stops once about `budget` characters of JSON are made: the value is then incomplete
 * (fewer items, shorter strings), as a model cut off at its output limit.
 */
export function valueForSchema(schema: unknown, random: Random, budget = MAX_ANSWER_CHARS): SchemaValue {
  const gen: Gen = { root: schema, random, left: budget };
  const value = generate(schema, gen, 0);
  return { value, complete: gen.left >= 0 };
}

/** One generation: the schema's root (for $ref), the choices, and the characters left to make. */
interface Gen {
  root: unknown;
  random: Random;
  left: number;
}

function generate(node: unknown, gen: Gen, depth: number): unknown {
  const value = shape(node, gen, depth);
  // Containers and strings charge themselves as they grow; scalars and consts charge here.
  if (value === null) gen.left -= 4;
  else if (typeof value === 'number' || typeof value === 'boolean') gen.left -= 8;
  else if (isSchema(node) && 'const' in node) gen.left -= sizeOf(value);
  return value;
}

function shape(node: unknown, gen: Gen, depth: number): unknown {
  if (node === true || node === undefined) return charged(gen, 'value');
  if (!isSchema(node)) return null;
  const random = gen.random;
  if (typeof node.$ref === 'string') {
    const target = resolveRef(gen.root, node.$ref);
    return depth >= MAX_DEPTH ? null : generate(target, gen, depth + 1);
  }
  if ('const' in node) return node.const;
  if (Array.isArray(node.enum) && node.enum.length > 0) {
    const value = node.enum[Math.floor(random() * node.enum.length)];
    return typeof value === 'string' ? charged(gen, value) : value;
  }
  const choices = (node.anyOf ?? node.oneOf) as unknown[] | undefined;
  if (Array.isArray(choices) && choices.length > 0) {
    // Prefer a non-null branch: `anyOf: [T, {type: "null"}]` is how strict schemas spell optional.
    const useful = choices.filter((c) => !(isSchema(c) && c.type === 'null'));
    const pick = useful.length > 0 ? useful : choices;
    return depth >= MAX_DEPTH ? null : generate(pick[Math.floor(random() * pick.length)], gen, depth + 1);
  }
  // Every step down counts, so no input (anyOf or allOf thousands deep) can overflow the stack.
  if (Array.isArray(node.allOf) && node.allOf.length > 0)
    return depth >= MAX_DEPTH ? null : generate(mergeAll(node), gen, depth + 1);
  const type = typeOf(node);
  switch (type) {
    case 'object':
      return objectFor(node, gen, depth);
    case 'array':
      return arrayFor(node, gen, depth);
    case 'integer':
      return numberFor(node, random, true);
    case 'number':
      return numberFor(node, random, false);
    case 'boolean':
      return random() < 0.5;
    case 'null':
      return null;
    default:
      return stringFor(node, gen);
  }
}

function charged(gen: Gen, text: string): string {
  gen.left -= text.length + 2;
  return text;
}

/** Characters of a const's JSON, without serializing a large one just to measure it. */
function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length + 2;
  if (value === null || typeof value !== 'object') return 8;
  return 2 + Object.keys(value).length * 8;
}

function isSchema(value: unknown): value is Schema {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function typeOf(node: Schema): string {
  const t = node.type;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x !== 'null') as string | undefined) ?? 'null';
  if (isSchema(node.properties)) return 'object';
  if (node.items !== undefined || node.prefixItems !== undefined) return 'array';
  return 'string';
}

function resolveRef(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let node = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isSchema(node)) return undefined;
    node = node[key];
  }
  return node;
}

function mergeAll(node: Schema): Schema {
  const merged: Schema = { ...node, allOf: undefined };
  const properties: Schema = { ...(isSchema(node.properties) ? node.properties : {}) };
  for (const part of node.allOf as unknown[]) {
    if (!isSchema(part)) continue;
    Object.assign(merged, part);
    if (isSchema(part.properties)) Object.assign(properties, part.properties);
  }
  merged.properties = properties;
  delete merged.allOf;
  return merged;
}

function objectFor(node: Schema, gen: Gen, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  gen.left -= 2;
  if (depth >= MAX_DEPTH) return out;
  const properties = isSchema(node.properties) ? node.properties : {};
  // Every property, not only the required ones: strict schemas require all, and optional ones are valid.
  for (const [key, sub] of Object.entries(properties)) {
    if (gen.left < 0) break;
    gen.left -= key.length + 4;
    out[key] = generate(sub, gen, depth + 1);
  }
  return out;
}

function arrayFor(node: Schema, gen: Gen, depth: number): unknown[] {
  const prefix = Array.isArray(node.prefixItems) ? node.prefixItems : [];
  const min = Math.max(num(node.minItems) ?? 0, prefix.length);
  const max = num(node.maxItems) ?? Math.max(min, 3);
  gen.left -= 2;
  if (depth >= MAX_DEPTH) return [];
  const count = Math.min(max, Math.max(min, 1 + Math.floor(gen.random() * 3)));
  const out: unknown[] = [];
  // The budget, not `minItems`, bounds the loop: each item costs at least its comma.
  for (let i = 0; i < count && gen.left >= 0; i++) {
    const sub = i < prefix.length ? prefix[i] : node.items;
    gen.left -= 1;
    out.push(generate(sub === false ? undefined : sub, gen, depth + 1));
  }
  if (node.uniqueItems === true) return uniqueOf(out);
  return out;
}

function uniqueOf(values: unknown[]): unknown[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const key = JSON.stringify(v);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function numberFor(node: Schema, random: Random, integer: boolean): number {
  let low = num(node.minimum) ?? -1000;
  let high = num(node.maximum) ?? 1000;
  const exclusiveLow = num(node.exclusiveMinimum);
  const exclusiveHigh = num(node.exclusiveMaximum);
  const step = integer ? 1 : 0.01;
  if (exclusiveLow !== undefined) low = Math.max(low, exclusiveLow + step);
  if (exclusiveHigh !== undefined) high = Math.min(high, exclusiveHigh - step);
  if (num(node.minimum) === undefined && exclusiveLow === undefined) low = Math.min(0, high);
  if (num(node.maximum) === undefined && exclusiveHigh === undefined) high = Math.max(low, 100);
  if (integer) {
    const a = Math.ceil(low);
    const b = Math.floor(high);
    return b < a ? a : a + Math.floor(random() * (b - a + 1));
  }
  const value = low + random() * (high - low);
  const rounded = Math.round(value * 100) / 100;
  return rounded < low || rounded > high ? value : rounded;
}

function stringFor(node: Schema, gen: Gen): string {
  const random = gen.random;
  // Never longer than the budget left, whatever minLength asks (the answer is then incomplete).
  const room = Math.max(0, gen.left - 2);
  const min = Math.min(num(node.minLength) ?? 0, room);
  const max = num(node.maxLength);
  let text: string;
  switch (node.format) {
    case 'date-time':
      text = new Date(Date.UTC(2024, 0, 1 + Math.floor(random() * 365), 12)).toISOString();
      break;
    case 'date':
      text = new Date(Date.UTC(2024, 0, 1 + Math.floor(random() * 365))).toISOString().slice(0, 10);
      break;
    case 'time':
      text = '12:00:00Z';
      break;
    case 'email':
      text = `${pickWord(random)}@example.com`;
      break;
    case 'uri':
    case 'url':
      text = `https://example.com/${pickWord(random)}`;
      break;
    case 'uuid':
      text = '00000000-0000-4000-8000-000000000000';
      break;
    default:
      text = `${pickWord(random)} ${pickWord(random)}`;
  }
  while (text.length < min) text += ` ${pickWord(random)}`;
  if (max !== undefined && text.length > max) text = text.slice(0, Math.max(0, max));
  if (text.length < min) text = text.padEnd(min, 'x');
  if (num(node.minLength) !== undefined && (num(node.minLength) as number) > room) gen.left = -1;
  return charged(gen, text);
}

function pickWord(random: Random): string {
  return WORDS[Math.floor(random() * WORDS.length)]!;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
