/** The entries of `value` whose keys are in `keys` (undefined ones left out), and the rest. */
export function split<T extends object, K extends string>(
  value: T,
  keys: readonly K[],
): [Partial<Pick<T, K & keyof T>>, Omit<T, K>] {
  const picked: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(value)) {
    if ((keys as readonly string[]).includes(key)) {
      if (entry !== undefined) picked[key] = entry;
    } else {
      rest[key] = entry;
    }
  }
  return [picked as Partial<Pick<T, K & keyof T>>, rest as Omit<T, K>];
}
