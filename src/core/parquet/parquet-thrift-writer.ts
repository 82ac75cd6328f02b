/**
 * Parquet's Thrift metadata as the writer makes it (compact protocol): page headers and the footer.
 * The decoder beside it (parquet-thrift.ts) reads the same field ids; here each struct is written
 * from a typed object, fields in id order, optional ones left out when undefined.
 */

const TRUE = 1;
const FALSE = 2;
const BYTE = 3;
const I16 = 4;
const I32 = 5;
const I64 = 6;
const BINARY = 8;
const LIST = 9;
const STRUCT = 12;

/** Compact-protocol bytes, grown as written. */
export class ThriftWriter {
  #bytes = new Uint8Array(256);
  #pos = 0;
  /** The last field id of each open struct (ids are written as deltas). */
  #last: number[] = [0];

  /** The bytes written. */
  bytes(): Uint8Array {
    return this.#bytes.subarray(0, this.#pos);
  }

  #room(n: number): void {
    if (this.#pos + n <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.#pos + n));
    grown.set(this.#bytes.subarray(0, this.#pos));
    this.#bytes = grown;
  }

  #byte(b: number): void {
    this.#room(1);
    this.#bytes[this.#pos++] = b;
  }

  /** An unsigned varint; arithmetic, not bit operations, so values up to 2^53 stay exact. */
  #varint(n: number): void {
    this.#room(10);
    while (n >= 0x80) {
      this.#bytes[this.#pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#bytes[this.#pos++] = n;
  }

  #zigzag(n: number): void {
    this.#varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  #header(id: number, type: number): void {
    const last = this.#last[this.#last.length - 1]!;
    const delta = id - last;
    if (delta > 0 && delta <= 15) this.#byte((delta << 4) | type);
    else {
      this.#byte(type);
      this.#zigzag(id);
    }
    this.#last[this.#last.length - 1] = id;
  }

  i8(id: number, value: number | undefined): this {
    if (value === undefined) return this;
    this.#header(id, BYTE);
    this.#byte(value & 0xff);
    return this;
  }

  i16(id: number, value: number | undefined): this {
    return this.#integer(id, I16, value);
  }

  i32(id: number, value: number | undefined): this {
    return this.#integer(id, I32, value);
  }

  i64(id: number, value: number | undefined): this {
    return this.#integer(id, I64, value);
  }

  /** i16, i32 and i64 are written alike (zigzag varints); only the field's type differs. */
  #integer(id: number, type: number, value: number | undefined): this {
    if (value === undefined) return this;
    this.#header(id, type);
    this.#zigzag(value);
    return this;
  }

  bool(id: number, value: boolean | undefined): this {
    if (value === undefined) return this;
    this.#header(id, value ? TRUE : FALSE);
    return this;
  }

  binary(id: number, value: Uint8Array | string | undefined): this {
    if (value === undefined) return this;
    const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
    this.#header(id, BINARY);
    this.#varint(bytes.length);
    this.#room(bytes.length);
    this.#bytes.set(bytes, this.#pos);
    this.#pos += bytes.length;
    return this;
  }

  /** A struct field: `body` writes its fields. */
  struct(id: number, body: ((w: ThriftWriter) => void) | undefined): this {
    if (body === undefined) return this;
    this.#header(id, STRUCT);
    this.#inStruct(body);
    return this;
  }

  #inStruct(body: (w: ThriftWriter) => void): void {
    this.#last.push(0);
    body(this);
    this.#byte(0);
    this.#last.pop();
  }

  #listHeader(id: number, size: number, type: number): void {
    this.#header(id, LIST);
    if (size < 15) this.#byte((size << 4) | type);
    else {
      this.#byte(0xf0 | type);
      this.#varint(size);
    }
  }

  /** A list of i32. */
  i32List(id: number, values: readonly number[]): this {
    this.#listHeader(id, values.length, I32);
    for (const v of values) this.#zigzag(v);
    return this;
  }

  /** A list of strings. */
  stringList(id: number, values: readonly string[]): this {
    this.#listHeader(id, values.length, BINARY);
    const encoder = new TextEncoder();
    for (const v of values) {
      const bytes = encoder.encode(v);
      this.#varint(bytes.length);
      this.#room(bytes.length);
      this.#bytes.set(bytes, this.#pos);
      this.#pos += bytes.length;
    }
    return this;
  }

  /** A list of structs, each written by `body`. */
  structList<T>(id: number, items: readonly T[], body: (w: ThriftWriter, item: T) => void): this {
    this.#listHeader(id, items.length, STRUCT);
    for (const item of items) this.#inStruct((w) => body(w, item));
    return this;
  }

  /** Ends the outermost struct. */
  end(): Uint8Array {
    this.#byte(0);
    return this.bytes();
  }
}

