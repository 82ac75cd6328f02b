/**
 * Checks one JSON Lines row, a JSON object on one line, straight from its bytes, and finds where
 * each top-level member's name and value are: a template copies a string's bytes into a request as
 * they stand, and only a value a stage asks for is decoded. JSON.parse built every string of a line
 * (a review of hundreds of bytes), and the template wrote it back out: most of a JSON Lines prepare.
 *
 * The whole line is checked against JSON's grammar as JSON.parse checks it. A line that is not an
 * object, fails the check, has an escaped member name (it may read as any name), or nests deeper than
 * MAX_JSON_DEPTH gives false, and the caller parses its text as before (so its error, if any, is
 * JSON.parse's own, and its rejection the one it always was). The bytes must be valid UTF-8.
 */
import { MAX_JSON_DEPTH } from '../../internal/json-depth.js';
import { jsonSpecialBytes } from './json-word.js';

// What a member's value is, for how a template writes it (`textOf`, then JSON-escaped) and how it is
// decoded. The COPY_ kinds' JSON text is their bytes as they stand.
/** A string without a backslash: its bytes (between its quotes) are its text, and what JSON.stringify writes of it. */
export const COPY_STRING = 0;
/** A string whose escapes are all ones JSON.stringify writes the same (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`). */
export const COPY_ESCAPES = 1;
/** An integer of up to 15 digits, not `-0`: String(Number(text)) is its text. */
export const COPY_NUMBER = 2;
/** `true` or `false`: written as they stand. */
export const COPY_LITERAL = 3;
/** The last kind written by copying its bytes. */
export const LAST_COPY = COPY_LITERAL;
/** `null`: written as nothing. */
export const NULL = 4;
/** A string with a `\u` or `\/` escape: decoded and escaped again (JSON.stringify writes those otherwise). */
export const ESCAPED_STRING = 5;
/** Any other number (a fraction, an exponent, `-0`, a long integer): decoded. */
export const NUMBER = 6;
/** An object or an array: decoded, and written as its JSON.stringify text. */
export const NESTED = 7;

/** Digits of an integer whose text is its number's text. */
const SAFE_DIGITS = 15;
/** Digits from which an integer may be past 2^53. */
const LONG_DIGITS = 16;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** JSON's whitespace is four bytes, all at or below this. */
const SPACE = 0x20;
/** What the reading functions return instead of a position when the line must go to JSON.parse. */
const GIVE_UP = -1;

/**
 * The top-level members of the line scanned last, in order: a name's bytes `[keyStart, keyEnd)`,
 * its value's `[valueStart, valueEnd)` (a string's between its quotes) and kind. Reused line after
 * line, so a scan allocates nothing once the arrays have grown.
 */
export class LineMembers {
  count = 0;
  keyStart = new Int32Array(16);
  keyEnd = new Int32Array(16);
  valueStart = new Int32Array(16);
  valueEnd = new Int32Array(16);
  kind = new Uint8Array(16);
  /** Whether the line holds an integer of LONG_DIGITS or more digits anywhere (maybe past 2^53). */
  longInteger = false;

  /** Room for member `m`. */
  grow(m: number): void {
    if (m < this.kind.length) return;
    const size = this.kind.length * 2;
    const more = (a: Int32Array) => {
      const b = new Int32Array(size);
      b.set(a);
      return b;
    };
    this.keyStart = more(this.keyStart);
    this.keyEnd = more(this.keyEnd);
    this.valueStart = more(this.valueStart);
    this.valueEnd = more(this.valueEnd);
    const kind = new Uint8Array(size);
    kind.set(this.kind);
    this.kind = kind;
  }

  /** The last member named by `key`'s bytes (JSON.parse keeps the last of repeated names), or -1. */
  find(bytes: Uint8Array, key: Uint8Array): number {
    const n = key.length;
    for (let m = this.count - 1; m >= 0; m--) {
      const start = this.keyStart[m]!;
      if (this.keyEnd[m]! - start !== n) continue;
      let k = 0;
      while (k < n && bytes[start + k] === key[k]) k++;
      if (k === n) return m;
    }
    return -1;
  }
}

