import { isAscii } from 'node:buffer';
import { open } from 'node:fs/promises';
import { readChunks } from '../../internal/input.js';
import { RESULT_STATUSES, type ResultStatus } from '../results/result-parser.js';
import { lines } from './partition-join.js';
import type { SpillFile } from './spill-file.js';

// A join by row ranges: where rows have no id column, a row's custom_id is `row-<n>` (customIdFor),
// so its result can be placed by n. Results go to one partition per range of RANGE_ROWS row numbers
// (after the hash partitions, which take every other id), and the output pass, reading the rows in
// order, loads each range's results as it reaches them. No pass over the source for keys, no step
// that joins partitions before the first row comes out.

/**
 * Row numbers per range partition when nothing tells the results' size (records handed one by one):
 * a range's results are what the output pass holds at a time.
 */
export const RANGE_ROWS = 8_192;
/** Bytes of result lines a range holds, about, when their files tell their size (rangeRowsFor). */
const RANGE_BYTES = 16 * 1024 * 1024;
const MIN_RANGE_ROWS = 1_024;
export const MAX_RANGE_ROWS = 65_536;
/** Bytes read of the first result file to tell the size of a line. */
const SAMPLE_BYTES = 1024 * 1024;

/**
 * Rows per range for result files whose lines are like the first file's first MiB: a range holds
 * about RANGE_BYTES of result lines (its spilled cells are fewer bytes), a power of two from 1,024
 * to 65,536 rows. Long answers make short ranges, so memory stays that of a hash partition's.
 */
export async function rangeRowsFor(files: readonly string[]): Promise<number> {
  const first = files[0];
  if (first === undefined) return RANGE_ROWS;
  const sample = Buffer.allocUnsafe(SAMPLE_BYTES);
  let read = 0;
  try {
    const handle = await open(first, 'r');
    try {
      ({ bytesRead: read } = await handle.read(sample, 0, SAMPLE_BYTES, 0));
    } finally {
      await handle.close();
    }
  } catch {
    // Unreadable: the parsing says so, with its own error.
    return RANGE_ROWS;
  }
  let lines = 0;
  for (let at = sample.indexOf(LF); at !== -1 && at < read; at = sample.indexOf(LF, at + 1)) lines++;
  const perLine = read / Math.max(lines, 1);
  let rows = MAX_RANGE_ROWS;
  while (rows > MIN_RANGE_ROWS && rows * perLine > RANGE_BYTES) rows >>= 1;
  return rows;
}

/**
 * Row numbers past this are not placed by range (their ids take the hash partitions, and no row
 * reaches them): a result naming row 10^15 must not make a billion partitions. 65,536 ranges at most.
 */
const MAX_ROW = 2 ** 32;

const QUOTE = 0x22;
const TAB = 0x09;
const LF = 0x0a;
const ZERO = 0x30;
const NINE = 0x39;
const R = 0x72;
const O = 0x6f;
const W = 0x77;
const DASH = 0x2d;

/**
 * The row number of `bytes[start, end)` when they are an id customIdFor makes for a row with no key
 * (`row-` and the number, no sign, no leading zero), else 0.
 */
export function rowNumberAt(bytes: Uint8Array, start: number, end: number): number {
  const digits = end - start - 4;
  if (digits < 1 || digits > 10) return 0;
  if (bytes[start] !== R || bytes[start + 1] !== O || bytes[start + 2] !== W || bytes[start + 3] !== DASH)
    return 0;
  if (bytes[start + 4] === ZERO) return 0;
  let n = 0;
  for (let k = start + 4; k < end; k++) {
    const c = bytes[k]!;
    if (c < ZERO || c > NINE) return 0;
    n = n * 10 + (c - ZERO);
  }
  return n <= MAX_ROW ? n : 0;
}

/** rowNumberAt for a string id. */
export function rowNumberOf(id: string): number {
  if (id.length < 5 || id.length > 14 || !id.startsWith('row-') || id.charCodeAt(4) === ZERO) return 0;
  let n = 0;
  for (let k = 4; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c < ZERO || c > NINE) return 0;
    n = n * 10 + (c - ZERO);
  }
  return n <= MAX_ROW ? n : 0;
}

/**
 * Places the lines of row-hashes files (`"row-<n>"\t<hash>`, after each file's header) by the range
 * of their row, from bytes: a line a row never takes (another id) is left out; one that is not `"id"`,
 * a tab and a hash is `malformed`'s error (its 1-based line).
 */
