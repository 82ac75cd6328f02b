/**
 * The parts of Parquet's Thrift metadata (compact protocol) the page decoder needs: the footer's
 * schema and column chunks, and each page's header. A struct is read as a map from field id to
 * value, then picked into the few typed fields used; everything else is skipped by type.
 */

/** A Thrift struct as read: field id to value. */
type Struct = Map<number, Value>;
type Value = number | bigint | boolean | Uint8Array | Struct | Value[];

/** A reader over Thrift compact bytes. */
export class ThriftReader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
  ) {
    this.pos = pos;
  }

  #byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('Thrift metadata ends early');
    return this.bytes[this.pos++]!;
  }

  #varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.#byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('Thrift varint too long');
    }
  }

  #zigzag(): number {
    const n = this.#varint();
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  #value(type: number): Value {
    switch (type) {
      case 1:
        return true;
      case 2:
        return false;
      case 3: {
        const b = this.#byte();
        return b > 127 ? b - 256 : b;
      }
      case 4:
      case 5:
      case 6:
        // i64 values in Parquet metadata (offsets, sizes, counts) stay below 2^53.
        return this.#zigzag();
      case 7: {
        const view = new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 8);
        this.pos += 8;
        return view.getFloat64(0, true);
      }
      case 8: {
        const length = this.#varint();
        const start = this.pos;
        this.pos += length;
        if (this.pos > this.bytes.length) throw new Error('Thrift metadata ends early');
        return this.bytes.subarray(start, this.pos);
      }
      case 9:
      case 10: {
        const header = this.#byte();
        let size = header >> 4;
        if (size === 15) size = this.#varint();
        const elementType = header & 0x0f;
        const list: Value[] = [];
        for (let i = 0; i < size; i++) {
          // Booleans in a list are one byte each.
          list.push(elementType === 1 || elementType === 2 ? this.#byte() === 1 : this.#value(elementType));
        }
        return list;
      }
      case 11: {
        const size = this.#varint();
        if (size === 0) return [];
        const types = this.#byte();
        for (let i = 0; i < size; i++) {
          this.#value(types >> 4);
          this.#value(types & 0x0f);
        }
        return [];
      }
      case 12:
        return this.struct();
      default:
        throw new Error(`unknown Thrift type ${type}`);
    }
  }

  /** Reads one struct (to its stop field). */
  struct(): Struct {
    const fields: Struct = new Map();
    let id = 0;
    for (;;) {
      const header = this.#byte();
      if (header === 0) return fields;
      const delta = header >> 4;
      id = delta === 0 ? this.#zigzag() : id + delta;
      fields.set(id, this.#value(header & 0x0f));
    }
  }
}

const num = (s: Struct, id: number): number | undefined => s.get(id) as number | undefined;
const text = (s: Struct, id: number): string | undefined => {
  const v = s.get(id) as Uint8Array | undefined;
  return v === undefined ? undefined : new TextDecoder().decode(v);
};
const list = (s: Struct, id: number): Value[] => (s.get(id) as Value[] | undefined) ?? [];

/** A schema element of the footer (a column or a group). */
export interface SchemaElement {
  name: string;
  /** Physical type (0 BOOLEAN, 1 INT32, 2 INT64, 3 INT96, 4 FLOAT, 5 DOUBLE, 6 BYTE_ARRAY, 7 FIXED). */
  type: number | undefined;
  /** 0 REQUIRED, 1 OPTIONAL, 2 REPEATED. */
  repetition: number | undefined;
  numChildren: number;
  /** A TIMESTAMP's unit (1 ms, 2 us, 3 ns, as Arrow's TimeUnit counts them), from the logical or converted type. */
  timestampUnit: number | undefined;
  /** The converted type (0 UTF8, 6 DATE, 9-10 TIMESTAMP_MILLIS/MICROS, 13 UINT_32, 14 UINT_64 ...). */
  convertedType: number | undefined;
  /** The logical type: its field id in the LogicalType union (1 STRING, 6 DATE, 8 TIMESTAMP, 10 INTEGER ...) and what it says. */
  logical: LogicalType | undefined;
}

/** A schema element's logical type, as far as the Arrow type of a flat column depends on it. */
export interface LogicalType {
  id: number;
  /** INTEGER's width and sign. */
  bitWidth?: number | undefined;
  signed?: boolean | undefined;
  /** TIMESTAMP's isAdjustedToUTC. */
  utc?: boolean | undefined;
}

/** A column chunk of a row group. */
export interface ColumnChunk {
  path: string[];
  type: number;
  encodings: number[];
  /** 0 none, 1 snappy, 2 gzip, 3 lzo, 4 brotli, 5 lz4 (Hadoop), 6 zstd, 7 lz4 raw. */
  codec: number;
  numValues: number;
  /** Where its first page starts (the dictionary page, when there is one) and its length. */
  start: number;
  length: number;
}

/** The footer as the page decoder uses it. */
export interface FileMetadata {
  schema: SchemaElement[];
  /** The keys of the file's key-value metadata (`ARROW:schema` when an Arrow writer stored its schema). */
  keys: string[];
  rowGroups: Array<{ numRows: number; columns: ColumnChunk[] }>;
}

