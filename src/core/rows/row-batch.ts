import type { ByteWriter } from '../../internal/byte-writer.js';
import type { Rejection, Row, RowValues } from '../../types.js';

/**
 * A column of a batch's rows, resolved once per layout (see `RowBatch.layout`): an index into a CSV
 * header, a key (or dotted path) of JSON rows. Opaque outside the batch that made it.
 */
export type CellRef = number | object;

/**
 * Rows in source order, as batchpipe's stages hand them to each other: entry `i` is a row, or a
 * rejection (a row the source could not read), never both. Values are decoded only when asked for,
 * one cell or one row at a time, so a stage that needs a few columns (a template, an id column) reads
 * only those, and a stage that copies rows whole (a CSV join into CSV) never decodes them at all.
 * Batches are owned by the stage that holds them: one flows to one place.
 */
export interface RowBatch {
  readonly kind: 'row-batch';
  /** Entries: rows and rejections. */
  readonly length: number;
  /**
   * Batches whose rows are read the same way share this object (a CSV file's header, every batch of
   * JSON rows): a `CellRef` resolved for one holds for all of them.
   */
  readonly layout: object;
  index(i: number): number;
  line(i: number): number;
  file(i: number): string;
  /**
   * The table's columns, in order, when the source was asked for only some of them (a columnar file
   * read for a few columns): `keys` then names those read. Undefined when every column was read.
   */
  readonly tableColumns?: readonly string[] | undefined;
  /**
   * True when every row has the same keys (a CSV header, a columnar file's schema): `keys` of any
   * entry names the table's columns. Undefined where rows may differ (JSON).
   */
  readonly sameKeys?: boolean;
  /**
   * About how many rows the file being read holds, where its source can tell (a file's size over the
   * bytes its rows so far took); undefined for a stream. A hint for starting threads, nothing counts on it.
   */
  readonly estimatedRows?: number | undefined;
  /** The entry's rejection, when the source could not read that row. */
  rejection(i: number): Rejection | undefined;
  /** The column names of entry `i`'s row, in order (a CSV header; a JSON object's own keys). */
  keys(i: number): readonly string[];
  /** The row's values, by column name (it may be the row's own object: copy before changing it). */
  values(i: number): RowValues;
  /** Entry `i` as one stream item: a Row (values decoded), or its Rejection. */
  item(i: number): Row | Rejection;
  /**
   * Resolves a column name for this layout; undefined when no row of it can have the column (a CSV
   * header without it). A name may be a dotted path into JSON values (`user.name`): the column of that
   * exact name first, then the path.
   */
  ref(name: string): CellRef | undefined;
  /** Whether entry `i`'s row has the column (JSON rows may lack keys other rows have). */
  has(i: number, ref: CellRef): boolean;
  /** The cell's value: text for CSV, any JSON value for JSON rows; undefined when the row lacks it. */
  value(i: number, ref: CellRef): unknown;
  /** Appends the cell as a template renders it (see `textOf`), JSON-escaped, without quotes. */
  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void;
  /**
   * Optional: the caller is done with entry `i`'s values (a pass that reads each row once). A batch
   * that parsed the row may let the parsed values go, to parse again if asked; a rejection stays.
   */
  forget?(i: number): void;
  /**
   * Called by the stage that is done with the batch: its buffers are used again, so nothing may read
   * the batch afterwards. Stages hand batches only to each other, one consumer each.
   */
  release(): void;
}

/** True for a RowBatch. */
export function isRowBatch(value: unknown): value is RowBatch {
  return (value as RowBatch | null)?.kind === 'row-batch';
}

/** How a cell renders into a prompt: text verbatim, null and undefined as "", other values as JSON. */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return JSON.stringify(value);
}
