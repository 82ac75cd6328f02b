import type { Data, DataType, Field, Int64, RecordBatch, Schema, Utf8 } from 'apache-arrow';
import { BatchpipeError } from '../../errors.js';
import type { RowValues } from '../../types.js';
import { CsvRowBatch } from '../csv/csv-row-batch.js';
import { JoinedRowBatch } from '../join/joined-row-batch.js';
import { JsonlRowBatch } from '../jsonl/jsonl-row-batch.js';
import { decodeJsonColumns, type JsonColumnKind, type ResultColumnKind } from '../results/result-cells.js';
import { type ColumnBuffers, FRESH_COLUMNS } from '../rows/column-buffers.js';
import { type RowBatch, textOf } from '../rows/row-batch.js';
import type { Utf8Column } from '../rows/utf8-column.js';
import type { ArrowModule } from './arrow-lib.js';
import { ArrowRowBatch } from './arrow-row-batch.js';

/**
 * The Arrow batch whose columns `fromRows` copies for these rows (the rows themselves, or the
 * source of joined rows), if any: a writer that copied them gives them back through it.
 */
export function arrowSourceOf(rows: RowBatch): ArrowRowBatch | undefined {
  const source = rows instanceof JoinedRowBatch ? rows.source : rows;
  return source instanceof ArrowRowBatch ? source : undefined;
}

/** How one output column is made: its field, and each row's value (or the source's column, copied). */
interface ColumnPlan {
  field: Field;
  /** The source batch's own column, when the rows were read from Arrow memory of the same type. */
  copy?: number;
  /**
   * The source's CSV field whose bytes make this utf8 column (a CsvRowBatch's header index): its
   * text without a JS string a cell, when the batch's source is CSV.
   */
  csvField?: number;
  /** A joined source's column as text (textOf its values): made by a JSON Lines source from its bytes. */
  sourceText?: string;
  /** The row's value, made to fit the column's type (`cells`: a joined batch's result cells, row after row). */
  value?: (rows: RowBatch, i: number, cells: unknown[] | undefined) => unknown;
  /** A joined batch's result column: its index among the result cells. */
  result?: number;
}

/**
 * Turns row batches into Arrow record batches of one schema, fixed by the first batch (docs/formats.md):
 * - rows joined to a source read from Parquet or Arrow keep the source's columns as they are (copied,
 *   types and all); other sources' columns are text (null stays null);
 * - result columns are typed: `status` and the texts utf8, token counts int64, `status_code` int32,
 *   labels utf8, schema fields by their JSON Schema (string, integer -> int64, number -> float64,
 *   boolean, arrays as lists, objects as structs), embeddings list<float32> (list<list<float32>> when
 *   the first batch's answers hold several vectors);
 * - other rows (records, or rows from a user's transform): each column by the first batch's values
 *   (booleans, integers -> int64, numbers -> float64, text; lists and objects as JSON text).
 */
export class ArrowBatchBuilder {
  readonly #arrow: ArrowModule;
  #plans: ColumnPlan[] | undefined;
  #schema: Schema | undefined;
  /** The result columns read straight from stored JSON cells (decodeJsonColumns), by their types. */
  #resultKinds: JsonColumnKind[] = [];

  constructor(arrow: ArrowModule) {
    this.#arrow = arrow;
  }

  /** The column names, once the first batch fixed them. */
  get names(): string[] {
    return this.#plans?.map((p) => p.field.name) ?? [];
  }