export async function placeRowHashes(
  files: readonly string[],
  spill: SpillFile,
  rangeRows: number,
  malformed: (line: number) => Error,
): Promise<void> {
  for (const file of files) {
    let line = 0;
    let rest: Buffer | undefined;
    const place = async (data: Buffer, start: number, end: number): Promise<void> => {
      if (++line === 1 || end === start) return;
      const tab = data.indexOf(TAB, start);
      const idEnd = tab === -1 || tab >= end ? -1 : tab;
      const row =
        idEnd > start + 1 && data[start] === QUOTE && data[idEnd - 1] === QUOTE
          ? rowNumberAt(data, start + 1, idEnd - 1)
          : 0;
      if (row > 0) {
        const waiting = spill.appendLine(
          rangePartition(row, spill.partitions, rangeRows),
          data,
          start,
          idEnd,
          data,
          idEnd + 1,
          end,
        );
        if (waiting) await waiting;
        return;
      }
      // Another id: it must still be one (JSON text, then a tab).
      let id: unknown;
      try {
        id = idEnd === -1 ? undefined : JSON.parse(data.toString('utf8', start, idEnd));
      } catch {
        id = undefined;
      }
      if (typeof id !== 'string') throw malformed(line);
    };
    for await (const chunk of readChunks(file, file)) {
      const data = rest ? Buffer.concat([rest, chunk]) : chunk;
      let start = 0;
      for (let nl = data.indexOf(LF); nl !== -1; nl = data.indexOf(LF, start)) {
        await place(data, start, nl);
        start = nl + 1;
      }
      rest = start < data.length ? Buffer.from(data.subarray(start)) : undefined;
    }
    if (rest) await place(rest, 0, rest.length);
  }
}

/** The partition of a result for row `n` (1-based) when `hashed` hash partitions come first. */
export function rangePartition(n: number, hashed: number, rangeRows: number): number {
  return hashed + Math.floor((n - 1) / rangeRows);
}

/**
 * The output side of a join by row ranges: `take(n)` answers row n from its range's results, which
 * `load(n)` reads (from every result file, in order: the later line wins a tie) when the rows reach a
 * new range. Rows must come in ascending order. Counts what the hash join's step 3 counts: results
 * beyond the first for an id, and ids no row took (orphans), the latter once a range is left.
 */
export class RowRanges {
  readonly #files: readonly SpillFile[];
  /** When rows are checked: the row hashes prepare stored (`"row-<n>"\t<hash>` lines), by range. */
  readonly #expected: SpillFile | undefined;
  /** The loaded range's stored hashes, by row; undefined where none was stored. */
  readonly #hashes: Array<string | undefined>;
  readonly #hashed: number;
  readonly #rangeRows: number;
  /** The loaded range, or -1. */
  #range = -1;
  /** The loaded range's result lines, end to end. */
  #data: Buffer = Buffer.alloc(0);
  #ascii = true;
  /** Bytes of `#data` the loaded range fills. */
  #dataLength = 0;
  /** Per row of the range: 1 + where its best line's rank byte is; negated once a row took it; 0: none. */
  #best: Int32Array;
  /** Whether `#best` holds anything (a range with no results leaves it clear). */
  #filled = false;
  duplicates = 0;
  orphans = 0;
  /** The status of the result `take` last gave. */
  status: ResultStatus = 'ok';

  constructor(files: readonly SpillFile[], hashed: number, rangeRows: number, expected?: SpillFile) {
    this.#files = files;
    this.#expected = expected;
    this.#hashes = expected ? new Array<string | undefined>(rangeRows).fill(undefined) : [];
    this.#hashed = hashed;
    this.#rangeRows = rangeRows;
    this.#best = new Int32Array(rangeRows);
  }

