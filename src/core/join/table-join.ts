import { BatchpipeError } from '../../errors.js';
import { readChunks } from '../../internal/input.js';
import type { Rejection, RowValues, SourcePosition } from '../../types.js';
import { customIdFor } from '../requests/custom-id.js';
import { RowHasher, type RowHashesHeader, rowHashText } from '../requests/row-hash.js';
import { RowHashPool } from '../requests/row-hash-pool.js';
import { transportOf } from '../requests/thread-rows.js';
import { scatterResults } from '../results/parallel-results.js';
import { type CellEncoding, CellLayout, type CellSpec, type PayloadColumn } from '../results/result-cells.js';
import { type ResultFiles, ResultLineParser } from '../results/result-lines.js';
import { type ParseSettings, ResultParser, type ResultProblems } from '../results/result-parser.js';
import type { CellRef, RowBatch } from '../rows/row-batch.js';
import { type Slice, slicedBatches, sliceOfId } from '../rows/row-slice.js';
import { isZodSchema } from '../structured/structured-output.js';
import { HashJoin, type JoinSummary, missingMessage, STALE, staleMessage } from './hash-join.js';
import { type JoinedLayout, JoinedRowBatch } from './joined-row-batch.js';
import type { RejectedRow } from './rejection-cursor.js';
import { RANGE_ROWS, rangeRowsFor } from './row-ranges.js';

/** Rows hashed here before the hash thread starts: below this a thread costs more than it saves. */
const HASH_THREAD_AFTER_ROWS = 16_384;
/** Batches sent to the hash thread before the first one's ids are taken (work for both threads). */
const HASHES_AHEAD = 2;

/** What the key pass gathers across batches. */
interface KeyPassState {
  columns: string[] | undefined;
  seen: Set<string> | undefined;
  lastKeys: readonly string[] | undefined;
  fewest: number;
}

/**
 * A pass over the join's source, as row batches (the join reads its source twice). The first pass
 * is given the columns it reads (the id column, the hashed ones): a columnar source may read only
 * those, its batches then naming the table's columns in `tableColumns`.
 */
export type OpenRows = (pass: 1 | 2, columns?: readonly string[]) => AsyncIterable<RowBatch>;

/** How a join runs, every option resolved (joinResults' options, parsed). */
export interface TableJoinSettings extends ParseSettings {
  idColumn: string | undefined;
  /** `rejections.jsonl` files: those rows are `rejected`. */
  rejections: readonly string[];
  cells: CellSpec;
  fieldPrefix: string;
  reask: { requests: readonly string[]; out: string } | undefined;
  /** `row-hashes.tsv` files (prepare's): rows whose cells changed since come out `stale`. */
  rowHashes: readonly string[];
  tempDir: string | undefined;
  partitions: number;
  /** Only the source rows of this slice are joined (and come out); undefined: every row. */
  slice?: Slice | undefined;
  /** The slices the results are of (a split into `count`): rows of the others say their slice was not given. */
  slices?: { count: number; given: readonly number[] } | undefined;
  /**
   * Each read of the source gives its rows in ascending row order (a file): with no id column and no
   * re-asks, the join then goes by row ranges (row-ranges.ts), reading it once.
   */
  ordered?: boolean;
}

/**
 * The join behind joinResults, with no streams: results go in (records, raw lines, or whole files
 * parsed on worker threads while the source's ids are read), then the source comes out again in
 * order, batch by batch, each row with its result cells (see HashJoin for the four steps). Cells are
 * stored as the consumer will write them (`preferCells`): CSV text for a CSV sink, JSON otherwise.
 */
export class TableJoin {
  readonly parser: ResultParser;
  #settings: TableJoinSettings;
  readonly #openRows: OpenRows;
  #layout: CellLayout;
  readonly #files: ResultFiles[] = [];
  #encoding: CellEncoding = { kind: 'json' };
  #join: HashJoin | undefined;
  #joined: JoinedLayout | undefined;
  #rows: AsyncIterator<RowBatch> | undefined;
  /** The output pass's first batch, asked for before step 3 so the reading starts meanwhile. */
  #firstRows: Promise<IteratorResult<RowBatch>> | undefined;
  #idName: string | undefined;
  #idRef: { layout: object; ref: CellRef | undefined } | undefined;
  /** Each row's hash, when the join checks rows against their requests, and the columns it covers. */
  #hasher: RowHasher | undefined;
  #hashedColumns: string[] | undefined;
  summary: JoinSummary | undefined;
  /**
   * The rows the first pass could not read (source rejections), by row number, in order: the second
   * pass asks only those again. A number a row, for such rows only.
   */
  #unread: number[] = [];
  #nextUnread = 0;
  /** By row ranges: batches read ahead of the output (their hashes being made), and the hash thread. */
  readonly #ahead: Array<{ rows: RowBatch; hashes: Promise<Float64Array> | undefined }> = [];
  #sourceDone = false;
  #readRows = 0;
  /** By row ranges: the source was read for its columns first, which found its unread rows. */
  #readTwice = false;
  #pool: RowHashPool | undefined;

