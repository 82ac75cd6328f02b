import type { Warning, WarningCode, WarningHandler } from '../types.js';

export type { Warning, WarningCode, WarningHandler };

/** One `warn` call, as a log on another thread records it to be made again here. */
export type WarningCall = [code: WarningCode, message: string, first: Warning['first']];

/**
 * Deduplicating warning log: a warning raised by a million rows is reported once, with a count, so
 * logs stay readable and the hot path pays only a map lookup.
 */
export class WarningLog {
  readonly #seen = new Map<string, Warning>();
  readonly #onWarning: WarningHandler | undefined;

  constructor(onWarning?: WarningHandler) {
    this.#onWarning = onWarning;
  }

  warn(code: WarningCode, message: string, first?: Warning['first']): void {
    const key = `${code}\u0000${message}`;
    const seen = this.#seen.get(key);
    if (seen) {
      seen.count++;
      return;
    }
    const warning: Warning = { code, message, count: 1, first };
    this.#seen.set(key, warning);
    this.#onWarning?.(warning);
  }

  /** Every distinct warning with its final count. */
  list(): Warning[] {
    return [...this.#seen.values()];
  }
}

/** A log that keeps every call (in order), to be replayed into the real log on another thread. */
export class RecordedWarnings extends WarningLog {
  calls: WarningCall[] = [];

  override warn(code: WarningCode, message: string, first?: Warning['first']): void {
    this.calls.push([code, message, first]);
  }
}
