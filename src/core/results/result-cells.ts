import type { ByteWriter } from '../../internal/byte-writer.js';
import { digitCount, writeDigits } from '../../internal/json-bytes.js';
import type { Endpoint } from '../../providers/profile.js';
import { csvCell } from '../csv/csv-cell.js';
import type { ResultRecord, ResultStatus } from './result-parser.js';

/** Result facts a join can add after the default columns. */
export const EXTRA_COLUMNS = [
  'custom_id',
  'content',
  'reasoning_content',
  'finish_reason',
  'reasoning_tokens',
  'model',
  'request_id',
  'status_code',
  'cached',
] as const;
export type ExtraColumn = (typeof EXTRA_COLUMNS)[number];

/** What decides the result columns before any result is read. */
export interface CellSpec {
  /** Parsed-field paths (labels or schema); empty for plain answers. */
  fields: string[][];
  /** Extras, in order. */
  include: readonly ExtraColumn[];
  /** The answer column's name (see `payloadColumn`). */
  payload: PayloadColumn;
  /** The JSON Schema the parsed fields come from (labels or schema): a typed sink reads their types. */
  fieldSchema?: Record<string, unknown> | undefined;
}

/**
 * What a result column holds, for sinks that write types (Parquet, Arrow): its role, and for a parsed
 * field the JSON Schema of its value.
 */
export type ResultColumnKind =
  | { role: 'status' | 'error_code' | 'error_message' | 'prompt_tokens' | 'completion_tokens' | ExtraColumn }
  | { role: 'payload'; payload: PayloadColumn }
  | { role: 'field'; schema: Record<string, unknown> | undefined };

/** What the answer column is called. */
export type PayloadColumn = 'content' | 'embedding';

/**
 * The answer column's name, from the kind of request: `embedding` for embeddings, else `content`.
 * Never from the answers themselves, so a table's columns do not depend on what came back.
 */
export function payloadColumn(endpoint: Endpoint | undefined): PayloadColumn {
  return endpoint === '/v1/embeddings' ? 'embedding' : 'content';
}

/** How cells are stored between the join's passes; what is stored never holds a newline. */
export type CellEncoding = { kind: 'json' } | { kind: 'csv'; delimiter: string };

/**
 * JSON cells are stored as each cell's JSON text, one after another with a NUL between (JSON text
 * never holds a raw NUL): a JSON Lines sink writes them as members without parsing them again.
 */
const CELL_SEPARATOR = '\u0000';

/**
 * The result cells of a row, in column order (DESIGN section 6): `status`, the parsed fields (labels
 * or schema) or one payload cell (the answer text, or the vector of an embedding), `error_code`,
 * `error_message`, `prompt_tokens`, `completion_tokens`, then the extras. The layout is fixed before
 * any result is read, so cells can be made as results arrive.
 */
export class CellLayout {
  readonly width: number;
  readonly #fields: string[][];
  readonly #include: readonly ExtraColumn[];
  readonly #payload: boolean;
  readonly #payloadName: PayloadColumn;
  readonly #fieldSchema: Record<string, unknown> | undefined;

