import { BatchpipeError, type ErrorCode, isBatchpipeError } from '../../errors.js';
import type { ByteWriter } from '../../internal/byte-writer.js';
import { copyBytes } from '../../internal/copy-bytes.js';
import { deeperThan, tooDeepMessage } from '../../internal/json-depth.js';
import { crOnlyHint } from '../../internal/line-scanner.js';
import { hasUnsafeInteger, parseJsonExact } from '../../internal/parse-json.js';
import type { Rejection, RowValues } from '../../types.js';
import { type ColumnBuffers, FRESH_COLUMNS } from '../rows/column-buffers.js';
import { type ColumnRef, columnRef } from '../rows/column-ref.js';
import { ReadRows } from '../rows/read-rows.js';
import { type CellRef, type RowBatch, textOf } from '../rows/row-batch.js';
import type { Utf8Column } from '../rows/utf8-column.js';
import {
  COPY_ESCAPES,
  COPY_LITERAL,
  COPY_STRING,
  ESCAPED_STRING,
  LAST_COPY,
  LineMembers,
  NESTED,
  NULL,
  scanObjectLine,
} from './json-line-scan.js';

/** Every batch of JSON rows shares one layout: a column is found by name in each row. */
const JSONL_LAYOUT = Object.freeze({ rows: 'json lines' });

/** A column of JSON rows: found by its name in a parsed object, and by its name's bytes in a scanned line. */
interface JsonlRef {
  real: ColumnRef;
  /** The name's UTF-8 bytes, to find its member in a line; undefined for a name that is not well-formed text. */
  key: Buffer | undefined;
  /** The name holds a dot: without a member of that exact name, it is a path into the parsed object. */
  path: boolean;
}

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

/** An entry not yet read; checked from its bytes (its members found by scanning); parsed to an object; rejected. */
const UNPARSED = 0;
const SCANNED = 1;
const PARSED = 2;
const REJECTED = 3;

/**
 * JSON Lines rows over the bytes they were read from, each line checked when a stage first asks about
 * it (on whichever thread asks) by scanning its bytes (scanObjectLine): its top-level members are
 * found, not decoded. A template writes a string member by copying its bytes (`cellRange`), which are
 * what JSON.stringify would write of its text, and a value is decoded only when asked for (`value`),
 * the whole row only when a stage wants its object (`values`, `keys`, a dotted path). A line the scan
 * does not take (bad JSON, not an object, an escaped member name, too deep) is parsed by JSON.parse,
 * as every line once was: its row, or its rejection and message, are JSON.parse's.
 */
export class JsonlRowBatch extends ReadRows implements RowBatch {
  readonly kind = 'row-batch';
  readonly layout = JSONL_LAYOUT;
  readonly length: number;
  readonly #file: string;
  readonly #starts: Int32Array;
  readonly #ends: Int32Array;
  readonly #parse: JsonlParse;
  /** Each parsed row's values. */
  readonly #objects: Array<Record<string, unknown> | undefined>;
  readonly #state: Uint8Array;
  readonly #rejections: Map<number, Rejection>;
  /** The members of line `#membersOf` (a template asks for each of its columns of a line in turn). */
  readonly #members = new LineMembers();
  #membersOf = -1;
  /** The member names `keys` gave last, with their bytes (`count` members, repeats included). */
  #lastNames:
    | { count: number; bytes: Buffer; starts: number[]; lengths: number[]; names: readonly string[] }
    | undefined;

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
    if (this.#state[i] === UNPARSED) this.#read(i);
    return this.#state[i] === REJECTED ? this.#rejections.get(i) : undefined;
  }

  /** Reads line `i` not read yet: scanned, or else parsed (to its object or its rejection). */
  #read(i: number): void {
    if (this.#scan(i)) this.#state[i] = SCANNED;
    else this.#parseEntry(i);
  }

