import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchpipeError } from '../../errors.js';
import { BufferedFile } from '../../internal/buffered-file.js';
import { readChunks } from '../../internal/input.js';
import { LineSplitter } from '../../internal/line-splitter.js';
import { WorkerPool } from '../../internal/worker-pool.js';
import type { Rejection, RequestLine, SourcePosition } from '../../types.js';
import { joinKeyOf } from '../requests/custom-id.js';
import { reaskRequest } from '../requests/reask-request.js';
import {
  type CellEncoding,
  type CellLayout,
  type CellWriter,
  cellEncoder,
  cellWriter,
} from '../results/result-cells.js';
import {
  RESULT_STATUSES,
  type ResultParser,
  type ResultRecord,
  type ResultStatus,
  STATUS_RANK,
} from '../results/result-parser.js';
import {
  type JoinedPartition,
  type JoinedShare,
  JoinScratch,
  type JoinShare,
  type JoinShareTask,
  joinPartition,
  joinShare,
  latin1Id,
  lines,
  type SpillRef,
  STALE_MARK,
} from './partition-join.js';
import { type RejectedRow, RejectionCursor } from './rejection-cursor.js';
import { RowHashCursor } from './row-hash-cursor.js';
import { placeRowHashes, RowRanges, rangePartition, rowNumberAt, rowNumberOf } from './row-ranges.js';
import { SpillCursor, SpillFile } from './spill-file.js';

export { EXTRA_COLUMNS, type ExtraColumn } from '../results/result-cells.js';

/** What a join did. */
export interface JoinSummary {
  /** Rows written (every source row, once). */
  rows: number;
  /** Rows by status. */
  statuses: Record<ResultStatus, number>;
  /** Result records taken in. */
  results: number;
  /** Results beyond the first for a custom_id (the best one was kept). */
  duplicates: number;
  /** Distinct custom_ids with results that matched no row (a wrong idColumn shows up here). */
  orphans: number;
  /** Unusable result lines (reported, not joined). */
  problems: number;
  /** Re-ask requests written. */
  reasked: number;
  /** The result columns added, in order. */
  columns: string[];
  /**
   * Whether rows were checked against the requests their results answer (row hashes were given):
   * when false, a row edited since its request was made comes out `ok` with an answer to its old text.
   */
  checked: boolean;
}

export interface HashJoinSettings {
  parser: ResultParser;
  /** The result cells, made once per result as it arrives. */
  layout: CellLayout;
  /** How cells are stored until the output pass (JSON for Rows, CSV text for the byte engine). */
  encoding: CellEncoding;
  partitions: number;
  tempDir: string | undefined;
  /** `rejections.jsonl` files: those rows are `rejected`. */
  rejections: readonly string[];
  /** Re-ask requests for invalid_output rows: the request files, and where to write. */
  reask: { requests: readonly string[]; out: string } | undefined;
  /** `row-hashes.tsv` files: each row's hash is checked against its request's (`key` takes it). */
  rowHashes: readonly string[];
  /**
   * Rows per range when the join goes by row ranges (row-ranges.ts: rows have no id column, so ids
   * are `row-<n>`, and the source comes in row order); 0 for the four steps below.
   */
  rangeRows?: number;
}

/** What `cells` gives for a row whose result answers an older text of it. */
export const STALE = Symbol('stale');
/** The stale mark of a joined line (see STALE_MARK), as a character code. */
const STALE_CODE = STALE_MARK.charCodeAt(0);

/** What a thread that spilled results for the join reports with its file. */
export interface SpilledCounts {
  results: number;
}

/** Below this many bytes of results per thread, a thread for step 3 costs more than it saves. */
const JOIN_THREAD_MIN_BYTES = 16 * 1024 * 1024;
/** Threads step 3 runs on, at most (each holds one partition's results). */
const MAX_JOIN_THREADS = 4;
/**
 * A join thread's heap: it holds one partition's results at a time. Small generations keep its
 * garbage from growing the process (V8 lets an old generation grow to a share of its limit before
 * it collects, and the default limit let a thread add 40 MB at a million rows); the old
 * generation's limit grows with the largest partition, so a big join still fits.
 */
