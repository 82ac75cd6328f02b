import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import { z } from 'zod';
import { BatchpipeError } from '../errors.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { readChunks } from '../internal/input.js';
import { LineSplitter } from '../internal/line-splitter.js';
import { readBatches } from '../internal/read-batches.js';
import { RejectionCursor } from '../internal/rejection-cursor.js';
import { SpillCursor, SpillFile } from '../internal/spill-file.js';
import { compileStructuredOutput } from '../internal/structured-output.js';
import { parseOptions } from '../options.js';
import { csvSource } from '../sources/csv-source.js';
import { jsonlSource } from '../sources/jsonl-source.js';
import type { Rejection, RequestLine, Row, RowValues, SourceItem } from '../types.js';
import { customIdFor } from './custom-id.js';
import {
  ParseResultsFields,
  RESULT_STATUSES,
  ResultParser,
  type ResultRecord,
  type ResultStatus,
  STATUS_RANK,
} from './parse-results.js';
import { reaskRequest } from './reask-request.js';
import { type ColumnRef, columnRef } from './template.js';

/** Where the join reads source rows: a path (read twice), a factory (called twice), or a stream (spilled to disk once). */
export type JoinSource = string | Readable | (() => Readable);

/** Result facts a join can add beside the default columns. */
export const EXTRA_COLUMNS = [
  'custom_id',
  'content',
  'reasoning_content',
  'finish_reason',
  'reasoning_tokens',
  'model',
  'request_id',
  'status_code',
] as const;
export type ExtraColumn = (typeof EXTRA_COLUMNS)[number];

/** Default partitions: at a million results each holds about 8k, a few MB. */
const PARTITIONS = 128;

const JoinResultsOptions = z.strictObject({
  /** The source table: a .csv/.tsv/.jsonl path, a function returning a fresh source stream, or a source stream. */
  source: z.union([
    z.string().min(1),
    z.custom<Readable>((v) => v instanceof Readable, 'expected a Readable'),
    z.custom<() => Readable>((v) => typeof v === 'function', 'expected a function'),
  ]),
  /** Column whose value was the custom_id (as given to prepare). Default: `row-<n>`. */
  idColumn: z.string().min(1).optional(),
  /** `rejections.jsonl` files from prepare: those rows come out `rejected`. */
  rejections: z.array(z.string().min(1)).default([]),
  ...ParseResultsFields,
  /** Prefix of the parsed-field columns (labels or schema). Default "". */
  fieldPrefix: z.string().default(''),
  /** More result columns, after the default ones. */
  include: z.array(z.enum(EXTRA_COLUMNS)).default([]),
  /** Write a re-ask request for each `invalid_output` row: the request files to take them from, and the output file. */
  reask: z.strictObject({ requests: z.array(z.string().min(1)).min(1), out: z.string().min(1) }).optional(),
  /** Where the temporary partition files go. Default: the OS temp directory. */
  tempDir: z.string().min(1).optional(),
  /** Hash partitions of the disk join. Default 128. */
  partitions: z.number().int().min(1).max(4096).default(PARTITIONS),
});
export type JoinResultsOptions = z.input<typeof JoinResultsOptions>;
type Options = z.output<typeof JoinResultsOptions>;

/** What a join did, set on the stream once it has ended. */
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
  /** Unusable result lines (see `problems`). */
  problems: number;
  /** Re-ask requests written. */
  reasked: number;
  /** The result columns added, in order. */
  columns: string[];
}

/** The Duplex joinResults returns: result lines or records in, joined rows out. */
export interface JoinResultsStream extends Duplex {
  readonly summary: JoinSummary | undefined;
  readonly problems: ResultParser['problems'];
}

/**
 * Puts results back beside their source rows: writes take result records (or raw output/error lines,
 * parsed as parseResults does), and once they end the stream reads out every source row exactly once,
 * in source order, with result columns: `status`, `content` (or the parsed fields, or `embedding`),
 * `error_code`, `error_message`, `prompt_tokens`, `completion_tokens`. Rows rejected before upload,
 * rows whose request failed, expired or was cancelled, and rows with no result (`missing`) come out
 * with their status and error. Several rows may share one custom_id (one result serves them all);
 * when a custom_id has several results the best status wins (ok > truncated > invalid_output > the
 * rest; the later line on a tie). Memory stays flat: results and row keys are hash-partitioned into
 * temporary files, joined one partition at a time, and read back in source order.
 */
