import type { Data, Schema } from 'apache-arrow';
import type { ByteWriter } from '../../internal/byte-writer.js';
import type { Row, RowValues } from '../../types.js';
import { putValue } from '../rows/own-value.js';
import type { CellRef, RowBatch } from '../rows/row-batch.js';
import {
  cellText,
  cellValue,
  isNullCell,
  writeCellCsv,
  writeCellJsonText,
  writeCellValueJson,
} from './arrow-cells.js';
import { loadedArrow } from './arrow-lib.js';

/** A column of a batch as plain data: its buffers are shared memory, which crosses threads uncopied. */
export interface ArrowColumnTransport {
  offset: number;
  length: number;
  nullCount: number;
  valueOffsets: Int32Array | undefined;
  values: Uint8Array | undefined;
  nullBitmap: Uint8Array | undefined;
}

/** A batch of Arrow rows as plain data, to cross to a worker thread (see ArrowRowBatch.transport). */
export interface ArrowTransport {
  type: 'arrow';
  /** The layout's schema as Arrow IPC stream bytes (no rows). */
  schema: Uint8Array;
  tableColumns: readonly string[] | undefined;
  columns: ArrowColumnTransport[];
  file: string;
  firstIndex: number;
  length: number;
  /** An Arrow source rejects no row. */
  rejected: Int32Array;
}

/** A column of an Arrow layout: a top-level column, and a path of struct fields below it. */
interface ArrowRef {
  column: number;
  path: number[];
}

/**
 * What every batch of one Arrow schema shares: the column names, and each name's column found once.
 * A dotted name (`user.name`) is the column of that exact name first, then a path into structs.
 */
export class ArrowLayout {
  readonly names: readonly string[];
  /** The table's columns, when only some were read (`names`); see RowBatch.tableColumns. */
  readonly tableColumns: readonly string[] | undefined;
  readonly #fields: ReadonlyArray<{ name: string; type: unknown }>;
  readonly #refs = new Map<string, ArrowRef | undefined>();
  readonly #schema: Schema;
  #schemaBytes: Uint8Array | undefined;

  constructor(schema: Schema, tableColumns?: readonly string[]) {
    this.#schema = schema;
    this.#fields = schema.fields;
    this.names = schema.fields.map((f) => f.name);
    this.tableColumns = tableColumns;
  }

  /** The schema as Arrow IPC stream bytes, made once (a thread rebuilds the layout from them). */
  schemaBytes(): Uint8Array {
    const arrow = loadedArrow();
    this.#schemaBytes ??= arrow.tableToIPC(new arrow.Table(this.#schema), 'stream');
    return this.#schemaBytes;
  }

  ref(name: string): ArrowRef | undefined {
    if (this.#refs.has(name)) return this.#refs.get(name);
    let ref: ArrowRef | undefined;
    const direct = this.names.indexOf(name);
    if (direct !== -1) ref = { column: direct, path: [] };
    else if (name.includes('.')) ref = this.#structPath(name.split('.'));
    this.#refs.set(name, ref);
    return ref;
  }

  #structPath(parts: string[]): ArrowRef | undefined {
    const column = this.names.indexOf(parts[0]!);
    if (column === -1) return undefined;
    const path: number[] = [];
    let type = this.#fields[column]!.type as { children?: Array<{ name: string; type: unknown }> };
    for (const part of parts.slice(1)) {
      const children = (type as { typeId?: number }).typeId === 13 ? type.children : undefined;
      const at = children?.findIndex((child) => child.name === part) ?? -1;
      if (at === -1) return undefined;
      path.push(at);
      type = children![at]!.type as typeof type;
    }
    return { column, path };
  }
}

/**
 * The buffers under one or more batches (a decoded batch cut in parts), handed back to be written
 * again once every one of them is released; never while one has lent its columns out as they are
 * (a sink that writes Arrow may still hold them after the release) and not had them back.
 */
export class BufferLease {
  #holders: number;
  #lent = 0;
  readonly #giveBack: () => void;

  constructor(holders: number, giveBack: () => void) {
    this.#holders = holders;
    this.#giveBack = giveBack;
  }

