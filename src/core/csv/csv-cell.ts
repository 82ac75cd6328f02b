import { cellText } from '../../sinks/table-sink.js';

/**
 * One value as a CSV field, by csv-stringify's default rule (the tests hold it to csv-stringify):
 * quoted when it holds the delimiter, a quote, CR or LF, with quotes doubled. For the byte-level join,
 * which writes a few result fields per row where csv-stringify's per-record setup would dominate.
 */
export function csvCell(value: unknown, delimiter: string): string {
  const text = cellText(value);
  if (text.includes('"') || text.includes(delimiter) || text.includes('\n') || text.includes('\r'))
    return `"${text.replaceAll('"', '""')}"`;
  return text;
}
