/**
 * Whether a Parquet file's columns can be read by the page decoder (parquet-pages.ts) rather than
 * parquet-wasm, decided from the footer before anything is decoded: every column asked for must be
 * a flat top-level column of a type whose Arrow buffers are its Parquet values as stored (booleans,
 * 32/64-bit integers, dates, timestamps in their own unit, floats, doubles, strings, binary), with
 * encodings and compression decoded here in every row group. Anything else (lists, structs, maps,
 * decimals, small integers, INT96, DELTA encodings, LZO, Hadoop LZ4) reads the whole file through
 * parquet-wasm, as before.
 */
import { open } from 'node:fs/promises';
import { pageCodecs } from './parquet-codecs.js';
import type { PageColumn } from './parquet-pages.js';
import { type FileMetadata, readFileMetadata, type SchemaElement } from './parquet-thrift.js';

/** The encodings decoded here: PLAIN, PLAIN_DICTIONARY, RLE (levels, booleans), BIT_PACKED (levels), RLE_DICTIONARY. */
const ENCODINGS = new Set([0, 2, 3, 4, 8]);

/** An Arrow field as parquet-wasm types it (apache-arrow's Type ids). */
export interface ArrowFieldLike {
  name: string;
  type: { typeId: number; bitWidth?: number; precision?: number; unit?: number };
}

/** Reads a file's footer. */
export async function readFooter(path: string): Promise<FileMetadata> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size < 12) throw new Error('file too short for Parquet');
    const tail = Buffer.alloc(8);
    await handle.read(tail, 0, 8, size - 8);
    if (tail.toString('latin1', 4) !== 'PAR1') throw new Error('no Parquet footer');
    const length = tail.readUInt32LE(0);
    if (length + 12 > size) throw new Error('Parquet footer length out of range');
    const footer = Buffer.alloc(length);
    await handle.read(footer, 0, length, size - 8 - length);
    return readFileMetadata(footer);
  } finally {
    await handle.close();
  }
}

/**
 * How each of `names` (columns of `fields`, parquet-wasm's Arrow schema of the file) is decoded,
 * in order; undefined when one of them is not for the page decoder.
 */
export function planPages(
  metadata: FileMetadata,
  fields: readonly ArrowFieldLike[],
  names: readonly string[],
): PageColumn[] | undefined {
  const leaves = topLevelLeaves(metadata.schema);
  if (!leaves) return undefined;
  const codecs = pageCodecs();
  const plan: PageColumn[] = [];
  for (const name of names) {
    const found = leaves.get(name);
    const field = fields.find((f) => f.name === name);
    if (!found || !field) return undefined;
    const { element, leaf } = found;
    if (element.repetition === 2 || !storedAsIs(element, field.type)) return undefined;
    for (const group of metadata.rowGroups) {
      const chunk = group.columns[leaf];
      if (chunk?.path.length !== 1 || chunk.path[0] !== name || chunk.type !== element.type) return undefined;
      if (!codecs.has(chunk.codec) || chunk.encodings.some((e) => !ENCODINGS.has(e))) return undefined;
    }
    plan.push({ leaf, physical: element.type!, maxDefinition: element.repetition === 1 ? 1 : 0 });
  }
  return plan;
}

/**
 * The Arrow type of a flat column as parquet-wasm (arrow-rs) reads it, for the plain types the page
 * decoder reads (timestamp `unit` as Arrow's TimeUnit: 1 ms, 2 us, 3 ns).
 */
export type FlatArrowType =
  | {
      kind:
        | 'bool'
        | 'int32'
        | 'uint32'
        | 'int64'
        | 'uint64'
        | 'date32'
        | 'float32'
        | 'float64'
        | 'utf8'
        | 'binary';
    }
  | { kind: 'timestamp'; unit: number; utc: boolean };

/**
 * The file's top-level column names, and the Arrow type of each flat one of a plain type; undefined
 * when the file stored an Arrow schema of its own (its types may differ: parquet-wasm reads it).
 */