  /** Scans line `i` into `#members` (once for the line asked about last); false when the scan does not take it. */
  #scan(i: number): boolean {
    if (this.#membersOf === i) return true;
    this.checkLive();
    this.#membersOf = -1;
    if (!scanObjectLine(this.buffer, this.#starts[i]!, this.#ends[i]!, this.#members)) return false;
    this.#membersOf = i;
    return true;
  }

  /** The entry's object (parsed now if it was not), or undefined for a rejected line. */
  #object(i: number): Record<string, unknown> | undefined {
    if (this.#state[i] === UNPARSED || this.#state[i] === SCANNED) this.#parseEntry(i);
    return this.#objects[i];
  }

  /** Parses line `i`'s text: its object, or its rejection (or, with badRows "fail", an error). */
  #parseEntry(i: number): void {
    this.checkLive();
    const text = this.buffer.toString('utf8', this.#starts[i]!, this.#ends[i]!);
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
      this.#reject(i, 'BP_INPUT_PARSE', `invalid JSON: ${(error as Error).message}${crOnlyHint(text)}`);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
      this.#reject(i, 'BP_ROW_NOT_OBJECT', `expected a JSON object, got ${got}`);
      return;
    }
    this.#objects[i] = value as Record<string, unknown>;
    this.#state[i] = PARSED;
  }

  /** JSON text as the source's bigIntegers option reads it. */
  #parseText(text: string): unknown {
    return this.#parse.bigIntegers === 'string' ? parseJsonExact(text).value : JSON.parse(text);
  }

