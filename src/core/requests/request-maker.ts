import { availableParallelism } from 'node:os';
import { LINES_POOL } from '../../internal/buffer-pool.js';
import { ByteWriter } from '../../internal/byte-writer.js';
import { inLinesMemory } from '../../internal/lines-memory.js';
import type { Rejection, RequestItem, Row, SourcePosition } from '../../types.js';
import type { RowBatch } from '../rows/row-batch.js';
import { customIdFor } from './custom-id.js';
import { KeySet } from './key-set.js';
import { compileLineTemplate, type LineTemplate } from './line-template.js';
import { MapperPool } from './mapper-pool.js';
import { LineRenderer, type RenderedLines, type RenderPlan } from './render-lines.js';
import { RenderPool, type RowsTransport } from './render-pool.js';
import { type KeySeenOrder, RequestBatch } from './request-batch.js';
import type { RequestBuilder } from './request-builder.js';
import { transportOf } from './thread-rows.js';

/** Room for the first batch's lines, per row; later batches are sized from the lines made so far. */
const FIRST_GUESS_BYTES_PER_ROW = 1024;
/** Room to spare over the estimate, so a batch of longer rows rarely grows (and copies) its buffer. */
const HEADROOM = 1.25;
/**
 * Rows rendered here before a render thread is started: below this a thread costs more to start than
 * it saves, and small runs (tests, notebooks) never start one.
 */
export const RENDER_THREAD_AFTER_ROWS = 16_384;
/**
 * A table its source estimates at this many rows or more (RowBatch.estimatedRows: a file's size, a
 * Parquet footer) is rendered on a thread from its first batch, so this thread never renders the
 * rows before the start, in code not yet optimized. Measured on the bench's reviews: ~5% faster at
 * 100k rows, within the noise at 1M; a thread from the start was slower below ~15k rows (~9% at
 * 5-10k), so the bar is well past RENDER_THREAD_AFTER_ROWS, where an estimate a little off still pays.
 */
export const RENDER_THREAD_AT_ONCE_ROWS = 65_536;
/**
 * Render threads, by what they read. From CSV this thread's own work (scanning, checks, writing)
 * takes about as long as the rendering, and a second thread (measured: 1M rows, 2.9 s either way) only
 * adds its memory (150 -> 185 MB). JSON Lines are scanned on the render thread, and one is enough
 * there too since lines are scanned rather than parsed: at 1M rows it uses 2.1-2.2 CPU s, under the
 * run's 4.5-4.8 CPU s over two cores, where two took 4.7-5.1 CPU s in all and 25 MB more.
 */
const RENDER_THREADS = { csv: 1, jsonl: 1, arrow: 1 } as const;
/**
 * Rows a mapper module maps here before its threads start: the first batch (a mapper that fails on the
 * first row fails here, at once). A row costs a mapper far more than a template, so threads pay sooner.
 */
export const MAPPER_THREAD_AFTER_ROWS = 2048;
/** Mapper threads: calling a JS function per row is the work, and it pays on every core. */
const MAPPER_THREADS = availableParallelism();

/**
 * Makes request batches from row batches: the engine behind `toRequests`. With a template (the
 * common case), each line is its template's bytes with each row's cells JSON-escaped into the holes
 * (LineRenderer), so no request object is built and, from CSV or JSON Lines, no cell becomes a
 * string; past the first rows of a large table, on a thread of its own (RenderPool) while this one
 * reads and writes. A mapper's bodies are built as objects, one row at a time.
 */
export class RequestMaker {
  readonly #builder: RequestBuilder;
  readonly #template: LineTemplate | undefined;
  readonly #plan: RenderPlan | undefined;
  readonly #renderer: LineRenderer | undefined;
  #pool: RenderPool | undefined;
  #mappers: MapperPool | undefined;
  /** Rows made so far (threads start past RENDER_THREAD_AFTER_ROWS). */
  #madeRows = 0;
  /** Bytes and rows of the lines serialized so far, to size each batch's buffer once. */
  #sizedBytes = 0;
  #sizedRows = 0;
  /**
   * With `markRepeats`: the table of the keys rendered so far, while lines are rendered here (it
   * moves to the render thread with the first batch rendered there), and the batches made so far
   * (each says where it came: see KeySeenOrder).
   */
  #repeats: KeySet | undefined;
  readonly #repeatsStream = {};
  #batches = 0;

