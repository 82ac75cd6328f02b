import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Data, DataType, Field, Schema, TimeUnit } from 'apache-arrow';
import { BatchpipeError } from '../../errors.js';
import { readError } from '../../internal/read-error.js';
import { type ArrowModule, loadArrow, loadParquet, parquetWasmCode } from '../arrow/arrow-lib.js';
import { ArrowLayout, ArrowRowBatch, BufferLease } from '../arrow/arrow-row-batch.js';
import { SharedBufferPool } from './parquet-buffers.js';
import { decodeRowGroups, type PageBatch } from './parquet-decoder.js';
import { type FlatArrowType, footerColumns, planPages, readFooter } from './parquet-page-plan.js';
import type { PageColumn } from './parquet-pages.js';

/** The time zone arrow-rs (parquet-wasm) names a UTC-adjusted timestamp with. */
const UTC = 'UTC';
/** Rows a batch holds: the engine's batch size. */
export const ARROW_BATCH_ROWS = 2048;
/** Rows parquet-wasm decodes at a time (about 12% faster than 2,048 on review text), cut into batches. */
const DECODE_ROWS = 8 * ARROW_BATCH_ROWS;
/**
 * Rows the page decoder hands over at a time: a smaller batch than parquet-wasm's, as its cost is
 * per page, not per batch, and every batch decoded ahead is memory.
 */
const PAGE_ROWS = 2 * ARROW_BATCH_ROWS;
/**
 * Free page-decoder buffers kept for the next batches: more than the batches in flight in a
 * pipeline hold (some 4 MB a batch of review text), so a steady run makes none.
 */
const POOL_BYTES = 32 * 1024 * 1024;

/** How a Parquet file is read. */
export interface ParquetReadSettings {
  /**
   * The columns to read (a dotted name reads its top-level column); undefined for all. Names the
   * file lacks are left out here: the stage that needs them says so, as it would for a CSV header.
   */
  columns?: readonly string[] | undefined;
  /** false: every column through parquet-wasm, never the page decoder (to compare the two). */
  pageDecoder?: boolean | undefined;
  /** Told which decoder reads the file's columns. */
  decodedBy?: ((decoder: 'pages' | 'parquet-wasm') => void) | undefined;
  /** Told what read the columns' types: the footer alone, or parquet-wasm. */
  typedBy?: ((reader: 'footer' | 'parquet-wasm') => void) | undefined;
}

/**
 * Reads a Parquet file as row batches, one row group at a time (memory bounded by a row group's
 * decoded columns, not the file): the file is read by byte range, only the columns asked for, and
 * each record batch is handed to apache-arrow as Arrow memory (no object per row).
 */
