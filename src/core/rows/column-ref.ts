import type { RowValues } from '../../types.js';
import { ownValue } from './own-value.js';

/** Reads one column (or dotted path into nested JSON) of a row's values. */
export interface ColumnRef {
  name: string;
  get(values: RowValues): unknown;
  has(values: RowValues): boolean;
}

/**
 * A column reader compiled once: `get` and `has` run per row without splitting names. A dotted name
 * (`user.name`) is the column of that exact name first, then a path into nested JSON.
 */
export function columnRef(name: string): ColumnRef {
  const path = name.includes('.') ? name.split('.') : undefined;
  return {
    name,
    get(values) {
      const direct = ownValue(values, name);
      if (direct !== undefined || !path) return direct;
      let value: unknown = values;
      for (const key of path) {
        if (value === null || typeof value !== 'object') return undefined;
        value = ownValue(value as RowValues, key);
      }
      return value;
    },
    has(values) {
      if (Object.hasOwn(values, name)) return true;
      if (!path) return false;
      let value: unknown = values;
      for (const key of path) {
        if (value === null || typeof value !== 'object' || !Object.hasOwn(value, key)) return false;
        value = (value as RowValues)[key];
      }
      return true;
    },
  };
}