export function joinResults(options: JoinResultsOptions): JoinResultsStream {
  const opts = parseOptions(JoinResultsOptions, options, 'joinResults');
  return new JoinStream(new JoinEngine(opts));
}

class JoinStream extends Duplex implements JoinResultsStream {
  readonly #engine: JoinEngine;
  #rows: Row[] = [];
  #next = 0;
  #ready = false;
  #busy = false;
  #ended = false;

  constructor(engine: JoinEngine) {
    super({ objectMode: true, readableHighWaterMark: 1024, writableHighWaterMark: 1024 });
    this.#engine = engine;
  }

  get summary(): JoinSummary | undefined {
    return this.#engine.summary;
  }

  get problems(): ResultParser['problems'] {
    return this.#engine.problems;
  }

  override _write(item: unknown, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    let pending: Promise<void> | undefined;
    try {
      pending = this.#engine.add(item);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (pending) pending.then(() => done(), done);
    else done();
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#engine.prepare().then(() => {
      this.#ready = true;
      done();
      this.#pump();
    }, done);
  }

  override _read(): void {
    this.#pump();
  }

  #pump(): void {
    if (!this.#ready || this.#busy) return;
    while (this.#next < this.#rows.length) {
      if (!this.push(this.#rows[this.#next++])) return;
    }
    if (this.#ended) return;
    this.#busy = true;
    this.#engine.nextRows().then(
      (rows) => {
        this.#busy = false;
        if (rows === null) {
          this.#ended = true;
          this.push(null);
          return;
        }
        this.#rows = rows;
        this.#next = 0;
        this.#pump();
      },
      (error: unknown) => {
        this.#busy = false;
        this.destroy(error as Error);
      },
    );
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.#engine.close().then(
      () => done(error),
      () => done(error),
    );
  }
}

// Positions in a serialized result record.
const R_STATUS = 0;
const R_CONTENT = 1;
const R_REASONING = 2;
const R_PARSED = 3;
const R_EMBEDDING = 4;
const R_FINISH = 5;
const R_PROMPT = 6;
const R_COMPLETION = 7;
const R_REASONING_TOKENS = 8;
const R_MODEL = 9;
const R_REQUEST_ID = 10;
const R_STATUS_CODE = 11;
const R_ERROR_CODE = 12;
const R_ERROR_MESSAGE = 13;

const EXTRA_INDEX: Record<Exclude<ExtraColumn, 'custom_id'>, number> = {
  content: R_CONTENT,
  reasoning_content: R_REASONING,
  finish_reason: R_FINISH,
  reasoning_tokens: R_REASONING_TOKENS,
  model: R_MODEL,
  request_id: R_REQUEST_ID,
  status_code: R_STATUS_CODE,
};

const TAB = 0x09;
const INVALID_RANK = String(STATUS_RANK.invalid_output).charCodeAt(0);

/**
 * The disk-backed hash join:
 * 1. results go to partition files by hash(custom_id), one line each: `"id"\t<rank><record JSON>`;
 * 2. a first pass over the source writes each joinable row's id to the keys file of its partition, in
 *    source order;
 * 3. one partition at a time: its results into a map (best status per id), then its keys in order,
 *    each answered with its result (or nothing) into the joined file of the partition;
 * 4. a second pass over the source takes, for each row, the next joined line of the row's partition:
 *    each partition's lines are in source order, so rows come out in order with no sort.
 * Memory: one partition's results, and a 64 KiB block per partition on each side.
 */