/** A schema element's TIMESTAMP unit, as Arrow's TimeUnit (1 ms, 2 us, 3 ns); undefined if not a timestamp. */
function timestampUnit(element: Struct): number | undefined {
  const timestamp = (element.get(10) as Struct | undefined)?.get(8) as Struct | undefined;
  if (timestamp) {
    const unit = timestamp.get(2) as Struct | undefined;
    if (unit?.has(1)) return 1;
    if (unit?.has(2)) return 2;
    if (unit?.has(3)) return 3;
    return undefined;
  }
  const converted = num(element, 6);
  return converted === 9 ? 1 : converted === 10 ? 2 : undefined;
}

/** Reads the footer's FileMetaData. */
export function readFileMetadata(bytes: Uint8Array): FileMetadata {
  const meta = new ThriftReader(bytes).struct();
  const schema = list(meta, 2).map((v) => {
    const s = v as Struct;
    return {
      name: text(s, 4) ?? '',
      type: num(s, 1),
      repetition: num(s, 3),
      numChildren: num(s, 5) ?? 0,
      timestampUnit: timestampUnit(s),
      convertedType: num(s, 6),
      logical: logicalType(s),
    };
  });
  const keys = list(meta, 5).map((v) => text(v as Struct, 1) ?? '');
  const rowGroups = list(meta, 4).map((v) => {
    const group = v as Struct;
    const columns = list(group, 1).map((c) => {
      const chunk = c as Struct;
      const md = chunk.get(3) as Struct | undefined;
      if (!md) throw new Error('a column chunk has no metadata');
      const dataOffset = num(md, 9)!;
      const dictionaryOffset = num(md, 11);
      // Some writers store a dictionary offset of 0 meaning none.
      const start =
        dictionaryOffset !== undefined && dictionaryOffset > 0 && dictionaryOffset < dataOffset
          ? dictionaryOffset
          : dataOffset;
      return {
        path: list(md, 3).map((p) => new TextDecoder().decode(p as Uint8Array)),
        type: num(md, 1)!,
        encodings: list(md, 2) as number[],
        codec: num(md, 4)!,
        numValues: num(md, 5)!,
        start,
        length: num(md, 7)!,
      };
    });
    return { numRows: num(group, 3)!, columns };
  });
  return { schema, keys, rowGroups };
}

function logicalType(element: Struct): LogicalType | undefined {
  const union = element.get(10) as Struct | undefined;
  const [id, value] = union?.entries().next().value ?? [];
  if (id === undefined) return undefined;
  const fields = value instanceof Map ? (value as Struct) : undefined;
  if (id === 10)
    return { id, bitWidth: fields && num(fields, 1), signed: fields?.get(2) as boolean | undefined };
  if (id === 8) return { id, utc: fields?.get(1) as boolean | undefined };
  return { id };
}

/** A page's header. */
export interface PageHeader {
  /** 0 DATA_PAGE, 1 INDEX_PAGE, 2 DICTIONARY_PAGE, 3 DATA_PAGE_V2. */
  type: number;
  uncompressedSize: number;
  compressedSize: number;
  numValues: number;
  encoding: number;
  /** V1 only: how the definition levels are encoded (3 RLE, 4 BIT_PACKED). */
  definitionLevelEncoding: number;
  /** V2 only: the levels' byte lengths (stored uncompressed before the values), and whether the values are compressed. */
  definitionLevelsLength: number;
  repetitionLevelsLength: number;
  isCompressed: boolean;
}

/** Reads a page header at `pos`; returns it and where the page's bytes start. */
export function readPageHeader(bytes: Uint8Array, pos: number): { header: PageHeader; end: number } {
  const reader = new ThriftReader(bytes, pos);
  const s = reader.struct();
  const type = num(s, 1)!;
  const header: PageHeader = {
    type,
    uncompressedSize: num(s, 2)!,
    compressedSize: num(s, 3)!,
    numValues: 0,
    encoding: 0,
    definitionLevelEncoding: 3,
    definitionLevelsLength: 0,
    repetitionLevelsLength: 0,
    isCompressed: true,
  };
  if (type === 0) {
    const h = s.get(5) as Struct;
    header.numValues = num(h, 1)!;
    header.encoding = num(h, 2)!;
    header.definitionLevelEncoding = num(h, 3) ?? 3;
  } else if (type === 2) {
    const h = s.get(7) as Struct;
    header.numValues = num(h, 1)!;
    header.encoding = num(h, 2)!;
  } else if (type === 3) {
    const h = s.get(8) as Struct;
    header.numValues = num(h, 1)!;
    header.encoding = num(h, 4)!;
    header.definitionLevelsLength = num(h, 5) ?? 0;
    header.repetitionLevelsLength = num(h, 6) ?? 0;
    header.isCompressed = (h.get(7) as boolean | undefined) ?? true;
  }
  return { header, end: reader.pos };
}
