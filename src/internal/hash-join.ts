import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchpipeError } from '../errors.js';
import {
  RESULT_STATUSES,
  type ResultParser,
  type ResultRecord,
  type ResultStatus,
  STATUS_RANK,
} from '../transforms/parse-results.js';
import { reaskRequest } from '../transforms/reask-request.js';
import type { RequestLine, SourcePosition } from '../types.js';
import { BufferedFile } from './buffered-file.js';
import { readChunks } from './input.js';
import { LineSplitter } from './line-splitter.js';
import { type RejectedRow, RejectionCursor } from './rejection-cursor.js';
import { SpillCursor, SpillFile } from './spill-file.js';
import type { StructuredOutput } from './structured-output.js';

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
}

export interface HashJoinSettings {
  parser: ResultParser;
  partitions: number;
  tempDir: string | undefined;
  /** `rejections.jsonl` files: those rows are `rejected`. */
  rejections: readonly string[];
  /** Re-ask requests for invalid_output rows: the request files, and where to write. */
  reask: { requests: readonly string[]; out: string } | undefined;
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

const TAB = 0x09;
const INVALID_RANK = String(STATUS_RANK.invalid_output).charCodeAt(0);

/**
 * The disk-backed hash join behind joinResults and joinTable, in four steps:
 * 1. results go to partition files by hash(custom_id), one line each: `"id"\t<rank><record JSON>`;
 * 2. a first pass over the source gives each joinable row's id (`key`), written to its partition's
 *    keys file in source order;
 * 3. `join()`: one partition at a time, its results into a map (best status per id), then its keys
 *    in order, each answered with its result (or nothing) into the partition's joined file;
 * 4. a second pass over the source asks, row by row, for the next joined line of the row's
 *    partition (`next`): each partition's lines are in source order, so rows come out in order with
 *    no sort.
 * Memory: one partition's results, and a 64 KiB block per partition per file. Rows rejected before
 * upload (`rejection`) and rows the source could not read take no key and no joined line.
 */
export class HashJoin {
  readonly statuses = Object.fromEntries(RESULT_STATUSES.map((s) => [s, 0])) as Record<ResultStatus, number>;
  readonly #settings: HashJoinSettings;
  readonly #partitions: number;
  #started: Promise<void> | undefined;
  #dir: string | undefined;
  #results: SpillFile | undefined;
  #keys: SpillFile | undefined;
  #joined: SpillFile | undefined;
  #rejections: RejectionCursor | undefined;
  #cursors: SpillCursor[] = [];
  readonly #adopted: SpillFile[] = [];
  #resultCount = 0;
  #lineCount = 0;
  #duplicates = 0;
  #orphans = 0;
  #reasked = 0;
  #rows = 0;
  /** Whether any result had text or a vector: decides the content and embedding columns. */
  sawContent = false;
  sawEmbedding = false;

  constructor(settings: HashJoinSettings) {
    this.#settings = settings;
    this.#partitions = settings.partitions;
  }

  get partitions(): number {
    return this.#partitions;
  }

