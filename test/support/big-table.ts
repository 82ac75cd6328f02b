import { THREAD_READ_MIN_BYTES } from '../../src/core/tables/table-read-thread.js';
import { fileWith } from '../helpers.js';
import { seeded } from './results.js';

/** What a table's generator meant each entry to be: its values, or a rejection. */
export type Meant = { values: Record<string, string> } | { rejected: true };

/**
 * Tables large enough to be read on a thread (readBatchesOnThread), with what each entry is meant to
 * be: a reference for the readers and the join that owes nothing to them.
 */

/**
 * A CSV file over THREAD_READ_MIN_BYTES with a BOM and CRLF line ends; quoted fields with embedded
 * newlines (CRLF and LF), doubled quotes, delimiters and multi-byte text; fields long enough that
 * rows straddle the 1 MiB read chunks; and rows with a wrong field count (rejected). Returns the file
 * and what each entry is, in order.
 */
export function bigCsv(dir: string): { path: string; meant: Meant[]; lines: number[] } {
  const next = seeded(11);
  const meant: Meant[] = [];
  const lines: number[] = [];
  let line = 2;
  const parts: string[] = ['\ufeffid,text,n\r\n'];
  let bytes = 0;
  for (let i = 1; bytes < THREAD_READ_MIN_BYTES * 1.5; i++) {
    const kind = next();
    let text: string;
    if (kind < 0.2) text = `line one\r\nline "two", with a comma\nline ${i} ✓ ünï`;
    else if (kind < 0.22) text = `${'x'.repeat(200_000 + Math.floor(next() * 300_000))}\n"end"`;
    else text = `plain ${i} text`;
    const quoted = /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    lines.push(line);
    let row: string;
    if (kind > 0.99) {
      row = `${i},"${'bad'}",1,extra`;
      meant.push({ rejected: true });
    } else {
      row = `${i},${quoted},${i * 3}`;
      meant.push({ values: { id: String(i), text, n: String(i * 3) } });
    }
    line += (row.match(/\n/g) ?? []).length + 1;
    parts.push(`${row}\r\n`);
    bytes += row.length + 2;
  }
  return { path: fileWith(dir, 'big.csv', parts.join('')), meant, lines };
}

/** A JSON Lines file over THREAD_READ_MIN_BYTES, some of its lines not JSON objects (rejected). */
export function bigJsonl(dir: string): { path: string; meant: Meant[] } {
  const next = seeded(5);
  const meant: Meant[] = [];
  const parts: string[] = [];
  let bytes = 0;
  for (let i = 1; bytes < THREAD_READ_MIN_BYTES * 1.2; i++) {
    const kind = next();
    let text: string;
    if (kind > 0.99) {
      text = `{"id": "${i}", "text": broken`;
      meant.push({ rejected: true });
    } else {
      // Long lines: as many bytes in fewer rows.
      const pad = 'p'.repeat(200 + Math.floor(next() * 400));
      const values = { id: String(i), text: kind < 0.1 ? `two\nlines "quoted" ✓ ${i}` : `plain ${i}`, pad };
      text = JSON.stringify(values);
      meant.push({ values });
    }
    parts.push(`${text}\n`);
    bytes += text.length + 1;
  }
  return { path: fileWith(dir, 'big.jsonl', parts.join('')), meant };
}
