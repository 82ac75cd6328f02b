import type { ByteWriter } from '../../internal/byte-writer.js';
import { MAX_ESCAPE_GROWTH, writeJsonId } from '../../internal/json-bytes.js';
import { CsvRowBatch } from '../csv/csv-row-batch.js';
import { JsonlRowBatch } from '../jsonl/jsonl-row-batch.js';
import type { CellRef, RowBatch } from '../rows/row-batch.js';
import { customIdFor } from './custom-id.js';
import { inPlaceScratchBytes, keysInPlace } from './key-module.js';
import { keyRecordBytes, writeKeyRecords } from './key-records.js';
import type { KeySet } from './key-set.js';
import { customIdValueRange, isSameDraw, KEY_BYTES, requestKeysInto } from './request-key.js';
import { RowHash, writeRowIdBytes } from './row-hash.js';
import { ID_SLOT } from './template-slots.js';

/** What rendering needs, all of it plain data (it crosses to worker threads). */
export interface RenderPlan {
  /** The line template's pieces and slots (see LineTemplate). */
  pieces: Uint8Array[];
  slots: number[];
  /** The columns the slots read. */
  columns: string[];
  idColumn: string | undefined;
  /** The profile's custom_id limit: longer keys get derived ids. */
  maxIdChars: number;
  /** The prompt's columns, in the order a missing one is reported: a row lacking one is rejected. */
  promptColumns: string[];
  /** Embeddings from a template of placeholders only: note rows whose input is empty. */
  emptyCheck: boolean;
  /** Each line's request key too (RenderedLines.keys): `auto` when the template's lines are same draws. */
  requestKeys?: 'auto' | 'on' | undefined;
}

/** The lines of a batch of rows, as positions in the writer's buffer. */
export interface RenderedLines {
  /**
   * Per entry: the custom_id ("" for a row the source rejected). Undefined when every id is
   * `row-<n>`, n the row's number (no id column): written as bytes, never made a string here, and
   * not sent back from a render thread (made where one is asked for: RequestBatch.id).
   */
  ids: string[] | undefined;
  /** Per entry: the line's bytes, its newline included; -1 where no line was made. */
  starts: Int32Array;
  ends: Int32Array;
  /** Per entry: 1 where the rendered input text is empty. */
  empty: Uint8Array;
  /** Entries whose row lacks a prompt column, with the column. */
  missing: Array<[number, string]>;
  /** Per entry with a line: the row hash of the cells it was rendered from (see RowHash). */
  hashes: Float64Array;
  /** With `requestKeys` (and same draws, for `auto`): KEY_BYTES a entry, its line's request key. */
  keys?: Uint8Array | undefined;
  /**
   * With `keys`: where each entry's record of `request-keys.tsv` is in the writer's buffer, after the
   * lines (writeKeyRecords): entry i's is `recordAt[i]`..`recordAt[i + 1]`, its kind undecided.
   */
  recordAt?: Int32Array | undefined;
  /**
   * With `keys`, rendered with a table of the stream's keys: per entry, whether its key is new there,
   * came earlier, was not kept or is not there (KEY_NEW, KEY_REPEAT, KEY_UNKEPT, KEY_NONE).
   */
  seen?: Uint8Array | undefined;
}

/** The columns of one batch layout, resolved once. */
interface Resolved {
  layout: object;
  refs: Array<CellRef | undefined>;
  id: CellRef | undefined;
  prompt: Array<[string, CellRef | undefined]>;
}

/**
 * Renders a template's line for each row of a batch: its bytes with each row's cells JSON-escaped
 * into the holes, so no request object is made and, from CSV or JSON Lines, no cell becomes a string.
 * Rows the source rejected are skipped. The same code runs on the main thread and on render threads.
 */
export class LineRenderer {
  readonly #plan: RenderPlan;
  readonly #hash = new RowHash();
  readonly #range = new Int32Array(3);
  #resolved: Resolved | undefined;
  /** Whether lines get keys: decided on the first line (a template's lines are all same draws, or none is). */
  #keyed: boolean | undefined;
  /** The custom_id is the line's first slot and the key's search would find it there (see idLeads). */
  readonly #idLeads: boolean;

  constructor(plan: RenderPlan) {
    this.#plan = plan;
    this.#idLeads = idLeads(plan);
  }

