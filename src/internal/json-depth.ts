/**
 * Nesting that JSON from users (schemas, request bodies, table cells, answers) may have. The walks
 * over such values (schema checks, zod, JSON.stringify) recurse once a level, and thousands of levels
 * overflow the stack: a limit checked first turns that into a coded error. 128 is far past any real
 * schema (strict structured outputs allow 10 levels) or request.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * Where parsed JSON first nests deeper than `limit` levels (a path such as `properties.a.anyOf[0]...`,
 * cut short), or undefined when it does not. An explicit stack, so the walk itself cannot overflow;
 * paths are made only for a value found too deep (the common walk allocates little).
 */
export function tooDeepAt(value: unknown, limit = MAX_JSON_DEPTH): string | undefined {
  if (value === null || typeof value !== 'object' || !deeperThan(value, limit)) return undefined;
  const stack: Array<[unknown, number, string]> = [[value, 1, '']];
  while (stack.length > 0) {
    const [node, depth, path] = stack.pop()!;
    if (depth > limit) return path.length <= 80 ? path : `${path.slice(0, 80)}...`;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item = node[i] as unknown;
        if (item !== null && typeof item === 'object') stack.push([item, depth + 1, `${path}[${i}]`]);
      }
    } else {
      for (const key in node as Record<string, unknown>) {
        const item = (node as Record<string, unknown>)[key];
        if (item !== null && typeof item === 'object')
          stack.push([item, depth + 1, path === '' ? key : `${path}.${key}`]);
      }
    }
  }
  return undefined;
}

/** Whether an object or array nests deeper than `limit` levels (itself level 1). */
export function deeperThan(value: object, limit = MAX_JSON_DEPTH): boolean {
  const nodes: unknown[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop() as Record<string, unknown>;
    const depth = depths.pop()!;
    if (depth > limit) return true;
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        const item = node[i] as unknown;
        if (item !== null && typeof item === 'object') {
          nodes.push(item);
          depths.push(depth + 1);
        }
      }
    } else {
      for (const key in node) {
        const item = node[key];
        if (item !== null && typeof item === 'object') {
          nodes.push(item);
          depths.push(depth + 1);
        }
      }
    }
  }
  return false;
}

/** How a value nested too deep is reported: `<what> nests deeper than 128 levels (at <path>)`. */
export function tooDeepMessage(what: string, at?: string, limit = MAX_JSON_DEPTH): string {
  return `${what} nests deeper than ${limit} levels${at === undefined ? '' : ` (at ${at || 'the top'})`}`;
}
