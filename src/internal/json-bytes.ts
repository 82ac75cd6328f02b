import type { ByteWriter } from './byte-writer.js';

/**
 * JSON string escaping on UTF-8 bytes, byte-identical to JSON.stringify for valid UTF-8: `"` and `\`
 * get a backslash, control characters below 0x20 their short form (\b \t \n \f \r) or \u00xx with
 * lowercase hex, everything else (multi-byte characters included) is copied as is.
 */

/** 0: copy; a letter: backslash + that letter; 1: \u00xx. */
const ESCAPE = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) ESCAPE[c] = 1;
ESCAPE[0x08] = 0x62; // b
ESCAPE[0x09] = 0x74; // t
ESCAPE[0x0a] = 0x6e; // n
ESCAPE[0x0c] = 0x66; // f
ESCAPE[0x0d] = 0x72; // r
ESCAPE[0x22] = 0x22; // "
ESCAPE[0x5c] = 0x5c; // \
const HEX = Buffer.from('0123456789abcdef');

/** The most bytes one input byte can become (`\u00xx`). */
export const MAX_ESCAPE_GROWTH = 6;

/**
 * Writes `src[start, end)` JSON-escaped into `out` at `pos`; returns the new position. With
 * `doubledQuote` >= 0, each doubled quote (a CSV-escaped quote) is read as one. `out` must have room
 * for (end - start) * MAX_ESCAPE_GROWTH bytes. One pass, byte by byte: copying runs between escapes
 * with Buffer#copy measured slower on review text (a view object per run, and runs are short).
 */
export function writeJsonEscaped(
  out: Uint8Array,
  pos: number,
  src: Uint8Array,
  start: number,
  end: number,
  doubledQuote: number,
): number {
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c === doubledQuote) i++;
    const e = ESCAPE[c]!;
    if (e === 0) {
      out[pos++] = c;
      continue;
    }
    out[pos++] = 0x5c;
    if (e === 1) {
      out[pos++] = 0x75; // u
      out[pos++] = 0x30;
      out[pos++] = 0x30;
      out[pos++] = HEX[c >> 4]!;
      out[pos++] = HEX[c & 15]!;
    } else {
      out[pos++] = e;
    }
  }
  return pos;
}

/**
 * Writes a string's JSON-escaped UTF-8 bytes (what JSON.stringify puts between the quotes). See
 * writeJsonString.
 */
export function writeJsonText(out: ByteWriter, text: string): void {
  writeJsonString(out, text, false);
}

/**
 * Writes `JSON.stringify(id)` (between its quotes only, unless `quoted`) into `to` at `at`; returns
 * where it ends. `to` must have room for MAX_ESCAPE_GROWTH bytes a UTF-16 unit and the quotes. Ids
 * are short and mostly plain (printable ASCII, no quote or backslash): those are copied a byte a
 * character, the rest written through JSON.stringify.
 */
export function writeJsonId(to: Buffer, at: number, id: string, quoted: boolean): number {
  let n = at;
  if (quoted) to[n++] = 0x22;
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) {
      const json = JSON.stringify(id);
      return at + to.write(quoted ? json : json.slice(1, -1), at, 'utf8');
    }
    to[n++] = c;
  }
  if (quoted) to[n++] = 0x22;
  return n;
}