  constructor(builder: RequestBuilder) {
    this.#builder = builder;
    this.#template = compileLineTemplate(builder);
    if (this.#template) {
      const settings = builder.settings;
      this.#plan = {
        pieces: this.#template.pieces,
        slots: this.#template.slots,
        columns: this.#template.columns,
        idColumn: settings.idColumn,
        maxIdChars: builder.maxIdChars,
        promptColumns: builder.promptColumns,
        emptyCheck: settings.endpoint === '/v1/embeddings' && builder.templateIsAllPlaceholders,
        requestKeys: settings.requestKeys,
      };
      this.#renderer = new LineRenderer(this.#plan);
      if (settings.markRepeats && settings.requestKeys)
        this.#repeats = new KeySet(undefined, settings.markRepeats.expectedKeys, true);
    }
  }

  /** Batches worth having in work at once (more than one when a render thread does the work). */
  get concurrency(): number {
    // One batch at each thread and one waiting at each, so no thread waits for this one (with one
    // waiting in all, the threads took turns idling: measured, a mapper thread idle 18% of a run).
    const pool = this.#pool ?? this.#mappers;
    return pool ? pool.size * 2 : 1;
  }

  /** Requests for a batch of rows (a promise when a render thread or a mapper makes them). */
  make(rows: RowBatch): RequestBatch | Promise<RequestBatch> {
    const template = this.#template;
    const threads =
      this.#madeRows >= RENDER_THREAD_AFTER_ROWS || (rows.estimatedRows ?? 0) >= RENDER_THREAD_AT_ONCE_ROWS;
    if (!template) {
      const builder = this.#builder;
      if (builder.mapperToLoad) return builder.loadMapper().then(() => this.make(rows));
      const mapThere = this.#madeRows >= MAPPER_THREAD_AFTER_ROWS && builder.mapperModule !== undefined;
      const transport = mapThere ? transportOf(rows) : undefined;
      if (transport) return this.#mapThere(rows, transport);
      this.#madeRows += rows.length;
      return this.#build(rows);
    }
    this.#checkFirstRow(rows);
    // Numbered when it has entries: an empty batch is never handed on (BatchTransform).
    const order =
      this.#builder.settings.markRepeats && rows.length > 0
        ? { stream: this.#repeatsStream, batch: this.#batches++ }
        : undefined;
    const transport = threads ? transportOf(rows, true) : undefined;
    if (transport) return this.#renderThere(rows, transport, template, order);
    const writer = new ByteWriter(this.#bufferSize(rows), LINES_POOL);
    // After the table moved to the render thread, a batch rendered here (one with no transport:
    // never, from CSV, JSON Lines or Arrow) is not marked: the sharder's own table takes its keys,
    // and a request repeated across the two tables is sent twice, never answered wrongly.
    const lines = this.#renderer!.render(rows, writer, inLinesMemory(writer.buffer), this.#repeats);
    return this.#assemble(rows, lines, undefined, writer.buffer, writer.pos, template, order);
  }

  /** Stops the threads, if any were started. */
  async close(): Promise<void> {
    await Promise.all([this.#pool?.close(), this.#mappers?.close()]);
  }

  /** The run-level check of the first row a table has (see RequestBuilder.checkFirst). */
  #checkFirstRow(rows: RowBatch): void {
    const builder = this.#builder;
    if (!builder.atFirstRow) return;
    for (let i = 0; i < rows.length; i++) {
      if (rows.rejection(i)) continue;
      const at: SourcePosition = { index: rows.index(i), file: rows.file(i), line: rows.line(i) };
      builder.checkFirst(
        // A columnar source read for the template's columns names the file's in tableColumns.
        rows.tableColumns ?? rows.keys(i),
        (name) => {
          const ref = rows.ref(name);
          return ref !== undefined && rows.has(i, ref);
        },
        at,
      );
      return;
    }
  }

  #bufferSize(rows: RowBatch): number {
    const perRow = this.#sizedRows > 0 ? this.#sizedBytes / this.#sizedRows : FIRST_GUESS_BYTES_PER_ROW;
    return Math.ceil(perRow * rows.length * HEADROOM);
  }

  /** A shared buffer for a thread to write a batch's lines into. */
  #sharedBuffer(rows: RowBatch): Buffer {
    const size = this.#bufferSize(rows);
    // A pooled buffer whenever the lines are likely to fit without the headroom: a fresh one per batch
    // costs more (zeroed, and freed late) than the rare batch that outgrows it.
    return size / HEADROOM <= LINES_POOL.size ? LINES_POOL.take() : Buffer.from(new SharedArrayBuffer(size));
  }

  async #renderThere(
    rows: RowBatch,
    transport: RowsTransport,
    template: LineTemplate,
    order: KeySeenOrder | undefined,
  ): Promise<RequestBatch> {
    if (!this.#pool) {
      // The key table goes with the thread (one: the lines are marked in the order they come).
      const repeats = this.#repeats?.state();
      this.#repeats = undefined;
      this.#pool = new RenderPool(this.#plan!, RENDER_THREADS[transport.type], repeats);
    }
    const given = this.#sharedBuffer(rows);
    const rendered = await this.#pool.render(transport, given, inLinesMemory(given));
    const buffer = linesBuffer(given, rendered.buffer);
    // The lines, and the key records after them.
    const end = rendered.recordAt?.[rows.length] ?? rendered.ends.reduce((last, at) => Math.max(last, at), 0);
    return this.#assemble(rows, rendered, new Map(rendered.rejections), buffer, end, template, order);
  }

  /** A batch of a mapper module's requests, made on the mapper threads. */
  async #mapThere(rows: RowBatch, transport: RowsTransport): Promise<RequestBatch> {
    const builder = this.#builder;
    this.#mappers ??= new MapperPool(
      { module: builder.mapperModule!, builder: builder.threadState(), profile: builder.profile },
      MAPPER_THREADS,
    );
    const given = this.#sharedBuffer(rows);
    const mapped = await this.#mappers.map(transport, given);
    const out = new RequestBatch();
    // The builder sets custom_id, not the mapper: without an id column they are row-<n>, unique.
    out.uniqueIds = builder.settings.idColumn === undefined;
    out.data = linesBuffer(given, mapped.buffer);
    out.checkedAlone = {
      profile: builder.profile,
      refusals: new Map(mapped.refusals),
      warnings: mapped.ruleWarnings,
    };
    const rejections = new Map(mapped.rejections);
    const url = builder.settings.endpoint;
    const { ids, idEnds, models, modelAt, starts, ends, builderWarnings } = mapped;
    let warned = 0;
    let used = 0;
    let idStart = 0;
    for (let i = 0; i < rows.length; i++) {
      const at: SourcePosition = { index: rows.index(i), file: rows.file(i), line: rows.line(i) };
      for (; builderWarnings[warned]?.[0] === i; warned++)
        builder.warnings.warn(...builderWarnings[warned]![1]);
      const idEnd = idEnds[i]!;
      if (starts[i]! >= 0) {
        const id = ids.slice(idStart, idEnd);
        out.addRendered(at, id, starts[i]!, ends[i]!, false, models[modelAt[i]!]!, url);
        used = ends[i]!;
      } else out.addRejection((rejections.get(i) ?? rows.rejection(i))!);
      idStart = idEnd;
    }
    this.#count(rows, used);
    rows.release();
    return out;
  }

  #count(rows: RowBatch, bytes: number): void {
    this.#madeRows += rows.length;
    this.#sizedRows += rows.length;
    this.#sizedBytes += bytes;
  }

  /**
   * The request batch of rendered lines: each row's line, or its rejection (the source's, or a
   * missing prompt column), with the warnings every line of the template raises.
   */
  #assemble(
    rows: RowBatch,
    lines: RenderedLines,
    rejections: ReadonlyMap<number, Rejection> | undefined,
    data: Buffer,
    used: number,
    template: LineTemplate,
    order: KeySeenOrder | undefined,
  ): RequestBatch {
    const builder = this.#builder;
    const { ids, starts, ends, empty, missing } = lines;
    let next = 0;
    const out = RequestBatch.ofLines(template, rows, ids, starts, ends, empty, (i) => {
      if (missing[next]?.[0] === i) {
        const at: SourcePosition = { index: rows.index(i), file: rows.file(i), line: rows.line(i) };
        const message = builder.missingMessage(missing[next++]![1]);
        return reject(at, ids?.[i] ?? customIdFor(at.index), message);
      }
      return (rejections?.get(i) ?? rows.rejection(i))!;
    });
    out.rowHashes = lines.hashes;
    out.requestKeys = lines.keys;
    out.keyRecordAt = lines.recordAt;
    out.keySeen = lines.seen;
    out.keySeenOrder = order;
    out.uniqueIds = builder.settings.idColumn === undefined;
    out.data = data;
    // The warnings every line of the template raises, once a line (none, mostly).
    const warnings = template.warnings;
    if (warnings.length > 0)
      for (let i = 0; i < rows.length; i++) {
        if (starts[i]! < 0) continue;
        for (const w of warnings)
          builder.warnings.warn(w.code, w.message, {
            file: rows.file(i),
            line: rows.line(i),
            row: rows.index(i),
            custom_id: out.id(i),
          });
      }
    this.#count(rows, used);
    // Every line is in the request batch now: the rows' buffers are used again.
    rows.release();
    return out;
  }

  /** Builds each row's request as an object (a mapper, or a template the line template cannot serve). */
  #build(rows: RowBatch): RequestBatch | Promise<RequestBatch> {
    const out = new RequestBatch();
    for (let i = 0; i < rows.length; i++) {
      const item = rows.item(i);
      if (item.kind === 'rejection') {
        out.addRejection(item);
        continue;
      }
      const built = this.#builder.build(item);
      if (built instanceof Promise) return this.#buildRest(rows, i, built, out);
      add(out, built);
    }
    rows.release();
    return out;
  }

  /** Goes on from row `i`, whose request is on its way: one mapper call at a time, in order. */
  async #buildRest(
    rows: RowBatch,
    i: number,
    pending: Promise<RequestItem | Rejection>,
    out: RequestBatch,
  ): Promise<RequestBatch> {
    add(out, await pending);
    for (let k = i + 1; k < rows.length; k++) {
      const item = rows.item(k);
      if (item.kind === 'rejection') {
        out.addRejection(item);
        continue;
      }
      const built = this.#builder.build(item as Row);
      add(out, built instanceof Promise ? await built : built);
    }
    rows.release();
    return out;
  }
}

/** The buffer a thread's lines are in: the one it was given, or the larger one it had to make. */
function linesBuffer(given: Buffer, grown: Uint8Array | undefined): Buffer {
  if (!grown) return given;
  // The lines did not fit: the given buffer is unused.
  LINES_POOL.give(given);
  return Buffer.from(grown.buffer, grown.byteOffset, grown.length);
}

function add(out: RequestBatch, built: RequestItem | Rejection): void {
  if (built.kind === 'rejection') out.addRejection(built);
  else out.addRequest(built, built.request);
}

function reject(at: SourcePosition, custom_id: string, message: string): Rejection {
  return { kind: 'rejection', ...at, custom_id, code: 'BP_TEMPLATE_MISSING_COLUMN', message };
}
