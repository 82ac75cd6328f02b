import type { RowValues } from '../../types.js';

/**
 * Column names are data: a column may be named `__proto__`, `constructor` or `toString`. These two
 * read and write a row's values so that such a name is the row's own key, never Object.prototype's.
 */

/** The row's value for a column; undefined when the row lacks it, whatever the name. */
export function ownValue(values: RowValues, name: string): unknown {
  const value = values[name];
  // What a plain object inherits is a function or Object.prototype itself; rows hold data. So the
  // own-key check runs only for those, not once a cell.
  if (typeof value === 'function' || value === Object.prototype)
    return Object.hasOwn(values, name) ? value : undefined;
  return value;
}

/** Sets a column's value as an own key (assigning `__proto__` would set the prototype instead). */
export function putValue(values: RowValues, name: string, value: unknown): void {
  if (name === '__proto__')
    Object.defineProperty(values, name, { value, enumerable: true, writable: true, configurable: true });
  else values[name] = value;
}
