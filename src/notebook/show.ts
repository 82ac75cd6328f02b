import { Readable } from 'node:stream';
import { z } from 'zod';
import { BatchpipeError } from '../errors.js';
import { WarningLog } from '../internal/warnings.js';
import { openTable, TableFields, tableSettings } from '../jobs/settings.js';
import { parseOptions } from '../options.js';
import { cellText, type TableView, tableHtml, tableText } from './render-table.js';
import { notebookDisplay } from './tslab-display.js';

/**
 * What `show` displays: a table file (its first rows), rows (an array, an iterable, an async iterable
 * or an object-mode stream of Rows, JoinedRows or plain objects), or one record such as a run's
 * summary or a job's result (shown as field/value pairs).
 */
export type Showable = string | Iterable<unknown> | AsyncIterable<unknown> | object;

export interface ShowOptions {
  /** Rows shown at most (default 20). */
  rows?: number;
  /** Columns shown, in this order (default: every column, in the order first seen). */
  columns?: string[];
  /** Where plain text goes outside a notebook (default process.stdout). */
  out?: NodeJS.WritableStream;
}

/**
 * Shows a table or a record: as an HTML table in a Jupyter notebook running the tslab kernel, as
 * aligned plain text anywhere else. A file or a stream is read only as far as the rows shown.
 */
export async function show(value: Showable, options: ShowOptions = {}): Promise<void> {
  const view = await viewOf(value, options);
  const display = notebookDisplay();
  if (display !== undefined) display.html(tableHtml(view));
  else (options.out ?? process.stdout).write(`${tableText(view)}\n`);
}

/** The table `show` would display, as HTML and as text: for a report or a page of your own. */
export async function showable(
  value: Showable,
  options: ShowOptions = {},
): Promise<{ html: string; text: string }> {
  const view = await viewOf(value, options);
  return { html: tableHtml(view), text: tableText(view) };
}

const TableOptions = z.object(TableFields);

async function viewOf(value: Showable, options: ShowOptions): Promise<TableView> {
  const limit = options.rows ?? 20;
  if (!Number.isInteger(limit) || limit < 1)
    throw new BatchpipeError(
      'BP_USAGE',
      `show: rows must be a positive integer, got ${String(options.rows)}`,
    );
  if (typeof value === 'string') {
    const table = tableSettings(value, parseOptions(TableOptions, {}, 'show'));
    const view = await firstRows(openTable(value, table, new WarningLog()), limit, options.columns);
    return { ...view, caption: captionOf(view, limit, value) };
  }
  if (isRowSource(value)) {
    const view = await firstRows(value, limit, options.columns);
    return { ...view, caption: captionOf(view, limit, undefined) };
  }
  const fields = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return { columns: ['field', 'value'], rows: fields.map(([k, v]) => [k, cellText(v)]) };
}

function captionOf(view: TableView, limit: number, file: string | undefined): string | undefined {
  const of = file === undefined ? '' : ` of ${file}`;
  if (view.total !== undefined && view.total > limit) return `first ${limit} rows${of}`;
  return file === undefined ? undefined : `${view.rows.length} rows${of}`;
}

function isRowSource(value: object): value is Iterable<unknown> | AsyncIterable<unknown> {
  return value instanceof Readable || Symbol.asyncIterator in value || Symbol.iterator in value;
}

/** The values of a stream item: a Row's or JoinedRow's values, a rejection's position and error, or a plain object. */
function valuesOf(item: unknown): Record<string, unknown> {
  const record = item as { kind?: unknown; values?: unknown };
  if (record.kind === 'row' && typeof record.values === 'object' && record.values !== null)
    return record.values as Record<string, unknown>;
  if (record.kind === 'rejection') {
    const { file, line, custom_id, code, message } = item as Record<string, unknown>;
    return { status: 'rejected', file, line, custom_id, error_code: code, error_message: message };
  }
  return typeof item === 'object' && item !== null ? (item as Record<string, unknown>) : { value: item };
}

/** Reads up to `limit` rows, plus one to know whether there are more, then lets the source go. */
async function firstRows(
  source: Iterable<unknown> | AsyncIterable<unknown>,
  limit: number,
  only: string[] | undefined,
): Promise<TableView> {
  const rows: Record<string, unknown>[] = [];
  let seen = 0;
  // Breaking out of for-await destroys a stream: nothing past the rows shown is read.
  for await (const item of source) {
    seen++;
    if (rows.length === limit) break;
    rows.push(valuesOf(item));
  }
  const columns = only ?? [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return {
    columns,
    rows: rows.map((row) => columns.map((c) => cellText(Object.hasOwn(row, c) ? row[c] : undefined))),
    total: seen,
  };
}
