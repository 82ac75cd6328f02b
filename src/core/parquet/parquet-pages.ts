/**
 * Decodes one flat Parquet column chunk page by page into Arrow buffers (validity bitmap, values,
 * or offsets and bytes), a slice of rows at a time: only the page being read is held decompressed.
 * Handles PLAIN and dictionary (PLAIN_DICTIONARY, RLE_DICTIONARY) values, RLE booleans, definition
 * levels for nulls, V1 and V2 data pages. What it does not handle is found from the footer before
 * reading (parquet-page-plan.ts) and left to parquet-wasm.
 */
import { BatchBuffers } from './parquet-buffers.js';
import { decompress } from './parquet-codecs.js';
import { readPageHeader } from './parquet-thrift.js';

/** How a column is decoded (parquet-page-plan.ts chooses it). */
export interface PageColumn {
  /** The column's index among the row group's column chunks. */
  leaf: number;
  /** Physical type: 0 BOOLEAN, 1 INT32, 2 INT64, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY. */
  physical: number;
  /** 1 when the column is OPTIONAL (its pages carry definition levels), 0 when REQUIRED. */
  maxDefinition: number;
}

/** A slice of a column as Arrow buffers. */
export interface ColumnPart {
  length: number;
  nullCount: number;
  /** Arrow validity bits; absent when no value is null. */
  validity?: Uint8Array;
  /** Fixed-width values, or booleans as bits, or a string column's bytes. */
  data: Uint8Array;
  /** A string or binary column's offsets. */
  offsets?: Int32Array;
}

const PLAIN = 0;
const PLAIN_DICTIONARY = 2;
const RLE = 3;
const BIT_PACKED = 4;
const RLE_DICTIONARY = 8;

/** A data page being read: its levels and values, and how far the reading has come. */
interface Page {
  rows: number;
  row: number;
  /** Definition levels (1 = a value), or undefined when every row has one. */
  defined: Uint8Array | undefined;
  bytes: Uint8Array;
  view: DataView;
  /** Where the next PLAIN value starts. */
  pos: number;
  /** Dictionary indices (or RLE booleans), and the next one. */
  indices: Int32Array | undefined;
  next: number;
}

/** A dictionary page's values: fixed-width bytes, or offsets and bytes. */
interface Dictionary {
  data: Uint8Array;
  offsets: Int32Array | undefined;
  size: number;
}

const WIDTH: Record<number, number> = { 1: 4, 2: 8, 4: 4, 5: 8 };

/** Reads a column chunk's rows in slices. */
export class ColumnCursor {
  readonly #column: PageColumn;
  readonly #chunk: Uint8Array;
  readonly #codec: number;
  readonly #width: number;
  #pos = 0;
  #page: Page | undefined;
  #dictionary: Dictionary | undefined;

  constructor(column: PageColumn, chunk: Uint8Array, codec: number) {
    this.#column = column;
    this.#chunk = chunk;
    this.#codec = codec;
    this.#width = WIDTH[column.physical] ?? 0;
  }

