import { BatchpipeError } from '../errors.js';
import type { EvaluationReport } from '../eval/evaluate.js';
import { reportHtml } from '../eval/report-html.js';
import { reportText } from '../eval/report-text.js';
import { isRowInput, rowItems, rowValues } from '../eval/table-rows.js';
import { cellText, type TableView, tableHtml, tableText } from './render-table.js';
import { notebookDisplay } from './tslab-display.js';

/**
 * What `show` displays: a table file (its first rows), rows (an array, an iterable, an async iterable
 * or an object-mode stream of Rows, JoinedRows or plain objects), an evaluation report (`evaluate`), or
 * one record such as a run's summary or a job's result (shown as field/value pairs).
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
 * Shows a table, a record or an evaluation report: as HTML in a Jupyter notebook running the tslab
 * kernel, as aligned plain text anywhere else. A file or a stream is read only as far as the rows shown.
 */
export async function show(value: Showable, options: ShowOptions = {}): Promise<void> {
  const { html, text } = await showable(value, options);
  const display = notebookDisplay();
  if (display !== undefined) display.html(html);
  else (options.out ?? process.stdout).write(`${text}\n`);
}

/** What `show` would display, as HTML and as text: for a report or a page of your own. */
export async function showable(
  value: Showable,
  options: ShowOptions = {},
): Promise<{ html: string; text: string }> {
  if (isEvaluation(value)) return { html: reportHtml(value), text: reportText(value) };
  const view = await viewOf(value, options);
  return { html: tableHtml(view), text: tableText(view) };
}

const isEvaluation = (value: Showable): value is EvaluationReport =>
  typeof value === 'object' && (value as { kind?: unknown }).kind === 'evaluation';

async function viewOf(value: Showable, options: ShowOptions): Promise<TableView> {
  const limit = options.rows ?? 20;
  if (!Number.isInteger(limit) || limit < 1)
    throw new BatchpipeError(
      'BP_INVALID_OPTION',
      `show: rows must be a positive integer, got ${String(options.rows)}`,
    );
  if (typeof value === 'string') {
    const view = await firstRows(rowItems(value, 'show'), limit, options.columns);
    return { ...view, caption: captionOf(view, limit, value) };
  }
  if (isRowInput(value)) {
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
    rows.push(rowValues(item));
  }
  const columns = only ?? [...new Set(rows.flatMap((row) => Object.keys(row)))];
  return {
    columns,
    rows: rows.map((row) => columns.map((c) => cellText(Object.hasOwn(row, c) ? row[c] : undefined))),
    total: seen,
  };
}
