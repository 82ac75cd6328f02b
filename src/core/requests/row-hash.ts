import { ByteWriter } from '../../internal/byte-writer.js';
import { MAX_ESCAPE_GROWTH, writeDigits, writeJsonId } from '../../internal/json-bytes.js';
import { CsvRowBatch } from '../csv/csv-row-batch.js';
import { jsonSpecialBytes } from '../jsonl/json-word.js';
import { JsonlRowBatch } from '../jsonl/jsonl-row-batch.js';
import type { CellRef, RowBatch } from '../rows/row-batch.js';
import { ID_SLOT } from './template-slots.js';

/**
 * A 53-bit hash of the cells a row's request was rendered from, in the template's slot order, each
 * as the template writes it (`RowBatch.writeJsonText`). With the template fixed, equal row hashes
 * mean equal requests: the join compares a row's hash now with the one prepare stored, to tell a
 * result that answers this row from one that answers an older text of it. Two FNV-style lanes over
 * the bytes, no allocation: a fraction of what rendering the line costs.
 */
export class RowHash {
  #a = SEED_A;
  #b = SEED_B;
  /** The buffer cells were last read from, and a view of it that reads four bytes at once. */
  #bytes: Uint8Array | undefined;
  #view: DataView | undefined;
  /** The buffer cells were last copied into (copyCsvCell), and its view. */
  #out: Uint8Array | undefined;
  #outView: DataView | undefined;

  reset(): void {
    this.#a = SEED_A;
    this.#b = SEED_B;
  }

