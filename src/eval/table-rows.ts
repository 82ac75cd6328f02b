import { Readable } from 'node:stream';
import { z } from 'zod';
import { WarningLog } from '../internal/warnings.js';
import { openTable, TableFields, tableSettings } from '../jobs/settings.js';
import { parseOptions } from '../options.js';

/** Rows to read: a table file, or rows (Rows, JoinedRows or plain objects) from an iterable or a stream. */
export type RowInput = string | Iterable<unknown> | AsyncIterable<unknown>;

const TableOptions = z.object(TableFields);

/** The rows of `input` as a stream of items; a file is read with the table options (format from its extension). */
export function rowItems(input: RowInput, stage: string): Iterable<unknown> | AsyncIterable<unknown> {
  if (typeof input !== 'string') return input;
  return openTable(input, tableSettings(input, parseOptions(TableOptions, {}, stage)), new WarningLog());
}

/** Whether `value` is rows to read rather than one record. */
export function isRowInput(value: unknown): value is Iterable<unknown> | AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value instanceof Readable || Symbol.asyncIterator in value || Symbol.iterator in value)
  );
}

/** The values of a stream item: a Row's or JoinedRow's, a rejection's position and error, or a plain object's. */
export function rowValues(item: unknown): Record<string, unknown> {
  const record = item as { kind?: unknown; values?: unknown };
  if (record.kind === 'row' && typeof record.values === 'object' && record.values !== null)
    return record.values as Record<string, unknown>;
  if (record.kind === 'rejection') {
    const { file, line, custom_id, code, message } = item as Record<string, unknown>;
    return { status: 'rejected', file, line, custom_id, error_code: code, error_message: message };
  }
  return typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : { value: item };
}
