/**
 * Nesting a request body may have. Checks that walk a body (JSON Schema answers, token counts) and
 * JSON.stringify recurse once a level: thousands of levels overflow the stack, which a client must
 * not be able to turn into a 500. 128 is far past any real request (strict schemas allow 10 levels).
 */
export const MAX_BODY_DEPTH = 128;

/**
 * Where parsed JSON first nests deeper than `limit` levels (a path such as
 * `response_format.json_schema.schema.anyOf[0]...`, cut short), or null when it does not. An explicit
 * stack, so the walk itself cannot overflow.
 */
export function tooDeepAt(value: unknown, limit = MAX_BODY_DEPTH): string | null {
  if (value === null || typeof value !== 'object') return null;
  const stack: Array<[unknown, number, string]> = [[value, 1, '']];
  while (stack.length > 0) {
    const [node, depth, path] = stack.pop()!;
    if (depth > limit) return path === '' ? '(the body)' : shortPath(path);
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
  return null;
}

/** A path's first steps: enough to find the place, not kilobytes of `.anyOf[0]`. */
function shortPath(path: string): string {
  return path.length <= 80 ? path : `${path.slice(0, 80)}...`;
}

/** The message of a body nested too deep. */
export function tooDeepMessage(what: string, at: string, limit = MAX_BODY_DEPTH): string {
  return `${what} nests deeper than ${limit} levels (at ${at}); flatten it`;
}
