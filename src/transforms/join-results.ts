import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import { z } from 'zod';
import type { JoinSummary } from '../core/join/hash-join.js';
import type { JoinedRowBatch } from '../core/join/joined-row-batch.js';
import { SpillCursor, SpillFile } from '../core/join/spill-file.js';
import { type OpenRows, TableJoin } from '../core/join/table-join.js';
import {
  type CellEncoding,
  EXTRA_COLUMNS,
  type ExtraColumn,
  payloadColumn,
} from '../core/results/result-cells.js';
import { isResultBatch, isResultFiles } from '../core/results/result-lines.js';
import { ParseResultsFields, type ResultProblems, type ResultStatus } from '../core/results/result-parser.js';
import { ObjectRowBatch } from '../core/rows/object-row-batch.js';
import type { RowBatch } from '../core/rows/row-batch.js';
import { SliceField } from '../core/rows/row-slice.js';
import { compileStructuredOutput } from '../core/structured/structured-output.js';
import { readTableBatches, readTableBatchesOnThread } from '../core/tables/table-reader.js';
import { parseOptions } from '../options.js';
import { ENDPOINTS } from '../providers/profile.js';
import {
  type BatchEmitter,
  kEmitBatches,
  kHandOverResultFiles,
  kInRowOrder,
  kPreferCells,
  kReadOnThread,
  type ThreadReadable,
} from '../streams/batch-protocol.js';
import { rowBatchesOf } from '../streams/row-batches.js';
import type { Rejection, Row, RowValues } from '../types.js';

export type { ExtraColumn, JoinSummary };
export { EXTRA_COLUMNS };

/**
 * Where the join reads source rows: a path (read twice, or once by row ranges: docs/results.md), a
 * factory (called twice), or a stream (spilled to disk). The factory's first call is given the
 * columns that pass reads (the id column, the hashed ones): a columnar source may read only those
 * (parquetSource's `columns`).
 */
export type JoinSource = string | Readable | ((columns?: readonly string[]) => Readable);

/** Default partitions: at a million results each holds about 8k, a few MB. */
export const JOIN_PARTITIONS = 128;

/** The options joinResults and joinTable share. */
export const JoinFields = {
  /** Column whose value was the custom_id (as given to prepare). Default: `row-<n>`. */
  idColumn: z.string().min(1).optional(),
  /** `rejections.jsonl` files from prepare: those rows come out `rejected`. */
  rejections: z.array(z.string().min(1)).default([]),
  /**
   * `row-hashes.tsv` files from prepare (in a prepared or run directory): each row is checked against
   * the request its result answers, and a row whose cells changed since comes out `stale` (its answer
   * is to another prompt). Without them rows are not checked (`summary.checked` is false).
   */
  rowHashes: z.array(z.string().min(1)).default([]),
  ...ParseResultsFields,
  /**
   * The endpoint the requests went to: `/v1/embeddings` names the answer column `embedding`. Default:
   * the run's, when a batchSink hands its results on; else chat.
   */
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
  /**
   * Only the rows of this slice of the source (`{ index, count }`, as the requests were prepared with)
   * are joined and come out; the rest are left out, not `missing`. Default: every row.
   */
  slice: SliceField,
  /**
   * The slices the results are of, when they are a split's (`count` slices, `given` their indexes): a
   * row of a slice not given comes out `missing` saying so. Default: not said.
   */
  slices: z
    .strictObject({ count: z.number().int().min(1), given: z.array(z.number().int().min(0)) })
    .optional(),
};

const JoinResultsOptions = z.strictObject({
  /** The source table: a .csv/.tsv/.jsonl/.parquet/.arrow/.arrows path, a function returning a fresh source stream, or a source stream. */
  source: z.union([
    z.string().min(1),
    z.custom<Readable>((v) => v instanceof Readable, 'expected a Readable'),
    z.custom<(columns?: readonly string[]) => Readable>(
      (v) => typeof v === 'function',
      'expected a function',
    ),
  ]),
  ...JoinFields,
});
export type JoinResultsOptions = z.input<typeof JoinResultsOptions>;
type Options = z.output<typeof JoinResultsOptions>;

