import type { Data } from 'apache-arrow';
import type { ByteWriter } from '../../internal/byte-writer.js';
import { MAX_ESCAPE_GROWTH, writeJsonEscaped, writeJsonText } from '../../internal/json-bytes.js';
import { parseJsonExact } from '../../internal/parse-json.js';
import { writeTextField, writeUtf8Field } from '../csv/csv-cell.js';
import { jsonSpecialBytes } from '../jsonl/json-word.js';
import { loadedArrow } from './arrow-lib.js';

/**
 * One cell of an Arrow column, read straight from the column's buffers (docs/formats.md has the
 * table): as text (how a template and a CSV cell render it), as JSON text (inside lists, structs and
 * maps), and as a JS value (`Row.values`, a mapper). The rules: dates `YYYY-MM-DD`; times and
 * timestamps ISO 8601 with every stored fractional digit, `Z` when the timestamp is UTC-adjusted;
 * decimals and 64-bit integers as exact text (JSON numbers with every digit); binary as base64;
 * lists, structs and maps as JSON; null as null (an empty cell).
 */

// apache-arrow's Type ids, written here so that reading a cell needs no runtime import.
const NULL = 1;
const INT = 2;
const FLOAT = 3;
const BINARY = 4;
const UTF8 = 5;
const BOOL = 6;
const DECIMAL = 7;
const DATE = 8;
const TIME = 9;
const TIMESTAMP = 10;
const LIST = 12;
const STRUCT = 13;
const FIXED_BINARY = 15;
const FIXED_LIST = 16;
const MAP = 17;
const DURATION = 18;
const LARGE_BINARY = 19;
const LARGE_UTF8 = 20;
const LARGE_LIST = 21;
const DICTIONARY = -1;

/** A column's memory: apache-arrow's Data of any type. */
export type ColumnData = Data;

/** Units per second of TimeUnit SECOND, MILLISECOND, MICROSECOND, NANOSECOND; their fraction digits. */
const PER_SECOND = [1n, 1000n, 1000000n, 1000000000n] as const;
const FRACTION_DIGITS = [0, 3, 6, 9] as const;
const PER_SECOND_NUMBER = [1, 1000, 1_000_000, 1_000_000_000] as const;

interface Typed {
  typeId: number;
  unit?: number;
  timezone?: string | null;
  scale?: number;
  bitWidth?: number;
  precision?: number;
  isSigned?: boolean;
  byteWidth?: number;
  listSize?: number;
}

function typeOf(data: Data): Typed {
  return data.type as unknown as Typed;
}

/** True when the cell is null. */
export function isNullCell(data: Data, i: number): boolean {
  return typeOf(data).typeId === NULL || !data.getValid(i);
}

/** The cell as text (see the file's rules); null for a null cell. */
export function cellText(data: Data, i: number): string | null {
  if (isNullCell(data, i)) return null;
  const type = typeOf(data);
  switch (type.typeId) {
    case UTF8:
    case LARGE_UTF8:
      return utf8(data, i);
    case LIST:
    case LARGE_LIST:
    case FIXED_LIST:
    case STRUCT:
    case MAP:
      return cellJson(data, i);
    case DICTIONARY: {
      const [dictionary, at] = dictionaryEntry(data, i);
      return cellText(dictionary, at);
    }
    default:
      return scalarText(data, i, type);
  }
}

