import type { Random } from './random.js';

type Schema = Record<string, unknown>;

/** Nesting beyond this ends in the smallest value (recursive schemas would never stop). */
const MAX_DEPTH = 12;
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

/**
 * A value that satisfies a JSON schema, chosen by `random`: an enum member (so a label schema gets
 * one of its labels), a const, an object with every property, arrays within min/maxItems, strings
 * within min/maxLength and of common formats, numbers within bounds. `pattern` is not honoured.
 */
export function valueForSchema(schema: unknown, random: Random): unknown {
  return generate(schema, schema, random, 0);
}

function generate(node: unknown, root: unknown, random: Random, depth: number): unknown {
  if (node === true || node === undefined) return 'value';
  if (!isSchema(node)) return null;
  if (typeof node.$ref === 'string') {
    const target = resolveRef(root, node.$ref);
    return depth >= MAX_DEPTH ? null : generate(target, root, random, depth + 1);
  }
  if ('const' in node) return node.const;
  if (Array.isArray(node.enum) && node.enum.length > 0)
    return node.enum[Math.floor(random() * node.enum.length)];
  const choices = (node.anyOf ?? node.oneOf) as unknown[] | undefined;
  if (Array.isArray(choices) && choices.length > 0) {
    // Prefer a non-null branch: `anyOf: [T, {type: "null"}]` is how strict schemas spell optional.
    const useful = choices.filter((c) => !(isSchema(c) && c.type === 'null'));
    const pick = useful.length > 0 ? useful : choices;
    return generate(pick[Math.floor(random() * pick.length)], root, random, depth + 1);
  }
  if (Array.isArray(node.allOf) && node.allOf.length > 0)
    return generate(mergeAll(node), root, random, depth);
  const type = typeOf(node);
  switch (type) {
    case 'object':
      return objectFor(node, root, random, depth);
    case 'array':
      return arrayFor(node, root, random, depth);
    case 'integer':
      return numberFor(node, random, true);
    case 'number':
      return numberFor(node, random, false);
    case 'boolean':
      return random() < 0.5;
    case 'null':
      return null;
    default:
      return stringFor(node, random);
  }
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

function objectFor(node: Schema, root: unknown, random: Random, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (depth >= MAX_DEPTH) return out;
  const properties = isSchema(node.properties) ? node.properties : {};
  // Every property, not only the required ones: strict schemas require all, and optional ones are valid.
  for (const [key, sub] of Object.entries(properties)) out[key] = generate(sub, root, random, depth + 1);
  return out;
}

function arrayFor(node: Schema, root: unknown, random: Random, depth: number): unknown[] {
  const prefix = Array.isArray(node.prefixItems) ? node.prefixItems : [];
  const min = Math.max(num(node.minItems) ?? 0, prefix.length);
  const max = num(node.maxItems) ?? Math.max(min, 3);
  if (depth >= MAX_DEPTH) return [];
  const count = Math.min(max, Math.max(min, 1 + Math.floor(random() * 3)));
  const out: unknown[] = [];
  for (let i = 0; i < count; i++) {
    const sub = i < prefix.length ? prefix[i] : node.items;
    out.push(generate(sub === false ? undefined : sub, root, random, depth + 1));
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

function stringFor(node: Schema, random: Random): string {
  const min = num(node.minLength) ?? 0;
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
  if (max !== undefined && text.length > max) text = text.slice(0, max);
  return text.length < min ? text.padEnd(min, 'x') : text;
}

function pickWord(random: Random): string {
  return WORDS[Math.floor(random() * WORDS.length)]!;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
