import type { ByteWriter } from '../../internal/byte-writer.js';
import { copyBytes } from '../../internal/copy-bytes.js';

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

/**
 * Appends the UTF-8 text `bytes[start, end)` as a CSV field (csvCell's rule), from its bytes,
 * undecoded. `delimiter` is one ASCII byte.
 */
export function writeUtf8Field(
  bytes: Uint8Array,
  start: number,
  end: number,
  delimiter: number,
  out: ByteWriter,
): void {
  const special = specialBytes(delimiter);
  let first = start;
  while (first < end && special[bytes[first]!] === 0) first++;
  // At worst every byte a doubled quote, and the two around them.
  const buffer = out.ensure((end - start) * 2 + 2);
  let pos = out.pos;
  if (first === end) {
    out.pos = copyBytes(bytes, start, end, buffer, pos);
    return;
  }
  buffer[pos++] = QUOTE;
  // No quote before `first`; after it, quotes are found by the runtime's search (several times a
  // JS loop's speed), over a view that ends with the cell.
  pos = copyBytes(bytes, start, first, buffer, pos);
  const rest = Buffer.from(bytes.buffer, bytes.byteOffset + first, end - first);
  let from = 0;
  for (let q = rest.indexOf(QUOTE, 0); q !== -1; q = rest.indexOf(QUOTE, from)) {
    pos = copyBytes(rest, from, q + 1, buffer, pos);
    buffer[pos++] = QUOTE;
    from = q + 1;
  }
  pos = copyBytes(rest, from, rest.length, buffer, pos);
  buffer[pos++] = QUOTE;
  out.pos = pos;
}

/**
 * Appends a text as a CSV field (csvCell's rule): an ASCII text with nothing to quote (digits, dates,
 * timestamps) char by char, where Buffer#write's call costs more than the copy. `delimiter` is one
 * ASCII byte.
 */
export function writeTextField(text: string, delimiter: number, out: ByteWriter): void {
  const n = text.length;
  const special = specialBytes(delimiter);
  const buffer = out.ensure(n);
  let pos = out.pos;
  for (let k = 0; k < n; k++) {
    const c = text.charCodeAt(k);
    if (c >= 0x80 || special[c] === 1) {
      out.writeText(csvCell(text, String.fromCharCode(delimiter)));
      return;
    }
    buffer[pos++] = c;
  }
  out.pos = pos;
}

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;

/** 1 for the bytes that make a CSV field quoted (a lookup scans several times faster than four tests). */
let special = new Uint8Array(256);
let specialFor = -1;

function specialBytes(delimiter: number): Uint8Array {
  if (specialFor === delimiter) return special;
  special = new Uint8Array(256);
  for (const byte of [QUOTE, LF, CR, delimiter]) special[byte] = 1;
  specialFor = delimiter;
  return special;
}