/** The cell as JSON text ("null" for null): strings quoted, exact numbers as JSON numbers. */
export function cellJson(data: Data, i: number): string {
  if (isNullCell(data, i)) return 'null';
  const type = typeOf(data);
  switch (type.typeId) {
    case UTF8:
    case LARGE_UTF8:
      return JSON.stringify(utf8(data, i));
    case INT:
    case DECIMAL:
    case DURATION:
      return scalarText(data, i, type);
    case FLOAT: {
      const value = floatValue(data, i, type);
      return Number.isFinite(value) ? floatText(value, type) : 'null';
    }
    case BOOL:
      return boolValue(data, i) ? 'true' : 'false';
    case LIST:
    case LARGE_LIST:
    case FIXED_LIST: {
      const [child, start, end] = listRange(data, i, type);
      let text = '[';
      for (let k = start; k < end; k++) text += (k > start ? ',' : '') + cellJson(child, k);
      return `${text}]`;
    }
    case STRUCT: {
      const fields = (data.type as unknown as { children: Array<{ name: string }> }).children;
      let text = '{';
      for (let c = 0; c < fields.length; c++)
        text += `${c > 0 ? ',' : ''}${JSON.stringify(fields[c]!.name)}:${cellJson(data.children[c]!, i)}`;
      return `${text}}`;
    }
    case MAP: {
      const entries = data.children[0]!;
      const offsets = data.valueOffsets as Int32Array;
      const keys = entries.children[0]!;
      const values = entries.children[1]!;
      let text = '{';
      for (let k = offsets[i]!; k < offsets[i + 1]!; k++)
        text += `${k > offsets[i]! ? ',' : ''}${JSON.stringify(cellText(keys, k) ?? '')}:${cellJson(values, k)}`;
      return `${text}}`;
    }
    case DICTIONARY: {
      const [dictionary, at] = dictionaryEntry(data, i);
      return cellJson(dictionary, at);
    }
    default:
      return JSON.stringify(scalarText(data, i, type));
  }
}

/**
 * The cell as a JS value: strings; numbers for integers up to 32 bits, floats, and 64-bit integers
 * that are safe (beyond 2^53 their exact text, as JSON Lines' big integers); booleans; decimals,
 * dates, times, timestamps and binary as their text; lists, structs and maps as arrays and objects
 * (their big integers as text); null.
 */
export function cellValue(data: Data, i: number): unknown {
  if (isNullCell(data, i)) return null;
  const type = typeOf(data);
  switch (type.typeId) {
    case UTF8:
    case LARGE_UTF8:
      return utf8(data, i);
    case INT: {
      if ((type.bitWidth ?? 32) < 64) return (data.values as Int32Array)[i]!;
      const value = (data.values as BigInt64Array)[i]!;
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : value.toString();
    }
    case FLOAT:
      return floatValue(data, i, type);
    case BOOL:
      return boolValue(data, i);
    case LIST:
    case LARGE_LIST:
    case FIXED_LIST:
    case STRUCT:
    case MAP:
      return parseJsonExact(cellJson(data, i)).value;
    case DICTIONARY: {
      const [dictionary, at] = dictionaryEntry(data, i);
      return cellValue(dictionary, at);
    }
    default:
      return scalarText(data, i, type);
  }
}

/** Appends the cell's text JSON-escaped (no quotes); a string goes from its UTF-8 bytes, undecoded. */
export function writeCellJsonText(data: Data, i: number, out: ByteWriter): void {
  if (writeUtf8Json(data, i, out, false)) return;
  const text = cellText(data, i);
  if (text !== null) writeJsonText(out, text);
}

/**
 * Appends the cell's value (`cellValue`) as JSON.stringify writes it: a string JSON-escaped from its
 * UTF-8 bytes, undecoded (what JSON.stringify writes of valid UTF-8 text), other types by
 * JSON.stringify itself.
 */
export function writeCellValueJson(data: Data, i: number, out: ByteWriter): void {
  if (writeUtf8Json(data, i, out, true)) return;
  // cellValue gives a string, number, boolean, null or parsed JSON: never undefined.
  out.writeText(JSON.stringify(cellValue(data, i)) ?? 'null');
}

/**
 * Appends a string cell (a valid utf8 one) JSON-escaped from its UTF-8 bytes, between quotes when
 * `quoted`; false, nothing written, for any other cell.
 */
