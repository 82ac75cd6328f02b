/** A table cut for display: column names, and rows of cell text. */
export interface TableView {
  columns: string[];
  rows: string[][];
  /** Rows shown out of how many (undefined when the whole source was not counted). */
  total?: number;
  /** A line under the table (e.g. "first 20 rows of out.csv"). */
  caption?: string;
}

const MAX_CELL = 200;

/** A cell as display text: strings verbatim, null and undefined empty, anything else as JSON. */
export function cellText(value: unknown): string {
  const text =
    typeof value === 'string'
      ? value
      : value === null || value === undefined
        ? ''
        : typeof value === 'bigint'
          ? value.toString()
          : JSON.stringify(value);
  return text.length > MAX_CELL ? `${text.slice(0, MAX_CELL - 1)}…` : text;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** The table as HTML (a `<table>` Jupyter styles as it does a DataFrame). */
export function tableHtml(view: TableView): string {
  const head = view.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('');
  const body = view.rows
    .map(
      (row) =>
        `<tr>${row.map((cell) => `<td style="text-align:left">${escapeHtml(cell)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const caption = view.caption === undefined ? '' : `<caption>${escapeHtml(view.caption)}</caption>`;
  return `<table class="batchpipe">${caption}<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** The table as aligned plain text, for a terminal or a log. */
export function tableText(view: TableView): string {
  const flat = (text: string) => text.replace(/\s+/g, ' ');
  const cells = [view.columns, ...view.rows].map((row) => row.map(flat));
  const widths = view.columns.map((_, c) =>
    Math.min(60, Math.max(...cells.map((row) => (row[c] ?? '').length))),
  );
  const line = (row: string[]) =>
    row
      .map((cell, c) =>
        cell.length > widths[c]! ? `${cell.slice(0, widths[c]! - 1)}…` : cell.padEnd(widths[c]!),
      )
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const lines = [line(cells[0]!), rule, ...cells.slice(1).map(line)];
  if (view.caption !== undefined) lines.push(view.caption);
  return lines.join('\n');
}