  get parser(): ResultParser {
    return this.#settings.parser;
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
    })();
    return this.#started;
  }

  /** Step 1: one result record, or a raw result line (parsed as parseResults does). */
  add(item: unknown): Promise<void> | undefined {
    if (!this.#results) return this.start().then(() => this.add(item));
    const record =
      (item as ResultRecord | null)?.kind === 'result'
        ? (item as ResultRecord)
        : this.#settings.parser.fromItem(item, '<results>', ++this.#lineCount);
    if (!record) return undefined;
    this.#resultCount++;
    if (record.content !== null) this.sawContent = true;
    if (record.embedding !== null) this.sawEmbedding = true;
    return spillResult(this.#results, record);
  }

  /**
   * Takes results another thread has already spilled (`spillResult` into a file of the same
   * partition count), as if they had been added here, after those added before.
   */
  adopt(spill: SpillFile, counts: { results: number; sawContent: boolean; sawEmbedding: boolean }): void {
    this.#adopted.push(spill);
    this.#resultCount += counts.results;
    this.sawContent ||= counts.sawContent;
    this.sawEmbedding ||= counts.sawEmbedding;
  }

  /** Before step 2: every result is in. */
  async beginKeys(): Promise<void> {
    await this.start();
    await this.#results!.flush();
    this.#rejections = new RejectionCursor(this.#settings.rejections);
  }

  /** The rejection of a row (steps 2 and 4; rows in ascending order). */
  rejection(index: number): RejectedRow | undefined | Promise<RejectedRow | undefined> {
    return this.#rejections!.at(index);
  }

  /** Step 2: the next joinable row has this custom_id. */
  key(id: string): Promise<void> | undefined {
    return this.#keys!.append(partitionOf(id, this.#partitions), `${JSON.stringify(id)}\n`);
  }

  /** Step 3, then ready for step 4. */
  async join(): Promise<void> {
    await this.#keys!.flush();
    const reask = this.#settings.reask;
    const requests = reask ? await this.#scatterRequests(reask.requests) : undefined;
    const reaskFile = reask ? new BufferedFile(reask.out) : undefined;
    try {
      for (let p = 0; p < this.#partitions; p++) await this.#joinPartition(p, requests, reaskFile);
      await reaskFile?.close();
    } catch (error) {
      await reaskFile?.discard();
      throw error;
    }
    await this.#joined!.flush();
    await requests?.close();
    this.#rejections = new RejectionCursor(this.#settings.rejections);
    for (let p = 0; p < this.#partitions; p++) this.#cursors.push(new SpillCursor(this.#joined!, p));
  }

  async #scatterRequests(files: readonly string[]): Promise<SpillFile> {
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
    const best = new Map<string, string>();
    for (const results of [...this.#adopted, this.#results!])
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
    const waiting = joined.flushPartition(p);
    if (waiting) await waiting;
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

  /** Step 4: the next joined line for a row with this id, or undefined when its block must be `load`ed. */
  next(id: string): string | undefined {
    return this.#cursors[partitionOf(id, this.#partitions)]!.next();
  }

  /** Loads the next block of the id's partition; a partition with no more lines means the source changed. */
  async load(id: string, at: SourcePosition): Promise<void> {
    if (!(await this.#cursors[partitionOf(id, this.#partitions)]!.load())) throw sourceChanged(at);
  }

  /**
   * The result record of a joined line (null when no result came back), counted under its status.
   * Checks the line belongs to the id: a source that changed between the passes is an error.
   */
  record(id: string, line: string, at: SourcePosition): unknown[] | null {
    const key = JSON.stringify(id);
    if (!line.startsWith(key) || line.charCodeAt(key.length) !== TAB) throw sourceChanged(at);
    this.#rows++;
    if (line.length === key.length + 1) {
      this.statuses.missing++;
      return null;
    }
    // Skip the tab and the rank digit.
    const record = JSON.parse(line.slice(key.length + 2)) as unknown[];
    this.statuses[record[R_STATUS] as ResultStatus]++;
    return record;
  }

  /** Counts a row that took no joined line (rejected before upload or by the source). */
  rejected(): void {
    this.#rows++;
    this.statuses.rejected++;
  }

  /** After step 4: checks every joined line was used, removes the temporary files. */
  async finish(columns: string[]): Promise<JoinSummary> {
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
    };
  }

  /** Closes and removes the temporary files. */
  async close(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    for (const file of [this.#results, this.#keys, this.#joined, ...this.#adopted]) await file?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** Writes a result record to its partition as `"id"\t<rank><record JSON>`. */
export function spillResult(spill: SpillFile, record: ResultRecord): Promise<void> | undefined {
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
  return spill.append(
    partitionOf(id, spill.partitions),
    `${JSON.stringify(id)}\t${STATUS_RANK[record.status]}${text}\n`,
  );
}

/** FNV-1a over UTF-16 units: cheap for short ids, well spread for `row-<n>`. */
export function partitionOf(id: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return (h >>> 0) % partitions;
}

const EXTRA_INDEX: Record<Exclude<ExtraColumn, 'custom_id'>, number> = {
  content: R_CONTENT,
  reasoning_content: R_REASONING,
  finish_reason: R_FINISH,
  reasoning_tokens: R_REASONING_TOKENS,
  model: R_MODEL,
  request_id: R_REQUEST_ID,
  status_code: R_STATUS_CODE,
};

/** The result columns, named once against the source header; `cells` gives a row's values in order. */
export interface ColumnPlan {
  names: string[];
  /** Fills `out[0..names.length)` (an array reused row after row). */
  cells(
    out: unknown[],
    id: string | null,
    status: ResultStatus,
    record: unknown[] | null,
    code: string | null,
    message: string | null,
  ): void;
}

export interface ColumnChoices {
  structured: StructuredOutput | undefined;
  fieldPrefix: string;
  include: readonly ExtraColumn[];
  sawContent: boolean;
  sawEmbedding: boolean;
}

/**
 * DESIGN section 6: `status`, then `content` (or the parsed fields with labels/schema, or
 * `embedding` when the results are vectors), `error_code`, `error_message`, `prompt_tokens`,
 * `completion_tokens`, then the `include` extras. A name the source has gets the prefix `result_`.
 */
export function planColumns(source: readonly string[], choices: ColumnChoices): ColumnPlan {
  const taken = new Set(source);
  const names: string[] = [];
  const name = (base: string): number => {
    let n = base;
    while (taken.has(n)) n = `result_${n}`;
    taken.add(n);
    names.push(n);
    return names.length - 1;
  };
  const { structured } = choices;
  name('status');
  const fields = (structured?.fields ?? []).map((path) => {
    name(choices.fieldPrefix + path.join('.'));
    return path;
  });
  const content = !structured && (choices.sawContent || !choices.sawEmbedding);
  if (content) name('content');
  const embedding = choices.sawEmbedding;
  if (embedding) name('embedding');
  for (const base of ['error_code', 'error_message', 'prompt_tokens', 'completion_tokens']) name(base);
  const extras: number[] = [];
  let customId = false;
  for (const extra of choices.include) {
    if (extra === 'custom_id') customId = true;
    else if (extra === 'content' && content) continue;
    else extras.push(EXTRA_INDEX[extra]);
    name(extra);
  }
  const fieldCount = fields.length;
  return {
    names,
    cells(out, id, status, record, code, message) {
      let c = 0;
      out[c++] = status;
      const parsed = record === null ? null : record[R_PARSED];
      for (let f = 0; f < fieldCount; f++) out[c++] = pick(parsed, fields[f]!);
      if (content) out[c++] = record === null ? null : record[R_CONTENT];
      if (embedding) out[c++] = record === null ? null : record[R_EMBEDDING];
      out[c++] = code;
      out[c++] = message;
      out[c++] = record === null ? null : record[R_PROMPT];
      out[c++] = record === null ? null : record[R_COMPLETION];
      if (customId) out[c++] = id;
      for (const index of extras) out[c++] = record === null ? null : record[index];
    },
  };
}

/** The error columns of a joined line's record. */
export function recordError(record: unknown[]): { code: string | null; message: string | null } {
  return { code: record[R_ERROR_CODE] as string | null, message: record[R_ERROR_MESSAGE] as string | null };
}

/** The status of a joined line's record. */
export function recordStatus(record: unknown[]): ResultStatus {
  return record[R_STATUS] as ResultStatus;
}

/** The message of a row with no result. */
export function missingMessage(id: string): string {
  return `no output or error line came back for custom_id ${JSON.stringify(id)}`;
}

function pick(value: unknown, path: string[]): unknown {
  for (const key of path) {
    if (value === null || typeof value !== 'object') return null;
    value = (value as Record<string, unknown>)[key];
  }
  return value === undefined ? null : value;
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