function writeUtf8Json(data: Data, i: number, out: ByteWriter, quoted: boolean): boolean {
  const typeId = typeOf(data).typeId;
  if ((typeId !== UTF8 && typeId !== LARGE_UTF8) || !data.getValid(i)) return false;
  const offsets = data.valueOffsets;
  const start = Number(offsets[i]);
  const end = Number(offsets[i + 1]);
  const quotes = quoted ? 1 : 0;
  const buffer = out.ensure((end - start) * MAX_ESCAPE_GROWTH + 2 * quotes);
  if (quoted) buffer[out.pos] = QUOTE;
  let pos = escapeUtf8Json(buffer, out.pos + quotes, data.values as Uint8Array, start, end);
  if (quoted) buffer[pos++] = QUOTE;
  out.pos = pos;
  return true;
}

/**
 * Appends the cell as a CSV field (csvCell's rule: the text of `cellText`, quoted when it holds the
 * delimiter, a quote, CR or LF, quotes doubled; nothing for null). `delimiter` is one ASCII byte. A
 * string goes from its UTF-8 bytes, undecoded.
 */
export function writeCellCsv(data: Data, i: number, delimiter: number, out: ByteWriter): void {
  const type = typeOf(data);
  const typeId = type.typeId;
  if (typeId !== UTF8 && typeId !== LARGE_UTF8) {
    // A 64-bit integer read as two words, not made a BigInt.
    const text = typeId === INT ? (data.getValid(i) ? intText(data, i, type) : null) : cellText(data, i);
    if (text !== null) writeTextField(text, delimiter, out);
    return;
  }
  if (!data.getValid(i)) return;
  const offsets = data.valueOffsets;
  writeUtf8Field(data.values as Uint8Array, Number(offsets[i]), Number(offsets[i + 1]), delimiter, out);
}

/** Each 64-bit integer column's values as 32-bit words (made once a column). */
const WORDS = new WeakMap<object, Int32Array>();

/** An integer cell's digits (as scalarText gives them). */
function intText(data: Data, i: number, type: Typed): string {
  if ((type.bitWidth ?? 32) < 64) return String((data.values as Int32Array)[i]);
  const values = data.values as BigInt64Array;
  let view = WORDS.get(values);
  if (view === undefined) {
    view = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
    WORDS.set(values, view);
  }
  const low = view[2 * i]! >>> 0;
  const high = view[2 * i + 1]!;
  // Exact as a Number while the high word is within 2^21 either side (|value| < 2^53).
  if (high >= -0x200000 && high < 0x200000 && !(type.isSigned === false && high < 0))
    return String(high * 0x100000000 + low);
  return String((data.values as BigInt64Array)[i]);
}

function utf8(data: Data, i: number): string {
  const offsets = data.valueOffsets;
  const start = Number(offsets[i]);
  const end = Number(offsets[i + 1]);
  const values = data.values as Uint8Array;
  return Buffer.from(values.buffer, values.byteOffset + start, end - start).toString('utf8');
}

function bytes(data: Data, i: number, typeId: number): Uint8Array {
  const values = data.values as Uint8Array;
  if (typeId === FIXED_BINARY) {
    const width = typeOf(data).byteWidth!;
    return values.subarray(i * width, (i + 1) * width);
  }
  const offsets = data.valueOffsets;
  return values.subarray(Number(offsets[i]), Number(offsets[i + 1]));
}

function boolValue(data: Data, i: number): boolean {
  const at = data.offset + i;
  return ((data.values as Uint8Array)[at >> 3]! & (1 << (at & 7))) !== 0;
}

function floatValue(data: Data, i: number, type: Typed): number {
  // Half precision (precision 0) is stored as uint16 bits.
  if (type.precision === 0) return loadedArrow().util.uint16ToFloat64((data.values as Uint16Array)[i]!);
  return (data.values as Float64Array)[i]!;
}