  /** True when line `i`, parsed as plain numbers, held an integer past 2^53 that lost digits. */
  lostDigits(i: number): boolean {
    if (this.rejection(i)) return false;
    // A scanned line says whether it holds a long integer at all: most lines are not parsed for this.
    if (this.#state[i] === SCANNED && this.#scan(i) && !this.#members.longInteger) return false;
    const object = this.#object(i);
    if (object === undefined || !hasUnsafeInteger(object)) return false;
    return parseJsonExact(this.buffer.toString('utf8', this.#starts[i]!, this.#ends[i]!)).bigIntegers;
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
   * Drops line `i`'s parsed object (read again if asked): a join's key pass reads each line once,
   * and a batch holding 2,048 parsed rows until it is released outlived the young generation, so
   * every row was copied and promoted before it died.
   */
  forget(i: number): void {
    if (this.#state[i] !== PARSED) return;
    this.#objects[i] = undefined;
    this.#state[i] = UNPARSED;
  }

  /**
   * The row's column names, as Object.keys gives them of its object. A scanned line's come from its
   * member names without parsing it (a join's key pass asks for every row's: parsing each line for
   * them was most of that pass), and a line whose names are the last line's bytes for bytes gets the
   * same array.
   */
  keys(i: number): readonly string[] {
    if (this.rejection(i)) return [];
    if (this.#state[i] !== SCANNED || !this.#scan(i)) return Object.keys(this.#object(i) ?? {});
    const m = this.#members;
    const b = this.buffer;
    const last = this.#lastNames;
    if (last !== undefined && last.count === m.count) {
      // Byte by byte here: names are short, and Buffer#compare's call cost more than the loop
      // (0.6 s of a 1M-row join's key pass).
      const lastBytes = last.bytes;
      let same = true;
      for (let k = 0; k < m.count && same; k++) {
        const start = m.keyStart[k]!;
        const length = m.keyEnd[k]! - start;
        same = length === last.lengths[k];
        for (let j = 0, at = last.starts[k]!; same && j < length; j++)
          same = b[start + j] === lastBytes[at + j];
      }
      if (same) return last.names;
    }
    const seen = new Set<string>();
    const starts: number[] = [];
    const lengths: number[] = [];
    let at = 0;
    for (let k = 0; k < m.count; k++) {
      seen.add(b.toString('utf8', m.keyStart[k]!, m.keyEnd[k]!));
      starts.push(at);
      lengths.push(m.keyEnd[k]! - m.keyStart[k]!);
      at += lengths[k]!;
    }
    const bytes = Buffer.allocUnsafe(at);
    for (let k = 0; k < m.count; k++) b.copy(bytes, starts[k]!, m.keyStart[k]!, m.keyEnd[k]!);
    const names = objectKeyOrder([...seen]);
    this.#lastNames = { count: m.count, bytes, starts, lengths, names };
    return names;
  }

  values(i: number): RowValues {
    return this.#object(i) ?? {};
  }

  ref(name: string): CellRef {
    const key = Buffer.from(name, 'utf8');
    return {
      real: columnRef(name),
      // A lone surrogate has no UTF-8 bytes (it is written as U+FFFD): no member's bytes can name it.
      key: key.toString('utf8') === name ? key : undefined,
      path: name.includes('.'),
    } satisfies JsonlRef;
  }

  /**
   * The member of scanned line `i` that is the column, or -1 when the row lacks it; -2 when the
   * column must be read from the parsed object (a line the scan did not take, a dotted path).
   */
  #member(i: number, ref: JsonlRef): number {
    if (this.#state[i] === UNPARSED) this.#read(i);
    if (this.#state[i] !== SCANNED || ref.key === undefined || !this.#scan(i)) return -2;
    const m = this.#members.find(this.buffer, ref.key);
    return m === -1 && ref.path ? -2 : m;
  }

  has(i: number, ref: CellRef): boolean {
    const m = this.#member(i, ref as JsonlRef);
    if (m !== -2) return m !== -1;
    const object = this.#object(i);
    return object !== undefined && (ref as JsonlRef).real.has(object);
  }

  value(i: number, ref: CellRef): unknown {
    const m = this.#member(i, ref as JsonlRef);
    if (m === -1) return undefined;
    if (m === -2) {
      const object = this.#object(i);
      return object === undefined ? undefined : (ref as JsonlRef).real.get(object);
    }
    const members = this.#members;
    const b = this.buffer;
    const start = members.valueStart[m]!;
    const end = members.valueEnd[m]!;
    switch (members.kind[m]) {
      case COPY_STRING:
        return b.toString('utf8', start, end);
      case COPY_ESCAPES:
      case ESCAPED_STRING:
        return JSON.parse(b.toString('utf8', start - 1, end + 1));
      case NULL:
        return null;
      case COPY_LITERAL:
        return b[start] === 0x74;
      default:
        return this.#parseText(b.toString('utf8', start, end));
    }
  }

  /**
   * Where scanned cell `(i, ref)`'s JSON text (as `writeJsonText` writes it) stands as it is in the
   * buffer: `range` gets its bytes `[start, end)`, and true; false when it must be written otherwise
   * (escapes JSON.stringify writes another way, a number or a nested value decoded first, a line
   * read by JSON.parse). A row lacking the column writes nothing: an empty range.
   */
  cellRange(i: number, ref: CellRef, range: Int32Array): boolean {
    const m = this.#member(i, ref as JsonlRef);
    if (m === -2) return false;
    if (m === -1) {
      range[0] = 0;
      range[1] = 0;
      return true;
    }
    const members = this.#members;
    const kind = members.kind[m]!;
    if (kind === NULL) {
      range[0] = 0;
      range[1] = 0;
      return true;
    }
    if (kind > LAST_COPY) return false;
    range[0] = members.valueStart[m]!;
    range[1] = members.valueEnd[m]!;
    return true;
  }

  readonly #range = new Int32Array(2);

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    const range = this.#range;
    if (this.cellRange(i, ref, range)) {
      out.writeRange(this.buffer, range[0]!, range[1]!);
      return;
    }
    const json = JSON.stringify(textOf(this.value(i, ref)));
    const buffer = out.ensure(json.length * 3);
    // Without its quotes.
    out.pos += buffer.write(json.slice(1, -1), out.pos, 'utf8');
  }

  /**
   * Columns `names` as UTF-8 text in Arrow's layout: each row's `textOf(values(i)[name])`, null where
   * the row lacks the name or holds null, or where `nulls` has 1. Each line is scanned once for all
   * of them, and a string, short integer or literal is copied from its bytes (escapes read), not
   * made into a JS value. A name that is a dotted path or Object.prototype's (where `values(i)[name]`
   * reads what no member holds) gets undefined: its column is the caller's to make. The columns'
   * buffers come from `buffers`.
   */
  utf8Columns(
    names: readonly string[],
    nulls?: Uint8Array,
    buffers: ColumnBuffers = FRESH_COLUMNS,
  ): Array<Utf8Column | undefined> {
    const n = this.length;
    const refs = names.map((name) =>
      name.includes('.') || name in Object.prototype ? undefined : (this.ref(name) as JsonlRef),
    );
    const width = names.length;
    // Per cell: its bytes' range and kind (GIVE_TEXT: the text is in `texts`; NONE: null).
    const starts = new Int32Array(n * width);
    const ends = new Int32Array(n * width);
    const kinds = new Uint8Array(n * width).fill(NONE);
    const texts = new Map<number, string>();
    const sizes = new Array<number>(width).fill(0);
    const members = this.#members;
    for (let i = 0; i < n; i++) {
      if (nulls !== undefined && nulls[i] === 1) continue;
      for (let c = 0; c < width; c++) {
        const ref = refs[c];
        if (ref === undefined) continue;
        const cell = i * width + c;
        const m = this.#member(i, ref);
        if (m === -1) continue;
        const kind = m === -2 ? NESTED : members.kind[m]!;
        if (kind === NULL) continue;
        if (kind <= LAST_COPY) {
          starts[cell] = members.valueStart[m]!;
          ends[cell] = members.valueEnd[m]!;
          kinds[cell] = kind;
          sizes[c]! += ends[cell]! - starts[cell]!;
          continue;
        }
        const value = m === -2 ? this.values(i)[names[c]!] : this.value(i, ref);
        if (value === null || value === undefined) continue;
        const text = textOf(value);
        texts.set(cell, text);
        kinds[cell] = GIVE_TEXT;
        sizes[c]! += Buffer.byteLength(text);
      }
    }
    const source = this.buffer;
    return refs.map((ref, c) => {
      if (ref === undefined) return undefined;
      const bytes = buffers.bytes(sizes[c]!);
      const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
      const valueOffsets = buffers.int32(n + 1);
      valueOffsets[0] = 0;
      let nullBitmap: Uint8Array | undefined;
      let nullCount = 0;
      let pos = 0;
      for (let i = 0; i < n; i++) {
        const cell = i * width + c;
        const kind = kinds[cell]!;
        if (kind === NONE) {
          nullBitmap ??= validUpTo(n, i, buffers);
          nullCount++;
        } else {
          if (nullBitmap) nullBitmap[i >> 3]! |= 1 << (i & 7);
          if (kind === GIVE_TEXT) pos += data.write(texts.get(cell)!, pos, 'utf8');
          else if (kind === COPY_ESCAPES) pos = unescapeInto(source, starts[cell]!, ends[cell]!, data, pos);
          else pos = copyBytes(source, starts[cell]!, ends[cell]!, data, pos);
        }
        valueOffsets[i + 1] = pos;
      }
      return {
        valueOffsets,
        data: new Uint8Array(data.buffer, data.byteOffset, pos),
        nullBitmap,
        nullCount,
      };
    });
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
    if (this.#state[i] === PARSED) {
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

/** Names in the order Object.keys lists an object's: array indexes first, ascending, then the rest as given. */
function objectKeyOrder(names: string[]): string[] {
  const indexes = names.filter(isArrayIndex);
  if (indexes.length === 0) return names;
  indexes.sort((a, b) => Number(a) - Number(b));
  return [...indexes, ...names.filter((name) => !isArrayIndex(name))];
}

function isArrayIndex(name: string): boolean {
  return /^(?:0|[1-9][0-9]*)$/.test(name) && Number(name) < 4294967295;
}

/** utf8Columns' kinds of cell beyond the scan's: its text is a string made of its value; none (null). */
const GIVE_TEXT = 254;
const NONE = 255;

/** A validity bitmap of `n` entries with the first `valid` set. */
function validUpTo(n: number, valid: number, buffers: ColumnBuffers): Uint8Array {
  const bitmap = buffers.zeroed((n + 7) >> 3);
  for (let i = 0; i < valid; i++) bitmap[i >> 3]! |= 1 << (i & 7);
  return bitmap;
}

/**
 * The text of a JSON string's bytes holding only the escapes COPY_ESCAPES allows, into `target` at
 * `pos`: the runs between escapes copied at once, each backslash found by the runtime's search (a
 * review holds a few escapes in hundreds of bytes).
 */
function unescapeInto(source: Buffer, start: number, end: number, target: Uint8Array, pos: number): number {
  const cell = source.subarray(start, end);
  const n = cell.length;
  let from = 0;
  for (let k = cell.indexOf(0x5c, 0); k !== -1; k = cell.indexOf(0x5c, from)) {
    pos = copyBytes(cell, from, k, target, pos);
    target[pos++] = unescaped(cell[k + 1]!);
    from = k + 2;
    if (from >= n) break;
  }
  return copyBytes(cell, from, n, target, pos);
}

/** The byte an escape (backslash, then `letter`) stands for: a quote or backslash stands for itself. */
function unescaped(letter: number): number {
  switch (letter) {
    case 0x62: // b
      return 0x08;
    case 0x66: // f
      return 0x0c;
    case 0x6e: // n
      return 0x0a;
    case 0x72: // r
      return 0x0d;
    case 0x74: // t
      return 0x09;
    default:
      return letter;
  }
}