// The grammar functions below (skipSpace ... skipLiteral) are those of core/results/result-line-scan.ts
// with other flags, on purpose in each module: one module of them shared by both scanners made both
// 13-18% slower (measured on 100k lines each; V8 calls across modules in these loops cost more).
// The line being read: module state, so that the functions below pass only positions (each returns
// where it stopped, or GIVE_UP) and allocate nothing of their own.
let bytes: Uint8Array = new Uint8Array(0);
let view = new DataView(bytes.buffer);
let end = 0;
/** Set by skipString: the string held an escape JSON.stringify writes otherwise (`\u`, `\/`); any backslash. */
let rewritten = false;
let backslash = false;
/** Set by skipNumber: the number's kind (COPY_NUMBER or NUMBER). */
let numberKind = NUMBER;
/** Set while scanning: an integer of LONG_DIGITS or more digits was seen. */
let longInteger = false;

/**
 * Checks the line `buffer[start, stop)` (valid UTF-8) and fills `members` with its top-level
 * members; false when the line must be parsed by JSON.parse instead (see the file comment).
 */
export function scanObjectLine(
  buffer: Uint8Array,
  start: number,
  stop: number,
  members: LineMembers,
): boolean {
  if (buffer !== bytes) {
    bytes = buffer;
    view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  end = stop;
  longInteger = false;
  members.count = 0;
  const b = buffer;
  let i = skipSpace(start);
  if (i >= stop || b[i] !== OPEN_BRACE) return false;
  i = skipSpace(i + 1);
  if (i < stop && b[i] === CLOSE_BRACE) i++;
  else
    for (;;) {
      if (i >= stop || b[i] !== QUOTE) return false;
      const keyStart = i + 1;
      i = skipString(i);
      if (i === GIVE_UP || backslash) return false;
      const keyEnd = i - 1;
      if (i < stop && b[i]! <= SPACE) i = skipSpace(i);
      if (i >= stop || b[i] !== COLON) return false;
      i++;
      if (i < stop && b[i]! <= SPACE) i = skipSpace(i);
      if (i >= stop) return false;
      const c = b[i]!;
      const valueStart = i;
      let kind: number;
      if (c === QUOTE) {
        i = skipString(i);
        kind = rewritten ? ESCAPED_STRING : backslash ? COPY_ESCAPES : COPY_STRING;
      } else if (c === OPEN_BRACE) {
        i = skipObject(i, 2);
        kind = NESTED;
      } else if (c === OPEN_BRACKET) {
        i = skipArray(i, 2);
        kind = NESTED;
      } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
        i = skipNumber(i);
        kind = numberKind;
      } else {
        i = skipLiteral(i);
        kind = c === 0x6e ? NULL : COPY_LITERAL;
      }
      if (i === GIVE_UP) return false;
      const m = members.count++;
      members.grow(m);
      members.keyStart[m] = keyStart;
      members.keyEnd[m] = keyEnd;
      const string = c === QUOTE;
      members.valueStart[m] = string ? valueStart + 1 : valueStart;
      members.valueEnd[m] = string ? i - 1 : i;
      members.kind[m] = kind;
      if (i < stop && b[i]! <= SPACE) i = skipSpace(i);
      if (i >= stop) return false;
      const next = b[i++];
      if (next === CLOSE_BRACE) break;
      if (next !== COMMA) return false;
      if (i < stop && b[i]! <= SPACE) i = skipSpace(i);
    }
  members.longInteger = longInteger;
  return skipSpace(i) === stop;
}

function skipSpace(i: number): number {
  const b = bytes;
  const e = end;
  while (i < e) {
    const c = b[i]!;
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
  return i;
}

/** Checks and skips any value, nested at `depth` (the line's object is depth 1). */
function skipValue(i: number, depth: number): number {
  if (i >= end) return GIVE_UP;
  const c = bytes[i]!;
  if (c === QUOTE) return skipString(i);
  if (c === OPEN_BRACE) return skipObject(i, depth);
  if (c === OPEN_BRACKET) return skipArray(i, depth);
  if (c === MINUS || (c >= ZERO && c <= NINE)) return skipNumber(i);
  return skipLiteral(i);
}

function skipObject(i: number, depth: number): number {
  if (depth > MAX_JSON_DEPTH) return GIVE_UP;
  const b = bytes;
  const e = end;
  i = skipSpace(i + 1);
  if (i < e && b[i] === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (i >= e || b[i] !== QUOTE) return GIVE_UP;
    i = skipString(i);
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e || b[i] !== COLON) return GIVE_UP;
    i++;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    i = skipValue(i, depth + 1);
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e) return GIVE_UP;
    const c = b[i++];
    if (c === CLOSE_BRACE) return i;
    if (c !== COMMA) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
  }
}

