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
