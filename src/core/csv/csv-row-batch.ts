import type { ByteWriter } from '../../internal/byte-writer.js';
import { copyBytes } from '../../internal/copy-bytes.js';
import { MAX_ESCAPE_GROWTH, writeJsonEscaped } from '../../internal/json-bytes.js';
import type { Rejection, RowValues } from '../../types.js';
import { type ColumnBuffers, FRESH_COLUMNS } from '../rows/column-buffers.js';
import { putValue } from '../rows/own-value.js';
import { ReadRows } from '../rows/read-rows.js';
import type { CellRef, RowBatch } from '../rows/row-batch.js';
import type { Utf8Column } from '../rows/utf8-column.js';

/** How a CSV file's rows are laid out: shared by every batch of the file. */
export interface CsvLayout {
  readonly file: string;
  /** Column names (the header, or the `columns` option). */
  readonly header: readonly string[];
  readonly delimiter: string;
  readonly quote: string;
}

/** A batch of CSV rows as plain data, to cross to a worker thread (the bytes are shared, not copied). */
export interface CsvTransport {
  type: 'csv';
  layout: CsvLayout;
  buffer: Uint8Array;
  firstIndex: number;
  length: number;
  lines: Int32Array;
  fieldAt: Int32Array;
  starts: Int32Array;
  ends: Int32Array;
  escaped: Uint8Array;
  rowStarts: Int32Array;
  rowEnds: Int32Array;
  /** Entries the source rejected (their rejections stay with the batch that sent them). */
  rejected: Int32Array;
  /** Each entry's `copiesCleanly`, when the sending thread worked it out (see `findClean`). */
  clean?: Uint8Array | undefined;
}

/** What a worker's copy of a batch knows of a rejected entry: that it is one. */
const REJECTED_THERE: Rejection = Object.freeze({
  kind: 'rejection',
  index: 0,
  file: '',
  line: 0,
  custom_id: null,
  code: 'BP_INPUT_PARSE',
  message: 'rejected by the source',
}) as Rejection;

/**
 * Scanned CSV rows over the bytes they were read from: per entry, its fields' byte ranges. A field
 * is decoded only when asked for; a template copies field bytes straight into JSON, and a CSV join
 * copies whole rows, so most text is never turned into strings.
 */
export class CsvRowBatch extends ReadRows implements RowBatch {
  readonly kind = 'row-batch';
  readonly sameKeys = true;
  readonly layout: CsvLayout;
  readonly length: number;
  /** Entry i's fields are [fieldAt[i], fieldAt[i + 1]) of starts/ends/escaped. */
  readonly #fieldAt: Int32Array;
  readonly #starts: Int32Array;
  readonly #ends: Int32Array;
  /** 1 where a quoted field holds doubled quotes that read as one. */
  readonly #escaped: Uint8Array;
  /** Each row's byte range (without its line end). */
  readonly #rowStarts: Int32Array;
  readonly #rowEnds: Int32Array;
  readonly #rejections: ReadonlyMap<number, Rejection> | undefined;
  readonly #quoteByte: number;
  #clean: Uint8Array | undefined;

  constructor(
    parts: Omit<CsvTransport, 'type' | 'buffer' | 'rejected'> & {
      buffer: Buffer;
      rejections: ReadonlyMap<number, Rejection> | undefined;
    },
  ) {
    super(parts.buffer, parts.firstIndex, parts.lines);
    this.layout = parts.layout;
    this.length = parts.length;
    this.#fieldAt = parts.fieldAt;
    this.#starts = parts.starts;
    this.#ends = parts.ends;
    this.#escaped = parts.escaped;
    this.#rowStarts = parts.rowStarts;
    this.#rowEnds = parts.rowEnds;
    this.#rejections = parts.rejections;
    this.#quoteByte = parts.layout.quote.charCodeAt(0);
    this.#clean = parts.clean;
  }

