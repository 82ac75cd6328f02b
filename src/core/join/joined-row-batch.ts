import type { ByteWriter } from '../../internal/byte-writer.js';
import { writeJsonText } from '../../internal/json-bytes.js';
import type { Rejection, Row, RowValues } from '../../types.js';
import { CsvScanner, fieldText } from '../csv/csv-scanner.js';
import {
  type CellEncoding,
  csvTailOf,
  decodeJsonCells,
  jsonCellTexts,
  type ResultColumnKind,
} from '../results/result-cells.js';
import { type ColumnRef, columnRef } from '../rows/column-ref.js';
import { putValue } from '../rows/own-value.js';
import { type CellRef, type RowBatch, textOf } from '../rows/row-batch.js';

/** What every batch of one join shares. */
export interface JoinedLayout {
  /** The source's columns: a CSV header, or every key any JSON row has (in order of first use). */
  sourceColumns: readonly string[];
  /** The result columns, after the source's. */
  names: readonly string[];
  /** What each result column holds (for sinks that write types). */
  kinds: readonly ResultColumnKind[];
  /** Every column, in order. */
  columns: readonly string[];
  /** Some source rows lack keys others have: each row is given every source column. */
  uneven: boolean;
  /** How each entry's cells are stored (see `cells`). */
  encoding: CellEncoding;
}

/**
 * Source rows with their result cells, what joinResults hands on: entry `i` is source entry `i`
 * (a row the source could not read comes with empty source columns) followed by its cells. The cells
 * are kept as the join stored them: JSON (values keep their types), or, for a CSV sink that asked,
 * the CSV text that follows the row's fields, so a row read from CSV goes out as its own bytes with
 * that text after them.
 */
export class JoinedRowBatch implements RowBatch {
  readonly kind = 'row-batch';
  readonly source: RowBatch;
  readonly layout: JoinedLayout;
  /** Each entry's stored cells. */
  readonly cells: readonly string[];
  /** 1 where the source could not read the entry (the join knows; asking the source would parse a JSON line again). */
  readonly #unread: Uint8Array;

  constructor(source: RowBatch, layout: JoinedLayout, cells: readonly string[], unread: Uint8Array) {
    this.source = source;
    this.layout = layout;
    this.cells = cells;
    this.#unread = unread;
  }

  get length(): number {
    return this.source.length;
  }

  release(): void {
    this.source.release();
  }

  index(i: number): number {
    return this.source.index(i);
  }

  line(i: number): number {
    return this.source.line(i);
  }

  file(i: number): string {
    return this.source.file(i);
  }

  /** Every entry is a row of the joined table: one the source could not read has `status` rejected. */
  rejection(): undefined {
    return undefined;
  }

  /** 1 for each entry the source could not read (see sourceRejected), one byte an entry. */
  get unreadEntries(): Uint8Array {
    return this.#unread;
  }

  /** True when the source could not read the row (its source columns are empty). */
  sourceRejected(i: number): boolean {
    return this.#unread[i] === 1;
  }

  keys(): readonly string[] {
    return this.layout.columns;
  }

  /** The entry's result cells, decoded. */
  resultCells(i: number): unknown[] {
    const stored = this.cells[i]!;
    const encoding = this.layout.encoding;
    if (encoding.kind === 'json') return jsonCellTexts(stored).map((text) => JSON.parse(text) as unknown);
    return splitTail(csvTailOf(stored), encoding.delimiter);
  }

  /** Every entry's result cells, decoded, one row after another (`layout.names.length` a row). */
  flatResultCells(): unknown[] {
    const width = this.layout.names.length;
    const out = new Array<unknown>(this.length * width);
    if (width === 0) return out;
    if (this.layout.encoding.kind === 'json') decodeJsonCells(this.cells, out);
    else
      for (let i = 0; i < this.length; i++) {
        const cells = this.resultCells(i);
        for (let c = 0; c < width; c++) out[i * width + c] = cells[c];
      }
    return out;
  }

  /** The CSV text of the entry's cells (each after a delimiter), when they are stored as CSV. */
  csvTail(i: number): string {
    return csvTailOf(this.cells[i]!);
  }

  values(i: number): RowValues {
    const layout = this.layout;
    let values: RowValues;
    if (this.sourceRejected(i)) {
      values = {};
      for (const column of layout.sourceColumns) putValue(values, column, '');
    } else {
      // The join read its source itself: the row is its own to fill.
      values = this.source.values(i);
      if (layout.uneven)
        for (const column of layout.sourceColumns)
          if (!Object.hasOwn(values, column)) putValue(values, column, undefined);
    }
    const cells = this.resultCells(i);
    const names = layout.names;
    for (let c = 0; c < names.length; c++) putValue(values, names[c]!, cells[c]);
    return values;
  }

  item(i: number): Row {
    return {
      kind: 'row',
      index: this.index(i),
      file: this.file(i),
      line: this.line(i),
      values: this.values(i),
    };
  }

  ref(name: string): CellRef {
    return columnRef(name);
  }

  has(i: number, ref: CellRef): boolean {
    return (ref as ColumnRef).has(this.values(i));
  }

  value(i: number, ref: CellRef): unknown {
    return (ref as ColumnRef).get(this.values(i));
  }

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    writeJsonText(out, textOf(this.value(i, ref)));
  }

  /** The source row's rejection, for rows the source could not read. */
  sourceRejection(i: number): Rejection | undefined {
    return this.source.rejection(i);
  }
}

/** The fields of CSV text that follows a row (each cell after a delimiter). */
function splitTail(tail: string, delimiter: string): string[] {
  if (tail === '') return [];
  const scanner = new CsvScanner({
    file: '<cells>',
    delimiter: delimiter.charCodeAt(0),
    quote: 0x22,
    maxRowBytes: Number.MAX_SAFE_INTEGER,
  });
  const fields: string[] = [];
  // The tail starts with a delimiter: the first field is the empty one before it.
  scanner.scan(Buffer.from(`x${tail}`, 'utf8'), true, (row) => {
    for (let f = 1; f < row.count; f++) fields.push(fieldText(row, f, '"'));
    return undefined;
  });
  return fields;
}
