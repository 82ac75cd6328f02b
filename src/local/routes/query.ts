import { badRequest } from '../api-error.js';

/** An integer query parameter within bounds, or its default; anything else is a 400 naming it. */
export function intParam(
  query: URLSearchParams,
  name: string,
  bounds: { min: number; max: number; default: number },
): number {
  const raw = query.get(name);
  if (raw === null || raw === '') return bounds.default;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < bounds.min || value > bounds.max)
    throw badRequest(
      `${name} must be an integer from ${bounds.min} to ${bounds.max}, got ${JSON.stringify(raw)}`,
      name,
    );
  return value;
}