const JOIN_WORKER_YOUNG_MB = 8;
const JOIN_WORKER_OLD_MB = 32;
/** Heap a partition's results take per byte of their spilled text, at most (map, entries, strings). */
const HEAP_PER_SPILLED_BYTE = 8;

const TAB = 0x09;
const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const ZERO = 0x30;
/** partitionOf's hash: 32-bit FNV-1a over the id's characters. */
const FNV_SEED = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const INVALID_RANK = String(STATUS_RANK.invalid_output).charCodeAt(0);
/** Each status as one character (its index in RESULT_STATUSES), stored after the rank. */
const STATUS_CHAR = Object.fromEntries(
  RESULT_STATUSES.map((status, i) => [status, String.fromCharCode(0x30 + i)]),
) as Record<ResultStatus, string>;
/** STATUS_CHAR as character codes. */
const STATUS_CODE = Object.fromEntries(RESULT_STATUSES.map((status, i) => [status, ZERO + i])) as Record<
  ResultStatus,
  number
>;

/**
 * The disk-backed hash join behind joinResults and joinTable, in four steps:
 * 1. results go to partition files by hash(custom_id) (its join key: `joinKeyOf`), one line each, `"id"\t<rank><status><cells>`,
 *    the cells already laid out and encoded for the output;
 * 2. a first pass over the source gives each joinable row's id (`key`), written to its partition's
 *    keys file in source order;
 * 3. `join()`: one partition at a time, its results into a map (best status per id), then its keys
 *    in order, each answered with its result (or nothing) into the partition's joined file;
 * 4. a second pass over the source asks, row by row, for the next joined line of the row's
 *    partition (`next`, then `cells`): each partition's lines are in source order, so rows come out
 *    in order with no sort.
 * Memory: one partition's results, and a 32 KiB block per partition per file. Rows rejected before
 * upload (`rejection`) and rows the source could not read take no key and no joined line.
 */
export class HashJoin {
  readonly statuses = Object.fromEntries(RESULT_STATUSES.map((s) => [s, 0])) as Record<ResultStatus, number>;
  readonly #settings: HashJoinSettings;
  readonly #partitions: number;
  readonly #encode: (cells: unknown[]) => string;
  readonly #write: CellWriter;
  readonly #adopted: SpillFile[] = [];
  /** Invalid answers other threads spilled (`spillInvalid`), read before this one's own. */
  readonly #adoptedInvalid: SpillFile[] = [];
  readonly #moreRejections: string[] = [];
  #started: Promise<void> | undefined;
  #dir: string | undefined;
  #results: SpillFile | undefined;
  #invalid: SpillFile | undefined;
  #keys: SpillFile | undefined;
  #joined: SpillFile | undefined;
  /** The joined files the threads wrote, and which one holds each partition. */
  readonly #sharedJoined: SpillFile[] = [];
  #joinedOf: SpillFile[] = [];
  #scratch: JoinScratch | undefined;
  #rejections: RejectionCursor | undefined;
  #streamedRejections: BufferedFile | undefined;
  #cursors: SpillCursor[] = [];
  #cursor: RowHashCursor | undefined;
  #ranges: RowRanges | undefined;
  #rangeRows: number;
  /** By row ranges with checks: the stored row hashes, by range. */
  #expectedByRange: SpillFile | undefined;
  #resultCount = 0;
  #lineCount = 0;
  #duplicates = 0;
  #orphans = 0;
  #reasked = 0;
  #rows = 0;

  constructor(settings: HashJoinSettings) {
    this.#settings = settings;
    this.#partitions = settings.partitions;
    this.#rangeRows = settings.rangeRows ?? 0;
    this.#encode = cellEncoder(settings.encoding);
    this.#write = cellWriter(settings.encoding);
  }

