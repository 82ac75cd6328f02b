/** Codes of warnings: things that work but probably not as the user meant (or cost money). */
export type WarningCode =
  | 'BP_WARN_THINKING_DEFAULT'
  | 'BP_WARN_THINKING_MOVED'
  | 'BP_WARN_THINKING_IN_EXTRA_BODY'
  | 'BP_WARN_BIG_INTEGER'
  | 'BP_WARN_BOM'
  | 'BP_WARN_LOCAL_MODEL';

export interface Warning {
  code: WarningCode;
  message: string;
  /** How many records raised it so far (warnings are reported once, then counted). */
  count: number;
  /** Where it was first seen. */
  first?: { file?: string; line?: number; row?: number; custom_id?: string };
}

export type WarningHandler = (warning: Warning) => void;

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
