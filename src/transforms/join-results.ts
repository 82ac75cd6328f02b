import { join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import { z } from 'zod';
import { csvRowBatches, idColumnMissing, readCsvKeys } from '../core/join/csv-join-reader.js';
import { HashJoin, type JoinSummary, missingMessage } from '../core/join/hash-join.js';
import { SpillCursor, SpillFile } from '../core/join/spill-file.js';
import { customIdFor } from '../core/requests/custom-id.js';
import { type ColumnRef, columnRef } from '../core/requests/template.js';
import { CellLayout, EXTRA_COLUMNS, type ExtraColumn, payloadColumn } from '../core/results/result-cells.js';
import { readBatches } from '../internal/read-batches.js';
import { parseOptions } from '../options.js';
import { ENDPOINTS } from '../providers/profile.js';
import { type CsvOptions, CsvSourceOptions, csvSource } from '../sources/csv-source.js';
import { jsonlSource } from '../sources/jsonl-source.js';
import type { Rejection, Row, RowValues, SourceItem } from '../types.js';
import { ParseResultsFields, ResultParser } from './parse-results.js';

export type { ExtraColumn, JoinSummary };
export { EXTRA_COLUMNS };

/** Where the join reads source rows: a path (read twice), a factory (called twice), or a stream (spilled to disk). */
export type JoinSource = string | Readable | (() => Readable);

/** Default partitions: at a million results each holds about 8k, a few MB. */
export const JOIN_PARTITIONS = 128;

/** The options joinResults and joinTable share. */
export const JoinFields = {
  /** Column whose value was the custom_id (as given to prepare). Default: `row-<n>`. */
  idColumn: z.string().min(1).optional(),
  /** `rejections.jsonl` files from prepare: those rows come out `rejected`. */
  rejections: z.array(z.string().min(1)).default([]),
  ...ParseResultsFields,
  /** The endpoint the requests went to: `/v1/embeddings` names the answer column `embedding`. Default chat. */
  endpoint: z.enum(ENDPOINTS).optional(),
  /** Prefix of the parsed-field columns (labels or schema). Default "". */
  fieldPrefix: z.string().default(''),
  /** More result columns, after the default ones. */
  include: z.array(z.enum(EXTRA_COLUMNS)).default([]),
  /** Write a re-ask request for each `invalid_output` row: the request files to take them from, and the output file. */
  reask: z.strictObject({ requests: z.array(z.string().min(1)).min(1), out: z.string().min(1) }).optional(),
  /** Where the temporary partition files go. Default: the OS temp directory. */
  tempDir: z.string().min(1).optional(),
  /** Hash partitions of the disk join. Default 128. */
  partitions: z.number().int().min(1).max(4096).default(JOIN_PARTITIONS),
};

const JoinResultsOptions = z.strictObject({
  /** The source table: a .csv/.tsv/.jsonl path, a function returning a fresh source stream, or a source stream. */
  source: z.union([
    z.string().min(1),
    z.custom<Readable>((v) => v instanceof Readable, 'expected a Readable'),
    z.custom<() => Readable>((v) => typeof v === 'function', 'expected a function'),
  ]),
  ...JoinFields,
});
export type JoinResultsOptions = z.input<typeof JoinResultsOptions>;
type Options = z.output<typeof JoinResultsOptions>;

/** The Duplex joinResults returns: result lines or records in, joined rows out. */
export interface JoinResultsStream extends Duplex {
  /** Set once the stream has ended. */
  readonly summary: JoinSummary | undefined;
  /** Result lines written in raw that could not be used. */
  readonly problems: ResultParser['problems'];
}

/**
 * Puts results back beside their source rows. Writes take result records (from parseResults or
 * resultSource) or raw output/error lines (parsed here the same way); once they end, the stream reads
 * out every source row exactly once, in source order, its values followed by the result columns:
 * `status`, `content` (or the parsed fields of labels/schema, or `embedding`), `error_code`,
 * `error_message`, `prompt_tokens`, `completion_tokens` (a name the source has gets `result_`). Rows
 * rejected before upload (`rejections`), rows whose request failed, expired or was cancelled, and
 * rows with no result (`missing`) come out with their status and error. Several rows may share a
 * custom_id (one result serves them all); when a custom_id has several results the best status wins
 * (ok, then truncated, then invalid_output; the later line on a tie). Memory stays flat: results and
 * row keys are hash-partitioned into temporary files and joined a partition at a time.
 */
export function joinResults(options: JoinResultsOptions): JoinResultsStream {
  const opts = parseOptions(JoinResultsOptions, options, 'joinResults');
  const source = opts.source;
  const csv =
    typeof source === 'string' && !isJsonl(source)
      ? { file: source, options: parseOptions(CsvSourceOptions, {}, 'csvSource') }
      : undefined;
  return new JoinStream(opts, csv);
}

/** A CSV file and how to read it. */
export interface CsvFile {
  file: string;
  options: CsvOptions;
}

/**
 * joinResults over a CSV file read with these options (joinTable's Row path): as joinResults with a
 * path, the first pass reads only the id column.
 */
export function joinCsvFile(csv: CsvFile, options: Omit<JoinResultsOptions, 'source'>): JoinResultsStream {
  const opts = parseOptions(JoinResultsOptions, { ...options, source: csv.file }, 'joinResults');
  return new JoinStream(opts, csv);
}

/**
 * Rows joined but not yet taken by the consumer, and rows of a CSV file read per step. Few: rows that
 * wait outlive young-generation collections and are promoted, and the old generation then grows with
 * garbage until a full collection (1M rows, Row path, CSV in: peak RSS 265 MB with 1024-row queues
 * and whole chunks parsed at once).
 */
const JOINED_ROWS_QUEUED = 64;

class JoinStream extends Duplex implements JoinResultsStream {
  summary: JoinSummary | undefined;
  readonly #opts: Options;
  readonly #join: HashJoin;
  readonly #idRef: ColumnRef | undefined;
  /** A CSV file source: its first pass reads only the ids. */
  readonly #csv: CsvFile | undefined;
  /** The source's columns: every key any row has, in order of first use (JSONL rows may differ). */
  #columns: string[] | undefined;
  readonly #seen = new Set<string>();
  /** Keys of the row with the fewest: below the column count, rows are given the keys they lack. */
  #fewestKeys = Number.MAX_SAFE_INTEGER;
  #uneven = false;
  #spill: SpillFile | undefined;
  #rows: AsyncGenerator<SourceItem[]> | undefined;
  #names: string[] = [];
  #out: Row[] = [];
  #next = 0;
  #ready = false;
  #busy = false;
  #ended = false;

  constructor(opts: Options, csv: CsvFile | undefined) {
    super({ objectMode: true, readableHighWaterMark: JOINED_ROWS_QUEUED, writableHighWaterMark: 1024 });
    this.#opts = opts;
    this.#csv = csv;
    const parser = new ResultParser(opts);
    this.#join = new HashJoin({
      parser,
      layout: new CellLayout({
        fields: parser.structured?.fields ?? [],
        include: opts.include,
        payload: payloadColumn(opts.endpoint),
      }),
      encoding: { kind: 'json' },
      partitions: opts.partitions,
      tempDir: opts.tempDir,
      rejections: opts.rejections,
      reask: opts.reask,
    });
    this.#idRef = opts.idColumn === undefined ? undefined : columnRef(opts.idColumn);
  }

  get problems(): ResultParser['problems'] {
    return this.#join.parser.problems;
  }

  override _write(item: unknown, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    let pending: Promise<void> | undefined;
    try {
      pending = this.#join.add(item);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (pending) pending.then(() => done(), done);
    else done();
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#prepare().then(() => {
      this.#ready = true;
      done();
      this.#pump();
    }, done);
  }

  override _read(): void {
    this.#pump();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    const rows = this.#rows;
    this.#rows = undefined;
    Promise.allSettled([rows?.return(undefined), this.#spill?.close(), this.#join.close()]).then(() =>
      done(error),
    );
  }

  async #prepare(): Promise<void> {
    const join_ = this.#join;
    await join_.beginKeys();
    if (this.#csv) await this.#csvKeyPass(this.#csv);
    else await this.#keyPass();
    await join_.join();
    this.#uneven = this.#columns !== undefined && this.#fewestKeys < this.#columns.length;
    this.#names = join_.layout.names(this.#columns ?? [], this.#opts.fieldPrefix);
    this.#rows = this.#csv
      ? csvRowBatches(this.#csv.file, this.#csv.options, JOINED_ROWS_QUEUED)
      : readBatches<SourceItem>(this.#openSource(false));
  }

  #openSource(first: boolean): Readable {
    const source = this.#opts.source;
    if (typeof source === 'string') return openTable(source);
    if (typeof source === 'function') return source();
    return first ? source : spilledRows(this.#spill!);
  }

  /** Step 2: the source's custom_ids, in order; a single-pass source is also spilled to disk. */
  async #keyPass(): Promise<void> {
    const join_ = this.#join;
    const source = this.#openSource(true);
    const spill = source === this.#opts.source ? new SpillFile(join(join_.dir!, 'rows'), 1) : undefined;
    this.#spill = spill;
    for await (const batch of readBatches<SourceItem>(source)) {
      for (const item of batch) {
        if (spill) {
          const waiting = spill.append(0, `${JSON.stringify(item)}\n`);
          if (waiting) await waiting;
        }
        if (item.kind !== 'row') continue;
        if (this.#columns === undefined) this.#firstRow(item);
        this.#addColumns(item.values);
        let rejected = join_.rejection(item.index);
        if (rejected instanceof Promise) rejected = await rejected;
        if (rejected) continue;
        const waiting = join_.key(customIdFor(item.index, this.#idRef?.get(item.values)));
        if (waiting) await waiting;
      }
    }
    await spill?.flush();
  }

  /** Step 2 for a CSV file: ids only; every row has the header's columns. */
  async #csvKeyPass(csv: CsvFile): Promise<void> {
    const join_ = this.#join;
    const columns = await readCsvKeys(csv.file, csv.options, this.#opts.idColumn, async (items) => {
      for (const item of items) {
        if (item.kind !== 'key') continue;
        let rejected = join_.rejection(item.index);
        if (rejected instanceof Promise) rejected = await rejected;
        if (rejected) continue;
        const waiting = join_.key(item.id);
        if (waiting) await waiting;
      }
    });
    if (columns === undefined) return;
    this.#columns = [...columns];
    this.#fewestKeys = columns.length;
  }

  #firstRow(row: Row): void {
    this.#columns = [];
    if (this.#idRef && !this.#idRef.has(row.values))
      throw idColumnMissing(this.#idRef.name, row, Object.keys(row.values));
  }

  /** Adds the keys no earlier row had, so a column only later rows have is not lost (a sink's header comes from the first row). */
  #addColumns(values: RowValues): void {
    const seen = this.#seen;
    let keys = 0;
    for (const key in values) {
      keys++;
      if (!seen.has(key)) {
        seen.add(key);
        this.#columns!.push(key);
      }
    }
    if (keys < this.#fewestKeys) this.#fewestKeys = keys;
  }

  /** Gives a row the columns it lacks (as undefined: empty in CSV, left out of JSONL), so every row has every column. */
  #pad(values: RowValues): void {
    for (const column of this.#columns!) if (!(column in values)) values[column] = undefined;
  }

  #pump(): void {
    if (!this.#ready || this.#busy) return;
    while (this.#next < this.#out.length) {
      if (!this.push(this.#out[this.#next++])) return;
    }
    if (this.#ended) return;
    this.#busy = true;
    this.#nextRows().then(
      (rows) => {
        this.#busy = false;
        if (rows === null) {
          this.#ended = true;
          this.push(null);
          return;
        }
        this.#out = rows;
        this.#next = 0;
        this.#pump();
      },
      (error: unknown) => {
        this.#busy = false;
        this.destroy(error as Error);
      },
    );
  }

  /** Step 4: the next joined rows in source order, or null at the end. */
  async #nextRows(): Promise<Row[] | null> {
    const join_ = this.#join;
    const next = await this.#rows!.next();
    if (next.done) {
      this.summary = await join_.finish(this.#names);
      await this.#spill?.close();
      return null;
    }
    const out: Row[] = [];
    for (const item of next.value) {
      if (item.kind !== 'row') {
        out.push(this.#sourceRejection(item));
        continue;
      }
      if (this.#uneven) this.#pad(item.values);
      let rejected = join_.rejection(item.index);
      if (rejected instanceof Promise) rejected = await rejected;
      if (rejected) {
        join_.rejected();
        this.#fill(
          item.values,
          join_.layout.none(rejected.custom_id, 'rejected', rejected.code, rejected.message),
        );
        out.push(item);
        continue;
      }
      const id = customIdFor(item.index, this.#idRef?.get(item.values));
      let line = join_.next(id);
      while (line === undefined) {
        await join_.load(id, item);
        line = join_.next(id);
      }
      const stored = join_.cells(id, line, item);
      this.#fill(
        item.values,
        stored === null
          ? join_.layout.none(id, 'missing', 'BP_RESULT_MISSING', missingMessage(id))
          : (JSON.parse(stored) as unknown[]),
      );
      out.push(item);
    }
    return out;
  }

  #fill(values: RowValues, cells: unknown[]): void {
    const names = this.#names;
    for (let c = 0; c < names.length; c++) values[names[c]!] = cells[c];
  }

  /** A row the source could not read (bad quoting, wrong field count): empty source columns. */
  #sourceRejection(item: Rejection): Row {
    this.#join.rejected();
    const values: RowValues = {};
    for (const column of this.#columns ?? []) values[column] = '';
    this.#fill(values, this.#join.layout.none(item.custom_id, 'rejected', item.code, item.message));
    return { kind: 'row', index: item.index, file: item.file, line: item.line, values };
  }
}

/** A table path as a source: JSONL by extension, CSV/TSV otherwise. */
function openTable(path: string): Readable {
  return isJsonl(path) ? jsonlSource(path) : csvSource(path);
}

function isJsonl(path: string): boolean {
  const lower = path.toLowerCase();
  return lower.endsWith('.jsonl') || lower.endsWith('.ndjson');
}

/** The spilled items of a single-pass source, read back in order. */
function spilledRows(spill: SpillFile): Readable {
  const cursor = new SpillCursor(spill, 0);
  return new Readable({
    objectMode: true,
    highWaterMark: 1024,
    read() {
      for (;;) {
        const line = cursor.next();
        if (line === undefined) break;
        if (!this.push(JSON.parse(line))) return;
      }
      cursor.load().then(
        (more) => {
          if (more) this._read(0);
          else this.push(null);
        },
        (error: unknown) => this.destroy(error as Error),
      );
    },
  });
}