/** A float's shortest text; a float32 as the shortest decimal that reads back as the same float32. */
function floatText(value: number, type: Typed): string {
  if (type.precision !== 1 || !Number.isFinite(value)) return String(value);
  for (let digits = 1; digits < 9; digits++) {
    const shorter = Number(value.toPrecision(digits));
    if (Math.fround(shorter) === value) return String(shorter);
  }
  return String(value);
}

/** The child and entry range of list `i`. */
function listRange(data: Data, i: number, type: Typed): [Data, number, number] {
  const child = data.children[0]!;
  if (type.typeId === FIXED_LIST) {
    // A fixed-size list's child is sliced with it.
    const size = type.listSize!;
    const start = i * size;
    return [child, start, start + size];
  }
  const offsets = data.valueOffsets;
  return [child, Number(offsets[i]), Number(offsets[i + 1])];
}

/** The dictionary chunk and index a dictionary-encoded cell points at. */
function dictionaryEntry(data: Data, i: number): [Data, number] {
  let at = Number((data.values as Int32Array)[i]);
  const chunks = (data.dictionary as unknown as { data: Data[] }).data;
  for (const chunk of chunks) {
    if (at < chunk.length) return [chunk, at];
    at -= chunk.length;
  }
  throw new Error('a dictionary index past its dictionary (a corrupt Arrow file)');
}

/** Every other kind of cell, as its text. */
function scalarText(data: Data, i: number, type: Typed): string {
  switch (type.typeId) {
    case INT:
    case DURATION:
      return String((data.values as Int32Array | BigInt64Array)[i]);
    case FLOAT:
      return floatText(floatValue(data, i, type), type);
    case BOOL:
      return boolValue(data, i) ? 'true' : 'false';
    case DECIMAL:
      return decimalText(data.values as Uint32Array, i, (type.bitWidth ?? 128) / 32, type.scale ?? 0);
    case DATE: {
      const raw = (data.values as Int32Array | BigInt64Array)[i]!;
      const ms = type.unit === 0 ? Number(raw) * 86_400_000 : Number(raw);
      return isoDate(ms).slice(0, 10);
    }
    case TIME:
      return timeText(BigInt((data.values as Int32Array | BigInt64Array)[i]!), type.unit ?? 0);
    case TIMESTAMP:
      return timestampText((data.values as BigInt64Array)[i]!, type.unit ?? 0, Boolean(type.timezone));
    case BINARY:
    case LARGE_BINARY:
    case FIXED_BINARY: {
      const view = bytes(data, i, type.typeId);
      return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64');
    }
    default: {
      // Kinds no reader here meets in practice (intervals, unions, views): apache-arrow's own value.
      const value: unknown = loadedArrow().makeVector(data).get(i);
      return typeof value === 'string'
        ? value
        : JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    }
  }
}