class JoinEngine {
  summary: JoinSummary | undefined;
  readonly #opts: Options;
  readonly #parser: ResultParser;
  readonly #idRef: ColumnRef | undefined;
  readonly #partitions: number;
  readonly #statuses = Object.fromEntries(RESULT_STATUSES.map((s) => [s, 0])) as Record<ResultStatus, number>;
  #started: Promise<void> | undefined;
  #dir: string | undefined;
  #results: SpillFile | undefined;
  #keys: SpillFile | undefined;
  #joined: SpillFile | undefined;
  #spilledRows: SpillFile | undefined;
  #resultCount = 0;
  #lineCount = 0;
  #duplicates = 0;
  #orphans = 0;
  #reasked = 0;
  #sawContent = false;
  #sawEmbedding = false;
  #columns: string[] | undefined;
  #plan: ColumnPlan | undefined;
  // phase 4
  #rows: AsyncGenerator<SourceItem[]> | undefined;
  #rejections: RejectionCursor | undefined;
  #cursors: SpillCursor[] = [];
  #written = 0;

  constructor(opts: Options) {
    this.#opts = opts;
    this.#parser = new ResultParser(opts);
    this.#idRef = opts.idColumn === undefined ? undefined : columnRef(opts.idColumn);
    this.#partitions = opts.partitions;
  }

  get problems(): ResultParser['problems'] {
    return this.#parser.problems;
  }

