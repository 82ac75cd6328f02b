import { z } from 'zod';
import { BatchpipeError } from '../../errors.js';
import type { ByteWriter } from '../../internal/byte-writer.js';
import type { Rejection, Row, RowValues } from '../../types.js';
import { customIdFor } from '../requests/custom-id.js';
import type { CellRef, RowBatch } from './row-batch.js';

/**
 * One of `count` disjoint parts of a table (docs/scale.md): slice `index` (0-based, as Kubernetes'
 * JOB_COMPLETION_INDEX and Airflow's map_index count) holds the rows whose custom_id hashes to it.
 */
export interface Slice {
  index: number;
  count: number;
}

/** More slices than this would be runs of a few rows each, and as many runs to watch. */
export const MAX_SLICES = 10_000;

/** A slice as options give it: `{ index, count }`, index 0 .. count-1. */
export const SliceSchema = z
  .strictObject({
    index: z.number().int().min(0),
    count: z.number().int().min(1).max(MAX_SLICES),
  })
  .refine((s) => s.index < s.count, 'expected index from 0 to count - 1');

/** The `slice` option of every job that reads a table (absent: the whole table). */
export const SliceField = SliceSchema.optional();

/**
 * `i/n` as a command line writes it: 0 <= i < n. BP_USAGE otherwise, naming `flag`.
 */
export function parseSlice(text: string, flag = '--slice'): Slice {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = Number(match?.[1]);
  const count = Number(match?.[2]);
  if (!match || count < 1 || count > MAX_SLICES || index >= count)
    throw new BatchpipeError(
      'BP_USAGE',
      `${flag}: expected i/n with n from 1 to ${MAX_SLICES} and i from 0 to n-1 (0-based, as JOB_COMPLETION_INDEX and map_index count), got ${JSON.stringify(text)}`,
    );
  return { index, count };
}

/** `i/n`, as a person reads it back. */
export function sliceText(slice: Slice): string {
  return `${slice.index}/${slice.count}`;
}

/** The slice in names given to the provider and on disk: `s<i>of<n>` (no `/`). */
export function sliceTag(slice: Slice): string {
  return `s${slice.index}of${slice.count}`;
}

/**
 * The slice a custom_id falls in: FNV-1a (32-bit) over its UTF-8 bytes, mixed by MurmurHash3's
 * 32-bit finalizer, modulo `count`. Fixed forever: slices made by one version are joined by another.
 * By id, not by row number, so equal ids (duplicates the run must refuse) always meet in one slice,
 * and a row keeps its slice when the table is re-sorted. The finalizer spreads `row-<n>` evenly even
 * where plain FNV-1a's low bits follow the last digit.
 */
export function sliceOfId(id: string, count: number): number {
  let h = 0x811c9dc5;
  let ascii = true;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 0x80) {
      ascii = false;
      break;
    }
    h = Math.imul(h ^ c, 0x01000193);
  }
  if (!ascii) {
    h = 0x811c9dc5;
    for (const byte of Buffer.from(id, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % count;
}

/**
 * Which entries of row batches belong to a slice: those whose custom_id (as prepare makes it, from
 * `idColumn` or the row number) hashes to it. A row the source could not read has no id of its own:
 * it goes by `row-<n>`, as the id of a row with an empty key does.
 */
export class RowSlicer {
  readonly #slice: Slice;
  readonly #idColumn: string | undefined;
  #ref: { layout: object; ref: CellRef | undefined } | undefined;

  constructor(slice: Slice, idColumn: string | undefined) {
    this.#slice = slice;
    this.#idColumn = idColumn;
  }

  /** The custom_id of entry `i`. */
  idOf(rows: RowBatch, i: number): string {
    const name = this.#idColumn;
    if (name === undefined || rows.rejection(i)) return customIdFor(rows.index(i));
    if (this.#ref?.layout !== rows.layout) this.#ref = { layout: rows.layout, ref: rows.ref(name) };
    const ref = this.#ref.ref;
    return customIdFor(rows.index(i), ref === undefined ? undefined : rows.value(i, ref));
  }

  /** The batch's entries in the slice, as a view; the whole batch when all of them are. */
  slice(rows: RowBatch): RowBatch {
    const keep: number[] = [];
    const { index, count } = this.#slice;
    for (let i = 0; i < rows.length; i++) if (sliceOfId(this.idOf(rows, i), count) === index) keep.push(i);
    if (keep.length === rows.length) return rows;
    return new SlicedRowBatch(rows, keep);
  }
}

/**
 * Some entries of a row batch, in order, as a batch of their own. Fast paths that recognise a
 * source's own batch class (render threads, copying CSV bytes) take the general path for it.
 */
export class SlicedRowBatch implements RowBatch {
  readonly kind = 'row-batch';
  readonly #rows: RowBatch;
  readonly #keep: readonly number[];
  #released = false;

  constructor(rows: RowBatch, keep: readonly number[]) {
    this.#rows = rows;
    this.#keep = keep;
  }

  get length(): number {
    return this.#keep.length;
  }

  get layout(): object {
    return this.#rows.layout;
  }

  get tableColumns(): readonly string[] | undefined {
    return this.#rows.tableColumns;
  }

  get sameKeys(): boolean | undefined {
    return this.#rows.sameKeys;
  }

  index(i: number): number {
    return this.#rows.index(this.#keep[i]!);
  }

  line(i: number): number {
    return this.#rows.line(this.#keep[i]!);
  }

  file(i: number): string {
    return this.#rows.file(this.#keep[i]!);
  }

  rejection(i: number): Rejection | undefined {
    return this.#rows.rejection(this.#keep[i]!);
  }

  keys(i: number): readonly string[] {
    return this.#rows.keys(this.#keep[i]!);
  }

  values(i: number): RowValues {
    return this.#rows.values(this.#keep[i]!);
  }

  item(i: number): Row | Rejection {
    return this.#rows.item(this.#keep[i]!);
  }

  ref(name: string): CellRef | undefined {
    return this.#rows.ref(name);
  }

  has(i: number, ref: CellRef): boolean {
    return this.#rows.has(this.#keep[i]!, ref);
  }

  value(i: number, ref: CellRef): unknown {
    return this.#rows.value(this.#keep[i]!, ref);
  }

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    this.#rows.writeJsonText(this.#keep[i]!, ref, out);
  }

  release(): void {
    // An empty view is released where it was made and may be released again by a stage that skips it.
    if (this.#released) return;
    this.#released = true;
    this.#rows.release();
  }
}

/** The entries of `batches` in `slice`, batch by batch (a batch with none is released, not yielded). */
export async function* slicedBatches(
  batches: AsyncIterable<RowBatch>,
  slice: Slice,
  idColumn: string | undefined,
): AsyncGenerator<RowBatch> {
  const slicer = new RowSlicer(slice, idColumn);
  for await (const rows of batches) {
    const kept = slicer.slice(rows);
    if (kept.length > 0) yield kept;
    else kept.release();
  }
}
