import type { ByteWriter } from '../../internal/byte-writer.js';
import { writeJsonText } from '../../internal/json-bytes.js';
import type { Rejection, Row, RowValues } from '../../types.js';
import { type ColumnRef, columnRef } from './column-ref.js';
import { type CellRef, type RowBatch, textOf } from './row-batch.js';

/** Every batch of rows held as objects shares one layout: a column is found by name in each row. */
const OBJECT_LAYOUT = Object.freeze({ rows: 'objects' });

/** Column readers by name, shared by every object batch (names are few: a template's, an id column). */
const REFS = new Map<string, ColumnRef>();
const MAX_REFS = 4096;

/**
 * Rows held as objects (JSON rows, or Rows a user's transform made): each entry is the Row or
 * Rejection itself.
 */
export class ObjectRowBatch implements RowBatch {
  readonly kind = 'row-batch';
  readonly layout = OBJECT_LAYOUT;
  readonly items: ReadonlyArray<Row | Rejection>;

  constructor(items: ReadonlyArray<Row | Rejection>) {
    this.items = items;
  }

  get length(): number {
    return this.items.length;
  }

  /** Objects are left to the collector. */
  release(): void {}

  index(i: number): number {
    return this.items[i]!.index;
  }

  line(i: number): number {
    return this.items[i]!.line;
  }

  file(i: number): string {
    return this.items[i]!.file;
  }

  rejection(i: number): Rejection | undefined {
    const item = this.items[i]!;
    return item.kind === 'rejection' ? item : undefined;
  }

  keys(i: number): readonly string[] {
    return Object.keys(this.values(i));
  }

  values(i: number): RowValues {
    const item = this.items[i]!;
    return item.kind === 'row' ? item.values : {};
  }

  item(i: number): Row | Rejection {
    return this.items[i]!;
  }

  ref(name: string): CellRef {
    let ref = REFS.get(name);
    if (!ref) {
      ref = columnRef(name);
      if (REFS.size < MAX_REFS) REFS.set(name, ref);
    }
    return ref;
  }

  has(i: number, ref: CellRef): boolean {
    return (ref as ColumnRef).has(this.values(i));
  }

  value(i: number, ref: CellRef): unknown {
    return (ref as ColumnRef).get(this.values(i));
  }

  writeJsonText(i: number, ref: CellRef, out: ByteWriter): void {
    writeJsonText(out, textOf((ref as ColumnRef).get(this.values(i))));
  }
}