  /** Takes one result record or raw result line. */
  add(item: unknown): Promise<void> | undefined {
    if (!this.#results) return this.#start().then(() => this.add(item));
    const record =
      (item as ResultRecord | null)?.kind === 'result'
        ? (item as ResultRecord)
        : this.#parser.fromItem(item, '<results>', ++this.#lineCount);
    if (!record) return undefined;
    this.#resultCount++;
    if (record.content !== null) this.#sawContent = true;
    if (record.embedding !== null) this.#sawEmbedding = true;
    const text = JSON.stringify([
      record.status,
      record.content,
      record.reasoning_content,
      record.parsed,
      record.embedding,
      record.finish_reason,
      record.prompt_tokens,
      record.completion_tokens,
      record.reasoning_tokens,
      record.model,
      record.request_id,
      record.status_code,
      record.error_code,
      record.error_message,
    ]);
    const id = record.custom_id;
    return this.#results.append(
      partitionOf(id, this.#partitions),
      `${JSON.stringify(id)}\t${STATUS_RANK[record.status]}${text}\n`,
    );
  }

  #start(): Promise<void> {
    this.#started ??= (async () => {
      this.#dir = await mkdtemp(join(this.#opts.tempDir ?? tmpdir(), 'batchpipe-join-'));
      this.#results = new SpillFile(join(this.#dir, 'results'), this.#partitions);
      this.#keys = new SpillFile(join(this.#dir, 'keys'), this.#partitions);
      this.#joined = new SpillFile(join(this.#dir, 'joined'), this.#partitions);
    })();
    return this.#started;
  }

  /** Runs steps 2 and 3 once every result is in. */
  async prepare(): Promise<void> {
    await this.#start();
    await this.#results!.flush();
    await this.#keyPass();
    await this.#keys!.flush();
    const requests = this.#opts.reask ? await this.#scatterRequests(this.#opts.reask.requests) : undefined;
    const reaskFile = this.#opts.reask ? new BufferedFile(this.#opts.reask.out) : undefined;
    try {
      for (let p = 0; p < this.#partitions; p++) await this.#joinPartition(p, requests, reaskFile);
      await reaskFile?.close();
    } catch (error) {
      await reaskFile?.discard();
      throw error;
    }
    await this.#joined!.flush();
    this.#plan = planColumns(
      this.#columns ?? [],
      this.#opts,
      this.#parser,
      this.#sawContent,
      this.#sawEmbedding,
    );
    this.#rows = readBatches<SourceItem>(this.#openSource(false));
    this.#rejections = new RejectionCursor(this.#opts.rejections);
    for (let p = 0; p < this.#partitions; p++) this.#cursors.push(new SpillCursor(this.#joined!, p));
  }

  #openSource(first: boolean): Readable {
    const source = this.#opts.source;
    if (typeof source === 'string') return openTable(source);
    if (typeof source === 'function') return source();
    if (first) return source;
    return spilledRows(this.#spilledRows!);
  }

  async #keyPass(): Promise<void> {
    const source = this.#openSource(true);
    const spill = source === this.#opts.source;
    if (spill) this.#spilledRows = new SpillFile(join(this.#dir!, 'rows'), 1);
    const rejections = new RejectionCursor(this.#opts.rejections);
    const keys = this.#keys!;
    const idRef = this.#idRef;
    const partitions = this.#partitions;
    for await (const batch of readBatches<SourceItem>(source)) {
      for (const item of batch) {
        if (spill) {
          const waiting = this.#spilledRows!.append(0, `${JSON.stringify(item)}\n`);
          if (waiting) await waiting;
        }
        if (item.kind !== 'row') continue;
        if (this.#columns === undefined) this.#firstRow(item);
        let rejected = rejections.at(item.index);
        if (rejected instanceof Promise) rejected = await rejected;
        if (rejected) continue;
        const id = customIdFor(item.index, idRef?.get(item.values));
        const waiting = keys.append(partitionOf(id, partitions), `${JSON.stringify(id)}\n`);
        if (waiting) await waiting;
      }
    }
    await this.#spilledRows?.flush();
  }

  #firstRow(row: Row): void {
    this.#columns = Object.keys(row.values);
    if (this.#idRef && !this.#idRef.has(row.values)) {
      const listed = this.#columns.slice(0, 20).join(', ');
      throw new BatchpipeError(
        'BP_ID_COLUMN_MISSING',
        `idColumn is "${this.#idRef.name}" but row ${row.index} has no such column (columns: ${listed})`,
        { file: row.file, line: row.line, row: row.index, column: this.#idRef.name },
      );
    }
  }

  /** Request lines of the re-ask option, partitioned like the results. */
  async #scatterRequests(files: string[]): Promise<SpillFile> {
    const spill = new SpillFile(join(this.#dir!, 'requests'), this.#partitions);
    for (const file of files) {
      const splitter = new LineSplitter(file, Number.MAX_SAFE_INTEGER);
      const add = async (lines: Array<{ text: string; line: number }>) => {
        for (const { text, line } of lines) {
          if (text.trim() === '') continue;
          const id = requestId(text, file, line);
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

  async #joinPartition(
    p: number,
    requests: SpillFile | undefined,
    reaskFile: BufferedFile | undefined,
  ): Promise<void> {
    const results = this.#results!;
    const best = new Map<string, string>();
    for (let b = 0; b < results.blockCount(p); b++) {
      const lines = (await results.readBlock(p, b)).split('\n');
      for (let i = 0; i < lines.length - 1; i++) {
        const line = lines[i]!;
        const tab = line.indexOf('\t');
        const id = line.slice(0, tab);
        const entry = line.slice(tab + 1);
        const seen = best.get(id);
        if (seen === undefined) best.set(id, entry);
        else {
          this.#duplicates++;
          // Lower rank is better; on a tie the later line wins.
          if (entry.charCodeAt(0) <= seen.charCodeAt(0)) best.set(id, entry);
        }
      }
    }
    const keys = this.#keys!;
    const joined = this.#joined!;
    const used = new Set<string>();
    for (let b = 0; b < keys.blockCount(p); b++) {
      const ids = (await keys.readBlock(p, b)).split('\n');
      for (let i = 0; i < ids.length - 1; i++) {
        const id = ids[i]!;
        const entry = best.get(id);
        let waiting: Promise<void> | undefined;
        if (entry === undefined) waiting = joined.append(p, `${id}\t\n`);
        else {
          used.add(id);
          waiting = joined.append(p, `${id}\t${entry}\n`);
        }
        if (waiting) await waiting;
      }
    }
    this.#orphans += best.size - used.size;
    if (requests && reaskFile) await this.#reask(p, best, requests, reaskFile);
  }

  async #reask(p: number, best: Map<string, string>, requests: SpillFile, out: BufferedFile): Promise<void> {
    for (let b = 0; b < requests.blockCount(p); b++) {
      const lines = (await requests.readBlock(p, b)).split('\n');
      for (let i = 0; i < lines.length - 1; i++) {
        const line = lines[i]!;
        const tab = line.indexOf('\t');
        const entry = best.get(line.slice(0, tab));
        if (entry === undefined || entry.charCodeAt(0) !== INVALID_RANK) continue;
        const record = JSON.parse(entry.slice(1)) as unknown[];
        const request = JSON.parse(line.slice(tab + 1)) as RequestLine;
        const again = reaskRequest(
          request,
          record[R_CONTENT] as string | null,
          String(record[R_ERROR_MESSAGE]),
        );
        if (!again) continue;
        this.#reasked++;
        const text = `${JSON.stringify(again)}\n`;
        const waiting = out.append(text, Buffer.byteLength(text));
        if (waiting) await waiting;
      }
    }
  }

  /** The next joined rows in source order, or null at the end. */
  async nextRows(): Promise<Row[] | null> {
    const next = await this.#rows!.next();
    if (next.done) {
      await this.#finish();
      return null;
    }
    const plan = this.#plan!;
    const idRef = this.#idRef;
    const rejections = this.#rejections!;
    const out: Row[] = [];
    for (const item of next.value) {
      if (item.kind !== 'row') {
        out.push(this.#sourceRejection(item, plan));
        continue;
      }
      let rejected = rejections.at(item.index);
      if (rejected instanceof Promise) rejected = await rejected;
      const id = rejected ? rejected.custom_id : customIdFor(item.index, idRef?.get(item.values));
      if (rejected) {
        plan.fill(item.values, id, 'rejected', null, rejected.code, rejected.message);
        this.#statuses.rejected++;
        out.push(item);
        continue;
      }
      const cursor = this.#cursors[partitionOf(id!, this.#partitions)]!;
      let line = cursor.next();
      while (line === undefined) {
        if (!(await cursor.load())) throw sourceChanged(item);
        line = cursor.next();
      }
      this.#joinRow(item, id!, line, plan);
      out.push(item);
    }
    this.#written += out.length;
    return out;
  }

  #joinRow(row: Row, id: string, line: string, plan: ColumnPlan): void {
    const key = JSON.stringify(id);
    if (!line.startsWith(key) || line.charCodeAt(key.length) !== TAB) throw sourceChanged(row);
    if (line.length === key.length + 1) {
      plan.fill(
        row.values,
        id,
        'missing',
        null,
        'BP_RESULT_MISSING',
        `no output or error line came back for custom_id ${key}`,
      );
      this.#statuses.missing++;
      return;
    }
    // Skip the tab and the rank digit.
    const record = JSON.parse(line.slice(key.length + 2)) as unknown[];
    const status = record[R_STATUS] as ResultStatus;
    this.#statuses[status]++;
    plan.fill(
      row.values,
      id,
      status,
      record,
      record[R_ERROR_CODE] as string | null,
      record[R_ERROR_MESSAGE] as string | null,
    );
  }

  /** A row the source itself could not read (bad quoting, wrong field count): empty source columns. */
  #sourceRejection(item: Rejection, plan: ColumnPlan): Row {
    const values: RowValues = {};
    for (const column of this.#columns ?? []) values[column] = '';
    plan.fill(values, item.custom_id, 'rejected', null, item.code, item.message);
    this.#statuses.rejected++;
    return { kind: 'row', index: item.index, file: item.file, line: item.line, values };
  }

  async #finish(): Promise<void> {
    for (const cursor of this.#cursors) {
      if (cursor.next() !== undefined || (await cursor.load())) throw sourceChanged(undefined);
    }
    this.summary = {
      rows: this.#written,
      statuses: this.#statuses,
      results: this.#resultCount,
      duplicates: this.#duplicates,
      orphans: this.#orphans,
      problems: this.#parser.problems.count,
      reasked: this.#reasked,
      columns: this.#plan!.names,
    };
    await this.close();
  }

  /** Closes and removes the temporary files. */
  async close(): Promise<void> {
    await this.#rows?.return(undefined);
    const dir = this.#dir;
    this.#dir = undefined;
    for (const file of [this.#results, this.#keys, this.#joined, this.#spilledRows]) await file?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** FNV-1a over UTF-16 units: cheap for short ids, well spread for `row-<n>`. */
function partitionOf(id: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

/** The result columns, named once against the source header, and how a row fills them. */
interface ColumnPlan {
  names: string[];
  fill(
    values: RowValues,
    id: string | null,
    status: ResultStatus,
    record: unknown[] | null,
    code: string | null,
    message: string | null,
  ): void;
}

function planColumns(
  source: string[],
  opts: Options,
  parser: ResultParser,
  sawContent: boolean,
  sawEmbedding: boolean,
): ColumnPlan {
  const taken = new Set(source);
  const names: string[] = [];
  // A name the source already has gets the prefix result_ (DESIGN section 6).
  const name = (base: string): string => {
    let n = base;
    while (taken.has(n)) n = `result_${n}`;
    taken.add(n);
    names.push(n);
    return n;
  };
  const structured =
    parser.structured ?? compileStructuredOutput({ labels: opts.labels, schema: opts.schema });
  const status = name('status');
  const fields = (structured?.fields ?? []).map((path) => ({
    name: name(opts.fieldPrefix + path.join('.')),
    path,
  }));
  const content = !structured && (sawContent || !sawEmbedding) ? name('content') : undefined;
  const embedding = sawEmbedding ? name('embedding') : undefined;
  const errorCode = name('error_code');
  const errorMessage = name('error_message');
  const promptTokens = name('prompt_tokens');
  const completionTokens = name('completion_tokens');
  const extras: Array<{ name: string; index: number }> = [];
  let customId: string | undefined;
  for (const extra of opts.include) {
    if (extra === 'custom_id') customId = name('custom_id');
    else if (extra !== 'content' || content === undefined)
      extras.push({ name: name(extra), index: EXTRA_INDEX[extra] });
  }
  return {
    names,
    fill(values, id, statusValue, record, code, message) {
      values[status] = statusValue;
      const parsed = record === null ? null : record[R_PARSED];
      for (const field of fields) values[field.name] = pick(parsed, field.path);
      if (content !== undefined) values[content] = record === null ? null : record[R_CONTENT];
      if (embedding !== undefined) values[embedding] = record === null ? null : record[R_EMBEDDING];
      values[errorCode] = code;
      values[errorMessage] = message;
      values[promptTokens] = record === null ? null : record[R_PROMPT];
      values[completionTokens] = record === null ? null : record[R_COMPLETION];
      if (customId !== undefined) values[customId] = id;
      for (const extra of extras) values[extra.name] = record === null ? null : record[extra.index];
    },
  };
}

function pick(value: unknown, path: string[]): unknown {
  for (const key of path) {
    if (value === null || typeof value !== 'object') return null;
    value = (value as Record<string, unknown>)[key];
  }
  return value === undefined ? null : value;
}

/** A table path as a source: JSONL by extension, CSV/TSV otherwise. */
function openTable(path: string): Readable {
  const ext = extname(path).toLowerCase();
  return ext === '.jsonl' || ext === '.ndjson' ? jsonlSource(path) : csvSource(path);
}

function spilledRows(spill: SpillFile): Readable {
  const cursor = new SpillCursor(spill, 0);
  return new Readable({
    objectMode: true,
    highWaterMark: 1024,
    read() {
      const push = (): void => {
        for (;;) {
          const line = cursor.next();
          if (line === undefined) break;
          if (!this.push(JSON.parse(line))) return;
        }
        cursor.load().then(
          (more) => {
            if (more) push();
            else this.push(null);
          },
          (error: unknown) => this.destroy(error as Error),
        );
      };
      push();
    },
  });
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

function sourceChanged(row: Row | undefined): BatchpipeError {
  const where = row ? { file: row.file, line: row.line, row: row.index } : {};
  return new BatchpipeError(
    'BP_JOIN_SOURCE_CHANGED',
    'the source gave different rows on its second read; a join reads its source twice, so it must not change meanwhile',
    where,
  );
}
