import { BatchpipeError, type ErrorCode, isBatchpipeError } from '../../errors.js';
import type { ByteWriter } from '../../internal/byte-writer.js';
import { deeperThan, tooDeepMessage } from '../../internal/json-depth.js';
import { crOnlyHint } from '../../internal/line-scanner.js';
import { hasUnsafeInteger, parseJsonExact } from '../../internal/parse-json.js';
import type { Rejection, RowValues } from '../../types.js';
import { type ColumnRef, columnRef } from '../rows/column-ref.js';
import { ReadRows } from '../rows/read-rows.js';
import { type CellRef, type RowBatch, textOf } from '../rows/row-batch.js';

/** Every batch of JSON rows shares one layout: a column is found by name in each row. */
const JSONL_LAYOUT = Object.freeze({ rows: 'json lines' });

/** A column of JSON rows: found by its name, and by its name's UTF-8 bytes read one byte a character. */
interface JsonlRef {
  real: ColumnRef;
  bytes: ColumnRef;
  /** The name's UTF-8 bytes, to find its member in a line. */
  key: Buffer;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** How a line's text becomes its row: jsonlSource's settings that parsing uses. */
export interface JsonlParse {
  /** Integers beyond 2^53 as strings with every digit, or as (lossy) numbers. */
  bigIntegers: 'string' | 'number';
  /** A line that does not parse stops the read ("fail"), or is a rejection. */
  badRows: 'reject' | 'fail';
}

/** A batch of JSON rows as plain data, to cross to a worker thread (the bytes are shared, not copied). */
export interface JsonlTransport {
  type: 'jsonl';
  file: string;
  buffer: Uint8Array;
  firstIndex: number;
  length: number;
  lines: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  escaped: Uint8Array;
  /** Entries rejected before parsing (their rejections stay with the batch that sent them). */
  rejected: Int32Array;
  parse: JsonlParse;
}

/** What a worker's copy of a batch knows of an entry rejected before parsing: that it is one. */
const REJECTED_THERE: Rejection = Object.freeze({
  kind: 'rejection',
  index: 0,
  file: '',
  line: 0,
  custom_id: null,
  code: 'BP_INPUT_ENCODING',
  message: 'rejected by the source',
}) as Rejection;

/** An entry not yet parsed; parsed from bytes; parsed as real text; rejected. */
const UNPARSED = 0;
const BYTES = 1;
const REAL = 2;
const REJECTED = 3;

/**
 * JSON Lines rows over the bytes they were read from, each line parsed when a stage first asks about
 * it (on whichever thread asks), as its bytes read one byte a character ("latin1"): a string comes out
 * as its UTF-8 bytes, so a template writes it back byte for byte (JSON.stringify escapes exactly what
 * it would for the real text) without decoding UTF-8 at all, which cost more than the parse itself.
 * Values are turned into real strings only when asked for (`values`, `value`). A line with a `\u` or
 * `\/` escape is parsed as real text: an escaped character is a code point, not a byte.
 */
export class JsonlRowBatch extends ReadRows implements RowBatch {
  readonly kind = 'row-batch';
  readonly layout = JSONL_LAYOUT;
  readonly length: number;
  readonly #file: string;
  readonly #starts: Int32Array;
  readonly #ends: Int32Array;
  /** 1 where the line has an escape that needs a real-text parse. */
  readonly #escaped: Uint8Array;
  readonly #parse: JsonlParse;
  /** Each row's values, once parsed: byte strings, or real strings (see `#state`). */
  readonly #objects: Array<Record<string, unknown> | undefined>;
  readonly #state: Uint8Array;
  readonly #rejections: Map<number, Rejection>;

