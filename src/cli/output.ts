import type { Warning } from '../internal/warnings.js';
import type { Rejection } from '../types.js';

/** How a command talks: human lines on stderr/stdout, or one JSON document on stdout. */
export interface Output {
  json: boolean;
  quiet: boolean;
  /** The command's progress display (`--progress`), when it has one: human lines go through it. */
  progress?: { readonly mode: string; log(line: string): void; stop(): void };
}

const format = new Intl.NumberFormat('en-US');

/** 1234567 -> "1,234,567". */
export function count(n: number): string {
  return format.format(n);
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** One line per problem, in the form editors and people read: file:line: row n custom_id "x": CODE message. */
export function rejectionLine(
  r: Pick<Rejection, 'file' | 'line' | 'index' | 'custom_id' | 'code' | 'message'>,
  showRow = true,
): string {
  const where = [
    showRow ? `row ${r.index}` : '',
    r.custom_id === null ? '' : `custom_id ${JSON.stringify(r.custom_id)}`,
  ]
    .filter(Boolean)
    .join(' ');
  return `${r.file}:${r.line}:${where ? ` ${where}:` : ''} ${r.code} ${r.message}`;
}

export function warningLine(w: Warning): string {
  const where = w.first?.file ? ` (first at ${w.first.file}:${w.first.line ?? '?'})` : '';
  const times = w.count > 1 ? ` [${plural(w.count, 'row')}]` : '';
  return `warning ${w.code}: ${w.message}${times}${where}`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * A line that shows unless --quiet, even beside --json (the test-engine notice): as a JSON event when
 * stderr carries JSON Lines (`--progress json`).
 */
export function notice(out: Output): (line: string) => void {
  return (line) => {
    if (out.quiet) return;
    if (out.progress?.mode === 'json') out.progress.log(line);
    else process.stderr.write(`${line}\n`);
  };
}

export function info(out: Output, line: string): void {
  if (out.progress) out.progress.log(line);
  else if (!out.quiet && !out.json) process.stderr.write(`${line}\n`);
}