  constructor(settings: TableJoinSettings, openRows: OpenRows) {
    this.#settings = settings;
    const slice = settings.slice;
    this.#openRows = slice
      ? (pass, columns) => slicedBatches(openRows(pass, columns), slice, settings.idColumn)
      : openRows;
    this.parser = new ResultParser(settings);
    this.#layout = new CellLayout(settings.cells);
    this.#idName = settings.idColumn;
  }

  /** Cells stored for this consumer from now on; only before the first result (later, JSON stays). */
  preferCells(encoding: CellEncoding): void {
    if (!this.#join) this.#encoding = encoding;
  }

  /** Whether the join goes by row ranges (see TableJoinSettings.ordered). */
  #ranged(): boolean {
    const s = this.#settings;
    return s.ordered === true && s.idColumn === undefined && s.reask === undefined;
  }

  #hashJoin(): HashJoin {
    this.#join ??= new HashJoin({
      parser: this.parser,
      layout: this.#layout,
      encoding: this.#encoding,
      partitions: this.#settings.partitions,
      tempDir: this.#settings.tempDir,
      rejections: this.#settings.rejections,
      reask: this.#settings.reask,
      rowHashes: this.#settings.rowHashes,
      rangeRows: this.#ranged() ? RANGE_ROWS : 0,
    });
    return this.#join;
  }

  /** A result record, a raw result line, or a Rejection passed along the pipeline. */
  add(item: unknown): Promise<void> | undefined {
    return this.#hashJoin().add(item);
  }

  /**
   * Whole result files: parsed when the join runs, on worker threads where that pays. `payload`
   * names the answer column from the run that wrote them, when the join was not told (only before
   * the first result: a table's columns never change midway).
   */
  addFiles(files: ResultFiles, payload?: PayloadColumn): void {
    if (payload !== undefined && !this.#join && payload !== this.#settings.cells.payload) {
      this.#settings = { ...this.#settings, cells: { ...this.#settings.cells, payload } };
      this.#layout = new CellLayout(this.#settings.cells);
    }
    this.#files.push(files);
    this.#hashJoin().addRejectionFiles(files.rejections);
  }

  /** Steps 2 and 3: the source's ids (while handed-over files are parsed), then the join. */
  async prepare(): Promise<void> {
    const join = this.#hashJoin();
    if (join.checks) {
      this.#hashedColumns = await hashedColumnsOf(this.#settings.rowHashes);
      this.#hasher = new RowHasher(this.#hashedColumns);
    }
    if (join.rangeRows > 0) return this.#prepareRanges(join);
    let columns: string[] | undefined;
    let uneven = false;
    const keyPass = async (): Promise<void> => {
      await join.beginKeys();
      ({ columns, uneven } = await this.#keyPass(join));
    };
    await this.#loadFiles(join, keyPass);
    // The output pass starts reading (on a thread, where the source can) while step 3 runs.
    this.#rows = this.#openRows(2)[Symbol.asyncIterator]();
    this.#firstRows = this.#rows.next();
    // Awaited by the first `next`; a failure meanwhile must not go unhandled.
    this.#firstRows.catch(() => undefined);
    await join.join();
    this.#setLayout(join, columns ?? [], uneven);
  }

  /**
   * By row ranges: the output pass starts reading at once (beside the parsing of handed-over
   * files). Its first batch names the columns where every row has the same (CSV, Parquet, Arrow);
   * JSON rows are read once more for them.
   */
  async #prepareRanges(join: HashJoin): Promise<void> {
    let columns: string[] | undefined = [];
    let uneven = false;
    // Beside the parsing of handed-over files, as the key pass was: a JSON source's columns pass too.
    const startReading = async (): Promise<void> => {
      await join.beginKeys();
      this.#rows = this.#openRows(2)[Symbol.asyncIterator]();
      this.#firstRows = this.#rows.next();
      // Awaited by the first `next` too; a failure there must not go unhandled here.
      this.#firstRows.catch(() => undefined);
      const first = await this.#firstRows;
      const rows = first.done ? undefined : first.value;
      if (rows?.tableColumns) columns = [...rows.tableColumns];
      else if (rows?.sameKeys) columns = [...rows.keys(0)];
      else if (rows) ({ columns, uneven } = await this.#columnsPass());
    };
    await this.#loadFiles(join, startReading);
    await join.join();
    this.#setLayout(join, columns ?? [], uneven);
  }

  /** A pass over the source for its columns only (rows whose keys differ: JSON), and its unread rows. */
  async #columnsPass(): Promise<{ columns: string[] | undefined; uneven: boolean }> {
    this.#readTwice = true;
    const state = newKeyPassState();
    for await (const rows of this.#openRows(1, [])) {
      for (let i = 0; i < rows.length; i++) {
        if (rows.rejection(i)) {
          // The output pass asks only these again (a JSON line is not scanned twice).
          this.#unread.push(rows.index(i));
          continue;
        }
        gatherColumns(state, rows.tableColumns ?? rows.keys(i));
        rows.forget?.(i);
      }
      rows.release();
    }
    const { columns, fewest } = state;
    return { columns, uneven: columns !== undefined && fewest < columns.length };
  }

  #setLayout(join: HashJoin, sourceColumns: string[], uneven: boolean): void {
    const names = this.#layout.names(sourceColumns, this.#settings.fieldPrefix);
    this.#joined = {
      sourceColumns,
      names,
      kinds: this.#layout.kinds(),
      columns: [...sourceColumns, ...names],
      uneven,
      encoding: join.encoding,
    };
  }

  /** Parses handed-over files (threads beside the key pass when large), then runs the key pass. */
  async #loadFiles(join: HashJoin, keyPass: () => Promise<void>): Promise<void> {
    const pending = [...this.#files];
    if (join.rangeRows > 0 && pending[0]) join.sizeRanges(await rangeRowsFor(pending[0].files));
    let keysDone = false;
    for (const handed of pending) {
      const files = this.#own(handed);
      const parse = files.parse;
      // Threads cannot take a zod schema or call back: those parse here.
      const threads = !isZodSchema(parse.schema) && parse.onProblem === undefined;
      if (threads && !keysDone) {
        const scattered = await scatterResults(join, files.files, {
          cells: this.#settings.cells,
          encoding: join.encoding,
          labels: parse.labels,
          schema: parse.schema as Record<string, unknown> | undefined,
          badLines: parse.badLines,
          problems: files.problems,
          meanwhile: keyPass,
        });
        if (scattered) {
          keysDone = true;
          continue;
        }
      }
      await this.#parseHere(join, files);
    }
    if (!keysDone) await keyPass();
  }

  /** Handed-over files with the join's own parsing where they came without theirs. */
  #own(files: ResultFiles): ResultFiles & { parse: ParseSettings; problems: ResultProblems } {
    return {
      ...files,
      parse: files.parse ?? this.#settings,
      problems: files.problems ?? this.parser.problems,
    };
  }

  /** Parses result files on this thread, into the join. */
  async #parseHere(
    join: HashJoin,
    files: ResultFiles & { parse: ParseSettings; problems: ResultProblems },
  ): Promise<void> {
    const lines = new ResultLineParser(new ResultParser(files.parse, files.problems));
    for (const file of files.files) {
      lines.startFile(file);
      let rest: Buffer | undefined;
      for await (const chunk of readChunks(file, file)) {
        const data = rest ? Buffer.concat([rest, chunk]) : chunk;
        const { batch, consumed } = lines.parse(data, false);
        rest = consumed < data.length ? Buffer.from(data.subarray(consumed)) : undefined;
        for (const record of batch?.records ?? []) {
          const waiting = join.add(record);
          if (waiting) await waiting;
        }
      }
      const { batch } = lines.parse(rest ?? Buffer.alloc(0), true);
      for (const record of batch?.records ?? []) {
        const waiting = join.add(record);
        if (waiting) await waiting;
      }
    }
  }

  /**
   * Step 2: the custom_id of each joinable row, in order; and the source's columns. When rows are
   * checked, a large table's row hashes are made on a thread, a few batches ahead of the ids.
   */
  async #keyPass(join: HashJoin): Promise<{ columns: string[] | undefined; uneven: boolean }> {
    const state = newKeyPassState();
    const hasher = this.#hasher;
    const ahead: Array<{ rows: RowBatch; hashes: Promise<Float64Array> | undefined }> = [];
    let pool: RowHashPool | undefined;
    let read = 0;
    try {
      for await (const rows of this.#openRows(1, this.#keyColumns())) {
        read += rows.length;
        const transport = hasher && read > HASH_THREAD_AFTER_ROWS ? transportOf(rows) : undefined;
        if (transport) pool ??= new RowHashPool(this.#hashedColumns!);
        ahead.push({ rows, hashes: transport ? pool!.hash(transport) : undefined });
        if (ahead.length > HASHES_AHEAD) {
          const next = ahead.shift()!;
          await this.#keysOf(join, next.rows, next.hashes ? await next.hashes : undefined, state);
        }
      }
      for (let next = ahead.shift(); next; next = ahead.shift())
        await this.#keysOf(join, next.rows, next.hashes ? await next.hashes : undefined, state);
    } finally {
      for (const left of ahead) left.rows.release();
      await pool?.close();
    }
    const { columns, fewest } = state;
    return { columns, uneven: columns !== undefined && fewest < columns.length };
  }

  /** The columns the first pass reads: the id column and the hashed ones (none: rows are only counted). */
  #keyColumns(): string[] {
    const columns = new Set(this.#hashedColumns ?? []);
    if (this.#idName !== undefined) columns.add(this.#idName);
    return [...columns];
  }

  /** The keys (and row hashes, made here unless a thread made them) of one batch of the first pass. */
  async #keysOf(
    join: HashJoin,
    rows: RowBatch,
    hashes: Float64Array | undefined,
    state: KeyPassState,
  ): Promise<void> {
    const hasher = this.#hasher;
    for (let i = 0; i < rows.length; i++) {
      if (rows.rejection(i)) {
        this.#unread.push(rows.index(i));
        continue;
      }
      const keys = rows.tableColumns ?? rows.keys(i);
      if (state.columns === undefined) this.#checkIdColumn(rows, i, keys);
      gatherColumns(state, keys);
      let rejected = join.rejection(rows.index(i));
      if (rejected instanceof Promise) rejected = await rejected;
      if (rejected) {
        rows.forget?.(i);
        continue;
      }
      const hash = hasher === undefined ? undefined : rowHashText(hashes ? hashes[i]! : hasher.hash(rows, i));
      const id = this.#id(rows, i);
      // Done with the row's values: parsed JSON rows die young instead of with their batch.
      rows.forget?.(i);
      const waiting = join.key(id, hash);
      if (waiting) await waiting;
    }
    rows.release();
  }

  /** BP_ID_COLUMN_MISSING at the first row, when it lacks the id column. */
  #checkIdColumn(rows: RowBatch, i: number, keys: readonly string[]): void {
    const name = this.#idName;
    if (name === undefined) return;
    const ref = rows.ref(name);
    if (ref !== undefined && rows.has(i, ref)) return;
    const listed = `${keys.slice(0, 20).join(', ')}${keys.length > 20 ? ', ...' : ''}`;
    throw new BatchpipeError(
      'BP_ID_COLUMN_MISSING',
      `idColumn is "${name}" but row ${rows.index(i)} has no such column (columns: ${listed})`,
      { file: rows.file(i), line: rows.line(i), row: rows.index(i), column: name },
    );
  }

  /** The custom_id of a source row, as prepare made it. */
  #id(rows: RowBatch, i: number): string {
    const name = this.#idName;
    if (name === undefined) return customIdFor(rows.index(i));
    if (this.#idRef?.layout !== rows.layout) this.#idRef = { layout: rows.layout, ref: rows.ref(name) };
    const ref = this.#idRef.ref;
    return customIdFor(rows.index(i), ref === undefined ? undefined : rows.value(i, ref));
  }

  /** Step 4: the next source batch with its rows' cells, in source order; null at the end. */
  async next(): Promise<JoinedRowBatch | null> {
    if (this.#join!.rangeRows > 0) return this.#nextInRanges(this.#join!);
    const join = this.#join!;
    const next = await (this.#firstRows ?? this.#rows!.next());
    this.#firstRows = undefined;
    if (next.done) return this.#finish(join);
    const rows = next.value;
    const cells: string[] = new Array(rows.length);
    const layout = this.#layout;
    const unreadHere = new Uint8Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const index = rows.index(i);
      const unread = this.#unreadAt(rows, i, index);
      let rejected = this.#rejectedCells(join, index, unread);
      if (rejected instanceof Promise) rejected = await rejected;
      if (rejected !== undefined) {
        if (unread) unreadHere[i] = 1;
        cells[i] = rejected;
        continue;
      }
      const id = this.#id(rows, i);
      const at: SourcePosition = { index, file: rows.file(i), line: rows.line(i) };
      let line = join.next(id);
      while (line === undefined) {
        await join.load(id, at);
        line = join.next(id);
      }
      const stored = join.cells(id, line, at);
      cells[i] =
        stored === null
          ? join.encode(layout.none(id, 'missing', 'BP_RESULT_MISSING', this.#missing(id)))
          : stored === STALE
            ? join.encode(layout.none(id, 'stale', 'BP_RESULT_STALE', staleMessage(id)))
            : stored;
    }
    return new JoinedRowBatch(rows, this.#joined!, cells, unreadHere);
  }

  /**
   * The output pass's next batch by row ranges, and its rows' hashes when rows are checked: a large
   * table's are made on a thread, HASHES_AHEAD batches ahead of the one returned.
   */
  async #nextRows(): Promise<{ rows: RowBatch; hashes: Float64Array | undefined } | undefined> {
    const checks = this.#hasher !== undefined;
    while (!this.#sourceDone && this.#ahead.length <= (checks ? HASHES_AHEAD : 0)) {
      const next = await (this.#firstRows ?? this.#rows!.next());
      this.#firstRows = undefined;
      if (next.done) {
        this.#sourceDone = true;
        break;
      }
      const rows = next.value;
      this.#readRows += rows.length;
      const transport = checks && this.#readRows > HASH_THREAD_AFTER_ROWS ? transportOf(rows) : undefined;
      if (transport) this.#pool ??= new RowHashPool(this.#hashedColumns!);
      this.#ahead.push({ rows, hashes: transport ? this.#pool!.hash(transport) : undefined });
    }
    const head = this.#ahead.shift();
    if (!head) return undefined;
    return { rows: head.rows, hashes: head.hashes ? await head.hashes : undefined };
  }

  /** Step 4 by row ranges: each row's result placed by its row number. */
  async #nextInRanges(join: HashJoin): Promise<JoinedRowBatch | null> {
    const next = await this.#nextRows();
    if (!next) {
      await this.#pool?.close();
      return this.#finish(join);
    }
    const { rows, hashes } = next;
    const hasher = this.#hasher;
    const cells: string[] = new Array(rows.length);
    const layout = this.#layout;
    const unreadHere = new Uint8Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const index = rows.index(i);
      const unread = this.#unreadAt(rows, i, index);
      let rejected = this.#rejectedCells(join, index, unread);
      if (rejected instanceof Promise) rejected = await rejected;
      if (rejected !== undefined) {
        if (unread) unreadHere[i] = 1;
        cells[i] = rejected;
        continue;
      }
      const hash = hasher && rowHashText(hashes ? hashes[i]! : hasher.hash(rows, i));
      let stored = join.rowCells(index, hash);
      if (stored === undefined) {
        await join.loadRange(index);
        stored = join.rowCells(index, hash) as string | null | typeof STALE;
      }
      if (stored === null || stored === STALE) {
        const id = customIdFor(index);
        stored =
          stored === null
            ? join.encode(layout.none(id, 'missing', 'BP_RESULT_MISSING', this.#missing(id)))
            : join.encode(layout.none(id, 'stale', 'BP_RESULT_STALE', staleMessage(id)));
      }
      cells[i] = stored;
    }
    return new JoinedRowBatch(rows, this.#joined!, cells, unreadHere);
  }

  /** After the last row: the summary. */
  async #finish(join: HashJoin): Promise<null> {
    const summary = await join.finish([...this.#joined!.names]);
    // Lines of handed-over files that could not be used count too (they were parsed for this join).
    for (const files of this.#files) if (files.problems) summary.problems += files.problems.count;
    this.summary = summary;
    return null;
  }

  /**
   * Entry i's rejection when the source could not read it: after a first pass, only the rows that
   * pass could not read are asked again (a JSON line is not parsed twice).
   */
  #unreadAt(rows: RowBatch, i: number, index: number): Rejection | undefined {
    if (this.#join!.rangeRows > 0 && !this.#readTwice) return rows.rejection(i);
    if (this.#unread[this.#nextUnread] !== index) return undefined;
    this.#nextUnread++;
    return rows.rejection(i);
  }

  /**
   * The cells of a row that takes no result, counted as `rejected`: one the source could not read
   * (`unread`), or one rejected before upload; undefined for a row to join.
   */
  #rejectedCells(
    join: HashJoin,
    index: number,
    unread: Rejection | undefined,
  ): string | undefined | Promise<string | undefined> {
    if (unread) return this.#cellsOfRejection(join, unread);
    const rejected = join.rejection(index);
    if (rejected instanceof Promise) return rejected.then((r) => this.#cellsOfRejection(join, r));
    return this.#cellsOfRejection(join, rejected);
  }

  #cellsOfRejection(join: HashJoin, rejected: RejectedRow | Rejection | undefined): string | undefined {
    if (!rejected) return undefined;
    join.rejected();
    return join.encode(this.#layout.none(rejected.custom_id, 'rejected', rejected.code, rejected.message));
  }

  /** Why a row has no result: its slice was not given, or none came back. */
  #missing(id: string): string {
    const slices = this.#settings.slices;
    if (slices) {
      const index = sliceOfId(id, slices.count);
      if (!slices.given.includes(index))
        return `no result for custom_id ${JSON.stringify(id)}: it is in slice ${index}/${slices.count}, whose run was not among the results (not run yet?)`;
    }
    return missingMessage(id);
  }

  /** Removes the join's temporary files. */
  async close(): Promise<void> {
    for (const left of this.#ahead.splice(0)) left.rows.release();
    await this.#pool?.close();
    await this.#rows?.return?.();
    await this.#join?.close();
  }
}

function newKeyPassState(): KeyPassState {
  return { columns: undefined, seen: undefined, lastKeys: undefined, fewest: Number.MAX_SAFE_INTEGER };
}

/** Every key any row has, in order of first use (JSON rows may differ; a CSV's rows share their header). */
function gatherColumns(state: KeyPassState, keys: readonly string[]): void {
  if (state.columns === undefined) {
    state.columns = [];
    state.seen = new Set();
  }
  if (keys === state.lastKeys) return;
  state.lastKeys = keys;
  for (const key of keys) {
    if (!state.seen!.has(key)) {
      state.seen!.add(key);
      state.columns.push(key);
    }
  }
  if (keys.length < state.fewest) state.fewest = keys.length;
}

/**
 * The columns the row hashes of these files cover (each file's first line names them): every file
 * must agree, since one hash is computed per row.
 */
async function hashedColumnsOf(files: readonly string[]): Promise<string[]> {
  let columns: string[] | undefined;
  for (const file of files) {
    const header = await firstLine(file);
    let parsed: Partial<RowHashesHeader> | undefined;
    try {
      parsed = JSON.parse(header) as Partial<RowHashesHeader>;
    } catch {
      parsed = undefined;
    }
    if (parsed?.row_hashes !== 1 || !Array.isArray(parsed.columns))
      throw new BatchpipeError('BP_INPUT_PARSE', 'not a row-hashes file written by prepare', {
        file,
        line: 1,
      });
    const named = parsed.columns.map(String);
    if (columns !== undefined && JSON.stringify(columns) !== JSON.stringify(named))
      throw new BatchpipeError(
        'BP_USAGE',
        `${file} hashes the columns ${named.join(', ')}, another row-hashes file ${columns.join(', ')}: give the files of one prepare`,
        { file },
      );
    columns = named;
  }
  return columns ?? [];
}

/** A file's first line (a row-hashes header is short). */
async function firstLine(file: string): Promise<string> {
  let text = '';
  for await (const chunk of readChunks(file, file)) {
    text += chunk.toString('utf8');
    const end = text.indexOf('\n');
    if (end !== -1) return text.slice(0, end);
    if (text.length > 1 << 20) break;
  }
  return text;
}

export type { JoinSummary, Rejection, RowValues };
