import type { ByteWriter } from './byte-writer.js';
import { writeJsonEscaped } from './json-bytes.js';
import { MAX_JSON_DEPTH } from './json-depth.js';

/**
 * JSON.stringify's text of a value, written as UTF-8 straight into a ByteWriter: the same bytes as
 * `out.writeText(JSON.stringify(value))`, made faster. Each string is encoded by Buffer#write (native)
 * and its few escapes are made in place, where JSON.stringify on non-Latin text builds a two-byte
 * string (about 260 MB/s) that is then encoded again (measured: a chat request of review text, 5.0 ->
 * 3.4 us). Plain data only (objects of Object.prototype or null, arrays, strings, finite numbers,
 * booleans, null); anything else (a toJSON, a class instance, a Map, NaN, a bigint, nesting past
 * MAX_JSON_DEPTH) and the whole value is written by JSON.stringify instead, so the text never differs.
 */
export function writeJson(out: ByteWriter, value: object): void {
  const start = out.pos;
  if (writeValue(out, value, 0)) return;
  out.pos = start;
  out.writeText(JSON.stringify(value));
}

/** Per byte: 0 copied as is; 1 escaped; 2 the lead byte of U+FFFD (see writeString). */
const SCAN = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) SCAN[c] = 1;
SCAN[0x22] = 1;
SCAN[0x5c] = 1;
SCAN[0xef] = 2;
/** The letter after the backslash of a short escape; 0 for `\u00xx`. */
const SHORT = new Uint8Array(256);
SHORT[0x08] = 0x62; // b
SHORT[0x09] = 0x74; // t
SHORT[0x0a] = 0x6e; // n
SHORT[0x0c] = 0x66; // f
SHORT[0x0d] = 0x72; // r
SHORT[0x22] = 0x22; // "
SHORT[0x5c] = 0x5c; // \
const HEX = Buffer.from('0123456789abcdef');

/** Escapes a string may have to be made in place by moving its runs; more are rewritten byte by byte. */
const MAX_MOVES = 64;
const escapesAt = new Int32Array(MAX_MOVES);
let scratch = Buffer.allocUnsafeSlow(1 << 16);

/** Object keys as written, `"key":`: a handful of names repeat on every line. */
const KEYS = new Map<string, Uint8Array>();
const MAX_KEYS = 1024;

const NULL = Buffer.from('null');
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');

/** Writes `value`; false (having written part of it) when it is not plain data. */
function writeValue(out: ByteWriter, value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      writeString(out, value);
      return true;
    case 'number':
      if (!Number.isFinite(value)) return false;
      writeAscii(out, String(value));
      return true;
    case 'boolean':
      out.writeBytes(value ? TRUE : FALSE);
      return true;
    case 'object':
      if (value === null) {
        out.writeBytes(NULL);
        return true;
      }
      if (depth >= MAX_JSON_DEPTH) return false;
      return Array.isArray(value) ? writeArray(out, value, depth) : writeObject(out, value, depth);
    default:
      // undefined, a function, a symbol (left out, or null, by where they are) or a bigint (an error).
      return false;
  }
}

function writeArray(out: ByteWriter, array: unknown[], depth: number): boolean {
  if (
    Object.getPrototypeOf(array) !== Array.prototype ||
    typeof (array as { toJSON?: unknown }).toJSON === 'function'
  )
    return false;
  out.ensure(1)[out.pos++] = 0x5b;
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out.ensure(1)[out.pos++] = 0x2c;
    const item = array[i];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') out.writeBytes(NULL);
    else if (!writeValue(out, item, depth + 1)) return false;
  }
  out.ensure(1)[out.pos++] = 0x5d;
  return true;
}

function writeObject(out: ByteWriter, object: object, depth: number): boolean {
  const proto = Object.getPrototypeOf(object) as unknown;
  if (
    (proto !== Object.prototype && proto !== null) ||
    typeof (object as { toJSON?: unknown }).toJSON === 'function'
  )
    return false;
  out.ensure(1)[out.pos++] = 0x7b;
  let first = true;
  for (const key of Object.keys(object)) {
    const item = (object as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    if (!first) out.ensure(1)[out.pos++] = 0x2c;
    first = false;
    writeKey(out, key);
    if (!writeValue(out, item, depth + 1)) return false;
  }
  out.ensure(1)[out.pos++] = 0x7d;
  return true;
}

function writeKey(out: ByteWriter, key: string): void {
  const known = KEYS.get(key);
  if (known) {
    out.writeBytes(known);
    return;
  }
  const start = out.pos;
  writeString(out, key);
  out.ensure(1)[out.pos++] = 0x3a;
  if (KEYS.size < MAX_KEYS) KEYS.set(key, Buffer.from(out.buffer.subarray(start, out.pos)));
}

/** ASCII text without anything to escape (a number's digits). */
function writeAscii(out: ByteWriter, text: string): void {
  const buffer = out.ensure(text.length);
  let pos = out.pos;
  for (let i = 0; i < text.length; i++) buffer[pos++] = text.charCodeAt(i);
  out.pos = pos;
}

/**
 * A string in quotes, escaped as JSON.stringify escapes it. Its UTF-8 bytes are written first, then
 * searched for the bytes to escape, which (valid UTF-8 from a well-formed string) are all ASCII; the
 * runs between them move right to make room. A lone surrogate is the one thing JSON.stringify escapes
 * that has no UTF-8: Buffer#write makes it U+FFFD (EF BF BD), so a string with that sequence is written
 * by JSON.stringify (a real U+FFFD is rare, and comes out the same).
 */
function writeString(out: ByteWriter, text: string): void {
  const quoteAt = out.pos;
  // A UTF-16 unit is at most 3 bytes of UTF-8; the quotes 2.
  let buffer = out.ensure(text.length * 3 + 2);
  buffer[quoteAt] = 0x22;
  const start = quoteAt + 1;
  const end = start + buffer.write(text, start, 'utf8');
  let escapes = 0;
  let extra = 0;
  for (let i = start; i < end; i++) {
    const kind = SCAN[buffer[i]!]!;
    if (kind === 0) continue;
    if (kind === 2) {
      if (buffer[i + 1] === 0xbf && buffer[i + 2] === 0xbd) {
        out.pos = quoteAt;
        out.writeText(JSON.stringify(text));
        return;
      }
      continue;
    }
    extra += SHORT[buffer[i]!] === 0 ? 5 : 1;
    if (escapes < MAX_MOVES) escapesAt[escapes] = i;
    escapes++;
  }
  out.pos = end;
  if (escapes > 0) {
    buffer = out.ensure(extra + 1);
    if (escapes <= MAX_MOVES) escapeInPlace(buffer, end, escapes, extra);
    else escapeByCopy(buffer, start, end);
    out.pos = end + extra;
  }
  buffer[out.pos++] = 0x22;
}

/** Moves the runs after each escape right, from the last, writing each escape into the gap. */
function escapeInPlace(buffer: Buffer, end: number, escapes: number, extra: number): void {
  let tail = end;
  let shift = extra;
  for (let e = escapes - 1; e >= 0; e--) {
    const at = escapesAt[e]!;
    const c = buffer[at]!;
    if (tail > at + 1) buffer.copyWithin(at + 1 + shift, at + 1, tail);
    const letter = SHORT[c]!;
    if (letter !== 0) {
      shift -= 1;
      buffer[at + shift] = 0x5c;
      buffer[at + shift + 1] = letter;
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