  constructor(
    parts: Omit<JsonlTransport, 'type' | 'buffer' | 'rejected'> & {
      buffer: Buffer;
      rejections: Array<[number, Rejection]>;
    },
  ) {
    super(parts.buffer, parts.firstIndex, parts.lines);
    this.#file = parts.file;
    this.length = parts.length;
    this.#starts = parts.starts;
    this.#ends = parts.ends;
    this.#escaped = parts.escaped;
    this.#parse = parts.parse;
    this.#objects = new Array(parts.length);
    this.#state = new Uint8Array(parts.length);
    this.#rejections = new Map(parts.rejections);
    for (const entry of this.#rejections.keys()) this.#state[entry] = REJECTED;
  }

  /** The batch as plain data for a worker thread (its bytes shared when they are in shared memory). */
  transport(): JsonlTransport {
    return {
      type: 'jsonl',
      file: this.#file,
      buffer: this.buffer,
      firstIndex: this.firstIndex,
      length: this.length,
      lines: this.lines,
      starts: this.#starts,
      ends: this.#ends,
      escaped: this.#escaped,
      rejected: Int32Array.from(this.#rejections.keys()),
      parse: this.#parse,
    };
  }

  /**
   * A batch from its transport (on another thread): its rejected entries are the `rejections` sent
   * with it, or, without them, only known to be rejected.
   */
  static from(t: JsonlTransport, rejections?: Array<[number, Rejection]>): JsonlRowBatch {
    return new JsonlRowBatch({
      ...t,
      buffer: Buffer.from(t.buffer.buffer, t.buffer.byteOffset, t.buffer.length),
      rejections: rejections ?? [...t.rejected].map((entry): [number, Rejection] => [entry, REJECTED_THERE]),
    });
  }

  file(): string {
    return this.#file;
  }

  rejection(i: number): Rejection | undefined {
    if (this.#state[i] === UNPARSED) this.#parseEntry(i);
    return this.#state[i] === REJECTED ? this.#rejections.get(i) : undefined;
  }

  /** The entry's object (parsed now if it was not), or undefined for a rejected line. */
  #object(i: number): Record<string, unknown> | undefined {
    if (this.#state[i] === UNPARSED) this.#parseEntry(i);
    return this.#objects[i];
  }

  /** Parses line `i` (see the class): its object, or its rejection (or, with badRows "fail", an error). */
  #parseEntry(i: number): void {
    this.checkLive();
    const real = this.#escaped[i] === 1;
    const text = this.buffer.toString(real ? 'utf8' : 'latin1', this.#starts[i]!, this.#ends[i]!);
    let value: unknown;
    try {
      // parseJsonExact walks the value (hasUnsafeInteger) and stops one nested too deep; else a walk here does.
      if (this.#parse.bigIntegers === 'string') value = parseJsonExact(text).value;
      else {
        value = JSON.parse(text);
        if (value !== null && typeof value === 'object' && deeperThan(value))
          throw new BatchpipeError('BP_INPUT_PARSE', tooDeepMessage('the value'));
      }
    } catch (error) {
      if (isBatchpipeError(error)) {
        this.#reject(i, error.code, error.message);
        return;
      }
      // The message quotes the line: quote it as text.
      const message = real ? (error as Error).message : this.#parseError(i);
      this.#reject(i, 'BP_INPUT_PARSE', `invalid JSON: ${message}${crOnlyHint(text)}`);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
      this.#reject(i, 'BP_ROW_NOT_OBJECT', `expected a JSON object, got ${got}`);
      return;
    }
    this.#objects[i] = value as Record<string, unknown>;
    this.#state[i] = real ? REAL : BYTES;
  }

  /** True when line `i`, parsed as plain numbers, held an integer past 2^53 that lost digits. */
  lostDigits(i: number): boolean {
    const object = this.#object(i);
    if (object === undefined || !hasUnsafeInteger(object)) return false;
    return parseJsonExact(this.buffer.toString('utf8', this.#starts[i]!, this.#ends[i]!)).bigIntegers;
  }

  /** The parse's message for line `i`, known not to parse, read as text (the message quotes it). */
  #parseError(i: number): string {
    const text = this.buffer.toString('utf8', this.#starts[i]!, this.#ends[i]!);
    try {
      if (this.#parse.bigIntegers === 'string') parseJsonExact(text);
      else JSON.parse(text);
      return 'not valid JSON';
    } catch (error) {
      return (error as Error).message;
    }
  }

  #reject(i: number, code: ErrorCode, message: string): void {
    const index = this.index(i);
    const line = this.lines[i]!;
    if (this.#parse.badRows === 'fail')
      throw new BatchpipeError(code, `row ${index}: ${message}`, { file: this.#file, line, row: index });
    this.#rejections.set(i, {
      kind: 'rejection',
      index,
      file: this.#file,
      line,
      custom_id: null,
      code,
      message,
    });
    this.#state[i] = REJECTED;
  }

  /**
   * Drops line `i`'s parsed object (parsed again if asked): a join's key pass reads each line once,
   * and a batch holding 2,048 parsed rows until it is released outlived the young generation, so
   * every row was copied and promoted before it died.
   */
  forget(i: number): void {
    if (this.#state[i] !== BYTES && this.#state[i] !== REAL) return;
    this.#objects[i] = undefined;
    this.#state[i] = UNPARSED;
  }

  keys(i: number): readonly string[] {
    const keys = Object.keys(this.#object(i) ?? {});
    return this.#state[i] === REAL ? keys : keys.map(realText);
  }

  /** The row's values with real strings (made once, then kept). */
  values(i: number): RowValues {
    const object = this.#object(i);
    if (object === undefined) return {};
    if (this.#state[i] === REAL) return object;
    const real = realValue(object) as RowValues;
    this.#objects[i] = real;
    this.#state[i] = REAL;
    return real;
  }

  ref(name: string): CellRef {
    return {
      real: columnRef(name),
      bytes: columnRef(byteText(name)),
      key: Buffer.from(name, 'utf8'),
    } satisfies JsonlRef;
  }

  has(i: number, ref: CellRef): boolean {
    const object = this.#object(i);
    if (object === undefined) return false;
    return this.#state[i] === REAL ? (ref as JsonlRef).real.has(object) : (ref as JsonlRef).bytes.has(object);
  }

  value(i: number, ref: CellRef): unknown {
    const object = this.#object(i);
    if (object === undefined) return undefined;
    if (this.#state[i] === REAL) return (ref as JsonlRef).real.get(object);
    return realValue((ref as JsonlRef).bytes.get(object));
  }

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    const object = this.#object(i);
    if (object === undefined) return;
    const real = this.#state[i] === REAL;
    if (!real) {
      // A string member is already escaped as JSON.stringify escapes it (a line read as bytes has no
      // \u or \/ escape): its bytes are copied as they are.
      const member = this.#stringMember(i, (ref as JsonlRef).key);
      if (member !== -1) {
        out.writeRange(this.buffer, this.#valueStart[member]!, this.#valueEnd[member]!);
        return;
      }
    }
    const value = real ? (ref as JsonlRef).real.get(object) : (ref as JsonlRef).bytes.get(object);
    const json = JSON.stringify(textOf(value));
    const buffer = out.ensure(real ? json.length * 3 : json.length);
    // Without its quotes; a byte string goes back out one character a byte.
    out.pos += buffer.write(json.slice(1, -1), out.pos, real ? 'utf8' : 'latin1');
  }

  // The top-level members of one line (`#membersOf`): key and value ranges (a string's between its
  // quotes), and whether the value is a string. Kept for the line last asked about: a template asks
  // for each of its columns in turn.
  #membersOf = -1;
  #members = 0;
  #keyStart: number[] = [];
  #keyEnd: number[] = [];
  #valueStart: number[] = [];
  #valueEnd: number[] = [];
  #isString: boolean[] = [];

  /**
   * The member of line `i` that is its top-level string `key` (the last of that name, as JSON.parse
   * takes), or -1: no such member, another kind of value, or an escaped key that might read as it.
   */
  #stringMember(i: number, key: Buffer): number {
    if (this.#membersOf !== i) this.#scanMembers(i);
    let found = -1;
    for (let m = 0; m < this.#members; m++) {
      const start = this.#keyStart[m]!;
      if (this.#keyEnd[m]! - start !== key.length) continue;
      let same = true;
      for (let k = 0; k < key.length; k++) {
        if (this.buffer[start + k] !== key[k]) {
          same = false;
          break;
        }
      }
      if (same) found = m;
    }
    return found !== -1 && this.#isString[found] ? found : -1;
  }

  /** Finds line `i`'s top-level members (the line is a JSON object: JSON.parse took it). */
  #scanMembers(i: number): void {
    const b = this.buffer;
    const end = this.#ends[i]!;
    this.#membersOf = i;
    this.#members = 0;
    let p = skipBlanks(b, this.#starts[i]!, end) + 1; // past '{'
    for (;;) {
      p = skipBlanks(b, p, end);
      if (p >= end || b[p] !== QUOTE) return;
      const keyStart = p + 1;
      const keyEnd = stringEnd(b, p, end);
      // An escaped key may read as any name: such a line is left to its parsed values.
      for (let k = keyStart; k < keyEnd; k++) {
        if (b[k] === BACKSLASH) {
          this.#members = 0;
          return;
        }
      }
      p = skipBlanks(b, skipBlanks(b, keyEnd + 1, end) + 1, end); // past ':'
      const valueStart = p;
      const c = b[p];
      if (c === QUOTE) p = stringEnd(b, p, end) + 1;
      else if (c === 0x7b || c === 0x5b) p = nestedEnd(b, p, end);
      else while (p < end && b[p] !== 0x2c && b[p] !== 0x7d && b[p] !== 0x20 && b[p] !== 0x09) p++;
      const m = this.#members++;
      this.#keyStart[m] = keyStart;
      this.#keyEnd[m] = keyEnd;
      this.#isString[m] = c === QUOTE;
      this.#valueStart[m] = c === QUOTE ? valueStart + 1 : valueStart;
      this.#valueEnd[m] = c === QUOTE ? p - 1 : p;
      p = skipBlanks(b, p, end);
      if (b[p] !== 0x2c) return;
      p++;
    }
  }

  /** Where the line's object ends: its closing brace (the line is a JSON object, maybe followed by blanks). */
  closingBrace(i: number): number {
    this.checkLive();
    let at = this.#ends[i]! - 1;
    while (at > this.#starts[i]! && this.buffer[at] !== 0x7d) at--;
    return at;
  }

  /** The line's first byte. */
  start(i: number): number {
    return this.#starts[i]!;
  }

  /**
   * True when the row's object has no key (`{}`): what follows its brace needs no comma. For a line
   * known to read (as `closingBrace`): one not parsed yet is not parsed for this (a join's output pass
   * writes rows its first pass read), its brace is looked at.
   */
  empty(i: number): boolean {
    if (this.#state[i] !== UNPARSED) {
      for (const _ in this.#objects[i]) return false;
      return true;
    }
    const end = this.#ends[i]!;
    const brace = skipBlanks(this.buffer, this.#starts[i]!, end);
    return this.buffer[skipBlanks(this.buffer, brace + 1, end)] === 0x7d;
  }
}

function skipBlanks(b: Buffer, p: number, end: number): number {
  while (p < end) {
    const c = b[p];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) return p;
    p++;
  }
  return p;
}

/**
 * The closing quote of the string token opening at `p`. Short strings (keys) are searched here; a
 * native search for each would cost more than the bytes.
 */
function stringEnd(b: Buffer, p: number, end: number): number {
  let q = p + 1;
  for (;;) {
    let at = -1;
    const near = Math.min(q + 32, end);
    for (let k = q; k < near; k++) {
      if (b[k] === QUOTE) {
        at = k;
        break;
      }
    }
    if (at === -1 && near < end) {
      at = b.indexOf(QUOTE, near);
      if (at >= end) at = -1;
    }
    if (at === -1) return end;
    let slashes = 0;
    while (b[at - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return at;
    q = at + 1;
  }
}

/** Just past the object or array opening at `p` (strings inside skipped whole). */
function nestedEnd(b: Buffer, p: number, end: number): number {
  let depth = 0;
  while (p < end) {
    const c = b[p];
    if (c === QUOTE) p = stringEnd(b, p, end);
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      depth--;
      if (depth === 0) return p + 1;
    }
    p++;
  }
  return end;
}

/** A string's UTF-8 bytes, one character a byte. */
function byteText(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The real text of a byte string (ASCII is both). */
function realText(text: string): string {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) return Buffer.from(text, 'latin1').toString('utf8');
  }
  return text;
}

/** A value parsed from bytes, with real strings. */
function realValue(value: unknown): unknown {
  if (typeof value === 'string') return realText(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(realValue);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const real = realText(key);
    const entry = realValue((value as Record<string, unknown>)[key]);
    // A key named __proto__ is data (JSON.parse makes it an own property), not the prototype.
    if (real === '__proto__')
      Object.defineProperty(out, real, {
        value: entry,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else out[real] = entry;
  }
  return out;
}