  get partitions(): number {
    return this.#partitions;
  }

  /** Rows per range partition; 0 when the join goes by hash (see HashJoinSettings). */
  get rangeRows(): number {
    return this.#rangeRows;
  }

  /**
   * Rows per range from the results' size (see rangeRowsFor): only before the first result is
   * spilled, and only for a join by row ranges.
   */
  sizeRanges(rows: number): void {
    if (this.#rangeRows > 0 && this.#resultCount === 0 && this.#adopted.length === 0) this.#rangeRows = rows;
  }

  /** How the stored cells are encoded. */
  get encoding(): CellEncoding {
    return this.#settings.encoding;
  }

  /** Cells encoded as stored ones are (for rows with no result: missing, rejected). */
  encode(cells: unknown[]): string {
    return this.#encode(cells);
  }

  get parser(): ResultParser {
    return this.#settings.parser;
  }

  get layout(): CellLayout {
    return this.#settings.layout;
  }

  /** Whether invalid answers are kept for re-ask requests (spill them with `spillInvalid`). */
  get reasks(): boolean {
    return this.#settings.reask !== undefined;
  }

  /** The temporary directory, once created. */
  get dir(): string | undefined {
    return this.#dir;
  }

  start(): Promise<void> {
    this.#started ??= (async () => {
      this.#dir = await mkdtemp(join(this.#settings.tempDir ?? tmpdir(), 'batchpipe-join-'));
      this.#results = new SpillFile(join(this.#dir, 'results'), this.#partitions);
      this.#keys = new SpillFile(join(this.#dir, 'keys'), this.#partitions);
      this.#joined = new SpillFile(join(this.#dir, 'joined'), this.#partitions);
      if (this.#settings.reask) this.#invalid = new SpillFile(join(this.#dir, 'invalid'), this.#partitions);
    })();
    return this.#started;
  }

