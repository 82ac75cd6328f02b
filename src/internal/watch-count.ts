/**
 * Reports a counter that a stream advances as it goes, by looking at it every `everyMs` rather than
 * being called per row or batch: progress costs nothing on the rows' path. `stop` reports the last
 * value once more, as final; `stop(false)` (the stage failed) only stops looking.
 */
export function watchCount(
  read: () => number,
  report: (value: number, final: boolean) => void,
  everyMs = 200,
): { stop(final?: boolean): void } {
  let last = -1;
  const look = () => {
    const value = read();
    if (value !== last) {
      last = value;
      report(value, false);
    }
  };
  const timer = setInterval(look, everyMs);
  // Progress never keeps the process alive.
  timer.unref();
  return {
    stop(final = true) {
      clearInterval(timer);
      if (final) report(read(), true);
    },
  };
}
