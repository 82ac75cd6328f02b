/**
 * Awaits every one of `tasks`, then throws the first failure in their order, if any: unlike
 * Promise.all, nothing is still in flight when the caller handles the error (a close mid-way while an
 * abort discards its file).
 */
export async function settledAll<T extends readonly unknown[]>(
  tasks: T,
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const results = await Promise.allSettled(tasks);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