/** A schema element as written (parquet.thrift SchemaElement). */
export interface SchemaElementOut {
  name: string;
  /** Physical type; undefined for a group. */
  type?: number;
  typeLength?: number;
  /** 0 REQUIRED, 1 OPTIONAL, 2 REPEATED; undefined for the root. */
  repetition?: number;
  numChildren?: number;
  convertedType?: number;
  scale?: number;
  precision?: number;
  /** Writes the LogicalType union's one field. */
  logicalType?: (w: ThriftWriter) => void;
}

/** A column chunk's metadata as written. */
export interface ColumnChunkOut {
  type: number;
  encodings: readonly number[];
  path: readonly string[];
  codec: number;
  numValues: number;
  uncompressedSize: number;
  compressedSize: number;
  dataPageOffset: number;
}

/** A row group as written. */
export interface RowGroupOut {
  columns: ColumnChunkOut[];
  /** Uncompressed bytes of its column chunks. */
  totalByteSize: number;
  numRows: number;
  fileOffset: number;
  compressedSize: number;
  ordinal: number;
}

/** The V1 data page header (PLAIN values, RLE definition levels). */
export function dataPageHeader(uncompressed: number, compressed: number, numValues: number): Uint8Array {
  return new ThriftWriter()
    .i32(1, 0)
    .i32(2, uncompressed)
    .i32(3, compressed)
    .struct(5, (w) => w.i32(1, numValues).i32(2, 0).i32(3, 3).i32(4, 3))
    .end();
}

/** The footer's FileMetaData. */
export function fileMetadata(meta: {
  schema: readonly SchemaElementOut[];
  numRows: number;
  rowGroups: readonly RowGroupOut[];
  keyValues: ReadonlyArray<[string, string]>;
  createdBy: string;
  /** Leaf columns: each gets the type-defined sort order, as arrow-rs writes. */
  leaves: number;
}): Uint8Array {
  const w = new ThriftWriter();
  w.i32(1, 1);
  w.structList(2, meta.schema, (s, e) => {
    s.i32(1, e.type)
      .i32(2, e.typeLength)
      .i32(3, e.repetition)
      .binary(4, e.name)
      .i32(5, e.numChildren)
      .i32(6, e.convertedType)
      .i32(7, e.scale)
      .i32(8, e.precision)
      .struct(10, e.logicalType);
  });
  w.i64(3, meta.numRows);
  w.structList(4, meta.rowGroups, (g, group) => {
    g.structList(1, group.columns, (c, chunk) => {
      c.i64(2, 0).struct(3, (m) => {
        m.i32(1, chunk.type)
          .i32List(2, chunk.encodings)
          .stringList(3, chunk.path)
          .i32(4, chunk.codec)
          .i64(5, chunk.numValues)
          .i64(6, chunk.uncompressedSize)
          .i64(7, chunk.compressedSize)
          .i64(9, chunk.dataPageOffset);
      });
    });
    g.i64(2, group.totalByteSize)
      .i64(3, group.numRows)
      .i64(5, group.fileOffset)
      .i64(6, group.compressedSize)
      .i16(7, group.ordinal);
  });
  if (meta.keyValues.length > 0)
    w.structList(5, meta.keyValues, (kv, [key, value]) => kv.binary(1, key).binary(2, value));
  w.binary(6, meta.createdBy);
  w.structList(7, Array.from({ length: meta.leaves }), (o) => o.struct(1, () => undefined));
  return w.end();
}
