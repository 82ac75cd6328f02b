/**
 * The Parquet schema batchpipe's own writer gives an Arrow schema: flat columns only, each typed as
 * parquet-wasm (arrow-rs) types it, physical, converted and logical type alike, so a file reads back
 * the same whichever writer made it (test/core/parquet/parquet-file-writer.test.ts compares them).
 * A schema with any other column (lists, structs, maps, dictionaries, 8- or 16-byte floats, seconds,
 * date64, time32, large or view strings, fixed-size binary, decimal256, null) is not planned here:
 * parquet-wasm writes that file.
 */
import type { SchemaElementOut, ThriftWriter } from './parquet-thrift-writer.js';

/** An Arrow field as apache-arrow types it (its Type ids, and the few properties read here). */
export interface ArrowFieldOut {
  name: string;
  nullable: boolean;
  type: {
    typeId: number;
    bitWidth?: number;
    isSigned?: boolean;
    precision?: number;
    scale?: number;
    unit?: number;
    timezone?: string | null;
  };
}

/** How a column's Arrow values become Parquet PLAIN values. */
export type ValueEncoding =
  /** Bits (Arrow) to bits (Parquet), the valid ones only. */
  | { kind: 'bool' }
  /** Fixed-width values copied as they are (`width` bytes each). */
  | { kind: 'fixed'; width: number }
  /** 8- and 16-bit integers widened to INT32. */
  | { kind: 'widen' }
  /** Strings and binary: a 4-byte length, then the bytes. */
  | { kind: 'bytes' }
  /** Decimal128 as INT32 (`width` 4), INT64 (8) or big-endian FIXED_LEN_BYTE_ARRAY (`width` bytes). */
  | { kind: 'decimal'; width: number; fixed: boolean };

/** One leaf column: its schema element and how its values are encoded. */
export interface ColumnOut {
  name: string;
  element: SchemaElementOut;
  encoding: ValueEncoding;
  /** 1 when the column is OPTIONAL (its pages carry definition levels). */
  maxDefinition: number;
}

const BOOLEAN = 0;
const INT32 = 1;
const INT64 = 2;
const FLOAT = 4;
const DOUBLE = 5;
const BYTE_ARRAY = 6;
const FIXED_LEN_BYTE_ARRAY = 7;

// apache-arrow's Type ids.
const T_INT = 2;
const T_FLOAT = 3;
const T_BINARY = 4;
const T_UTF8 = 5;
const T_BOOL = 6;
const T_DECIMAL = 7;
const T_DATE = 8;
const T_TIME = 9;
const T_TIMESTAMP = 10;

/** Parquet's TimeUnit union field ids by Arrow's TimeUnit (1 ms, 2 us, 3 ns). */
const UNIT_FIELD: Record<number, number> = { 1: 1, 2: 2, 3: 3 };

const logical =
  (field: number, body: (w: ThriftWriter) => void = () => undefined) =>
  (w: ThriftWriter) =>
    w.struct(field, body);
const integer = (bits: number, signed: boolean) => logical(10, (w) => w.i8(1, bits).bool(2, signed));
const unit = (arrowUnit: number) => (w: ThriftWriter) => w.struct(UNIT_FIELD[arrowUnit]!, () => undefined);

/** The schema of `fields`, or undefined when one of them is not written here. */
export function planColumns(fields: readonly ArrowFieldOut[]): ColumnOut[] | undefined {
  const columns: ColumnOut[] = [];
  for (const field of fields) {
    const planned = planColumn(field);
    if (!planned) return undefined;
    columns.push({
      name: field.name,
      element: { name: field.name, repetition: field.nullable ? 1 : 0, ...planned.element },
      encoding: planned.encoding,
      maxDefinition: field.nullable ? 1 : 0,
    });
  }
  return columns;
}

/** The root element arrow-rs writes above the columns. */
export function rootElement(columns: number): SchemaElementOut {
  return { name: 'arrow_schema', numChildren: columns };
}

type Planned = { element: Omit<SchemaElementOut, 'name' | 'repetition'>; encoding: ValueEncoding };