  /**
   * `inMemory`: the writer's buffer is in the lines memory (lines-memory.ts), where keys are made in
   * place while it is the buffer the lines go into. `repeats`: the keys of the stream's lines so far,
   * where the keyed lines' keys are added (RenderedLines.seen says which came earlier).
   */
  render(rows: RowBatch, writer: ByteWriter, inMemory = false, repeats?: KeySet): RenderedLines {
    const lines = this.#render(rows, writer, inMemory);
    if (repeats && lines.keys) {
      lines.seen = new Uint8Array(rows.length);
      repeats.mark(lines.keys, lines.starts, rows.length, lines.seen);
    }
    return lines;
  }

  #render(rows: RowBatch, writer: ByteWriter, inMemory: boolean): RenderedLines {
    const given = writer.buffer;
    const { pieces, slots, maxIdChars, emptyCheck } = this.#plan;
    const resolved = this.#resolve(rows);
    const n = rows.length;
    // Without an id column every id is row-<n>: its digits go straight into the line.
    const ids: string[] | undefined = resolved.id === undefined ? undefined : new Array(n);
    const starts = new Int32Array(n);
    const ends = new Int32Array(n);
    const empty = new Uint8Array(n);
    const missing: Array<[number, string]> = [];
    const hashes = new Float64Array(n);
    const hash = this.#hash;
    const csv = rows instanceof CsvRowBatch ? rows : undefined;
    const jsonl = rows instanceof JsonlRowBatch ? rows : undefined;
    const range = this.#range;
    let keyed = false;
    /** Where each keyed line's id value is, for its record (and its key, when idLeads). */
    let idFroms: Int32Array | undefined;
    let idTos: Int32Array | undefined;
    for (let i = 0; i < n; i++) {
      starts[i] = -1;
      ends[i] = -1;
      if (rows.rejection(i)) {
        if (ids) ids[i] = '';
        continue;
      }
      const index = rows.index(i);
      const id = ids && customIdFor(index, rows.value(i, resolved.id!), maxIdChars);
      if (ids) ids[i] = id!;
      const lacking = resolved.prompt.find(([, ref]) => ref === undefined || !rows.has(i, ref));
      if (lacking) {
        missing.push([i, lacking[0]]);
        continue;
      }
      const start = writer.pos;
      hash.reset();
      let idFrom = -1;
      let idTo = -1;
      for (let s = 0; s < slots.length; s++) {
        writer.writeBytes(pieces[s]!);
        const slot = slots[s]!;
        if (slot === ID_SLOT) {
          idFrom = writer.pos;
          if (id === undefined) writer.pos = writeRowIdBytes(writer.ensure(30), writer.pos, index, false);
          else writeId(writer, id);
          idTo = writer.pos;
        } else {
          const ref = resolved.refs[slot];
          if (jsonl !== undefined && ref !== undefined && jsonl.cellRange(i, ref, range)) {
            // A JSON Lines cell whose JSON text is its bytes (most strings): copied and hashed at once.
            const at = writer.pos;
            const n = range[1]! - range[0]!;
            hash.copyCell(jsonl.buffer, range[0]!, range[1]!, writer.ensure(n), at);
            writer.pos = at + n;
          } else if (
            csv === undefined ||
            ref === undefined ||
            !writePlainCell(csv, i, ref, writer, hash, range)
          ) {
            const from = writer.pos;
            if (ref !== undefined) rows.writeJsonText(i, ref, writer);
            // Hashed where it was just written: the cell is not written twice.
            hash.cell(writer.buffer, from, writer.pos);
          }
        }
      }
      writer.writeBytes(pieces[slots.length]!);
      starts[i] = start;
      ends[i] = writer.pos;
      hashes[i] = hash.value();
      if (this.#plan.requestKeys !== undefined) {
        this.#keyed ??= this.#plan.requestKeys === 'on' || isSameDraw(writer.buffer, start, writer.pos);
        if (this.#keyed) {
          keyed = true;
          idFroms ??= new Int32Array(n);
          idTos ??= new Int32Array(n);
          idFroms[i] = idFrom;
          idTos[i] = idTo;
        }
      }
      if (emptyCheck && resolved.refs.every((ref) => ref === undefined || textIsEmpty(rows, i, ref)))
        empty[i] = 1;
    }
    // Keyed once the batch is rendered: its lines, back to back, are hashed many at a time.
    if (!keyed) return { ids, starts, ends, empty, missing, hashes };
    // The keys, the records' places and the records go after the lines, in the same buffer: a render
    // thread's shared memory, so the main thread reads them where they are (arrays of their own were
    // copied into new memory there a batch, ~40 KB of page faults each, measured at 1M rows).
    const records = keyRecordBytes(starts, idFroms!, idTos!);
    const leads = this.#idLeads;
    // In place: where the renderer wrote the ids is where the key's search finds them (idLeads).
    const inPlace = inMemory && leads && records >= 0;
    const scratch = inPlace ? inPlaceScratchBytes(starts, idTos!) : 0;
    const buffer = writer.ensure(
      KEY_BYTES - 1 + n * KEY_BYTES + (n + 1) * 4 + Math.max(records, 0) + scratch,
    );
    // The keys at a multiple of 16 in the memory, so they are read as words.
    const keysAt = ((buffer.byteOffset + writer.pos + KEY_BYTES - 1) & -KEY_BYTES) - buffer.byteOffset;
    const keys = new Uint8Array(buffer.buffer, buffer.byteOffset + keysAt, n * KEY_BYTES).fill(0);
    const recordAt = new Int32Array(buffer.buffer, buffer.byteOffset + keysAt + n * KEY_BYTES, n + 1);
    writer.pos = keysAt + n * KEY_BYTES + (n + 1) * 4;
    if (inPlace && buffer === given) {
      // The records follow the recordAt array; the scratch, what follows them (never read after).
      keysInPlace(
        buffer,
        starts,
        ends,
        idFroms!,
        idTos!,
        keys,
        recordAt,
        writer.pos,
        writer.pos + records,
        scratch,
      );
      writer.pos = recordAt[n]!;
      return { ids, starts, ends, empty, missing, hashes, keys, recordAt };
    }
    requestKeysInto(buffer, starts, ends, leads ? idFroms : undefined, leads ? idTos : undefined, keys);
    if (records < 0) return { ids, starts, ends, empty, missing, hashes, keys };
    writeKeyRecords(writer, starts, idFroms!, idTos!, keys, recordAt, records);
    return { ids, starts, ends, empty, missing, hashes, keys, recordAt };
  }

  /** Resolves the template's columns for the batch's layout (once per layout). */
  #resolve(rows: RowBatch): Resolved {
    if (this.#resolved?.layout === rows.layout) return this.#resolved;
    const { columns, idColumn, promptColumns } = this.#plan;
    this.#resolved = {
      layout: rows.layout,
      refs: columns.map((name) => rows.ref(name)),
      id: idColumn === undefined ? undefined : rows.ref(idColumn),
      prompt: promptColumns.map((name): [string, CellRef | undefined] => [name, rows.ref(name)]),
    };
    return this.#resolved;
  }
}