  /** The batch as plain data for a worker thread (its bytes shared when they are in shared memory). */
  transport(): CsvTransport {
    return {
      type: 'csv',
      layout: this.layout,
      buffer: this.buffer,
      firstIndex: this.firstIndex,
      length: this.length,
      lines: this.lines,
      fieldAt: this.#fieldAt,
      starts: this.#starts,
      ends: this.#ends,
      escaped: this.#escaped,
      rowStarts: this.#rowStarts,
      rowEnds: this.#rowEnds,
      rejected: Int32Array.from(this.#rejections?.keys() ?? []),
      clean: this.#clean,
    };
  }

  /**
   * A batch from its transport (on another thread): its rejected entries are the `rejections` sent
   * with it, or, without them, only known to be rejected.
   */
  static from(t: CsvTransport, rejections?: ReadonlyArray<[number, Rejection]>): CsvRowBatch {
    return new CsvRowBatch({
      ...t,
      buffer: Buffer.from(t.buffer.buffer, t.buffer.byteOffset, t.buffer.length),
      rejections:
        t.rejected.length === 0
          ? undefined
          : new Map(
              rejections ?? [...t.rejected].map((entry): [number, Rejection] => [entry, REJECTED_THERE]),
            ),
    });
  }

  file(): string {
    return this.layout.file;
  }

  rejection(i: number): Rejection | undefined {
    return this.#rejections?.get(i);
  }

  keys(): readonly string[] {
    return this.layout.header;
  }

  /** Fields the row has (a row of another width is kept with `relaxColumnCount`). */
  fieldCount(i: number): number {
    return this.#fieldAt[i + 1]! - this.#fieldAt[i]!;
  }

  /** The text of field `c` of entry `i`, with doubled quotes read as one; "" for a field the row lacks. */
  fieldText(i: number, c: number): string {
    this.checkLive();
    const f = this.#fieldAt[i]! + c;
    if (f >= this.#fieldAt[i + 1]!) return '';
    const text = this.buffer.toString('utf8', this.#starts[f]!, this.#ends[f]!);
    if (this.#escaped[f] === 0) return text;
    const quote = this.layout.quote;
    return text.replaceAll(quote + quote, quote);
  }

  values(i: number): RowValues {
    const header = this.layout.header;
    const values: RowValues = {};
    for (let c = 0; c < header.length; c++) putValue(values, header[c]!, this.fieldText(i, c));
    return values;
  }

  ref(name: string): CellRef | undefined {
    const at = this.layout.header.indexOf(name);
    return at === -1 ? undefined : at;
  }

  /** Every row has every header column: fields a short row lacks read as "". */
  has(): boolean {
    return true;
  }

  value(i: number, ref: CellRef): string {
    return this.fieldText(i, ref as number);
  }

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    this.checkLive();
    const f = this.#fieldAt[i]! + (ref as number);
    if (f >= this.#fieldAt[i + 1]!) return;
    const start = this.#starts[f]!;
    const end = this.#ends[f]!;
    const buffer = out.ensure((end - start) * MAX_ESCAPE_GROWTH);
    out.pos = writeJsonEscaped(
      buffer,
      out.pos,
      this.buffer,
      start,
      end,
      this.#escaped[f] === 0 ? -1 : this.#quoteByte,
    );
  }

  /**
   * Field `c` of every entry as a column of UTF-8 text in Arrow's layout (`valueOffsets` into
   * `data`; a set bit of `nullBitmap` is a value), made from the field bytes as read: the same text as
   * `fieldText` ("" for a field the row lacks), without a JS string. Entries where `nulls` is 1 are
   * null. Undefined when the quote is not one byte (then `fieldText` is the way). Its buffers come
   * from `buffers`.
   */
  utf8Column(c: number, nulls?: Uint8Array, buffers: ColumnBuffers = FRESH_COLUMNS): Utf8Column | undefined {
    this.checkLive();
    const quote = this.#quoteByte;
    if (quote >= 0x80) return undefined;
    const n = this.length;
    const fieldAt = this.#fieldAt;
    const starts = this.#starts;
    const ends = this.#ends;
    const escaped = this.#escaped;
    const source = this.buffer;
    let size = 0;
    let nullCount = 0;
    for (let i = 0; i < n; i++) {
      if (nulls !== undefined && nulls[i] === 1) nullCount++;
      else {
        const f = fieldAt[i]! + c;
        if (f < fieldAt[i + 1]!) size += ends[f]! - starts[f]!;
      }
    }
    const data = buffers.bytes(size);
    const valueOffsets = buffers.int32(n + 1);
    valueOffsets[0] = 0;
    let nullBitmap: Uint8Array | undefined;
    if (nullCount > 0) {
      nullBitmap = buffers.zeroed((n + 7) >> 3);
      for (let i = 0; i < n; i++) if (nulls![i] !== 1) nullBitmap[i >> 3]! |= 1 << (i & 7);
    }
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const f = fieldAt[i]! + c;
      if ((nulls === undefined || nulls[i] !== 1) && f < fieldAt[i + 1]!) {
        let from = starts[f]!;
        const end = ends[f]!;
        if (escaped[f] !== 0) {
          // Doubled quotes read as one, pairs taken left to right (as replaceAll does). The search
          // stops at the field's closing quote at the latest.
          let q = source.indexOf(quote, from);
          while (q !== -1 && q < end) {
            pos = copyBytes(source, from, q + 1, data, pos);
            from = q + 1 < end && source[q + 1] === quote ? q + 2 : q + 1;
            q = from < end ? source.indexOf(quote, from) : -1;
          }
        }
        pos = copyBytes(source, from, end, data, pos);
      }
      valueOffsets[i + 1] = pos;
    }
    return { valueOffsets, data: pos === size ? data : data.subarray(0, pos), nullBitmap, nullCount };
  }

  /**
   * Where row `i`'s cell `ref` lies in `buffer`, put into `range`: [start, end), then the quote byte
   * when the cell holds doubled quotes that read as one (else -1); false when the row lacks the field.
   * Lets a check read a cell in place.
   */
  cellRange(i: number, ref: CellRef, range: Int32Array): boolean {
    this.checkLive();
    const f = this.#fieldAt[i]! + (ref as number);
    if (f >= this.#fieldAt[i + 1]!) return false;
    range[0] = this.#starts[f]!;
    range[1] = this.#ends[f]!;
    range[2] = this.#escaped[f] === 0 ? -1 : this.#quoteByte;
    return true;
  }

  /** The row's bytes as read, without its line end. */
  rowStart(i: number): number {
    return this.#rowStarts[i]!;
  }

  rowEnd(i: number): number {
    return this.#rowEnds[i]!;
  }

  /**
   * True when the row's bytes read back as the same fields under the header: as many fields as
   * columns, and no quote inside an unquoted field (which the scanner takes literally but a strict
   * reader refuses). Most rows have no quote at all, answered by one search.
   */
  copiesCleanly(i: number): boolean {
    this.checkLive();
    const clean = this.#clean;
    return clean === undefined ? this.#copiesCleanly(i) : clean[i] === 1;
  }

  /**
   * Works out `copiesCleanly` for every entry now (the thread that read the batch does, so the one
   * that writes it only looks the answers up); they travel with the batch's transport.
   */
  findClean(): void {
    this.checkLive();
    const clean = new Uint8Array(this.length);
    for (let i = 0; i < this.length; i++) clean[i] = this.#copiesCleanly(i) ? 1 : 0;
    this.#clean = clean;
  }

  #copiesCleanly(i: number): boolean {
    const from = this.#fieldAt[i]!;
    const to = this.#fieldAt[i + 1]!;
    if (to - from !== this.layout.header.length) return false;
    const quote = this.#quoteByte;
    const rowStart = this.#rowStarts[i]!;
    // Searched within the row: a search from the row to the chunk's next quote, once a row, made a
    // table without quotes quadratic in its chunks.
    const row = this.buffer.subarray(rowStart, this.#rowEnds[i]!);
    if (row.indexOf(quote) === -1) return true;
    for (let f = from; f < to; f++) {
      const start = this.#starts[f]! - rowStart;
      const end = this.#ends[f]! - rowStart;
      const quoted = start > 0 && row[start - 1] === quote;
      if (quoted) continue;
      for (let k = start; k < end; k++) if (row[k] === quote) return false;
    }
    return true;
  }
}
