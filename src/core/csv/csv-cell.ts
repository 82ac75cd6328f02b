/** How a value is written in a text cell: null as empty, objects and arrays as JSON. */
export function cellText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/**
 * One value as a CSV field, by csv-stringify's default rule (the tests hold it to csv-stringify):
 * quoted when it holds the delimiter, a quote, CR or LF, with quotes doubled. Written here because
 * the sinks write a few fields at a time, where csv-stringify's per-record setup would dominate.
 */
export function csvCell(value: unknown, delimiter: string): string {
  const text = cellText(value);
  if (text.includes('"') || text.includes(delimiter) || text.includes('\n') || text.includes('\r'))
    return `"${text.replaceAll('"', '""')}"`;
  return text;
}