  /** A holder handed its buffers out: they are left to the collector unless they come back. */
  lend(): void {
    this.#lent++;
  }

  /** A holder's buffers came back (their taker copied them and holds none). */
  returned(): void {
    this.#lent--;
  }

  /** A holder is released. */
  end(): void {
    if (--this.#holders === 0 && this.#lent === 0) this.#giveBack();
  }
}

/**
 * Rows of an Arrow record batch (read from Parquet or Arrow IPC), over the batch's own column
 * buffers: a cell is read from them only when asked for, and a template copies a string cell's UTF-8
 * bytes, escaped, without decoding it. Such a source never rejects a row: every entry is a row.
 */
export class ArrowRowBatch implements RowBatch {
  readonly kind = 'row-batch';
  readonly sameKeys = true;
  readonly layout: ArrowLayout;
  readonly length: number;
  readonly #file: string;
  readonly #firstIndex: number;
  #columns: readonly Data[];
  #lease: BufferLease | undefined;
  /** `columns` was handed out and has not come back (`columnsReturned`). */
  #lentOut = false;
  /** See RowBatch.estimatedRows: a Parquet file's rows, from its footer. */
  estimatedRows: number | undefined = undefined;

  /** `lease`: the batch's buffers are written again once it is released (see release). */
  constructor(
    layout: ArrowLayout,
    columns: readonly Data[],
    length: number,
    file: string,
    firstIndex: number,
    lease?: BufferLease,
  ) {
    this.layout = layout;
    this.#columns = columns;
    this.length = length;
    this.#file = file;
    this.#firstIndex = firstIndex;
    this.#lease = lease;
  }

  get tableColumns(): readonly string[] | undefined {
    return this.layout.tableColumns;
  }

  /**
   * The batch as plain data another thread can take without a copy, when every column is flat and
   * held in shared memory (the page decoder's batches); undefined otherwise.
   */
  transport(): ArrowTransport | undefined {
    const columns: ArrowColumnTransport[] = [];
    for (const data of this.#columns) {
      if (data.children.length > 0 || data.dictionary !== undefined) return undefined;
      const valueOffsets = data.valueOffsets as Int32Array | undefined;
      const values = data.values as Uint8Array | undefined;
      const nullBitmap = data.nullBitmap as Uint8Array | undefined;
      if (!(isShared(valueOffsets) && isShared(values) && isShared(nullBitmap))) return undefined;
      const length = data.length;
      columns.push({
        offset: data.offset,
        length,
        nullCount: data.nullCount,
        valueOffsets,
        values,
        nullBitmap,
      });
    }
    return {
      type: 'arrow',
      schema: this.layout.schemaBytes(),
      tableColumns: this.layout.tableColumns,
      columns,
      file: this.#file,
      firstIndex: this.#firstIndex,
      length: this.length,
      rejected: new Int32Array(0),
    };
  }

  /** The batch a transport carries, on the thread that received it (apache-arrow loaded there). */
  static from(rows: ArrowTransport): ArrowRowBatch {
    const arrow = loadedArrow();
    const { layout, fields } = threadLayout(rows);
    const columns = rows.columns.map(
      (c, i) =>
        new arrow.Data(fields[i]!.type, c.offset, c.length, c.nullCount, [
          c.valueOffsets,
          c.values,
          c.nullBitmap,
        ] as never),
    );
    return new ArrowRowBatch(layout, columns, rows.length, rows.file, rows.firstIndex);
  }

  /**
   * The batch's columns (a sink that writes Arrow takes them as they are). Handed out, its buffers
   * are no longer written again after the release: the taker may hold them longer.
   */
  get columns(): readonly Data[] {
    if (this.#lease && !this.#lentOut) {
      this.#lentOut = true;
      this.#lease.lend();
    }
    return this.#columns;
  }