  /**
   * Row n's stored cells (its status in `status`), or null when no result came back for it;
   * undefined when its range is not loaded (`load`, then ask again).
   */
  take(n: number): string | null | undefined {
    // No result is placed past MAX_ROW: such a row's id took a hash partition.
    if (n > MAX_ROW) return null;
    const r = Math.floor((n - 1) / this.#rangeRows);
    if (r !== this.#range) return undefined;
    const slot = n - 1 - r * this.#rangeRows;
    const found = this.#best[slot]!;
    if (found === 0) return null;
    const at = found > 0 ? found - 1 : -found - 1;
    this.#best[slot] = -Math.abs(found);
    const data = this.#data;
    this.status = RESULT_STATUSES[data[at + 1]! - ZERO]!;
    return data.toString(this.#ascii ? 'latin1' : 'utf8', at + 2, data.indexOf(LF, at));
  }

  /** The hash prepare stored for row n (its range loaded), if any. */
  expected(n: number): string | undefined {
    return this.#hashes[n - 1 - this.#range * this.#rangeRows];
  }

  /** Loads row n's range (the ranges between are left: their results answered no row). */
  async load(n: number): Promise<void> {
    const r = Math.floor((n - 1) / this.#rangeRows);
    if (r < this.#range) throw new Error(`rows out of order: row ${n} after a row of a later range`);
    this.#leave();
    for (let skipped = this.#range + 1; skipped < r; skipped++) {
      await this.#read(skipped);
      this.#leave();
    }
    await this.#read(r);
  }

  /** After the last row: every result not taken is an orphan, in the ranges left and the hash partitions. */
  async finish(): Promise<void> {
    this.#leave();
    let last = 0;
    for (const file of this.#files) last = Math.max(last, file.partitionCount);
    for (let r = this.#range + 1; this.#hashed + r < last; r++) {
      await this.#read(r);
      this.#leave();
    }
    this.#range = Number.MAX_SAFE_INTEGER;
    for (let p = 0; p < this.#hashed; p++) await this.#countIds(p);
  }

  /** Counts the loaded range's results that no row took. */
  #leave(): void {
    if (!this.#filled) return;
    const best = this.#best;
    for (let slot = 0; slot < best.length; slot++) if (best[slot]! > 0) this.orphans++;
  }

  /** Reads range r's lines into the table: each row's best result. */
  async #read(r: number): Promise<void> {
    this.#range = r;
    const best = this.#best;
    if (this.#filled) {
      best.fill(0);
      if (this.#expected) this.#hashes.fill(undefined);
    }
    this.#filled = false;
    // Most ranges past the rows have no results (a stray id far out must not cost a pass per range).
    if (!this.#files.some((file) => file.blockCount(this.#hashed + r) > 0)) return;
    this.#filled = true;
    if (this.#expected) await this.#readHashes(r);
    const data = await this.#gather(this.#hashed + r);
    const length = this.#dataLength;
    const base = r * this.#rangeRows;
    for (let at = 0; at < length; ) {
      // `"row-<n>"\t<rank><status><cells>\n`, as spillResult writes an id placed by range.
      const tab = data.indexOf(TAB, at + 6);
      const n = rowNumberAt(data, at + 1, tab - 1);
      const slot = n - 1 - base;
      if (data[at] !== QUOTE || data[tab - 1] !== QUOTE || slot < 0 || slot >= best.length)
        throw new Error(`a result line of range ${r} is not for a row of it`);
      const seen = best[slot]!;
      if (seen === 0) best[slot] = tab + 2;
      else {
        this.duplicates++;
        // Lower rank is better; on a tie the later line wins.
        if (data[tab + 1]! <= data[seen - 1]!) best[slot] = tab + 2;
      }
      at = data.indexOf(LF, tab) + 1;
    }
  }

  /** Range r's stored row hashes (only rows with a result are checked: a range with none needs none). */
  async #readHashes(r: number): Promise<void> {
    const base = r * this.#rangeRows;
    const hashes = this.#hashes;
    for (const line of await lines(this.#expected!, this.#hashed + r)) {
      const tab = line.lastIndexOf('\t');
      // The id as JSON: `"row-<n>"` (scattered here only when it is one).
      hashes[rowNumberOf(line.slice(1, tab - 1)) - 1 - base] = line.slice(tab + 1);
    }
  }

  /** A partition's bytes from every file, end to end, in a buffer reused from range to range. */
  async #gather(p: number): Promise<Buffer> {
    let size = 0;
    for (const file of this.#files) size += file.partitionLength(p);
    if (this.#data.length < size) this.#data = Buffer.allocUnsafe(Math.max(size, 2 * this.#data.length));
    const data = this.#data;
    let filled = 0;
    for (const file of this.#files) {
      for (let b = 0; b < file.blockCount(p); b++) {
        await file.readBlockInto(p, b, data.subarray(filled));
        filled += file.blockLength(p, b);
      }
    }
    this.#dataLength = filled;
    this.#ascii = isAscii(data.subarray(0, filled));
    return data;
  }

  /** A hash partition's ids: none answered a row; each distinct one is an orphan, the rest duplicates. */
  async #countIds(p: number): Promise<void> {
    const data = await this.#gather(p);
    const length = this.#dataLength;
    const ids = new Set<string>();
    let lines = 0;
    for (let at = 0; at < length; ) {
      const tab = data.indexOf(TAB, at);
      ids.add(data.toString('latin1', at, tab));
      lines++;
      at = data.indexOf(LF, tab) + 1;
    }
    this.orphans += ids.size;
    this.duplicates += lines - ids.size;
  }
}