export async function* readParquetBatches(
  path: string,
  file: string,
  settings: ParquetReadSettings = {},
): AsyncGenerator<ArrowRowBatch> {
  const arrow = await loadArrow();
  try {
    // A reader's own error does not say why: stat says (no such file, a directory).
    if ((await stat(path)).isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
  } catch (error) {
    throw readError(error, file);
  }
  const plan = (await footerPlan(arrow, path, settings)) ?? (await wasmPlan(arrow, path, file, settings));
  const { columns, tableColumns, fields, pages } = plan;
  settings.typedBy?.(plan.fromFooter ? 'footer' : 'parquet-wasm');
  if (columns?.length === 0) {
    // No column asked for: the rows are counted from the metadata, nothing is decoded.
    yield* rowsWithoutColumns(new arrow.Schema([]), plan.counts, file, tableColumns);
    return;
  }
  settings.decodedBy?.(pages ? 'pages' : 'parquet-wasm');
  const rows = plan.counts.reduce((sum, count) => sum + count, 0);
  let index = 1;
  let layout: ArrowLayout | undefined;
  const pool = pages ? new SharedBufferPool(POOL_BYTES) : undefined;
  const decoded = decodeRowGroups({
    // The page decoder needs no WebAssembly: parquet-wasm is compiled only for what it reads.
    code: pages ? undefined : await parquetWasmCode(),
    path,
    columns,
    groups: plan.counts.length,
    batchRows: pages ? PAGE_ROWS : DECODE_ROWS,
    pages,
    pool,
    fail: (error, group) => notParquet(file, error, group),
  });
  for await (const ipc of decoded) {
    if (!(ipc instanceof Uint8Array)) {
      layout ??= new ArrowLayout(new arrow.Schema(fields), tableColumns);
      const columnData = pageData(arrow, fields, ipc);
      // The batches cut from this one share its buffers: they go back when all are released.
      const page = ipc;
      const lease =
        pool && new BufferLease(Math.ceil(ipc.rows / ARROW_BATCH_ROWS), () => pool.give(buffersOf(page)));
      for (let start = 0; start < ipc.rows; start += ARROW_BATCH_ROWS) {
        const length = Math.min(ARROW_BATCH_ROWS, ipc.rows - start);
        const part = length === ipc.rows ? columnData : columnData.map((d) => d.slice(start, length));
        const rowBatch = new ArrowRowBatch(layout, part, length, file, index, lease);
        rowBatch.estimatedRows = rows;
        yield rowBatch;
        index += length;
      }
      continue;
    }
    const table = arrow.tableFromIPC(ipc);
    layout ??= new ArrowLayout(table.schema, tableColumns);
    for (const batch of table.batches) {
      for (let start = 0; start < batch.numRows; start += ARROW_BATCH_ROWS) {
        const length = Math.min(ARROW_BATCH_ROWS, batch.numRows - start);
        const part = length === batch.numRows ? batch : batch.slice(start, start + length);
        const rowBatch = new ArrowRowBatch(layout, part.data.children, length, file, index);
        rowBatch.estimatedRows = rows;
        yield rowBatch;
        index += length;
      }
    }
  }
}

/** How a file is read: its columns, the fields of those read, each row group's rows, the page plan. */
interface ReadPlan {
  /** The columns read (undefined: all). */
  columns: string[] | undefined;
  tableColumns: string[] | undefined;
  fields: Field[];
  counts: number[];
  pages: PageColumn[] | undefined;
  /** Whether the plan was made from the footer alone. */
  fromFooter: boolean;
}

/** The columns asked for, and the table's own when they are only some (a join's first pass lists them all). */
function chosen(names: string[], settings: ParquetReadSettings) {
  const columns = projection(names, settings.columns);
  const tableColumns = columns !== undefined && columns.length < names.length ? names : undefined;
  return { columns, tableColumns, read: columns ?? names };
}

/**
 * The plan from the footer alone, when every column read is flat, of a plain type and for the page
 * decoder: parquet-wasm is then not loaded (its WebAssembly is some 40 MB and 0.2 s to start).
 * Undefined otherwise, or for a file the footer reader cannot read (parquet-wasm says why).
 */
async function footerPlan(
  arrow: ArrowModule,
  path: string,
  settings: ParquetReadSettings,
): Promise<ReadPlan | undefined> {
  if (settings.pageDecoder === false) return undefined;
  const metadata = await readFooter(path).catch(() => undefined);
  const found = metadata && footerColumns(metadata);
  if (!metadata || !found) return undefined;
  const { columns, tableColumns, read } = chosen(found.names, settings);
  const fields: Field[] = [];
  for (const name of read) {
    const type = found.types.get(name);
    if (!type) return undefined;
    fields.push(new arrow.Field(name, arrowType(arrow, type), type.nullable));
  }
  const counts = metadata.rowGroups.map((group) => group.numRows);
  if (columns?.length === 0)
    return { columns, tableColumns, fields, counts, pages: undefined, fromFooter: true };
  const pages = planPages(metadata, fields, read);
  return pages && { columns, tableColumns, fields, counts, pages, fromFooter: true };
}

/** The Arrow type arrow-rs gives a flat column (see footerColumns). */
function arrowType(arrow: ArrowModule, type: FlatArrowType): DataType {
  switch (type.kind) {
    case 'bool':
      return new arrow.Bool();
    case 'int32':
      return new arrow.Int32();
    case 'uint32':
      return new arrow.Uint32();
    case 'int64':
      return new arrow.Int64();
    case 'uint64':
      return new arrow.Uint64();
    case 'date32':
      return new arrow.DateDay();
    case 'float32':
      return new arrow.Float32();
    case 'float64':
      return new arrow.Float64();
    case 'utf8':
      return new arrow.Utf8();
    case 'binary':
      return new arrow.Binary();
    case 'timestamp':
      return new arrow.Timestamp(type.unit as TimeUnit, type.utc ? UTC : null);
  }
}

/** The plan from parquet-wasm's reading of the file's schema and metadata (any Parquet file). */
async function wasmPlan(
  arrow: ArrowModule,
  path: string,
  file: string,
  settings: ParquetReadSettings,
): Promise<ReadPlan> {
  const parquet = await loadParquet();
  let blob: Blob;
  try {
    blob = await openAsBlob(path);
  } catch (error) {
    throw readError(error, file);
  }
  const pf = await parquet.ParquetFile.fromFile(blob).catch((error: unknown) => {
    throw notParquet(file, error);
  });
  let schema: Schema;
  let counts: number[];
  try {
    schema = arrow.tableFromIPC(pf.schema().intoIPCStream()).schema;
    const metadata = pf.metadata();
    refuseUnreadable(metadata, schema.fields, file);
    counts = metadata.rowGroups().map((group) => group.numRows());
  } finally {
    // The file's metadata is all this thread needs: the row groups are decoded on another.
    pf.free();
  }
  const { columns, tableColumns, read } = chosen(
    schema.fields.map((f) => f.name),
    settings,
  );
  const fields = read.map((name) => schema.fields.find((f) => f.name === name)!);
  // The page decoder reads flat columns of plain types a page at a time; parquet-wasm the rest.
  const pages =
    settings.pageDecoder === false || columns?.length === 0
      ? undefined
      : planPages(
          await readFooter(path).catch((error: unknown) => {
            throw notParquet(file, error);
          }),
          schema.fields,
          read,
        );
  return { columns, tableColumns, fields, counts, pages, fromFooter: false };
}

/** The page decoder's buffers as apache-arrow columns of the file's types. */
function pageData(
  arrow: Awaited<ReturnType<typeof loadArrow>>,
  fields: readonly Field[],
  batch: PageBatch,
): Data[] {
  return batch.parts.map((part, c) => {
    const type = fields[c]!.type;
    return arrow.makeData({
      type,
      length: part.length,
      nullCount: part.nullCount,
      ...(part.validity && { nullBitmap: part.validity }),
      ...(part.offsets && { valueOffsets: part.offsets }),
      data: part.data,
    } as never) as Data;
  });
}

/** The shared memory under a page batch's columns. */
function buffersOf(batch: PageBatch): Set<SharedArrayBuffer> {
  const buffers = new Set<SharedArrayBuffer>();
  for (const part of batch.parts) {
    for (const view of [part.data, part.offsets, part.validity])
      if (view?.buffer instanceof SharedArrayBuffer && view.buffer.byteLength > 0) buffers.add(view.buffer);
  }
  return buffers;
}

/** Batches of rows with no column read: as many rows as the row groups hold. */
function* rowsWithoutColumns(
  schema: Schema,
  counts: readonly number[],
  file: string,
  tableColumns: readonly string[] | undefined,
): Generator<ArrowRowBatch> {
  const layout = new ArrowLayout(schema, tableColumns);
  let index = 1;
  for (const rows of counts) {
    for (let start = 0; start < rows; start += ARROW_BATCH_ROWS) {
      const length = Math.min(ARROW_BATCH_ROWS, rows - start);
      yield new ArrowRowBatch(layout, [], length, file, index);
      index += length;
    }
  }
}

/**
 * The file's columns to read for the names asked for (none, when the file has none of them: its rows
 * are still counted); undefined to read them all.
 */
function projection(names: readonly string[], wanted: readonly string[] | undefined): string[] | undefined {
  if (wanted === undefined) return undefined;
  const chosen = new Set<string>();
  for (const name of wanted) {
    if (names.includes(name)) chosen.add(name);
    else if (name.includes('.') && names.includes(name.split('.')[0]!)) chosen.add(name.split('.')[0]!);
  }
  return names.filter((n) => chosen.has(n));
}

/** Parquet's DELTA_BINARY_PACKED encoding (parquet-wasm's Encoding enum). */
const DELTA_BINARY_PACKED = 4;

interface FieldLike {
  name: string;
  type: { typeId: number; bitWidth?: number; isSigned?: boolean; children?: FieldLike[] | null };
}

/**
 * parquet-wasm 0.8 aborts its WebAssembly (an uncatchable error that ends the process) on UINT32
 * columns stored with DELTA_BINARY_PACKED (DuckDB's V2 pages) holding values past 2^31. Such a file
 * is refused before reading, naming the column, rather than crash the job.
 */
function refuseUnreadable(
  metadata: { rowGroups(): Array<{ columns(): Array<{ encodings(): number[]; columnPath(): string[] }> }> },
  fields: readonly FieldLike[],
  file: string,
): void {
  const leaves: FieldLike['type'][] = [];
  const walk = (list: readonly FieldLike[]) => {
    for (const field of list) {
      const children = field.type.children;
      if (children && children.length > 0) walk(children);
      else leaves.push(field.type);
    }
  };
  walk(fields);
  for (const group of metadata.rowGroups()) {
    const columns = group.columns();
    for (let c = 0; c < columns.length; c++) {
      const type = leaves[c];
      if (type?.typeId !== 2 || type.bitWidth !== 32 || type.isSigned !== false) continue;
      if (!columns[c]!.encodings().includes(DELTA_BINARY_PACKED)) continue;
      const column = columns[c]!.columnPath().join('.');
      throw new BatchpipeError(
        'BP_INPUT_PARSE',
        `column "${column}" is UINT32 with DELTA_BINARY_PACKED encoding (Parquet V2 pages), which this reader cannot read safely; write it as BIGINT, or with V1 pages`,
        { file, column },
      );
    }
  }
}

function notParquet(file: string, error: unknown, group?: number): BatchpipeError {
  const where = group === undefined ? '' : ` (row group ${group + 1})`;
  const message = error instanceof Error ? error.message : String(error);
  return new BatchpipeError('BP_INPUT_PARSE', `cannot read it as Parquet${where}: ${message}`, { file });
}