  /**
   * The taker of `columns` copied them and holds none (a Parquet writer's `write` resolved): the
   * buffers may be written again after the release, as if they had never been handed out.
   */
  columnsReturned(): void {
    if (!this.#lentOut) return;
    this.#lentOut = false;
    this.#lease?.returned();
  }

  /**
   * Dropped here so nothing reads the columns after. Buffers under a lease (the page decoder's) go
   * back to be written again once every batch over them is released; other memory is the collector's.
   */
  release(): void {
    this.#columns = [];
    const lease = this.#lease;
    this.#lease = undefined;
    lease?.end();
  }

  index(i: number): number {
    return this.#firstIndex + i;
  }

  /** Parquet and Arrow have no lines: a row's line is its row number. */
  line(i: number): number {
    return this.#firstIndex + i;
  }

  file(): string {
    return this.#file;
  }

  rejection(): undefined {
    return undefined;
  }

  keys(): readonly string[] {
    return this.layout.names;
  }

  values(i: number): RowValues {
    const values: RowValues = {};
    const names = this.layout.names;
    for (let c = 0; c < names.length; c++) values[names[c]!] = cellValue(this.#data(c), i);
    return values;
  }

  /** The row's cells as a template and a CSV cell render them (text; null for null). */
  texts(i: number): RowValues {
    const values: RowValues = {};
    const names = this.layout.names;
    for (let c = 0; c < names.length; c++) putValue(values, names[c]!, cellText(this.#data(c), i));
    return values;
  }

  /** Appends the value `values(i)` gives of column `column` (an index into `layout.names`) as JSON.stringify writes it. */
  writeJsonValue(i: number, column: number, out: ByteWriter): void {
    writeCellValueJson(this.#data(column), i, out);
  }

  /**
   * Appends the cell of column `column` (an index into `layout.names`) as a CSV field, as `texts`
   * renders it and csvCell quotes it; a string cell from its UTF-8 bytes. `delimiter`: one ASCII byte.
   */
  writeCsvCell(i: number, column: number, delimiter: number, out: ByteWriter): void {
    writeCellCsv(this.#data(column), i, delimiter, out);
  }

  item(i: number): Row {
    return {
      kind: 'row',
      index: this.index(i),
      file: this.#file,
      line: this.line(i),
      values: this.values(i),
    };
  }

  ref(name: string): CellRef | undefined {
    return this.layout.ref(name);
  }

  has(i: number, ref: CellRef): boolean {
    return this.#cell(i, ref as ArrowRef) !== undefined;
  }

  value(i: number, ref: CellRef): unknown {
    const data = this.#cell(i, ref as ArrowRef);
    return data === undefined ? undefined : cellValue(data, i);
  }

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    const data = this.#cell(i, ref as ArrowRef);
    if (data !== undefined) writeCellJsonText(data, i, out);
  }

  #data(column: number): Data {
    const data = this.#columns[column];
    if (data === undefined)
      throw new Error('an Arrow batch was read after it was released (a batchpipe bug)');
    return data;
  }

  /** The column a ref names, at row `i`; undefined when a struct on its path is null there. */
  #cell(i: number, ref: ArrowRef): Data | undefined {
    let data = this.#data(ref.column);
    for (const child of ref.path) {
      if (isNullCell(data, i)) return undefined;
      data = data.children[child]!;
    }
    return data;
  }
}

/** A buffer another thread sees without a copy (or none, or an empty one). */
function isShared(view: ArrayBufferView | undefined): boolean {
  return view === undefined || view.byteLength === 0 || view.buffer instanceof SharedArrayBuffer;
}

/** The last layout a thread rebuilt, reused while the batches it receives have the same schema. */
let lastLayout: ThreadLayout | undefined;

interface ThreadLayout {
  bytes: Uint8Array;
  tableColumns: string;
  layout: ArrowLayout;
  fields: Schema['fields'];
}

function threadLayout(rows: ArrowTransport): ThreadLayout {
  const tableColumns = JSON.stringify(rows.tableColumns ?? null);
  const last = lastLayout;
  if (last && last.tableColumns === tableColumns && Buffer.from(last.bytes).equals(rows.schema)) return last;
  const schema = loadedArrow().tableFromIPC(rows.schema).schema;
  lastLayout = {
    bytes: rows.schema,
    tableColumns,
    layout: new ArrowLayout(schema, rows.tableColumns),
    fields: schema.fields,
  };
  return lastLayout;
}
