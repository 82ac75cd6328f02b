/**
 * Encodes one flat column of a row group into Parquet V1 data pages: PLAIN values, definition levels
 * (RLE when a page has no null, else bit-packed: Arrow's validity bits are Parquet's 1-bit levels in
 * the same order), each page compressed as it fills (about 1 MiB of values or 20,000 rows, as
 * arrow-rs cuts them) while the next one is encoded. A column chunk's compressed pages wait in the
 * writer's spill file (FilePageHold) until the row group is written.
 */
import type { Compress } from './parquet-compress.js';
import type { FilePageHold, KeptPage } from './parquet-page-hold.js';
import type { ColumnOut } from './parquet-schema-out.js';
import { dataPageHeader } from './parquet-thrift-writer.js';

/** An Arrow column as apache-arrow holds it: values from index 0, bits from `offset`. */
export interface ArrowData {
  offset: number;
  length: number;
  nullCount: number;
  nullBitmap?: Uint8Array | undefined;
  values: ArrayBufferView;
  valueOffsets?: Int32Array | undefined;
}

/** A column chunk's pages, ready to be written. */
export interface ColumnChunkPages {
  pages: KeptPage[];
  numValues: number;
  uncompressedSize: number;
  compressedSize: number;
}

/** A page is closed once its values reach this many bytes... */
const PAGE_BYTES = 1 << 20;
/** ...or it holds this many rows (arrow-rs's default limit). */
const PAGE_ROWS = 20_000;
/** Rows encoded between two checks of the page's size. */
const SLICE_ROWS = 1024;
/** Room before a page's values for its definition levels: their length, a run header, a bit a row. */
const RESERVE = 4 + 5 + ((PAGE_ROWS + SLICE_ROWS + 7) >> 3);
/** A page buffer: the levels' room, a page of values and a slice beyond it. */
const BUFFER_BYTES = RESERVE + PAGE_BYTES + (PAGE_BYTES >> 1);
/** Writes one column's pages, row group after row group. */
export class ColumnChunkWriter {
  readonly column: ColumnOut;
  readonly #compress: Compress;
  readonly #buffers: PageBuffers;
  readonly #hold: FilePageHold;
  /** The size of this column's page buffers. */
  readonly #size: number;
  /** The page being filled: its levels go just before its values (`RESERVE`), its values from there. */
  #values: Buffer;
  #view: DataView;
  #used = RESERVE;
  /** Booleans: bits used from `RESERVE` on. */
  #bits = 0;
  /** The page's definition levels, one bit a row (1 = a value). */
  readonly #defined = new Uint8Array((PAGE_ROWS + SLICE_ROWS + 7) >> 3);
  #rows = 0;
  #nulls = 0;
  /** The chunk's pages so far, once each is compressed and kept: the page, its size before and after. */
  #pages: Array<Promise<[KeptPage, number, number]>> = [];
  #chunkRows = 0;

  constructor(column: ColumnOut, compress: Compress, buffers: PageBuffers, hold: FilePageHold) {
    this.column = column;
    this.#compress = compress;
    this.#buffers = buffers;
    this.#hold = hold;
    // A fixed-width column's page never outgrows its rows; others get room for a page of bytes.
    const encoding = column.encoding;
    const width =
      encoding.kind === 'fixed' || encoding.kind === 'decimal'
        ? encoding.width
        : encoding.kind === 'widen'
          ? 4
          : encoding.kind === 'bool'
            ? 1
            : 0;
    this.#size = width > 0 ? RESERVE + (PAGE_ROWS + SLICE_ROWS) * width : BUFFER_BYTES;
    this.#values = buffers.take(this.#size);
    this.#view = viewOf(this.#values);
  }