  /**
   * The next `rows` rows (fewer only if the chunk ends), in shared memory from `buffers` (the pool's
   * when the decode thread was given some).
   */
  async take(rows: number, buffers: BatchBuffers = new BatchBuffers()): Promise<ColumnPart> {
    const strings = this.#column.physical === 6;
    const bool = this.#column.physical === 0;
    let validity: Uint8Array | undefined;
    let nullCount = 0;
    let offsets: Int32Array | undefined;
    if (strings) {
      const bytes = buffers.take((rows + 1) * 4);
      offsets = new Int32Array(bytes.buffer, bytes.byteOffset, rows + 1);
      offsets[0] = 0;
    }
    let data = strings ? buffers.take(0) : buffers.take(bool ? (rows + 7) >> 3 : rows * this.#width);
    // Booleans are set bit by bit; a recycled buffer holds an earlier batch's.
    if (bool) data.fill(0);
    let used = 0;
    let filled = 0;
    while (filled < rows) {
      let page = this.#page;
      if (!page || page.row === page.rows) {
        page = await this.#nextPage();
        if (!page) break;
      }
      const count = Math.min(rows - filled, page.rows - page.row);
      const defined = page.defined;
      if (defined) {
        for (let i = 0; i < count; i++) {
          if (defined[page.row + i] === 0) {
            if (!validity) validity = buffers.take((rows + 7) >> 3).fill(0xff);
            const at = filled + i;
            validity[at >> 3]! &= ~(1 << (at & 7));
            nullCount++;
          }
        }
      }
      if (strings) {
        if (data.length === 0 && !page.indices) {
          // Sized from the page's bytes per row, so the buffer is seldom grown.
          const perRow = (page.bytes.length - page.pos) / (page.rows - page.row);
          data = buffers.take(Math.ceil(perRow * (rows - filled) * 1.05) + 64);
        }
        used = this.#strings(page, count, filled, offsets!, data, used, (need, keep) => {
          const grown = buffers.take(Math.max(need, data.length * 2, 1024));
          grown.set(data.subarray(0, keep));
          buffers.drop(data);
          data = grown;
          return data;
        });
      } else if (bool) this.#booleans(page, count, filled, data);
      else this.#fixed(page, count, filled, data);
      page.row += count;
      filled += count;
    }
    // A buffer far larger than its bytes is cut to them (one never released stays that large).
    if (strings && used < data.length * 0.5) {
      const cut = buffers.take(used);
      cut.set(data.subarray(0, used));
      buffers.drop(data);
      data = cut;
    } else if (strings) data = data.subarray(0, used);
    const part: ColumnPart = { length: filled, nullCount, data };
    if (validity) part.validity = validity;
    if (offsets) part.offsets = filled === rows ? offsets : offsets.subarray(0, filled + 1);
    return part;
  }

  /** Copies `count` rows of strings into `data` from `used` on; returns the bytes now used. */
  #strings(
    page: Page,
    count: number,
    filled: number,
    offsets: Int32Array,
    data: Uint8Array,
    used: number,
    grow: (need: number, keep: number) => Uint8Array,
  ): number {
    const defined = page.defined;
    const dict = this.#dictionary;
    const bytes = page.bytes;
    for (let i = 0; i < count; i++) {
      if (defined && defined[page.row + i] === 0) {
        offsets[filled + i + 1] = used;
        continue;
      }
      let start: number;
      let length: number;
      let source: Uint8Array;
      if (page.indices) {
        const index = page.indices[page.next++]!;
        if (!dict || index >= dict.size) throw new Error(`dictionary index ${index} out of range`);
        start = dict.offsets![index]!;
        length = dict.offsets![index + 1]! - start;
        source = dict.data;
      } else {
        if (page.pos + 4 > bytes.length) throw new Error('a string runs past its page');
        length = page.view.getInt32(page.pos, true);
        start = page.pos + 4;
        page.pos = start + length;
        if (length < 0 || page.pos > bytes.length) throw new Error('a string runs past its page');
        source = bytes;
      }
      if (used + length > data.length) data = grow(used + length, used);
      if (length < 48) for (let b = 0; b < length; b++) data[used + b] = source[start + b]!;
      else data.set(source.subarray(start, start + length), used);
      used += length;
      offsets[filled + i + 1] = used;
    }
    return used;
  }

  #fixed(page: Page, count: number, filled: number, out: Uint8Array): void {
    const width = this.#width;
    const defined = page.defined;
    const dict = this.#dictionary;
    if (!defined && !page.indices) {
      const end = page.pos + count * width;
      if (end > page.bytes.length) throw new Error('values run past their page');
      out.set(page.bytes.subarray(page.pos, end), filled * width);
      page.pos = end;
      return;
    }
    for (let i = 0; i < count; i++) {
      if (defined && defined[page.row + i] === 0) {
        // A null's slot is zeroed: a recycled buffer holds an earlier batch's values.
        out.fill(0, (filled + i) * width, (filled + i + 1) * width);
        continue;
      }
      let source: Uint8Array;
      let start: number;
      if (page.indices) {
        const index = page.indices[page.next++]!;
        if (!dict || index >= dict.size) throw new Error(`dictionary index ${index} out of range`);
        source = dict.data;
        start = index * width;
      } else {
        source = page.bytes;
        start = page.pos;
        page.pos += width;
        if (page.pos > source.length) throw new Error('values run past their page');
      }
      const at = (filled + i) * width;
      for (let b = 0; b < width; b++) out[at + b] = source[start + b]!;
    }
  }

  #booleans(page: Page, count: number, filled: number, out: Uint8Array): void {
    const defined = page.defined;
    for (let i = 0; i < count; i++) {
      if (defined && defined[page.row + i] === 0) continue;
      let value: number;
      if (page.indices) value = page.indices[page.next++]!;
      else {
        if (page.pos >> 3 >= page.bytes.length) throw new Error('values run past their page');
        value = (page.bytes[page.pos >> 3]! >> (page.pos & 7)) & 1;
        page.pos++;
      }
      const at = filled + i;
      if (value) out[at >> 3]! |= 1 << (at & 7);
    }
  }

  /** Reads pages up to the next data page (a dictionary page on the way is kept). */
  async #nextPage(): Promise<Page | undefined> {
    this.#page = undefined;
    while (this.#pos < this.#chunk.length) {
      const { header, end } = readPageHeader(this.#chunk, this.#pos);
      const body = this.#chunk.subarray(end, end + header.compressedSize);
      if (body.length !== header.compressedSize) throw new Error('a page runs past its column chunk');
      this.#pos = end + header.compressedSize;
      if (header.type === 2) {
        const bytes = await decompress(this.#codec, body, header.uncompressedSize);
        this.#dictionary = this.#readDictionary(bytes, header.numValues, header.encoding);
        continue;
      }
      if (header.type !== 0 && header.type !== 3) continue;
      let defined: Uint8Array | undefined;
      let bytes: Uint8Array;
      let pos = 0;
      if (header.type === 3) {
        // V2: the levels come first, never compressed; then the values, compressed or not.
        const levels = header.repetitionLevelsLength + header.definitionLevelsLength;
        if (header.repetitionLevelsLength !== 0) throw new Error('a flat column has repetition levels');
        if (this.#column.maxDefinition > 0) {
          defined = new Uint8Array(header.numValues);
          hybrid(body, 0, levels, 1, header.numValues, defined);
        }
        const values = body.subarray(levels);
        bytes =
          header.isCompressed && this.#codec !== 0
            ? await decompress(this.#codec, values, header.uncompressedSize - levels)
            : values;
      } else {
        bytes = await decompress(this.#codec, body, header.uncompressedSize);
        if (this.#column.maxDefinition > 0) {
          defined = new Uint8Array(header.numValues);
          if (header.definitionLevelEncoding === BIT_PACKED) {
            // The deprecated encoding: no length, bits packed from the most significant.
            pos = (header.numValues + 7) >> 3;
            if (pos > bytes.length) throw new Error('a page ends early');
            for (let i = 0; i < header.numValues; i++) defined[i] = (bytes[i >> 3]! >> (7 - (i & 7))) & 1;
          } else {
            const length = readUint32(bytes, 0);
            hybrid(bytes, 4, 4 + length, 1, header.numValues, defined);
            pos = 4 + length;
          }
        }
      }
      let present = header.numValues;
      if (defined) {
        present = 0;
        for (let i = 0; i < defined.length; i++) present += defined[i]!;
      }
      let indices: Int32Array | undefined;
      const encoding = header.encoding;
      if (encoding === PLAIN_DICTIONARY || encoding === RLE_DICTIONARY) {
        if (!this.#dictionary) throw new Error('a dictionary-encoded page comes before its dictionary');
        indices = new Int32Array(present);
        const bitWidth = bytes[pos]!;
        hybrid(bytes, pos + 1, bytes.length, bitWidth, present, indices);
      } else if (encoding === RLE && this.#column.physical === 0) {
        indices = new Int32Array(present);
        const length = readUint32(bytes, pos);
        hybrid(bytes, pos + 4, pos + 4 + length, 1, present, indices);
      } else if (encoding !== PLAIN) {
        throw new Error(`page encoding ${encoding} is not decoded here`);
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // A PLAIN boolean's position counts bits.
      const start = this.#column.physical === 0 ? pos * 8 : pos;
      this.#page = { rows: header.numValues, row: 0, defined, bytes, view, pos: start, indices, next: 0 };
      return this.#page;
    }
    return undefined;
  }

  #readDictionary(bytes: Uint8Array, size: number, encoding: number): Dictionary {
    if (encoding !== PLAIN && encoding !== PLAIN_DICTIONARY)
      throw new Error(`dictionary encoding ${encoding} is not decoded here`);
    if (this.#column.physical !== 6) {
      const width = this.#width;
      if (size * width > bytes.length) throw new Error('the dictionary page is too short');
      return { data: bytes.slice(0, size * width), offsets: undefined, size };
    }
    const offsets = new Int32Array(size + 1);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const data = new Uint8Array(bytes.length);
    let pos = 0;
    let used = 0;
    for (let i = 0; i < size; i++) {
      if (pos + 4 > bytes.length) throw new Error('a dictionary string runs past its page');
      const length = view.getInt32(pos, true);
      pos += 4;
      if (length < 0 || pos + length > bytes.length)
        throw new Error('a dictionary string runs past its page');
      data.set(bytes.subarray(pos, pos + length), used);
      pos += length;
      used += length;
      offsets[i + 1] = used;
    }
    return { data, offsets, size };
  }
}

function readUint32(bytes: Uint8Array, pos: number): number {
  if (pos + 4 > bytes.length) throw new Error('a page ends early');
  return (bytes[pos]! | (bytes[pos + 1]! << 8) | (bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 24)) >>> 0;
}

/**
 * Parquet's RLE / bit-packed hybrid encoding (levels, dictionary indices, RLE booleans): `count`
 * values of `bitWidth` bits from `bytes[pos..end)` into `out`.
 */
export function hybrid(
  bytes: Uint8Array,
  pos: number,
  end: number,
  bitWidth: number,
  count: number,
  out: Uint8Array | Int32Array,
): void {
  if (bitWidth > 32) throw new Error(`bit width ${bitWidth} is out of range`);
  let o = 0;
  const valueBytes = (bitWidth + 7) >> 3;
  while (o < count) {
    if (pos >= end) throw new Error('RLE data ends early');
    let header = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[pos++]!;
      header += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
    }
    if (header & 1) {
      // Bit-packed: groups of 8 values, least significant bit first.
      const values = (header >>> 1) * 8;
      const take = Math.min(values, count - o);
      if (bitWidth === 0) {
        out.fill(0, o, o + take);
      } else {
        let bit = 0;
        const mask = bitWidth === 32 ? 0xffffffff : (1 << bitWidth) - 1;
        for (let i = 0; i < take; i++) {
          let value = 0;
          let got = 0;
          while (got < bitWidth) {
            const byte = bytes[pos + (bit >> 3)] ?? 0;
            const offset = bit & 7;
            const n = Math.min(8 - offset, bitWidth - got);
            value |= ((byte >> offset) & ((1 << n) - 1)) << got;
            got += n;
            bit += n;
          }
          out[o + i] = (value & mask) >>> 0;
        }
      }
      pos += (values * bitWidth) >> 3;
      o += take;
    } else {
      const run = header >>> 1;
      let value = 0;
      for (let b = 0; b < valueBytes; b++) value |= bytes[pos + b]! << (8 * b);
      pos += valueBytes;
      const take = Math.min(run, count - o);
      out.fill(value >>> 0, o, o + take);
      o += take;
    }
  }
}