/**
 * Writes a CSV cell whose JSON text is as long as its bytes (no escape but a doubled quote's `\"`:
 * most text), checked, copied and hashed in one pass (RowHash.copyCsvCell); false, leaving the
 * writer where it was, for a cell that needs longer escapes (the caller escapes it byte by byte).
 * Review text is hundreds of bytes a cell: escaping every byte in a loop, then hashing what it wrote,
 * was most of a render thread's time.
 */
function writePlainCell(
  csv: CsvRowBatch,
  i: number,
  ref: CellRef,
  writer: ByteWriter,
  hash: RowHash,
  range: Int32Array,
): boolean {
  if (!csv.cellRange(i, ref, range)) return false;
  const start = range[0]!;
  const end = range[1]!;
  const at = writer.pos;
  const out = writer.ensure(end - start);
  if (!hash.copyCsvCell(csv.buffer, start, end, range[2]!, out, at)) return false;
  writer.pos = at + end - start;
  return true;
}

/**
 * Whether the key's search for the custom_id (customIdValueRange) finds it at the template's first
 * slot on every line: the first piece leads to the id's value and holds no earlier `"custom_id"`,
 * and a quote follows the id (written JSON-escaped, it holds none unescaped). Then the renderer
 * passes where it wrote the id instead of searching for it.
 */
function idLeads(plan: RenderPlan): boolean {
  const { pieces, slots } = plan;
  if (slots[0] !== ID_SLOT || pieces[1]?.[0] !== 0x22) return false;
  const first = Buffer.from(pieces[0]!);
  const found = customIdValueRange(Buffer.concat([first, Buffer.from('x"')]));
  return found?.[0] === first.length && found[1] === first.length + 1;
}

function textIsEmpty(rows: RowBatch, i: number, ref: CellRef): boolean {
  const value = rows.value(i, ref);
  return value === undefined || value === null || value === '';
}

/** An id as it goes between the custom_id's quotes. */
function writeId(writer: ByteWriter, id: string): void {
  writer.pos = writeJsonId(writer.ensure(id.length * MAX_ESCAPE_GROWTH), writer.pos, id, false);
}