/** A decimal's exact text: its unscaled two's-complement words (little-endian), scaled. */
function decimalText(words: Uint32Array, i: number, stride: number, scale: number): string {
  const at = i * stride;
  let value = 0n;
  for (let w = stride - 1; w >= 0; w--) value = (value << 32n) | BigInt(words[at + w]!);
  if ((words[at + stride - 1]! & 0x80000000) !== 0) value -= 1n << BigInt(32 * stride);
  const negative = value < 0n;
  let digits = (negative ? -value : value).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, '0');
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  } else if (scale < 0) digits += '0'.repeat(-scale);
  return negative ? `-${digits}` : digits;
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ` of epoch milliseconds. */
function isoDate(ms: number): string {
  return new Date(ms).toISOString();
}

/** Seconds and the fraction (in the unit, never negative) of a count of units. */
function split(value: bigint, unit: number): [bigint, bigint] {
  const per = PER_SECOND[unit as 0]!;
  let seconds = value / per;
  let fraction = value % per;
  if (fraction < 0n) {
    fraction += per;
    seconds -= 1n;
  }
  return [seconds, fraction];
}

function fractionText(fraction: bigint | number, unit: number): string {
  const digits = FRACTION_DIGITS[unit as 0]!;
  return digits === 0 ? '' : `.${fraction.toString().padStart(digits, '0')}`;
}

/**
 * `YYYY-MM-DD` of a day counted from 1970-01-01, by arithmetic (Hinnant's days-to-civil): a
 * timestamp column's days mostly differ row to row, and Date#toISOString was a tenth of a Parquet to
 * CSV join's CPU. Years outside 0-9999 take toISOString's own form (+YYYYYY).
 */
function dateText(day: number): string {
  const z = day + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  if (y < 0 || y > 9999) {
    const iso = isoDate(day * 86_400_000);
    return iso.slice(0, iso.indexOf('T'));
  }
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

/** The date part of the day written last (a column's timestamps mostly fall on few days). */
let lastDay = Number.NaN;
let lastDayText = '';

function timestampText(value: bigint, unit: number, utc: boolean): string {
  let s: number;
  let fraction: number | bigint;
  const units = Number(value);
  if (Number.isSafeInteger(units)) {
    // Number arithmetic where it is exact: BigInt's costs several times more a cell.
    const per = PER_SECOND_NUMBER[unit as 0]!;
    s = Math.floor(units / per);
    // The division rounds; the remainder (exact) says when it rounded across a whole second.
    let rest = units - s * per;
    if (rest < 0) {
      s--;
      rest += per;
    } else if (rest >= per) {
      s++;
      rest -= per;
    }
    fraction = rest;
  } else {
    const [seconds, rest] = split(value, unit);
    s = Number(seconds);
    fraction = rest;
  }
  const day = Math.floor(s / 86_400);
  // Past Date's range: its RangeError, as for any instant it cannot hold.
  if (Math.abs(s) > 8.64e12) isoDate(s * 1000);
  if (day !== lastDay) {
    lastDayText = dateText(day);
    lastDay = day;
  }
  const t = s - day * 86_400;
  const two = (n: number) => (n < 10 ? `0${n}` : String(n));
  const clock = `${two(Math.floor(t / 3600))}:${two(Math.floor(t / 60) % 60)}:${two(t % 60)}`;
  return `${lastDayText}T${clock}${fractionText(fraction, unit)}${utc ? 'Z' : ''}`;
}

function timeText(value: bigint, unit: number): string {
  const [seconds, fraction] = split(value, unit);
  const s = Number(seconds);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}${fractionText(fraction, unit)}`;
}

const QUOTE = 0x22;

/** The buffers strings were last read from and written to, with views that move four bytes at once. */
let readFrom: Uint8Array | undefined;
let readView: DataView | undefined;
let writtenTo: Uint8Array | undefined;
let writeView: DataView | undefined;

/**
 * `src[start, end)`, valid UTF-8, JSON-escaped into `out` at `pos` (writeJsonEscaped's bytes): four
 * bytes a step while none needs escaping, a word that holds one byte by byte. Review text is hundreds
 * of bytes with few escapes: byte by byte throughout took three times as long.
 */
function escapeUtf8Json(out: Uint8Array, pos: number, src: Uint8Array, start: number, end: number): number {
  if (src !== readFrom) {
    readFrom = src;
    readView = new DataView(src.buffer, src.byteOffset, src.byteLength);
  }
  if (out !== writtenTo) {
    writtenTo = out;
    writeView = new DataView(out.buffer, out.byteOffset, out.byteLength);
  }
  const from = readView!;
  const to = writeView!;
  let k = start;
  for (const last = end - 3; k < last; k += 4) {
    const w = from.getInt32(k, true);
    if (jsonSpecialBytes(w) === 0) {
      to.setInt32(pos, w, true);
      pos += 4;
    } else pos = writeJsonEscaped(out, pos, src, k, k + 4, -1);
  }
  return writeJsonEscaped(out, pos, src, k, end, -1);
}