  /** Adds one cell's bytes, `bytes[start, end)`, and the end of the cell. */
  cell(bytes: Uint8Array, start: number, end: number): void {
    if (bytes !== this.#bytes) {
      this.#bytes = bytes;
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const view = this.#view!;
    let a = this.#a;
    let b = this.#b;
    // Four bytes a read (a cell is often hundreds of bytes: this loop is the check's cost).
    let k = start;
    for (const last = end - 3; k < last; k += 4) {
      const w = view.getInt32(k, true);
      a = Math.imul(a ^ w, 0x01000193);
      a ^= a >>> 15;
      b = Math.imul(b ^ w, 0x5bd1e995);
      b ^= b >>> 13;
    }
    for (; k < end; k++) {
      a = Math.imul(a ^ bytes[k]!, 0x01000193);
      b = Math.imul(b ^ bytes[k]!, 0x5bd1e995);
    }
    // The cell's length ends it: "ab","c" and "a","bc" differ.
    const n = end - start;
    this.#a = Math.imul(a ^ n ^ 0x80000000, 0x01000193);
    this.#b = Math.imul(b ^ n ^ 0x40000000, 0x5bd1e995);
  }

  /**
   * Adds a cell whose JSON text is its bytes as they stand, `bytes[start, end)`, exactly as `cell`
   * would, when they are: no `"`, `\` or control byte (what JSON escaping changes). Returns false,
   * adding nothing, when they are not (the caller then hashes the escaped text). Four bytes a step,
   * the checks word-wide ("has a byte below 0x20 / equal to q"), so a plain cell is read once.
   */
  plainCell(bytes: Uint8Array, start: number, end: number): boolean {
    if (bytes !== this.#bytes) {
      this.#bytes = bytes;
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const view = this.#view!;
    let a = this.#a;
    let b = this.#b;
    let k = start;
    for (const last = end - 3; k < last; k += 4) {
      const w = view.getInt32(k, true);
      if (jsonSpecialBytes(w)) return false;
      a = Math.imul(a ^ w, 0x01000193);
      a ^= a >>> 15;
      b = Math.imul(b ^ w, 0x5bd1e995);
      b ^= b >>> 13;
    }
    for (; k < end; k++) {
      const c = bytes[k]!;
      if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    const n = end - start;
    this.#a = Math.imul(a ^ n ^ 0x80000000, 0x01000193);
    this.#b = Math.imul(b ^ n ^ 0x40000000, 0x5bd1e995);
    return true;
  }

  /** Views that read `src` and write `out` a word at a time (made again only for another buffer). */
  #viewsOf(src: Uint8Array, out: Uint8Array): void {
    if (src !== this.#bytes) {
      this.#bytes = src;
      this.#view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    }
    if (out !== this.#out) {
      this.#out = out;
      this.#outView = new DataView(out.buffer, out.byteOffset, out.byteLength);
    }
  }

  /**
   * Copies `src[start, end)`, already JSON text (a JSON Lines string member's bytes), into `out` at
   * `at` and adds it as `cell` would, in one pass a word at a time: a native copy and a second pass
   * over the copy cost half as much again.
   */
  copyCell(src: Uint8Array, start: number, end: number, out: Uint8Array, at: number): void {
    this.#viewsOf(src, out);
    const view = this.#view!;
    const outView = this.#outView!;
    const n = end - start;
    let a = this.#a;
    let b = this.#b;
    let k = 0;
    for (const last = n - 3; k < last; k += 4) {
      const w = view.getInt32(start + k, true);
      outView.setInt32(at + k, w, true);
      a = Math.imul(a ^ w, 0x01000193);
      a ^= a >>> 15;
      b = Math.imul(b ^ w, 0x5bd1e995);
      b ^= b >>> 13;
    }
    for (; k < n; k++) {
      const c = src[start + k]!;
      out[at + k] = c;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.#a = Math.imul(a ^ n ^ 0x80000000, 0x01000193);
    this.#b = Math.imul(b ^ n ^ 0x40000000, 0x5bd1e995);
  }

  /**
   * Copies a CSV cell, `src[start, end)`, into `out` at `at` as its JSON text where that keeps its
   * length, and adds that text as `cell` would: each doubled quote (with `doubledQuote` 0x22, the
   * field escaped them) becomes `\"`, two bytes for two. Returns false, having added nothing, when
   * the text needs an escape that grows it (a line break, a backslash, a control byte, a lone `"`):
   * the caller then writes the cell another way, over whatever this wrote. One pass a word at a time:
   * read, checked (the SWAR tests of `plainCell`), written and hashed; a word with a byte to escape
   * is fixed a byte at a time. A native copy and a second pass over the copy cost half as much again.
   */
  copyCsvCell(
    src: Uint8Array,
    start: number,
    end: number,
    doubledQuote: number,
    out: Uint8Array,
    at: number,
  ): boolean {
    this.#viewsOf(src, out);
    const view = this.#view!;
    const outView = this.#outView!;
    const pairs = doubledQuote === 0x22;
    const n = end - start;
    let a = this.#a;
    let b = this.#b;
    /** The second quote of a pair whose first became the backslash (relative to `start`): it stays. */
    let kept = -1;
    let k = 0;
    const last = n - 3;
    while (k < last) {
      // Words with nothing to escape, in a loop of their own: a branch into the fix-up inside it cost
      // this loop a sixth of its speed.
      for (; k < last; k += 4) {
        const w = view.getInt32(start + k, true);
        if (jsonSpecialBytes(w)) break;
        outView.setInt32(at + k, w, true);
        a = Math.imul(a ^ w, 0x01000193);
        a ^= a >>> 15;
        b = Math.imul(b ^ w, 0x5bd1e995);
        b ^= b >>> 13;
      }
      if (k >= last) break;
      // A word with a byte to escape, a byte at a time.
      let w = view.getInt32(start + k, true);
      for (let p = k; p < k + 4; p++) {
        const c = src[start + p]!;
        if (p === kept || (c >= 0x20 && c !== 0x22 && c !== 0x5c)) continue;
        if (!pairs || c !== 0x22 || p + 1 >= n || src[start + p + 1] !== 0x22) return false;
        const shift = (p - k) << 3;
        w = (w & ~(0xff << shift)) | (0x5c << shift);
        kept = p + 1;
      }
      outView.setInt32(at + k, w, true);
      a = Math.imul(a ^ w, 0x01000193);
      a ^= a >>> 15;
      b = Math.imul(b ^ w, 0x5bd1e995);
      b ^= b >>> 13;
      k += 4;
    }
    for (; k < n; k++) {
      let c = src[start + k]!;
      if (k !== kept && (c < 0x20 || c === 0x22 || c === 0x5c)) {
        if (!pairs || c !== 0x22 || k + 1 >= n || src[start + k + 1] !== 0x22) return false;
        c = 0x5c;
        kept = k + 1;
      }
      out[at + k] = c;
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
    }
    this.#a = Math.imul(a ^ n ^ 0x80000000, 0x01000193);
    this.#b = Math.imul(b ^ n ^ 0x40000000, 0x5bd1e995);
    return true;
  }

  /**
   * Adds a CSV cell as `cell` adds its JSON text, made here from its bytes as read without writing it
   * (`writeJsonEscaped`'s rules: with `doubledQuote` >= 0 each doubled quote reads as one; `"`, `\`
   * and control bytes take their escapes).
   */
  csvCell(src: Uint8Array, start: number, end: number, doubledQuote: number): void {
    if (src !== this.#bytes) {
      this.#bytes = src;
      this.#view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    }
    const view = this.#view!;
    let a = this.#a;
    let b = this.#b;
    /** Output bytes not yet a whole word: `filled` of them, low byte first, in `w`. */
    let w = 0;
    let filled = 0;
    let n = 0;
    let i = start;
    while (i < end) {
      // Four bytes JSON escaping leaves alone (no quote, backslash or control byte) go in as a word.
      if (i + 4 <= end) {
        const word = view.getInt32(i, true);
        if (jsonSpecialBytes(word) === 0) {
          const out = filled === 0 ? word : w | (word << (filled << 3));
          a = Math.imul(a ^ out, 0x01000193);
          a ^= a >>> 15;
          b = Math.imul(b ^ out, 0x5bd1e995);
          b ^= b >>> 13;
          if (filled !== 0) w = word >>> ((4 - filled) << 3);
          n += 4;
          i += 4;
          continue;
        }
      }
      const c = src[i]!;
      if (c === doubledQuote) i++;
      i++;
      const e = ESCAPE[c]!;
      // A byte at a time: its copy, or its escape.
      const count = e === 0 ? 1 : e === 1 ? 6 : 2;
      for (let k = 0; k < count; k++) {
        const x =
          e === 0
            ? c
            : k === 0
              ? 0x5c
              : e !== 1
                ? e
                : k === 1
                  ? 0x75
                  : k < 4
                    ? 0x30
                    : HEX[k === 4 ? c >> 4 : c & 15]!;
        w |= x << (filled << 3);
        n++;
        if (++filled === 4) {
          a = Math.imul(a ^ w, 0x01000193);
          a ^= a >>> 15;
          b = Math.imul(b ^ w, 0x5bd1e995);
          b ^= b >>> 13;
          w = 0;
          filled = 0;
        }
      }
    }
    // The last bytes one at a time, as `cell` takes a tail shorter than a word.
    for (let t = 0; t < filled; t++) {
      const x = (w >>> (t << 3)) & 0xff;
      a = Math.imul(a ^ x, 0x01000193);
      b = Math.imul(b ^ x, 0x5bd1e995);
    }
    this.#a = Math.imul(a ^ n ^ 0x80000000, 0x01000193);
    this.#b = Math.imul(b ^ n ^ 0x40000000, 0x5bd1e995);
  }

  /** The hash of the cells added since `reset`. */
  value(): number {
    return (mix(this.#a) >>> 0) * 0x200000 + (mix(this.#b ^ 0x9e3779b9) >>> 11);
  }
}

/** JSON escaping by byte, as `writeJsonEscaped` does it: 0 copy, 1 \u00xx, else backslash + that byte. */
const ESCAPE = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) ESCAPE[c] = 1;
ESCAPE[0x08] = 0x62;
ESCAPE[0x09] = 0x74;
ESCAPE[0x0a] = 0x6e;
ESCAPE[0x0c] = 0x66;
ESCAPE[0x0d] = 0x72;
ESCAPE[0x22] = 0x22;
ESCAPE[0x5c] = 0x5c;
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

const SEED_A = 0x811c9dc5;
const SEED_B = 0x9747b28c;

/** MurmurHash3's finalizer: every input bit reaches every output bit. */
function mix(h: number): number {
  let x = h;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return x ^ (x >>> 16);
}

/** The columns a template's row hash covers: its slots' columns, in order (the custom_id's left out). */
export function hashedColumns(template: { slots: readonly number[]; columns: readonly string[] }): string[] {
  return template.slots.filter((slot) => slot !== ID_SLOT).map((slot) => template.columns[slot]!);
}

/** The first line of a row-hashes file: what its hashes cover. */
export interface RowHashesHeader {
  row_hashes: 1;
  columns: string[];
}

/** Digits of a stored row hash: 0-9, A-Z, a-z, - and _. */
const DIGITS = Array.from('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_', (c) =>
  c.charCodeAt(0),
);

/** A row hash as it is stored (`row-hashes.tsv`) and compared: 9 digits of 6 bits (toString(36) cost more than the hash). */
export function rowHashText(hash: number): string {
  const high = Math.floor(hash / 0x1000000);
  const low = hash - high * 0x1000000;
  return String.fromCharCode(
    DIGITS[(high >>> 24) & 63]!,
    DIGITS[(high >>> 18) & 63]!,
    DIGITS[(high >>> 12) & 63]!,
    DIGITS[(high >>> 6) & 63]!,
    DIGITS[high & 63]!,
    DIGITS[(low >>> 18) & 63]!,
    DIGITS[(low >>> 12) & 63]!,
    DIGITS[(low >>> 6) & 63]!,
    DIGITS[low & 63]!,
  );
}

/**
 * Appends a line of a row-hashes file, `"<custom_id>"\t<hash>\n` (the id as JSON, the hash as
 * `rowHashText` writes it), as bytes: a batch's lines, made as one string, cost the sharder its
 * concatenation, a byte count and an encode. `id` undefined: `row-<index>`, its digits written
 * without making the string.
 */
export function writeRowHashLine(out: ByteWriter, id: string | undefined, index: number, hash: number): void {
  if (id === undefined) {
    out.ensure(30);
    out.pos = writeRowIdBytes(out.buffer, out.pos, index, true);
  } else out.pos = writeJsonId(out.ensure(id.length * MAX_ESCAPE_GROWTH + 2), out.pos, id, true);
  const buffer = out.ensure(11);
  let pos = out.pos;
  buffer[pos++] = 0x09;
  const high = Math.floor(hash / 0x1000000);
  const low = hash - high * 0x1000000;
  buffer[pos++] = DIGITS[(high >>> 24) & 63]!;
  buffer[pos++] = DIGITS[(high >>> 18) & 63]!;
  buffer[pos++] = DIGITS[(high >>> 12) & 63]!;
  buffer[pos++] = DIGITS[(high >>> 6) & 63]!;
  buffer[pos++] = DIGITS[high & 63]!;
  buffer[pos++] = DIGITS[(low >>> 18) & 63]!;
  buffer[pos++] = DIGITS[(low >>> 12) & 63]!;
  buffer[pos++] = DIGITS[(low >>> 6) & 63]!;
  buffer[pos++] = DIGITS[low & 63]!;
  buffer[pos++] = 0x0a;
  out.pos = pos;
}

/**
 * Writes `row-<index>` (customIdFor's id of a row without a key), in quotes when `quoted`, at `pos`
 * of `buffer` (room for 30 bytes); returns the position after it.
 */
export function writeRowIdBytes(buffer: Uint8Array, at: number, index: number, quoted: boolean): number {
  let pos = at;
  if (quoted) buffer[pos++] = 0x22;
  buffer[pos++] = 0x72; // r
  buffer[pos++] = 0x6f; // o
  buffer[pos++] = 0x77; // w
  buffer[pos++] = 0x2d; // -
  pos = writeDigits(buffer, pos, index);
  if (quoted) buffer[pos++] = 0x22;
  return pos;
}

/**
 * The row hash of rows read again (the join's source), the same way prepare's renderer made it: the
 * columns are the template's slots, in order, as `row-hashes.tsv` names them.
 */
export class RowHasher {
  readonly #columns: readonly string[];
  readonly #hash = new RowHash();
  readonly #scratch = new ByteWriter(4096);
  readonly #range = new Int32Array(3);
  #layout: object | undefined;
  #refs: Array<CellRef | undefined> = [];

  constructor(columns: readonly string[]) {
    this.#columns = columns;
  }

  hash(rows: RowBatch, i: number): number {
    if (this.#layout !== rows.layout) {
      this.#layout = rows.layout;
      this.#refs = this.#columns.map((name) => rows.ref(name));
    }
    const hash = this.#hash;
    const out = this.#scratch;
    // A CSV cell is hashed where it was read: as it stands when escaping would not change it (most
    // cells), else escaped on the way, never written.
    const csv = rows instanceof CsvRowBatch ? rows : undefined;
    // A JSON Lines cell whose JSON text is its bytes (most strings) is hashed where it was read too.
    const jsonl = rows instanceof JsonlRowBatch ? rows : undefined;
    const range = this.#range;
    hash.reset();
    for (const ref of this.#refs) {
      if (jsonl && ref !== undefined && jsonl.cellRange(i, ref, range)) {
        hash.cell(jsonl.buffer, range[0]!, range[1]!);
        continue;
      }
      if (csv && ref !== undefined && csv.cellRange(i, ref, range)) {
        if (range[2] !== -1 || !hash.plainCell(csv.buffer, range[0]!, range[1]!))
          hash.csvCell(csv.buffer, range[0]!, range[1]!, range[2]!);
        continue;
      }
      out.pos = 0;
      if (ref !== undefined) rows.writeJsonText(i, ref, out);
      hash.cell(out.buffer, 0, out.pos);
    }
    return hash.value();
  }
}