  /**
   * The record batch of a batch of rows. Columns made here (not a source's own) take their buffers
   * from `buffers`.
   */
  fromRows(rows: RowBatch, buffers: ColumnBuffers = FRESH_COLUMNS): RecordBatch {
    this.#plans ??= this.#plan(rows);
    const plans = this.#plans;
    const a = this.#arrow;
    const joined = rows instanceof JoinedRowBatch ? rows : undefined;
    // Result columns of plain strings and whole numbers straight from the stored cells; the others
    // from the cells decoded (only when some column needs them).
    const direct =
      joined?.layout.encoding.kind === 'json' && this.#resultKinds.some((kind) => kind !== undefined)
        ? decodeJsonColumns(joined.cells, this.#resultKinds)
        : undefined;
    let cells: unknown[] | undefined;
    const source = arrowSourceOf(rows);
    const base = joined?.source ?? rows;
    const csv = base instanceof CsvRowBatch ? base : undefined;
    // Entries whose source columns are null: those the source could not read.
    const unread = joined?.unreadEntries;
    // A JSON Lines source makes its text columns at once (each line scanned once for all of them).
    let jsonl: Map<string, Utf8Column | undefined> | undefined;
    if (joined?.source instanceof JsonlRowBatch) {
      const names = plans.flatMap((plan) => (plan.sourceText === undefined ? [] : [plan.sourceText]));
      const columns = joined.source.utf8Columns(names, unread, buffers);
      jsonl = new Map(names.map((name, c) => [name, columns[c]]));
    }
    const children: Data[] = plans.map((plan) => {
      if (plan.copy !== undefined) {
        const data = source?.columns[plan.copy];
        if (data && a.util.compareTypes(data.type, plan.field.type)) return data;
        throw new BatchpipeError(
          'BP_USAGE',
          `column "${plan.field.name}": the rows changed type mid-stream (${String(data?.type)} after ${String(plan.field.type)})`,
          { column: plan.field.name },
        );
      }
      if (plan.csvField !== undefined && csv) {
        const column = csv.utf8Column(plan.csvField, unread, buffers);
        if (column) return a.makeData({ type: plan.field.type as Utf8, length: rows.length, ...column });
      }
      const made = plan.sourceText === undefined ? undefined : jsonl?.get(plan.sourceText);
      if (made) return a.makeData({ type: plan.field.type as Utf8, length: rows.length, ...made });
      const read = plan.result === undefined ? undefined : direct?.[plan.result];
      if (read) return a.makeData({ type: plan.field.type, length: rows.length, ...read } as never) as Data;
      if (plan.result !== undefined) cells ??= joined?.flatResultCells();
      const values = new Array<unknown>(rows.length);
      for (let i = 0; i < rows.length; i++) values[i] = plan.value!(rows, i, cells);
      return plainData(a, plan.field.type, values) ?? a.vectorFromArray(values, plan.field.type).data[0]!;
    });
    this.#schema ??= new a.Schema(plans.map((p) => p.field));
    const struct = a.makeData({
      type: new a.Struct(this.#schema.fields),
      length: rows.length,
      nullCount: 0,
      children,
    });
    return new a.RecordBatch(this.#schema, struct);
  }

  /** The plan of every column, from the first batch. */
  #plan(rows: RowBatch): ColumnPlan[] {
    const a = this.#arrow;
    const plans: ColumnPlan[] = [];
    if (rows instanceof JoinedRowBatch) {
      const source = rows.source;
      const layout = rows.layout;
      layout.sourceColumns.forEach((name, c) => {
        if (source instanceof ArrowRowBatch && source.columns[c]) {
          plans.push({ field: new a.Field(name, source.columns[c]!.type, true), copy: c });
          return;
        }
        const field = source instanceof CsvRowBatch ? source.layout.header.lastIndexOf(name) : -1;
        plans.push({
          field: new a.Field(name, new a.Utf8(), true),
          ...(field === -1 ? {} : { csvField: field }),
          sourceText: name,
          value: (batch, i) => {
            const joined = batch as JoinedRowBatch;
            if (joined.sourceRejected(i)) return null;
            const value = joined.source.values(i)[name];
            return value === null || value === undefined ? null : textOf(value);
          },
        });
      });
      const firstCells = rows.flatResultCells();
      const width = layout.names.length;
      layout.names.forEach((name, c) => {
        const type = this.#resultType(
          layout.kinds[c]!,
          Array.from({ length: rows.length }, (_, i) => firstCells[i * width + c]),
        );
        plans.push({
          field: new a.Field(name, type, true),
          value: (_b, i, cells) => fit(cells![i * width + c], type, name),
          result: c,
        });
      });
      this.#resultKinds = plans.slice(plans.length - width).map((plan) => jsonColumnKind(plan.field.type));
      return plans;
    }
    if (rows instanceof ArrowRowBatch) {
      // Rows read from Parquet or Arrow, written as they are.
      return rows.layout.names.map((name, c) => ({
        field: new a.Field(name, rows.columns[c]!.type, true),
        copy: c,
      }));
    }
    const names: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < rows.length; i++) {
      if (rows.rejection(i)) continue;
      for (const key of rows.keys(i)) {
        if (seen.has(key)) continue;
        seen.add(key);
        names.push(key);
      }
    }
    const sampled = Array.from({ length: rows.length }, (_, i) => (rows.rejection(i) ? {} : rows.values(i)));
    for (const name of names) {
      const sample = sampled.map((values) => values[name]);
      const type = this.#inferred(sample);
      // A CSV row's values are its fields' text: the column is made from their bytes.
      const field =
        rows instanceof CsvRowBatch && type.typeId === a.Type.Utf8
          ? rows.layout.header.lastIndexOf(name)
          : -1;
      plans.push({
        field: new a.Field(name, type, true),
        ...(field === -1 ? {} : { csvField: field }),
        value: (batch, i) => fit(batch.values(i)[name], type, name),
      });
    }
    return plans;
  }