/**
 * The result columns joinResults puts after a row's own (docs/results.md has each in full). Their
 * names are these unless the source has a column of the same name (the result's then takes
 * `result_`, then `result_result_`...), and with labels or a schema `content` gives way to the parsed
 * fields (`label`; a schema's properties, nested ones as `address.city`), with embeddings to
 * `embedding`; `include` adds more. Empty cells are null.
 */
export interface ResultColumns {
  /** What became of the row's request. */
  status: ResultStatus;
  /** The answer text (chat, without labels or schema). */
  content?: string | null;
  /** The answer vector (embeddings). */
  embedding?: number[] | null;
  /** The provider's error code, or a `BP_` code (docs/errors.md). */
  error_code: string | null;
  error_message: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  /** Parsed fields (labels, schema) and the `include` columns. */
  [column: string]: unknown;
}

/**
 * A row as joinResults hands it to a Transform or a `for await` (every source row once, in source
 * order): the source row's values, then its result columns. Node types a Duplex's items as `any`:
 * `for await (const row of joined as AsyncIterable<JoinedRow>)`, or `(row: JoinedRow)` in a Transform.
 */
export interface JoinedRow extends Row {
  values: RowValues & ResultColumns;
}

/** The Duplex joinResults returns: result lines or records in, joined rows out. */
export interface JoinResultsStream extends Duplex {
  /** Set once the stream has ended. */
  readonly summary: JoinSummary | undefined;
  /** Result lines written in raw that could not be used. */
  readonly problems: ResultProblems;
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
 * row keys are hash-partitioned into temporary files and joined a partition at a time (or, with no id
 * column and a path source, results are placed by row number, a range at a time).
 * Emits one Row per source row; to batchpipe's own sinks it hands batches, and when resultSource (or
 * batchSink) is piped into it, it parses the result files itself on worker threads while it reads the
 * source's ids.
 */
export function joinResults(options: JoinResultsOptions): JoinResultsStream {
  return new JoinResults(parseOptions(JoinResultsOptions, options, 'joinResults'));
}

/**
 * Rows joined but not yet taken by the consumer, one at a time (a row waiting in a queue outlives a
 * young-generation collection and is promoted, and the old generation then fills with garbage).
 */
const QUEUED = 2;

class JoinResults extends Duplex implements JoinResultsStream, BatchEmitter {
  readonly #join: TableJoin;
  readonly #source: Options['source'];
  readonly #tempDir: string | undefined;
  /** Told the endpoint: else a run sink handing its files on names it (its answer column's name). */
  readonly #endpointGiven: boolean;
  #spillDir: string | undefined;
  #spill: SpillFile | undefined;
  #batches = false;
  #ready = false;
  #busy = false;
  #ended = false;
  /** The joined batch being handed on row by row, and the next row. */
  #batch: JoinedRowBatch | undefined;
  #next = 0;