export function footerColumns(
  metadata: FileMetadata,
): { names: string[]; types: Map<string, FlatArrowType & { nullable: boolean }> } | undefined {
  if (metadata.keys.includes('ARROW:schema')) return undefined;
  const root = metadata.schema[0];
  if (!root) return undefined;
  const names: string[] = [];
  const types = new Map<string, FlatArrowType & { nullable: boolean }>();
  let at = 1;
  // Each top-level element, its subtree skipped.
  const skip = (): boolean => {
    const element = metadata.schema[at++];
    if (!element) return false;
    for (let i = 0; i < element.numChildren; i++) if (!skip()) return false;
    return true;
  };
  for (let i = 0; i < root.numChildren; i++) {
    const element = metadata.schema[at];
    if (!element) return undefined;
    names.push(element.name);
    const type = element.numChildren === 0 && element.repetition !== 2 ? flatArrowType(element) : undefined;
    if (type) types.set(element.name, { ...type, nullable: element.repetition !== 0 });
    if (!skip()) return undefined;
  }
  return { names, types };
}

/** A flat column's Arrow type as arrow-rs derives it from the logical (else converted) type; undefined for others. */
function flatArrowType(element: SchemaElement): FlatArrowType | undefined {
  const logical = element.logical;
  const converted = element.convertedType;
  const plain = logical === undefined && converted === undefined;
  switch (element.type) {
    case 0:
      return plain ? { kind: 'bool' } : undefined;
    case 1:
      if (logical?.id === 10 && logical.bitWidth === 32)
        return { kind: logical.signed === false ? 'uint32' : 'int32' };
      if (logical?.id === 6 || (logical === undefined && converted === 6)) return { kind: 'date32' };
      if (logical === undefined && converted === 13) return { kind: 'uint32' };
      return plain || (logical === undefined && converted === 17) ? { kind: 'int32' } : undefined;
    case 2:
      if (logical?.id === 10 && logical.bitWidth === 64)
        return { kind: logical.signed === false ? 'uint64' : 'int64' };
      if (logical?.id === 8 && element.timestampUnit !== undefined)
        return { kind: 'timestamp', unit: element.timestampUnit, utc: logical.utc === true };
      if (logical === undefined && converted === 14) return { kind: 'uint64' };
      return plain || (logical === undefined && converted === 18) ? { kind: 'int64' } : undefined;
    case 4:
      return plain ? { kind: 'float32' } : undefined;
    case 5:
      return plain ? { kind: 'float64' } : undefined;
    case 6:
      if (logical?.id === 1 || (logical === undefined && converted === 0)) return { kind: 'utf8' };
      return plain ? { kind: 'binary' } : undefined;
    default:
      return undefined;
  }
}

/** Top-level leaf columns by name, with their index among the leaves; undefined if the schema is odd. */
function topLevelLeaves(
  schema: SchemaElement[],
): Map<string, { element: SchemaElement; leaf: number }> | undefined {
  const root = schema[0];
  if (!root) return undefined;
  const leaves = new Map<string, { element: SchemaElement; leaf: number }>();
  let at = 1;
  let leaf = 0;
  // Walks the tree depth first: a group's leaves count, but only top-level leaves are kept.
  const walk = (depth: number): boolean => {
    const element = schema[at++];
    if (!element) return false;
    if (element.numChildren === 0) {
      if (depth === 1) leaves.set(element.name, { element, leaf });
      leaf++;
      return true;
    }
    for (let i = 0; i < element.numChildren; i++) if (!walk(depth + 1)) return false;
    return true;
  };
  for (let i = 0; i < root.numChildren; i++) if (!walk(1)) return undefined;
  return leaves;
}

/** Whether the Arrow type parquet-wasm gives the column holds its Parquet values byte for byte. */
function storedAsIs(element: SchemaElement, type: ArrowFieldLike['type']): boolean {
  switch (element.type) {
    case 0:
      return type.typeId === 6;
    case 1:
      // Int32/UInt32, or Date32 in days.
      return (type.typeId === 2 && type.bitWidth === 32) || (type.typeId === 8 && type.unit === 0);
    case 2:
      if (type.typeId === 2) return type.bitWidth === 64;
      return type.typeId === 10 && element.timestampUnit !== undefined && type.unit === element.timestampUnit;
    case 4:
      return type.typeId === 3 && type.precision === 1;
    case 5:
      return type.typeId === 3 && type.precision === 2;
    case 6:
      return type.typeId === 5 || type.typeId === 4;
    default:
      return false;
  }
}