  #resultType(kind: ResultColumnKind, sample: unknown[]): DataType {
    const a = this.#arrow;
    switch (kind.role) {
      case 'prompt_tokens':
      case 'completion_tokens':
      case 'reasoning_tokens':
        return new a.Int64();
      case 'status_code':
        return new a.Int32();
      case 'cached':
        return new a.Bool();
      case 'field':
        return this.#schemaType(kind.schema);
      case 'payload': {
        if (kind.payload === 'content') return new a.Utf8();
        const first = sample.find((v) => Array.isArray(v)) as unknown[] | undefined;
        const vector = new a.List(new a.Field('item', new a.Float32(), true));
        return Array.isArray(first?.[0]) ? new a.List(new a.Field('item', vector, true)) : vector;
      }
      default:
        return new a.Utf8();
    }
  }

  /** The Arrow type of a JSON Schema's values; text (JSON for anything else) when it says nothing narrower. */
  #schemaType(schema: Record<string, unknown> | undefined): DataType {
    const a = this.#arrow;
    const type = jsonType(schema);
    switch (type) {
      case 'string':
        return new a.Utf8();
      case 'integer':
        return new a.Int64();
      case 'number':
        return new a.Float64();
      case 'boolean':
        return new a.Bool();
      case 'array': {
        const items = branch(schema)?.items as Record<string, unknown> | undefined;
        return new a.List(new a.Field('item', this.#schemaType(items), true));
      }
      case 'object': {
        const properties = branch(schema)?.properties as Record<string, Record<string, unknown>> | undefined;
        if (!properties || Object.keys(properties).length === 0) return new a.Utf8();
        return new a.Struct(
          Object.entries(properties).map(([key, sub]) => new a.Field(key, this.#schemaType(sub), true)),
        );
      }
      default:
        return new a.Utf8();
    }
  }

  /** A column's type from its values in the first batch. */
  #inferred(sample: unknown[]): DataType {
    const a = this.#arrow;
    const present = sample.filter((v) => v !== null && v !== undefined);
    if (present.length === 0) return new a.Utf8();
    if (present.every((v) => typeof v === 'boolean')) return new a.Bool();
    if (present.every((v) => typeof v === 'number' && Number.isSafeInteger(v))) return new a.Int64();
    if (present.every((v) => typeof v === 'number')) return new a.Float64();
    return new a.Utf8();
  }
}

/**
 * The types whose columns are made from their cells without apache-arrow's builders: utf8 and signed
 * int64 (a result column of them read from stored JSON cells, plainData from values); undefined for
 * the others (decoded, then fitted; vectorFromArray).
 */
function jsonColumnKind(type: DataType): JsonColumnKind {
  const t = type as unknown as { typeId: number; bitWidth?: number; isSigned?: boolean };
  if (t.typeId === 5) return 'utf8';
  if (t.typeId === 2 && t.bitWidth === 64 && t.isSigned) return 'int64';
  return undefined;
}

/** The schema itself, or its non-null branch of an `anyOf`/`oneOf` with null. */
function branch(schema: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const options = (schema?.anyOf ?? schema?.oneOf) as Array<Record<string, unknown>> | undefined;
  if (!Array.isArray(options)) return schema;
  const real = options.filter((o) => o.type !== 'null');
  return real.length === 1 ? real[0] : undefined;
}

/** A JSON Schema's one type (a nullable type counts as its non-null one). */
function jsonType(schema: Record<string, unknown> | undefined): string | undefined {
  const one = branch(schema);
  if (!one) return undefined;
  const type = one.type;
  if (typeof type === 'string') return type;
  if (Array.isArray(type)) {
    const real = type.filter((t) => t !== 'null');
    return real.length === 1 ? (real[0] as string) : undefined;
  }
  if (Array.isArray(one.enum) && one.enum.every((v) => typeof v === 'string')) return 'string';
  if (one.properties) return 'object';
  return undefined;
}

/**
 * A utf8 or int64 column made straight from its values (strings, bigints, null), as vectorFromArray
 * would make it, without its builders: they encode each string alone, and cost a join into Parquet
 * more CPU than the rest of its result columns. Undefined for other types.
 */
function plainData(a: ArrowModule, type: DataType, values: readonly unknown[]): Data | undefined {
  const kind = jsonColumnKind(type);
  if (kind === undefined) return undefined;
  const utf8 = kind === 'utf8';
  const length = values.length;
  let nulls = 0;
  let chars = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value === null) nulls++;
    else if (typeof value !== (utf8 ? 'string' : 'bigint')) return undefined;
    else if (utf8) chars += (value as string).length;
  }
  const nullBitmap = nulls > 0 ? new Uint8Array((length + 7) >> 3) : undefined;
  const valid = (i: number) => {
    if (nullBitmap) nullBitmap[i >> 3]! |= 1 << (i & 7);
  };
  if (!utf8) {
    const data = new BigInt64Array(length);
    for (let i = 0; i < length; i++) {
      const value = values[i];
      if (value === null) continue;
      data[i] = value as bigint;
      valid(i);
    }
    return a.makeData({ type: type as Int64, length, nullCount: nulls, nullBitmap, data });
  }
  // A UTF-16 unit is at most 3 bytes of UTF-8 (a surrogate pair, 2 units, is 4).
  const bytes = Buffer.allocUnsafeSlow(chars * 3);
  const valueOffsets = new Int32Array(length + 1);
  let pos = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value !== null) {
      pos += bytes.write(value as string, pos);
      valid(i);
    }
    valueOffsets[i + 1] = pos;
  }
  const data = new Uint8Array(bytes.buffer, 0, pos);
  return a.makeData({ type: type as Utf8, length, nullCount: nulls, nullBitmap, valueOffsets, data });
}