  /** Appends rows `[start, start + count)` of `data`. */
  append(data: ArrowData, start: number, count: number): void {
    while (count > 0) {
      const n = Math.min(count, SLICE_ROWS, PAGE_ROWS - this.#rows);
      this.#slice(data, start, n);
      start += n;
      count -= n;
      if (this.#rows >= PAGE_ROWS || this.#used - RESERVE >= PAGE_BYTES) this.#closePage();
    }
  }

  /** Closes the chunk: its pages, once every one is compressed. The writer is ready for the next chunk. */
  async finish(): Promise<ColumnChunkPages> {
    if (this.#rows > 0 || this.#chunkRows === 0) this.#closePage();
    const done = await Promise.all(this.#pages);
    const numValues = this.#chunkRows;
    this.#pages = [];
    this.#chunkRows = 0;
    const pages: KeptPage[] = [];
    let uncompressedSize = 0;
    let compressedSize = 0;
    for (const [page, size, stored] of done) {
      pages.push(page);
      uncompressedSize += size;
      compressedSize += stored;
    }
    return { pages, numValues, uncompressedSize, compressedSize };
  }

  /** Waits for the pages still compressing (failures included). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.#pages);
  }

  #slice(data: ArrowData, start: number, n: number): void {
    const valid =
      data.nullCount > 0 && data.nullBitmap && data.nullBitmap.length > 0 ? data.nullBitmap : undefined;
    const bitStart = data.offset + start;
    if (this.column.maxDefinition > 0) this.#levels(valid, bitStart, n);
    else if (valid) throw new Error(`column "${this.column.name}" is required and has a null`);
    const encoding = this.column.encoding;
    switch (encoding.kind) {
      case 'fixed':
        this.#fixed(data, start, n, encoding.width, valid, bitStart);
        break;
      case 'bytes':
        this.#bytes(data, start, n, valid, bitStart);
        break;
      case 'bool':
        this.#booleans(data, n, valid, bitStart);
        break;
      case 'widen':
        this.#widen(data, start, n, valid, bitStart);
        break;
      case 'decimal':
        this.#decimal(data, start, n, valid, bitStart, encoding.width, encoding.fixed);
        break;
    }
    this.#rows += n;
  }

  /** Copies `n` validity bits into the page's levels (all 1 when there is no bitmap). */
  #levels(valid: Uint8Array | undefined, from: number, n: number): void {
    const out = this.#defined;
    const at = this.#rows;
    if (!valid) {
      setBits(out, at, n);
      return;
    }
    if ((at & 7) === 0 && (from & 7) === 0) {
      out.set(valid.subarray(from >> 3, (from + n + 7) >> 3), at >> 3);
      // Bits past the slice's end in its last byte are the next rows' to set.
      if ((n & 7) !== 0) out[(at + n) >> 3]! &= (1 << (n & 7)) - 1;
    } else {
      for (let i = 0; i < n; i++) {
        const bit = from + i;
        if ((valid[bit >> 3]! >> (bit & 7)) & 1) out[(at + i) >> 3]! |= 1 << ((at + i) & 7);
        else out[(at + i) >> 3]! &= ~(1 << ((at + i) & 7));
      }
    }
    for (let i = 0; i < n; i++) {
      const bit = from + i;
      if (((valid[bit >> 3]! >> (bit & 7)) & 1) === 0) this.#nulls++;
    }
  }

  #room(bytes: number): void {
    const need = this.#used + bytes;
    if (need <= this.#values.length) return;
    // A page of a few large values: a buffer of its own.
    const grown = Buffer.allocUnsafeSlow(Math.max(need, this.#values.length * 2));
    grown.set(this.#values.subarray(0, this.#used));
    this.#buffers.give(this.#values);
    this.#values = grown;
    this.#view = viewOf(grown);
  }

  #fixed(
    data: ArrowData,
    start: number,
    n: number,
    width: number,
    valid: Uint8Array | undefined,
    bitStart: number,
  ): void {
    const v = data.values;
    const bytes = new Uint8Array(v.buffer, v.byteOffset + start * width, n * width);
    this.#room(n * width);
    const out = this.#values;
    if (!valid) {
      out.set(bytes, this.#used);
      this.#used += n * width;
      return;
    }
    // Runs of valid values, copied a run at a time.
    let used = this.#used;
    let run = -1;
    for (let i = 0; i <= n; i++) {
      const bit = bitStart + i;
      const isValid = i < n && ((valid[bit >> 3]! >> (bit & 7)) & 1) === 1;
      if (isValid) {
        if (run < 0) run = i;
      } else if (run >= 0) {
        out.set(bytes.subarray(run * width, i * width), used);
        used += (i - run) * width;
        run = -1;
      }
    }
    this.#used = used;
  }

  /**
   * PLAIN byte arrays: each value's length, then its bytes. The slice's bytes are copied into the
   * page buffer at once, past room for the lengths, at the source's address remainder mod 8 (V8
   * copies out of shared memory, a decode thread's batch, a word at a time only so, else a byte at a
   * time: 181 against 40 ns a 600-byte value), then each value is moved down into place within the
   * buffer (copyWithin: no view made a value, where a subarray a value was ~150 MB of garbage over
   * 1M rows of two text columns: 64 young collections against 27, 41 full ones against 34).
   */
  #bytes(data: ArrowData, start: number, n: number, valid: Uint8Array | undefined, bitStart: number): void {
    const offsets = data.valueOffsets!;
    const v = data.values;
    const first = offsets[start]!;
    const size = offsets[start + n]! - first;
    this.#room(4 * n + size + 8);
    const out = this.#values;
    const view = this.#view;
    let used = this.#used;
    // Where the slice's bytes go: past every length, at the source's remainder mod 8.
    const after = used + 4 * n;
    const base = after + ((v.byteOffset + first - (out.byteOffset + after)) & 7);
    out.set(new Uint8Array(v.buffer, v.byteOffset + first, size), base);
    const shift = base - first;
    for (let i = 0; i < n; i++) {
      if (valid) {
        const bit = bitStart + i;
        if (((valid[bit >> 3]! >> (bit & 7)) & 1) === 0) continue;
      }
      const from = offsets[start + i]! + shift;
      const to = offsets[start + i + 1]! + shift;
      const length = to - from;
      view.setInt32(used, length, true);
      used += 4;
      // Down, never past bytes not yet moved: value i lands before value i + 1's bytes begin.
      if (length > 32) out.copyWithin(used, from, to);
      else for (let k = 0; k < length; k++) out[used + k] = out[from + k]!;
      used += length;
    }
    this.#used = used;
  }

  #booleans(data: ArrowData, n: number, valid: Uint8Array | undefined, bitStart: number): void {
    // A page's bits (at most PAGE_ROWS + SLICE_ROWS) fit the values buffer as allocated.
    const out = this.#values;
    const v = data.values as Uint8Array;
    let bits = this.#bits;
    for (let i = 0; i < n; i++) {
      const bit = bitStart + i;
      if (valid && ((valid[bit >> 3]! >> (bit & 7)) & 1) === 0) continue;
      const at = RESERVE + (bits >> 3);
      if ((v[bit >> 3]! >> (bit & 7)) & 1) out[at]! |= 1 << (bits & 7);
      else out[at]! &= ~(1 << (bits & 7));
      bits++;
    }
    this.#bits = bits;
    this.#used = RESERVE + ((bits + 7) >> 3);
  }

  #widen(data: ArrowData, start: number, n: number, valid: Uint8Array | undefined, bitStart: number): void {
    // The typed array's own elements are the values, signed or not.
    const v = data.values as Int8Array | Int16Array | Uint8Array | Uint16Array;
    this.#room(4 * n);
    const view = this.#view;
    let used = this.#used;
    for (let i = 0; i < n; i++) {
      if (valid) {
        const bit = bitStart + i;
        if (((valid[bit >> 3]! >> (bit & 7)) & 1) === 0) continue;
      }
      view.setInt32(used, v[start + i]!, true);
      used += 4;
    }
    this.#used = used;
  }

  #decimal(
    data: ArrowData,
    start: number,
    n: number,
    valid: Uint8Array | undefined,
    bitStart: number,
    width: number,
    fixed: boolean,
  ): void {
    // 16 little-endian bytes a value.
    const v = data.values;
    const src = new Uint8Array(v.buffer, v.byteOffset + start * 16, n * 16);
    this.#room(width * n);
    const out = this.#values;
    let used = this.#used;
    for (let i = 0; i < n; i++) {
      if (valid) {
        const bit = bitStart + i;
        if (((valid[bit >> 3]! >> (bit & 7)) & 1) === 0) continue;
      }
      const at = i * 16;
      // INT32 and INT64: the low bytes, little-endian; FIXED_LEN_BYTE_ARRAY: the low bytes, big-endian.
      if (fixed) for (let k = 0; k < width; k++) out[used + k] = src[at + width - 1 - k]!;
      else for (let k = 0; k < width; k++) out[used + k] = src[at + k]!;
      used += width;
    }
    this.#used = used;
  }

  /**
   * Compresses the page: its levels are written just before its values, and the buffer goes to
   * the compressor as it is (no copy); the next page takes another buffer.
   */
  #closePage(): void {
    const rows = this.#rows;
    const out = this.#values;
    let start = RESERVE;
    if (this.column.maxDefinition > 0) {
      let header: Uint8Array;
      let levels = 0;
      if (this.#nulls === 0) {
        header = varint(rows * 2);
        levels = header.length + 1;
        out[RESERVE - 1] = 1;
      } else {
        const groups = (rows + 7) >> 3;
        header = varint(groups * 2 + 1);
        levels = header.length + groups;
        out.set(this.#defined.subarray(0, groups), RESERVE - groups);
      }
      start = RESERVE - levels - 4;
      out.writeUInt32LE(levels, start);
      out.set(header, start + 4);
    }
    // Booleans: the bits past the last value are zero, whatever the buffer held before.
    if (this.#bits & 7) out[this.#used - 1]! &= (1 << (this.#bits & 7)) - 1;
    const body = out.subarray(start, this.#used);
    const size = body.length;
    const buffers = this.#buffers;
    const hold = this.#hold;
    buffers.inFlight++;
    // The page counts as in flight until it is kept: a slow spill file holds the writer back too.
    const page = this.#compress(body)
      .then(
        async (compressed): Promise<[KeptPage, number, number]> => {
          buffers.give(out);
          const header = dataPageHeader(size, compressed.length, rows);
          const kept = await hold.keep(header, compressed);
          return [kept, header.length + size, header.length + compressed.length];
        },
        (error: unknown) => {
          buffers.give(out);
          throw error;
        },
      )
      .finally(() => buffers.settled());
    // Seen as handled here; the chunk's `finish` still meets the failure.
    page.catch(() => undefined);
    this.#pages.push(page);
    this.#chunkRows += rows;
    this.#rows = 0;
    this.#nulls = 0;
    this.#used = RESERVE;
    this.#bits = 0;
    this.#defined.fill(0);
    this.#values = buffers.take(this.#size);
    this.#view = viewOf(this.#values);
  }
}

/**
 * Page buffers shared by a file's columns, reused once their page is compressed (fresh memory for
 * every page costs a page fault per 4 KiB), and a count of the pages still compressing or being kept,
 * so the writer can wait when the compressor (or the spill file) falls behind.
 */
export class PageBuffers {
  /** Free buffers by size. */
  #free = new Map<number, Buffer[]>();
  /** Free buffers kept of each size. */
  readonly #maxFree: number;
  inFlight = 0;
  #waiting: Array<() => void> = [];

  /**
   * `maxFree`: buffers kept of each size, as many as can be out at once (a page a column, and the
   * pages compressing), so none is let go only to be made again: every column closes a page at once
   * at a row group's end, and a cap of 4 let ~320 buffers (424 MB) go to the collector over a 1M-row
   * join, whose external memory then ran 20 more full collections (35 against 15). Kept buffers are
   * ones that were out at the same time anyway.
   */
  constructor(maxFree: number) {
    this.#maxFree = maxFree;
  }

  take(size: number): Buffer {
    return this.#free.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** Hands back a buffer no longer used (one grown past a page for a few large values is let go). */
  give(buffer: Buffer): void {
    if (buffer.length > BUFFER_BYTES) return;
    let free = this.#free.get(buffer.length);
    if (!free) {
      free = [];
      this.#free.set(buffer.length, free);
    }
    if (free.length < this.#maxFree) free.push(buffer);
  }

  /** A page is compressed and kept (or failed). */
  settled(): void {
    this.inFlight--;
    this.#waiting.shift()?.();
  }

  /** Resolves once at most `max` pages are compressing. */
  async room(max: number): Promise<void> {
    while (this.inFlight > max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
}

function viewOf(buffer: Buffer): DataView {
  return new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Sets bits `[at, at + n)`. */
function setBits(out: Uint8Array, at: number, n: number): void {
  let i = at;
  const end = at + n;
  while (i < end && (i & 7) !== 0) {
    out[i >> 3]! |= 1 << (i & 7);
    i++;
  }
  const whole = (end - i) >> 3;
  if (whole > 0) {
    out.fill(0xff, i >> 3, (i >> 3) + whole);
    i += whole * 8;
  }
  while (i < end) {
    out[i >> 3]! |= 1 << (i & 7);
    i++;
  }
}

function varint(n: number): Uint8Array {
  const bytes: number[] = [];
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Uint8Array.from(bytes);
}