function planColumn(field: ArrowFieldOut): Planned | undefined {
  const t = field.type;
  switch (t.typeId) {
    case T_BOOL:
      return { element: { type: BOOLEAN }, encoding: { kind: 'bool' } };
    case T_INT: {
      const bits = t.bitWidth!;
      const signed = t.isSigned!;
      if (bits === 64)
        return signed
          ? { element: { type: INT64 }, encoding: { kind: 'fixed', width: 8 } }
          : {
              element: { type: INT64, convertedType: 14, logicalType: integer(64, false) },
              encoding: { kind: 'fixed', width: 8 },
            };
      if (bits === 32)
        return signed
          ? { element: { type: INT32 }, encoding: { kind: 'fixed', width: 4 } }
          : {
              element: { type: INT32, convertedType: 13, logicalType: integer(32, false) },
              encoding: { kind: 'fixed', width: 4 },
            };
      if (bits !== 8 && bits !== 16) return undefined;
      // INT_8 15, INT_16 16, UINT_8 11, UINT_16 12.
      const converted = signed ? (bits === 8 ? 15 : 16) : bits === 8 ? 11 : 12;
      return {
        element: { type: INT32, convertedType: converted, logicalType: integer(bits, signed) },
        encoding: { kind: 'widen' },
      };
    }
    case T_FLOAT:
      // Arrow's Precision: 1 SINGLE, 2 DOUBLE (HALF is not written here).
      if (t.precision === 1) return { element: { type: FLOAT }, encoding: { kind: 'fixed', width: 4 } };
      if (t.precision === 2) return { element: { type: DOUBLE }, encoding: { kind: 'fixed', width: 8 } };
      return undefined;
    case T_UTF8:
      return {
        element: { type: BYTE_ARRAY, convertedType: 0, logicalType: logical(1) },
        encoding: { kind: 'bytes' },
      };
    case T_BINARY:
      return { element: { type: BYTE_ARRAY }, encoding: { kind: 'bytes' } };
    case T_DATE:
      // DateUnit 0 DAY; date64 is left to parquet-wasm.
      if (t.unit !== 0) return undefined;
      return {
        element: { type: INT32, convertedType: 6, logicalType: logical(6) },
        encoding: { kind: 'fixed', width: 4 },
      };
    case T_TIME:
      // time64 (us, ns) only: time32 is left to parquet-wasm. TIME_MICROS is converted type 8.
      if (t.bitWidth !== 64 || (t.unit !== 2 && t.unit !== 3)) return undefined;
      return {
        element: {
          type: INT64,
          convertedType: t.unit === 2 ? 8 : undefined,
          logicalType: logical(7, (w) => w.bool(1, false).struct(2, unit(t.unit!))),
        },
        encoding: { kind: 'fixed', width: 8 },
      };
    case T_TIMESTAMP: {
      // Seconds are left to parquet-wasm (it stores them as milliseconds).
      if (t.unit !== 1 && t.unit !== 2 && t.unit !== 3) return undefined;
      const utc = typeof t.timezone === 'string' && t.timezone !== '';
      // TIMESTAMP_MILLIS 9, TIMESTAMP_MICROS 10; nanoseconds have none.
      const converted = t.unit === 1 ? 9 : t.unit === 2 ? 10 : undefined;
      return {
        element: {
          type: INT64,
          convertedType: converted,
          logicalType: logical(8, (w) => w.bool(1, utc).struct(2, unit(t.unit!))),
        },
        encoding: { kind: 'fixed', width: 8 },
      };
    }
    case T_DECIMAL: {
      if (t.bitWidth !== 128) return undefined;
      const precision = t.precision!;
      const scale = t.scale!;
      const annotations = {
        convertedType: 5,
        scale,
        precision,
        logicalType: logical(5, (w) => w.i32(1, scale).i32(2, precision)),
      };
      // arrow-rs's rule, precision 1 included (it stores that as INT64).
      if (precision > 1 && precision <= 9)
        return {
          element: { type: INT32, ...annotations },
          encoding: { kind: 'decimal', width: 4, fixed: false },
        };
      if (precision <= 18)
        return {
          element: { type: INT64, ...annotations },
          encoding: { kind: 'decimal', width: 8, fixed: false },
        };
      const width = decimalBytes(precision);
      return {
        element: { type: FIXED_LEN_BYTE_ARRAY, typeLength: width, ...annotations },
        encoding: { kind: 'decimal', width, fixed: true },
      };
    }
    default:
      return undefined;
  }
}

/** The fewest bytes a two's complement decimal of `precision` digits needs (arrow-rs's rule). */
function decimalBytes(precision: number): number {
  return Math.ceil((precision * Math.log2(10) + 1) / 8);
}