/** A value made to fit a column's type (apache-arrow's builders take bigints for int64, arrays for lists). */
function fit(value: unknown, type: DataType, column: string): unknown {
  if (value === null || value === undefined) return null;
  const t = type as unknown as { typeId: number; bitWidth?: number; children?: Field[] };
  switch (t.typeId) {
    case 5: // utf8
      return typeof value === 'string' ? value : textOf(value);
    case 2: // int
      if (typeof value === 'bigint') return t.bitWidth === 64 ? value : Number(value);
      if (
        (typeof value === 'number' && Number.isInteger(value)) ||
        (typeof value === 'string' && /^-?\d+$/.test(value))
      )
        return t.bitWidth === 64 ? BigInt(value) : Number(value);
      break;
    case 3: // float
      if (typeof value === 'number') return value;
      if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value)))
        return Number(value);
      break;
    case 6: // bool
      if (typeof value === 'boolean') return value;
      break;
    case 12: // list
      if (Array.isArray(value)) return value.map((item) => fit(item, t.children![0]!.type, column));
      break;
    case 13: // struct
      if (typeof value === 'object' && !Array.isArray(value)) {
        const fields: RowValues = {};
        for (const field of t.children!)
          fields[field.name] = fit((value as RowValues)[field.name], field.type, column);
        return fields;
      }
      break;
  }
  throw new BatchpipeError(
    'BP_USAGE',
    `column "${column}" holds ${String(type)} (fixed by the first rows written), and a later row has ${JSON.stringify(value)}; give every row values of one type`,
    { column },
  );
}