/** Digits of a whole number from 0 to 2^53 - 1, as String() writes it. */
export function digitCount(n: number): number {
  let digits = 1;
  if (n <= 0x7fffffff) for (let rest = n | 0; rest >= 10; rest = (rest / 10) | 0) digits++;
  else for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/**
 * Writes a whole number from 0 to 2^53 - 1 as String() does, its `digits` (digitCount) at `at`;
 * returns where they end.
 */
export function writeDigits(to: Uint8Array, at: number, n: number, digits = digitCount(n)): number {
  if (n <= 0x7fffffff) {
    // Small integers: divisions by 10 the compiler makes multiplications (Math.floor of a double
    // divides, ~35 ns a number of 7 digits).
    let rest = n | 0;
    for (let d = at + digits - 1; d >= at; d--) {
      const next = (rest / 10) | 0;
      to[d] = 0x30 + rest - next * 10;
      rest = next;
    }
  } else {
    let rest = n;
    for (let d = at + digits - 1; d >= at; d--) {
      to[d] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
  }
  return at + digits;
}

/** Per byte: 0 copied as is; 1 escaped; 2 the lead byte of U+FFFD (see writeJsonString). */
const SCAN = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) SCAN[c] = 1;
SCAN[0x22] = 1;
SCAN[0x5c] = 1;
SCAN[0xef] = 2;

/** Escapes a string may have to be made in place by moving its runs; more are rewritten byte by byte. */
const MAX_MOVES = 64;
const escapesAt = new Int32Array(MAX_MOVES);
let scratch = Buffer.allocUnsafeSlow(1 << 16);

/**
 * A string escaped as JSON.stringify escapes it (in its quotes when `quoted`), as UTF-8. Its bytes are
 * written first (Buffer#write, native), then searched for the bytes to escape, which (valid UTF-8 from
 * a well-formed string) are all ASCII; the runs between them move right to make room. JSON.stringify
 * on non-Latin text builds a two-byte string (about 260 MB/s) that is then encoded again, and a cell
 * escaped through it allocated two more copies of itself. A lone surrogate is the one thing
 * JSON.stringify escapes that has no UTF-8: Buffer#write makes it U+FFFD (EF BF BD), so a string with
 * that sequence is written through JSON.stringify (a real U+FFFD is rare, and comes out the same).
 */
export function writeJsonString(out: ByteWriter, text: string, quoted: boolean): void {
  const from = out.pos;
  const quote = quoted ? 1 : 0;
  // A UTF-16 unit is at most 3 bytes of UTF-8.
  let buffer = out.ensure(text.length * 3 + 2 * quote);
  if (quoted) buffer[from] = 0x22;
  const start = from + quote;
  const end = start + buffer.write(text, start, 'utf8');
  let escapes = 0;
  let extra = 0;
  for (let i = start; i < end; i++) {
    const kind = SCAN[buffer[i]!]!;
    if (kind === 0) continue;
    if (kind === 2) {
      if (buffer[i + 1] === 0xbf && buffer[i + 2] === 0xbd) {
        out.pos = from;
        const json = JSON.stringify(text);
        out.writeText(quoted ? json : json.slice(1, -1));
        return;
      }
      continue;
    }
    extra += ESCAPE[buffer[i]!] === 1 ? 5 : 1;
    if (escapes < MAX_MOVES) escapesAt[escapes] = i;
    escapes++;
  }
  out.pos = end;
  if (escapes > 0) {
    buffer = out.ensure(extra + quote);
    if (escapes <= MAX_MOVES) escapeInPlace(buffer, end, escapes, extra);
    else escapeByCopy(buffer, start, end);
    out.pos = end + extra;
  }
  if (quoted) buffer[out.pos++] = 0x22;
}

/** Moves the runs after each escape right, from the last, writing each escape into the gap. */
function escapeInPlace(buffer: Buffer, end: number, escapes: number, extra: number): void {
  let tail = end;
  let shift = extra;
  for (let e = escapes - 1; e >= 0; e--) {
    const at = escapesAt[e]!;
    const c = buffer[at]!;
    if (tail > at + 1) buffer.copyWithin(at + 1 + shift, at + 1, tail);
    const kind = ESCAPE[c]!;
    if (kind !== 1) {
      shift -= 1;
      buffer[at + shift] = 0x5c;
      buffer[at + shift + 1] = kind;
    } else {
      shift -= 5;
      const p = at + shift;
      buffer[p] = 0x5c;
      buffer[p + 1] = 0x75; // u
      buffer[p + 2] = 0x30;
      buffer[p + 3] = 0x30;
      buffer[p + 4] = HEX[c >> 4]!;
      buffer[p + 5] = HEX[c & 15]!;
    }
    tail = at;
  }
}

/** Many escapes: the bytes are copied aside and escaped back byte by byte. */
function escapeByCopy(buffer: Buffer, start: number, end: number): void {
  const n = end - start;
  if (scratch.length < n) scratch = Buffer.allocUnsafeSlow(Math.max(n, scratch.length * 2));
  buffer.copy(scratch, 0, start, end);
  writeJsonEscaped(buffer, start, scratch, 0, n, -1);
}