function skipArray(i: number, depth: number): number {
  if (depth > MAX_JSON_DEPTH) return GIVE_UP;
  const b = bytes;
  const e = end;
  i = skipSpace(i + 1);
  if (i < e && b[i] === CLOSE_BRACKET) return i + 1;
  for (;;) {
    i = skipValue(i, depth + 1);
    if (i === GIVE_UP) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
    if (i >= e) return GIVE_UP;
    const c = b[i++];
    if (c === CLOSE_BRACKET) return i;
    if (c !== COMMA) return GIVE_UP;
    if (i < e && b[i]! <= SPACE) i = skipSpace(i);
  }
}

/**
 * `"` at `i`: where the string ends (after its closing quote); sets `backslash` and `rewritten`.
 * Checks its escapes, and that it holds no control byte. Four bytes a step while none of them is a
 * quote, a backslash or a control byte (the test of RowHash.plainCell): a review is hundreds of bytes.
 */
function skipString(i: number): number {
  const b = bytes;
  const v = view;
  const e = end;
  let escapes = false;
  let other = false;
  i++;
  for (;;) {
    for (const last = e - 3; i < last; i += 4) {
      const w = v.getInt32(i, true);
      if (jsonSpecialBytes(w)) break;
    }
    if (i >= e) return GIVE_UP;
    const c = b[i++]!;
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      escapes = true;
      if (i >= e) return GIVE_UP;
      const x = b[i++]!;
      if (x === 0x75) {
        // \uXXXX: a code point JSON.stringify writes as itself (or, a lone surrogate, in lower case).
        if (i + 4 > e) return GIVE_UP;
        for (let k = 0; k < 4; k++) if (!isHex(b[i++]!)) return GIVE_UP;
        other = true;
      } else if (x === 0x2f) other = true;
      else if (
        x !== QUOTE &&
        x !== BACKSLASH &&
        x !== 0x62 &&
        x !== 0x66 &&
        x !== 0x6e &&
        x !== 0x72 &&
        x !== 0x74
      )
        return GIVE_UP;
    } else if (c < SPACE) return GIVE_UP;
  }
  backslash = escapes;
  rewritten = other;
  return i;
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Skips a number, checked against JSON's grammar; sets `numberKind` (and `longInteger`). */
function skipNumber(start: number): number {
  const b = bytes;
  const e = end;
  let i = start;
  const negative = b[i] === MINUS;
  if (negative) i++;
  if (i >= e) return GIVE_UP;
  const lead = b[i]!;
  const from = i;
  if (lead === ZERO) i++;
  else if (lead > ZERO && lead <= NINE) i = skipDigits(i);
  else return GIVE_UP;
  const digits = i - from;
  let integer = true;
  if (i < e && b[i] === DOT) {
    const at = ++i;
    i = skipDigits(i);
    if (i === at) return GIVE_UP;
    integer = false;
  }
  if (i < e && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < e && (b[i] === PLUS || b[i] === MINUS)) i++;
    const at = i;
    i = skipDigits(i);
    if (i === at) return GIVE_UP;
    integer = false;
  }
  if (integer && digits >= LONG_DIGITS) longInteger = true;
  // `-0` reads as 0, which String() writes as "0".
  numberKind = integer && digits <= SAFE_DIGITS && !(negative && lead === ZERO) ? COPY_NUMBER : NUMBER;
  return i;
}

function skipDigits(i: number): number {
  const b = bytes;
  const e = end;
  while (i < e) {
    const c = b[i]!;
    if (c < ZERO || c > NINE) break;
    i++;
  }
  return i;
}

function skipLiteral(i: number): number {
  const b = bytes;
  const c = b[i];
  if (c === 0x74 && i + 4 <= end && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) return i + 4;
  if (
    c === 0x66 &&
    i + 5 <= end &&
    b[i + 1] === 0x61 &&
    b[i + 2] === 0x6c &&
    b[i + 3] === 0x73 &&
    b[i + 4] === 0x65
  )
    return i + 5;
  if (c === 0x6e && i + 4 <= end && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) return i + 4;
  return GIVE_UP;
}
