/** A signal of one's own, aborted when another is, and the way to let go of the other. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** Removes the one listener on the outer signal (call it when done; the own signal stays as it is). */
  unlink(): void;
}

/**
 * A new signal aborted (with the same reason) when `outer` is, through a single listener that `unlink`
 * removes. The openai SDK adds a listener to the signal it is given and never removes it: giving each
 * call, or each run, a signal of its own keeps those listeners off long-lived signals.
 */
export function linkedSignal(outer: AbortSignal | undefined): LinkedSignal {
  const own = new AbortController();
  if (!outer) return { signal: own.signal, unlink: () => {} };
  const abort = () => own.abort(outer.reason);
  if (outer.aborted) {
    abort();
    return { signal: own.signal, unlink: () => {} };
  }
  outer.addEventListener('abort', abort, { once: true });
  return { signal: own.signal, unlink: () => outer.removeEventListener('abort', abort) };
}