  constructor(spec: CellSpec) {
    this.#fields = spec.fields;
    this.#fieldSchema = spec.fieldSchema;
    this.#payloadName = spec.payload;
    this.#payload = spec.fields.length === 0;
    // With parsed fields the answer text is an extra, if asked for; otherwise it is the payload.
    this.#include = this.#payload ? spec.include.filter((c) => c !== 'content') : spec.include;
    this.width = 1 + spec.fields.length + (this.#payload ? 1 : 0) + 4 + this.#include.length;
  }

  /** Each column's kind, in the order of `names`. */
  kinds(): ResultColumnKind[] {
    const kinds: ResultColumnKind[] = [{ role: 'status' }];
    for (const path of this.#fields) kinds.push({ role: 'field', schema: schemaAt(this.#fieldSchema, path) });
    if (this.#payload) kinds.push({ role: 'payload', payload: this.#payloadName });
    for (const role of ['error_code', 'error_message', 'prompt_tokens', 'completion_tokens'] as const)
      kinds.push({ role });
    for (const extra of this.#include) kinds.push({ role: extra });
    return kinds;
  }

  /** The cells of a result. */
  fromRecord(r: ResultRecord): unknown[] {
    const cells: unknown[] = [r.status];
    for (const path of this.#fields) cells.push(pick(r.parsed, path));
    if (this.#payload) cells.push(r.embedding ?? r.content);
    cells.push(r.error_code, r.error_message, r.prompt_tokens, r.completion_tokens);
    for (const extra of this.#include) cells.push(extra === 'custom_id' ? r.custom_id : r[extra]);
    return cells;
  }

  /** The cells of a row with no result (missing, rejected). */
  none(id: string | null, status: ResultStatus, code: string | null, message: string | null): unknown[] {
    const cells: unknown[] = [status];
    for (let f = 0; f < this.#fields.length; f++) cells.push(null);
    if (this.#payload) cells.push(null);
    cells.push(code, message, null, null);
    for (const extra of this.#include) cells.push(extra === 'custom_id' ? id : null);
    return cells;
  }

  /** Column names; a name the source has gets the prefix `result_` (DESIGN section 6). */
  names(source: readonly string[], fieldPrefix: string): string[] {
    const taken = new Set(source);
    const names: string[] = [];
    const add = (base: string) => {
      let name = base;
      while (taken.has(name)) name = `result_${name}`;
      taken.add(name);
      names.push(name);
    };
    add('status');
    for (const path of this.#fields) add(fieldPrefix + path.join('.'));
    if (this.#payload) add(this.#payloadName);
    for (const base of ['error_code', 'error_message', 'prompt_tokens', 'completion_tokens']) add(base);
    for (const extra of this.#include) add(extra);
    return names;
  }
}

/** Encodes cells for storage: JSON (values keep their types), or the CSV text that follows a row. */
export function cellEncoder(encoding: CellEncoding): (cells: unknown[]) => string {
  if (encoding.kind === 'json') return jsonCells;
  const delimiter = encoding.delimiter;
  return (cells) => escapeTail(csvTail(cells, delimiter));
}

/**
 * Writes what `cellEncoder` gives for `cells`, as UTF-8, into `out` from `at`; returns where it
 * ended, or -1 when it cannot (then encode them as text): the cells do not fit, or a CSV cell holds a
 * line break (its tail is stored as JSON). Strings, numbers and null are written here, a character
 * at a time where they are plain ASCII; other cells by their text.
 */
export type CellWriter = (cells: readonly unknown[], out: Buffer, at: number) => number;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const MAX_ASCII = 0x7f;
/** UTF-8 bytes a UTF-16 unit can take. */
const MAX_BYTES_PER_UNIT = 3;

/** The bytes `cellEncoder(encoding)` stands for, written without making its text (see CellWriter). */
export function cellWriter(encoding: CellEncoding): CellWriter {
  if (encoding.kind === 'json') return writeJsonCells;
  const delimiter = encoding.delimiter;
  const d = delimiter.length === 1 ? delimiter.charCodeAt(0) : -1;
  // A delimiter that is a quote or a line end (or not one ASCII character) takes the text path.
  if (d === -1 || d > MAX_ASCII || d === QUOTE || d === LF || d === CR) return () => -1;
  return (cells, out, at) => {
    if (at >= out.length) return -1;
    out[at++] = 0x30; // escapeTail's mark of a tail with no line break
    for (let c = 0; c < cells.length && at !== -1; c++) {
      if (at >= out.length) return -1;
      out[at++] = d;
      const value = cells[c];
      if (value === null || value === undefined) continue;
      if (typeof value === 'string') at = writeCsvString(value, d, delimiter, out, at);
      else if (typeof value === 'number' && isSmallInt(value)) at = writeInt(value, out, at);
      else at = writeCsvText(csvCell(value, delimiter), out, at);
    }
    return at;
  };
}

function writeJsonCells(cells: readonly unknown[], out: Buffer, at: number): number {
  for (let c = 0; c < cells.length && at !== -1; c++) {
    if (c > 0) {
      if (at >= out.length) return -1;
      out[at++] = NUL; // CELL_SEPARATOR
    }
    const value = cells[c];
    if (typeof value === 'string') at = writeJsonString(value, out, at);
    else if (typeof value === 'number' && isSmallInt(value)) at = writeInt(value, out, at);
    else if (value === null || value === undefined) at = writeNull(out, at);
    else at = writeText(jsonCell(value), out, at);
  }
  return at;
}

/** A CSV string cell: its characters, when ASCII with nothing to quote; else csvCell's text. */
function writeCsvString(value: string, d: number, delimiter: string, out: Buffer, at: number): number {
  const n = value.length;
  if (at + n > out.length) return -1;
  for (let k = 0; k < n; k++) {
    const c = value.charCodeAt(k);
    if (c > MAX_ASCII || c === QUOTE || c === d || c === CR || c === LF)
      return writeCsvText(csvCell(value, delimiter), out, at);
    out[at + k] = c;
  }
  return at + n;
}

/** A CSV cell's text; -1 for one with a line break (escapeTail stores such a tail as JSON). */
function writeCsvText(text: string, out: Buffer, at: number): number {
  return text.includes('\n') ? -1 : writeText(text, out, at);
}

/** A JSON string cell: quoted characters, when ASCII with nothing to escape; else jsonCell's text. */
function writeJsonString(value: string, out: Buffer, at: number): number {
  const n = value.length;
  if (at + n + 2 > out.length) return -1;
  out[at] = QUOTE;
  for (let k = 0; k < n; k++) {
    const c = value.charCodeAt(k);
    if (c > MAX_ASCII || c < 0x20 || c === QUOTE || c === BACKSLASH)
      return writeText(jsonCell(value), out, at);
    out[at + 1 + k] = c;
  }
  out[at + n + 1] = QUOTE;
  return at + n + 2;
}

function writeNull(out: Buffer, at: number): number {
  if (at + 4 > out.length) return -1;
  out[at] = 0x6e;
  out[at + 1] = 0x75;
  out[at + 2] = 0x6c;
  out[at + 3] = 0x6c;
  return at + 4;
}

function writeText(text: string, out: Buffer, at: number): number {
  if (at + text.length * MAX_BYTES_PER_UNIT > out.length) return -1;
  return at + out.write(text, at, 'utf8');
}

/** A whole number from 0 to 2^31 - 1 (-0 too: String(-0) is "0"). */
function isSmallInt(value: number): boolean {
  return (value | 0) === value && value >= 0;
}

/** A small whole number's digits, as String() writes them. */
function writeInt(value: number, out: Buffer, at: number): number {
  const digits = digitCount(value);
  return at + digits > out.length ? -1 : writeDigits(out, at, value, digits);
}

function jsonCells(cells: unknown[]): string {
  let text = jsonCell(cells[0]);
  for (let c = 1; c < cells.length; c++) text += CELL_SEPARATOR + jsonCell(cells[c]);
  return text;
}

/** What JSON.stringify must escape in a string: a quote, a backslash, a control or surrogate unit. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * A cell's JSON text, as JSON.stringify gives it (null for undefined): the usual cells (null, a
 * number, a string with nothing to escape) without its call, which cost 0.5 s a thread of a 1M-row
 * join into JSON Lines (six cells a row).
 */
function jsonCell(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  return JSON.stringify(value);
}

/**
 * Appends stored `cellEncoder({kind: 'json'})` cells as JSON members: `keys[c]` (`,"name":` as
 * UTF-8) before cell c, the first key without its comma when `first`. Written straight into `out`
 * (ByteWriter#writeTextRange): splitting the cells, joining them with their names and encoding the
 * joined string took a tenth of a 1M-row join into JSON Lines.
 */
export function writeJsonMembers(
  stored: string,
  keys: readonly Uint8Array[],
  first: boolean,
  out: ByteWriter,
): void {
  let from = 0;
  for (let c = 0; c < keys.length; c++) {
    out.writeBytes(first && c === 0 ? keys[c]!.subarray(1) : keys[c]!);
    const end = stored.indexOf(CELL_SEPARATOR, from);
    out.writeTextRange(stored, from, end === -1 ? stored.length : end);
    if (end === -1) break;
    from = end + 1;
  }
}

/** Each cell's JSON text, of a stored `cellEncoder({kind: 'json'})` value. */
export function jsonCellTexts(stored: string): string[] {
  return stored.split(CELL_SEPARATOR);
}

/**
 * The cells of stored `cellEncoder({kind: 'json'})` values, decoded into `out` from `at` on (each
 * value's cells in order). A string without escapes, a number, null or a boolean is read here (the
 * cells of a join are mostly these), anything else by JSON.parse: about twice as fast as parsing
 * them all, for the same values.
 */
export function decodeJsonCells(stored: readonly string[], out: unknown[], at = 0): void {
  for (const text of stored) {
    let from = 0;
    for (;;) {
      const end = text.indexOf(CELL_SEPARATOR, from);
      out[at++] = jsonValue(end === -1 ? text.slice(from) : text.slice(from, end));
      if (end === -1) break;
      from = end + 1;
    }
  }
}

function jsonValue(text: string): unknown {
  const first = text.charCodeAt(0);
  // JSON.stringify writes a string's content as it is unless it needs an escape.
  if (first === 0x22) return text.indexOf('\\') === -1 ? text.slice(1, -1) : JSON.parse(text);
  if (text === 'null') return null;
  if ((first >= 0x30 && first <= 0x39) || first === 0x2d) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  return JSON.parse(text);
}

/** The CSV text of cells, each after a delimiter (they follow the source fields). */
export function csvTail(cells: unknown[], delimiter: string): string {
  let text = '';
  for (let c = 0; c < cells.length; c++) text += delimiter + csvCell(cells[c], delimiter);
  return text;
}

/** Stored lines end at "\n", so a tail holding one (a quoted answer with line breaks) is kept as JSON. */
function escapeTail(tail: string): string {
  return tail.includes('\n') ? `1${JSON.stringify(tail)}` : `0${tail}`;
}

/** The CSV tail a stored `cellEncoder({kind: 'csv'})` value stands for. */
export function csvTailOf(stored: string): string {
  return stored.charCodeAt(0) === 0x30 ? stored.slice(1) : (JSON.parse(stored.slice(1)) as string);
}

/** The JSON Schema of the property at `path` of an object schema. */
function schemaAt(
  schema: Record<string, unknown> | undefined,
  path: string[],
): Record<string, unknown> | undefined {
  let at: unknown = schema;
  for (const key of path) {
    const properties = (at as { properties?: Record<string, unknown> } | undefined)?.properties;
    at = properties?.[key];
  }
  return at !== null && typeof at === 'object' ? (at as Record<string, unknown>) : undefined;
}

function pick(value: unknown, path: string[]): unknown {
  for (const key of path) {
    if (value === null || typeof value !== 'object') return null;
    value = (value as Record<string, unknown>)[key];
  }
  return value === undefined ? null : value;
}

/** A result column the join's stored JSON cells are read into straight (see decodeJsonColumns). */
export type JsonColumnKind = 'utf8' | 'int64' | undefined;

/** A column of one batch as Arrow buffers: utf8 (offsets and UTF-8 bytes) or int64. */
export interface JsonColumn {
  nullCount: number;
  /** Arrow validity bits; undefined when no cell is null. */
  nullBitmap: Uint8Array | undefined;
  /** utf8: each cell's end in `data`. */
  valueOffsets?: Int32Array;
  data: Uint8Array | BigInt64Array;
}

/**
 * The result columns of stored `cellEncoder({kind: 'json'})` values, as Arrow buffers, in one pass
 * over the stored text: a utf8 column from its string cells (their characters written as UTF-8, no
 * string made for a cell without escapes), an int64 column from its whole numbers. A column whose
 * cells are not all of its kind (or null) is undefined: decodeJsonCells and the column's own rules
 * make it. About a third of the CPU of decoding every cell first (a join of 1M rows into Parquet).
 */
export function decodeJsonColumns(
  stored: readonly string[],
  kinds: readonly JsonColumnKind[],
): Array<JsonColumn | undefined> {
  const rows = stored.length;
  const builders = kinds.map((kind) =>
    kind === 'utf8' ? new Utf8Cells(rows) : kind === 'int64' ? new Int64Cells(rows) : undefined,
  );
  const width = kinds.length;
  for (let r = 0; r < rows; r++) {
    const text = stored[r]!;
    let from = 0;
    for (let c = 0; c < width; c++) {
      let end = text.indexOf(CELL_SEPARATOR, from);
      if (end === -1) end = text.length;
      const builder = builders[c];
      if (builder !== undefined && !builder.failed) builder.add(text, from, end, r);
      from = end + 1;
    }
    // Not as many cells as columns: no column is read here.
    if (from !== text.length + 1) return kinds.map(() => undefined);
  }
  return builders.map((builder) => (builder && !builder.failed ? builder.column() : undefined));
}

/** Validity bits and the null count of one column. */
class CellValidity {
  readonly bits: Uint8Array;
  nulls = 0;

  constructor(rows: number) {
    this.bits = new Uint8Array((rows + 7) >> 3);
  }

  valid(r: number): void {
    this.bits[r >> 3]! |= 1 << (r & 7);
  }

  /** The column's null count and validity bits (none when no cell is null). */
  nullFields(): Pick<JsonColumn, 'nullCount' | 'nullBitmap'> {
    return { nullCount: this.nulls, nullBitmap: this.nulls > 0 ? this.bits : undefined };
  }
}

function isNullText(text: string, from: number, end: number): boolean {
  return end - from === 4 && text.charCodeAt(from) === 0x6e && text.startsWith('null', from);
}

/** Bytes a utf8 result cell is first given room for. */
const CELL_BYTES = 16;

class Utf8Cells {
  failed = false;
  readonly #validity: CellValidity;
  readonly #offsets: Int32Array;
  #bytes: Buffer;
  #pos = 0;

  constructor(rows: number) {
    this.#validity = new CellValidity(rows);
    this.#offsets = new Int32Array(rows + 1);
    // Room for short cells (a status, a label); longer ones grow it.
    this.#bytes = Buffer.allocUnsafe(rows * CELL_BYTES + 64);
  }

  add(text: string, from: number, end: number, r: number): void {
    if (isNullText(text, from, end)) {
      this.#validity.nulls++;
      this.#offsets[r + 1] = this.#pos;
      return;
    }
    if (end - from < 2 || text.charCodeAt(from) !== 0x22 || text.charCodeAt(end - 1) !== 0x22) {
      this.failed = true;
      return;
    }
    const start = from + 1;
    const stop = end - 1;
    this.#room((stop - start) * MAX_BYTES_PER_UNIT);
    const bytes = this.#bytes;
    let pos = this.#pos;
    for (let k = start; k < stop; k++) {
      const c = text.charCodeAt(k);
      if (c > MAX_ASCII || c === BACKSLASH) {
        // Escapes are read by JSON.parse; other text is written by Buffer#write (a cell without a
        // backslash is its characters as they are).
        const escaped = c === BACKSLASH || text.lastIndexOf('\\', stop) > k;
        const value = escaped ? (JSON.parse(text.slice(from, end)) as string) : text.slice(start, stop);
        this.#room(value.length * MAX_BYTES_PER_UNIT);
        pos = this.#pos + this.#bytes.write(value, this.#pos, 'utf8');
        break;
      }
      bytes[pos++] = c;
    }
    this.#pos = pos;
    this.#validity.valid(r);
    this.#offsets[r + 1] = pos;
  }

  #room(bytes: number): void {
    if (this.#pos + bytes <= this.#bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#pos + bytes, 2 * this.#bytes.length));
    this.#bytes.copy(grown, 0, 0, this.#pos);
    this.#bytes = grown;
  }

  column(): JsonColumn {
    return {
      ...this.#validity.nullFields(),
      valueOffsets: this.#offsets,
      data: new Uint8Array(this.#bytes.buffer, this.#bytes.byteOffset, this.#pos),
    };
  }
}

/** Digits of a whole number exact as a double (and so as JSON.parse reads it). */
const MAX_DIGITS = 15;
const TWO_32 = 0x100000000;

class Int64Cells {
  failed = false;
  readonly #validity: CellValidity;
  readonly #values: BigInt64Array;
  /** The values as 32-bit words: a cell is written without a BigInt. */
  readonly #words: Int32Array;

  constructor(rows: number) {
    this.#validity = new CellValidity(rows);
    this.#values = new BigInt64Array(rows);
    this.#words = new Int32Array(this.#values.buffer);
  }

  add(text: string, from: number, end: number, r: number): void {
    if (isNullText(text, from, end)) {
      this.#validity.nulls++;
      return;
    }
    const negative = text.charCodeAt(from) === 0x2d;
    const first = negative ? from + 1 : from;
    if (end - first < 1 || end - first > MAX_DIGITS) {
      this.failed = true;
      return;
    }
    let n = 0;
    for (let k = first; k < end; k++) {
      const digit = text.charCodeAt(k) - 0x30;
      if (digit < 0 || digit > 9) {
        this.failed = true;
        return;
      }
      n = n * 10 + digit;
    }
    if (negative) n = -n;
    // Two's complement words, little-endian: exact for |n| < 2^53.
    this.#words[2 * r] = (n % TWO_32) | 0;
    this.#words[2 * r + 1] = Math.floor(n / TWO_32);
    this.#validity.valid(r);
  }

  column(): JsonColumn {
    return { ...this.#validity.nullFields(), data: this.#values };
  }
}