  constructor(opts: Options) {
    super({ objectMode: true, readableHighWaterMark: QUEUED, writableHighWaterMark: 1024 });
    this.#source = opts.source;
    this.#tempDir = opts.tempDir;
    this.#endpointGiven = opts.endpoint !== undefined;
    const structured = compileStructuredOutput({ labels: opts.labels, schema: opts.schema });
    this.#join = new TableJoin(
      {
        idColumn: opts.idColumn,
        rejections: opts.rejections,
        rowHashes: opts.rowHashes,
        labels: opts.labels,
        schema: opts.schema,
        badLines: opts.badLines,
        onProblem: opts.onProblem,
        cells: {
          fields: structured?.fields ?? [],
          include: opts.include as ExtraColumn[],
          payload: payloadColumn(opts.endpoint),
          fieldSchema: structured?.jsonSchema,
        },
        fieldPrefix: opts.fieldPrefix,
        reask: opts.reask,
        tempDir: opts.tempDir,
        partitions: opts.partitions,
        slice: opts.slice,
        slices: opts.slices,
        // A file is read in row order, as often as asked.
        ordered:
          typeof opts.source === 'string' ||
          (typeof opts.source === 'function' && kInRowOrder in opts.source),
      },
      this.#openRows,
    );
    this.on('pipe', (source: Readable) => {
      // Result files are read here (on worker threads); anything else comes record by record.
      const stage = source as Partial<BatchEmitter> & { [kHandOverResultFiles]?: () => boolean };
      if (!stage[kHandOverResultFiles]?.()) stage[kEmitBatches]?.();
    });
  }

  [kEmitBatches](): void {
    this.#batches = true;
  }

  /** Called by the sink this is piped into, with how it writes cells. */
  [kPreferCells](encoding: CellEncoding): void {
    this.#join.preferCells(encoding);
  }

  get summary(): JoinSummary | undefined {
    return this.#join.summary;
  }

  get problems(): ResultProblems {
    return this.#join.parser.problems;
  }

  readonly #openRows: OpenRows = (pass, columns) => {
    const source = this.#source;
    // The output pass reads the table on a thread where it can: this one writes the joined rows.
    if (typeof source === 'string')
      return (pass === 2 ? readTableBatchesOnThread(source) : undefined) ?? readTableBatches(source, columns);
    if (typeof source === 'function') {
      const stream = columns ? source(columns) : source();
      const threaded = pass === 2 ? (stream as Partial<ThreadReadable>)[kReadOnThread]?.() : undefined;
      if (!threaded) return rowBatchesOf(stream);
      stream.destroy();
      return threaded;
    }
    return pass === 1 ? this.#spillWhileReading(source) : this.#spilled();
  };

  /** A single-pass source: its items are kept on disk for the second pass. */
  async *#spillWhileReading(source: Readable): AsyncGenerator<RowBatch> {
    this.#spillDir = await mkdtemp(join(this.#tempDir ?? tmpdir(), 'batchpipe-rows-'));
    const spill = new SpillFile(join(this.#spillDir, 'rows'), 1);
    this.#spill = spill;
    for await (const rows of rowBatchesOf(source)) {
      for (let i = 0; i < rows.length; i++) {
        const waiting = spill.append(0, `${JSON.stringify(rows.item(i))}\n`);
        if (waiting) await waiting;
      }
      yield rows;
    }
    await spill.flush();
  }

  /** The spilled items of a single-pass source, read back in order. */
  async *#spilled(): AsyncGenerator<RowBatch> {
    const spill = this.#spill;
    if (!spill) return;
    const cursor = new SpillCursor(spill, 0);
    for (;;) {
      const items: Array<Row | Rejection> = [];
      for (let line = cursor.next(); line !== undefined; line = cursor.next())
        items.push(JSON.parse(line) as Row | Rejection);
      if (items.length > 0) yield new ObjectRowBatch(items);
      if (!(await cursor.load())) return;
    }
  }

  override _write(item: unknown, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    let pending: Promise<void> | undefined;
    try {
      if (isResultFiles(item))
        this.#join.addFiles(item, this.#endpointGiven ? undefined : payloadColumn(item.endpoint));
      else if (isResultBatch(item)) pending = this.#addAll(item.records, 0);
      else pending = this.#join.add(item);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (pending) pending.then(() => done(), done);
    else done();
  }

  #addAll(records: readonly unknown[], from: number): Promise<void> | undefined {
    for (let i = from; i < records.length; i++) {
      const waiting = this.#join.add(records[i]);
      if (waiting) return waiting.then(() => this.#addAll(records, i + 1));
    }
    return undefined;
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#join.prepare().then(() => {
      this.#ready = true;
      done();
      this.#pump();
    }, done);
  }

  override _read(): void {
    this.#pump();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    Promise.allSettled([this.#join.close(), this.#closeSpill()]).then(() => done(error));
  }

  async #closeSpill(): Promise<void> {
    await this.#spill?.close();
    if (this.#spillDir) await rm(this.#spillDir, { recursive: true, force: true });
  }

  #pump(): void {
    if (!this.#ready || this.#busy) return;
    const batch = this.#batch;
    if (batch) {
      while (this.#next < batch.length) if (!this.push(batch.item(this.#next++))) return;
      this.#batch = undefined;
      batch.release();
    }
    if (this.#ended) return;
    this.#busy = true;
    this.#join.next().then(
      (joined) => {
        this.#busy = false;
        if (joined === null) {
          this.#ended = true;
          this.#closeSpill().then(
            () => this.push(null),
            (error: unknown) => this.destroy(error as Error),
          );
          return;
        }
        if (this.#batches) {
          if (this.push(joined)) this.#pump();
          return;
        }
        this.#batch = joined;
        this.#next = 0;
        this.#pump();
      },
      (error: unknown) => {
        this.#busy = false;
        this.destroy(error as Error);
      },
    );
  }
}