  /** Step 1: one result record, or a raw result line (parsed as parseResults does). */
  add(item: unknown): Promise<void> | undefined {
    if (!this.#results) return this.start().then(() => this.add(item));
    // A row rejected before upload, passed along the pipeline (by validateRequests, batchSink).
    if ((item as Rejection | null)?.kind === 'rejection') return this.#addRejection(item as Rejection);
    const record =
      (item as ResultRecord | null)?.kind === 'result'
        ? (item as ResultRecord)
        : this.#settings.parser.fromItem(item, '<results>', ++this.#lineCount);
    if (!record) return undefined;
    this.#resultCount++;
    const { layout } = this.#settings;
    const rangeRows = this.#rangeRows;
    if (this.#invalid && record.status === 'invalid_output') {
      const waiting = spillInvalid(this.#invalid, record);
      const spilled = spillResult(this.#results, record, layout, this.#encode, this.#write, rangeRows);
      return waiting && spilled
        ? Promise.all([waiting, spilled]).then(() => undefined)
        : (waiting ?? spilled);
    }
    return spillResult(this.#results, record, layout, this.#encode, this.#write, rangeRows);
  }

  /**
   * Takes results another thread has already spilled (`spillResult` into a file of the same
   * partition count, layout and encoding), as if they had been added here, after those before; and,
   * when re-asking, the invalid answers it spilled (`spillInvalid`).
   */
  adopt(spill: SpillFile, counts: SpilledCounts, invalid?: SpillFile): void {
    this.#adopted.push(spill);
    if (invalid) this.#adoptedInvalid.push(invalid);
    this.#resultCount += counts.results;
  }

  #addRejection(rejection: Rejection): Promise<void> | undefined {
    this.#streamedRejections ??= new BufferedFile(join(this.#dir!, 'rejections.jsonl'));
    const { index, file, line, custom_id, code, message } = rejection;
    const text = `${JSON.stringify({ row: index, file, line, custom_id, code, message })}\n`;
    return this.#streamedRejections.append(text, Buffer.byteLength(text));
  }

  /** More `rejections.jsonl` files (handed on with result files), before the key pass. */
  addRejectionFiles(files: readonly string[]): void {
    this.#moreRejections.push(...files);
  }

  /** The rejections files: those given, then the rejections that came down the pipeline. */
  #rejectionFiles(): string[] {
    const files = [...this.#settings.rejections, ...this.#moreRejections];
    if (this.#streamedRejections) files.push(this.#streamedRejections.path);
    return files;
  }

  /** Before step 2: every result is in. By row ranges, the row hashes are placed by row number here. */
  async beginKeys(): Promise<void> {
    await this.start();
    await this.#results!.flush();
    await this.#invalid?.flush();
    await this.#streamedRejections?.close();
    this.#rejections = new RejectionCursor(this.#rejectionFiles());
    if (this.rangeRows > 0 && this.checks) {
      this.#expectedByRange = new SpillFile(join(this.#dir!, 'row-hashes'), this.#partitions);
      await placeRowHashes(this.#settings.rowHashes, this.#expectedByRange, this.rangeRows, badRowHashes);
      await this.#expectedByRange.flush();
    }
  }

  /** The rejection of a row (steps 2 and 4; rows in ascending order). */
  rejection(index: number): RejectedRow | undefined | Promise<RejectedRow | undefined> {
    return this.#rejections!.at(index);
  }

  /** Whether `key` takes each row's hash (row hashes were given). */
  get checks(): boolean {
    return this.#settings.rowHashes.length > 0;
  }

  /**
   * Step 2: the next joinable row has this custom_id (and, when the join checks rows, this row hash).
   * The row's entry in the row hashes is most often the next one: its verdict goes into the key line
   * (`=` or `!`); else the hash does (`#<hash>`), to be looked up by id in step 3.
   */
  key(id: string, hash?: string): Promise<void> | undefined {
    const key = joinKeyOf(id);
    const json = JSON.stringify(key);
    const p = partitionOf(key, this.#partitions);
    if (hash === undefined) return this.#keys!.append(p, `${json}\n`);
    this.#cursor ??= new RowHashCursor(this.#settings.rowHashes);
    // The row hashes name the id as prepare wrote it.
    const verdict = this.#cursor.take(key === id ? json : JSON.stringify(id), hash);
    if (verdict instanceof Promise) return verdict.then((v) => this.#checkedKey(p, json, v, hash));
    return this.#checkedKey(p, json, verdict, hash);
  }

  #checkedKey(
    p: number,
    json: string,
    verdict: '=' | '!' | undefined,
    hash: string,
  ): Promise<void> | undefined {
    return this.#keys!.append(p, verdict ? `${json}\t${verdict}\n` : `${json}\t#${hash}\n`);
  }

  /** Step 3, then ready for step 4 (by row ranges: only ready, each range is read as the rows reach it). */
  async join(): Promise<void> {
    if (this.rangeRows > 0) {
      this.#ranges = new RowRanges(
        [...this.#adopted, this.#results!],
        this.#partitions,
        this.rangeRows,
        this.#expectedByRange,
      );
      this.#rejections = new RejectionCursor(this.#rejectionFiles());
      return;
    }
    await this.#keys!.flush();
    const reask = this.#settings.reask;
    const requests = reask ? await this.#scatterRequests(reask.requests) : undefined;
    const reaskFile = reask ? new BufferedFile(reask.out) : undefined;
    const expected = this.checks ? await this.#scatterRowHashes() : undefined;
    this.#joinedOf = new Array<SpillFile>(this.#partitions).fill(this.#joined!);
    // Re-asks need each partition's results on this thread (they are rare): the join stays here.
    const { threads, largest } = reask ? { threads: 1, largest: 0 } : this.#joinThreads();
    if (threads > 1) await this.#joinOnThreads(threads, largest, expected);
    else {
      try {
        for (let p = 0; p < this.#partitions; p++)
          await this.#joinPartition(p, requests, reaskFile, expected);
        await reaskFile?.close();
      } catch (error) {
        await reaskFile?.discard();
        throw error;
      }
    }
    await this.#joined!.flush();
    await requests?.close();
    await expected?.close();
    this.#rejections = new RejectionCursor(this.#rejectionFiles());
    for (let p = 0; p < this.#partitions; p++) this.#cursors.push(new SpillCursor(this.#joinedOf[p]!, p));
  }

  /**
   * Threads for step 3: one per 16 MiB of spilled results, up to the cores (this thread is one); and
   * the spilled bytes of the largest partition.
   */
  #joinThreads(): { threads: number; largest: number } {
    let bytes = 0;
    let largest = 0;
    for (let p = 0; p < this.#partitions; p++) {
      let partition = 0;
      for (const file of [...this.#adopted, this.#results!]) partition += file.partitionLength(p);
      bytes += partition;
      largest = Math.max(largest, partition);
    }
    const threads = Math.min(
      MAX_JOIN_THREADS,
      availableParallelism(),
      Math.ceil(bytes / JOIN_THREAD_MIN_BYTES),
    );
    return { threads, largest };
  }

  /**
   * Step 3 on `threads` threads, this one among them: each joins its share of the partitions into
   * a file of its own, and each partition's cursor reads the file that holds it.
   */
  async #joinOnThreads(threads: number, largest: number, expected: SpillFile | undefined): Promise<void> {
    const ref = (file: SpillFile): SpillRef => ({ path: file.path, index: file.index });
    const task: JoinShareTask = {
      partitions: this.#partitions,
      results: [...this.#adopted, this.#results!].map(ref),
      keys: ref(this.#keys!),
      expected: expected ? ref(expected) : undefined,
    };
    const share = (thread: number): JoinShare => ({
      ...task,
      thread,
      threads,
      out: join(this.#dir!, `joined-${thread}`),
    });
    const pool = new WorkerPool<JoinShare, JoinedShare>(
      import.meta.url,
      'join-worker',
      threads - 1,
      {
        resourceLimits: {
          maxYoungGenerationSizeMb: JOIN_WORKER_YOUNG_MB,
          maxOldGenerationSizeMb: JOIN_WORKER_OLD_MB + Math.ceil((largest * HEAP_PER_SPILLED_BYTE) / 2 ** 20),
        },
      },
      'a join',
    );
    let settled: PromiseSettledResult<JoinedShare>[];
    try {
      // Settled, not raced: no share may still be writing when the temporary files are removed.
      settled = await Promise.allSettled([
        joinShare(share(0)),
        ...Array.from({ length: threads - 1 }, (_, t) => pool.run(share(t + 1))),
      ]);
    } finally {
      await pool.close();
    }
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
    for (const outcome of settled) {
      const share = (outcome as PromiseFulfilledResult<JoinedShare>).value;
      const file = SpillFile.written(share.joined.path, share.joined.index);
      this.#sharedJoined.push(file);
      for (const p of share.partitions) this.#joinedOf[p] = file;
      this.#duplicates += share.duplicates;
      this.#orphans += share.orphans;
    }
  }

  async #scatterRequests(files: readonly string[]): Promise<SpillFile> {
    const spill = new SpillFile(join(this.#dir!, 'requests'), this.#partitions);
    for (const file of files) {
      const splitter = new LineSplitter(file, Number.MAX_SAFE_INTEGER);
      const add = async (lines: Array<{ text: string; line: number }>) => {
        for (const { text, line } of lines) {
          if (text.trim() === '') continue;
          const id = joinKeyOf(requestId(text, file, line));
          const waiting = spill.append(partitionOf(id, this.#partitions), `${JSON.stringify(id)}\t${text}\n`);
          if (waiting) await waiting;
        }
      };
      for await (const chunk of readChunks(file, file)) await add(splitter.split(chunk, false));
      await add(splitter.split(Buffer.alloc(0), true));
    }
    await spill.flush();
    return spill;
  }

  /**
   * The row hashes the key pass did not meet in order (none, for a source in prepared order), by
   * partition of their custom_id: `"id"\t<hash>` a line.
   */
  async #scatterRowHashes(): Promise<SpillFile> {
    const spill = new SpillFile(join(this.#dir!, 'row-hashes'), this.#partitions);
    this.#cursor ??= new RowHashCursor(this.#settings.rowHashes);
    for await (const { text, line } of this.#cursor.rest()) {
      const tab = text.lastIndexOf('\t');
      const json = text.slice(0, tab);
      let id: string;
      try {
        id = json.includes('\\') ? (JSON.parse(json) as string) : json.slice(1, -1);
      } catch {
        throw badRowHashes(line);
      }
      if (tab <= 0 || typeof id !== 'string') throw badRowHashes(line);
      const key = joinKeyOf(id);
      const waiting = spill.append(
        partitionOf(key, this.#partitions),
        key === id ? `${text}\n` : `${JSON.stringify(key)}${text.slice(tab)}\n`,
      );
      if (waiting) await waiting;
    }
    await spill.flush();
    return spill;
  }

  async #joinPartition(
    p: number,
    requests: SpillFile | undefined,
    reaskFile: BufferedFile | undefined,
    expectedHashes: SpillFile | undefined,
  ): Promise<void> {
    const results = [...this.#adopted, this.#results!];
    this.#scratch ??= new JoinScratch();
    const done = await joinPartition(p, results, this.#keys!, this.#joined!, expectedHashes, this.#scratch);
    this.#duplicates += done.duplicates;
    this.#orphans += done.orphans;
    if (requests && reaskFile) await this.#reask(p, done, requests, reaskFile);
  }

  async #reask(p: number, best: JoinedPartition, requests: SpillFile, out: BufferedFile): Promise<void> {
    const invalid = new Map<string, string>();
    for (const spill of [...this.#adoptedInvalid, this.#invalid!]) {
      for (const line of await lines(spill, p)) {
        const tab = line.indexOf('\t');
        invalid.set(line.slice(0, tab), line.slice(tab + 1));
      }
    }
    for (const line of await lines(requests, p)) {
      const tab = line.indexOf('\t');
      const id = line.slice(0, tab);
      const answer = invalid.get(id);
      if (answer === undefined || best.rank(latin1Id(id)) !== INVALID_RANK) continue;
      const [content, problem] = JSON.parse(answer) as [string | null, string | null];
      const request = JSON.parse(line.slice(tab + 1)) as RequestLine;
      const again = reaskRequest(request, content, problem ?? 'the answer does not match the schema');
      if (!again) continue;
      this.#reasked++;
      const text = `${JSON.stringify(again)}\n`;
      const waiting = out.append(text, Buffer.byteLength(text));
      if (waiting) await waiting;
    }
  }

  /** Step 4: the next joined line for a row with this id, or undefined when its block must be `load`ed. */
  next(id: string): string | undefined {
    return this.#cursors[partitionOf(joinKeyOf(id), this.#partitions)]!.next();
  }

  /** Loads the next block of the id's partition; a partition with no more lines means the source changed. */
  async load(id: string, at: SourcePosition): Promise<void> {
    if (!(await this.#cursors[partitionOf(joinKeyOf(id), this.#partitions)]!.load())) throw sourceChanged(at);
  }

  /**
   * The stored cells of a joined line, or null when no result came back (counted as `missing`).
   * Checks the line belongs to the id: a source that changed between the passes is an error.
   */
  cells(rowId: string, line: string, at: SourcePosition): string | null | typeof STALE {
    const id = joinKeyOf(rowId);
    // Most ids need no escaping (no quote, backslash or control character): only others pay for JSON.stringify.
    const plain = line.charCodeAt(id.length + 1) === 0x22 && line.startsWith(id, 1) && !id.includes('\\');
    const key = plain ? id.length + 2 : keyLength(id, line);
    if (key === -1 || line.charCodeAt(key) !== TAB) throw sourceChanged(at);
    this.#rows++;
    if (line.length === key + 1) {
      this.statuses.missing++;
      return null;
    }
    if (line.charCodeAt(key + 1) === STALE_CODE) {
      this.statuses.stale++;
      return STALE;
    }
    this.statuses[RESULT_STATUSES[line.charCodeAt(key + 2) - 0x30]!]++;
    return line.slice(key + 3);
  }

  /**
   * By row ranges, step 4 for row n: its stored cells, or null when no result came back (counted
   * as `missing`), or STALE when `hash` (the row's, when rows are checked) is not the one stored for
   * it; undefined when its range must be loaded first (`loadRange`).
   */
  rowCells(n: number, hash?: string): string | null | typeof STALE | undefined {
    const ranges = this.#ranges!;
    const cells = ranges.take(n);
    if (cells === undefined) return undefined;
    this.#rows++;
    if (cells === null) this.statuses.missing++;
    else if (hash !== undefined && ranges.expected(n) !== hash) {
      // A result answers the row only while its cells are those its request was made from.
      this.statuses.stale++;
      return STALE;
    } else this.statuses[ranges.status]++;
    return cells;
  }

  /** Loads the results of row n's range. */
  loadRange(n: number): Promise<void> {
    return this.#ranges!.load(n);
  }

  /** Counts a row that took no joined line (rejected before upload or by the source). */
  rejected(): void {
    this.#rows++;
    this.statuses.rejected++;
  }

  /** After step 4: checks every joined line was used, removes the temporary files. */
  async finish(columns: string[]): Promise<JoinSummary> {
    const ranges = this.#ranges;
    if (ranges) {
      await ranges.finish();
      this.#duplicates += ranges.duplicates;
      this.#orphans += ranges.orphans;
    }
    for (const cursor of this.#cursors) {
      if (cursor.next() !== undefined || (await cursor.load())) throw sourceChanged(undefined);
    }
    await this.close();
    return {
      rows: this.#rows,
      statuses: this.statuses,
      results: this.#resultCount,
      duplicates: this.#duplicates,
      orphans: this.#orphans,
      problems: this.#settings.parser.problems.count,
      reasked: this.#reasked,
      columns,
      checked: this.checks,
    };
  }

  /** Closes and removes the temporary files. */
  async close(): Promise<void> {
    await this.#cursor?.close();
    const dir = this.#dir;
    this.#dir = undefined;
    const files = [
      this.#results,
      this.#invalid,
      this.#keys,
      this.#joined,
      ...this.#adopted,
      ...this.#adoptedInvalid,
      ...this.#sharedJoined,
      this.#expectedByRange,
    ];
    for (const file of files) await file?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Writes a result to its partition as `"id"\t<rank><status><encoded cells>`: by hash of its id, or,
 * with `rangeRows`, an id `row-<n>` by its row number (see row-ranges.ts).
 */
export function spillResult(
  spill: SpillFile,
  record: ResultRecord,
  layout: CellLayout,
  encode: (cells: unknown[]) => string,
  write: CellWriter,
  rangeRows = 0,
): Promise<void> | undefined {
  const id = joinKeyOf(record.custom_id);
  const cells = layout.fromRecord(record);
  const out = spillLine;
  // An id of ASCII with nothing JSON escapes is its own JSON text between quotes: its characters
  // are written and hashed (as partitionOf does) in one go, and the cells after them as bytes.
  const n = id.length;
  if (n + 5 < out.length) {
    out[0] = QUOTE;
    let h = FNV_SEED;
    let k = 0;
    for (; k < n; k++) {
      const c = id.charCodeAt(k);
      if (c < 0x20 || c > 0x7f || c === QUOTE || c === BACKSLASH) break;
      out[k + 1] = c;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    if (k === n) {
      let at = n + 1;
      out[at++] = QUOTE;
      out[at++] = TAB;
      out[at++] = ZERO + STATUS_RANK[record.status];
      out[at++] = STATUS_CODE[record.status];
      at = write(cells, out, at);
      if (at !== -1 && at < out.length) {
        out[at++] = LF;
        const row = rangeRows > 0 ? rowNumberAt(out, 1, n + 1) : 0;
        const p = row > 0 ? rangePartition(row, spill.partitions, rangeRows) : (h >>> 0) % spill.partitions;
        return spill.appendBytes(p, out, 0, at);
      }
    }
  }
  const row = rangeRows > 0 ? rowNumberOf(id) : 0;
  return spill.append(
    row > 0 ? rangePartition(row, spill.partitions, rangeRows) : partitionOf(id, spill.partitions),
    `${JSON.stringify(id)}\t${STATUS_RANK[record.status]}${STATUS_CHAR[record.status]}${encode(cells)}\n`,
  );
}

/** Where spillResult makes a line's bytes (a longer line goes as text). */
const spillLine = Buffer.allocUnsafe(64 * 1024);

/**
 * Keeps an invalid answer for a re-ask, as `"id"\t[content, problem]`: the request needs the answer
 * and what was wrong with it, which the cells may not hold (the byte engine stores CSV text).
 */
export function spillInvalid(spill: SpillFile, record: ResultRecord): Promise<void> | undefined {
  const id = joinKeyOf(record.custom_id);
  const text = `${JSON.stringify(id)}\t${JSON.stringify([record.content, record.error_message])}\n`;
  return spill.append(partitionOf(id, spill.partitions), text);
}

/** FNV-1a over UTF-16 units: cheap for short ids, well spread for `row-<n>`. */
export function partitionOf(id: string, partitions: number): number {
  let h = FNV_SEED;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), FNV_PRIME);
  return (h >>> 0) % partitions;
}

/** The message of a row with no result. */
export function missingMessage(id: string): string {
  return `no output or error line came back for custom_id ${JSON.stringify(id)}`;
}

function badRowHashes(line: number): BatchpipeError {
  return new BatchpipeError(
    'BP_INPUT_PARSE',
    `row hashes line ${line} is not "custom_id" as JSON, a tab and a hash; was the file written by prepare?`,
  );
}

/** The message of a row whose result answers an older text of it. */
export function staleMessage(id: string): string {
  return `the row changed after its request was made: the result for custom_id ${JSON.stringify(id)} answers another prompt`;
}

/** Where the JSON form of `id` ends in `line`, or -1 when the line is not for `id`. */
function keyLength(id: string, line: string): number {
  const key = JSON.stringify(id);
  return line.startsWith(key) ? key.length : -1;
}

const LEADING_ID = /^\s*\{\s*"custom_id"\s*:\s*("(?:[^"\\]|\\.)*")/;

/** A request line's custom_id, read from the start of the line when it is there (prepare writes it first). */
function requestId(text: string, file: string, line: number): string {
  const match = LEADING_ID.exec(text);
  let id: unknown;
  try {
    id = match ? JSON.parse(match[1]!) : (JSON.parse(text) as { custom_id?: unknown }).custom_id;
  } catch (error) {
    throw new BatchpipeError('BP_INPUT_PARSE', `request line is not JSON: ${(error as Error).message}`, {
      file,
      line,
    });
  }
  if (typeof id !== 'string' || id === '')
    throw new BatchpipeError('BP_CUSTOM_ID_MISSING', 'request line has no custom_id', { file, line });
  return id;
}

function sourceChanged(at: SourcePosition | undefined): BatchpipeError {
  const where = at ? { file: at.file, line: at.line, row: at.index } : {};
  return new BatchpipeError(
    'BP_JOIN_SOURCE_CHANGED',
    'the source gave different rows on its second read; a join reads its source twice, so it must not change meanwhile',
    where,
  );
}
