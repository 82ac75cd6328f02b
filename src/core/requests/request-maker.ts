import { LINES_POOL } from '../../internal/buffer-pool.js';
import { ByteWriter } from '../../internal/byte-writer.js';
import type { Rejection, RequestItem, Row, SourcePosition } from '../../types.js';
import type { CellRef, RowBatch } from '../rows/row-batch.js';
import { compileLineTemplate, ID_SLOT, type LineTemplate } from './line-template.js';
import { RequestBatch } from './request-batch.js';
import type { RequestBuilder } from './request-builder.js';

/** Room for the first batch's lines, per row; later batches are sized from the lines made so far. */
const FIRST_GUESS_BYTES_PER_ROW = 1024;
/** Room to spare over the estimate, so a batch of longer rows rarely grows (and copies) its buffer. */
const HEADROOM = 1.25;

/** The columns of one batch layout, resolved once. */
interface Resolved {
  layout: object;
  /** One per template column; undefined where the layout lacks it. */
  refs: Array<CellRef | undefined>;
  id: CellRef | undefined;
  /** The prompt's columns (in the order a missing one is reported), and their refs. */
  prompt: Array<[string, CellRef | undefined]>;
}

/**
 * Makes request batches from row batches: the engine behind `toRequests`. With a template (the
 * common case), each line is its template's bytes with each row's cells JSON-escaped into the holes,
 * so no request object is built and, from CSV, no cell becomes a string; a mapper's bodies are built
 * as objects, one row at a time.
 */
export class RequestMaker {
  readonly #builder: RequestBuilder;
  readonly #template: LineTemplate | undefined;
  #resolved: Resolved | undefined;
  /** Bytes and rows of the lines made so far, to size each batch's buffer once. */
  #madeBytes = 0;
  #madeRows = 0;

  constructor(builder: RequestBuilder) {
    this.#builder = builder;
    this.#template = compileLineTemplate(builder);
  }

  /** Requests for a batch of rows (a promise only when a mapper returned one). */
  make(rows: RowBatch): RequestBatch | Promise<RequestBatch> {
    return this.#template ? this.#render(rows, this.#template) : this.#build(rows);
  }

  #render(rows: RowBatch, template: LineTemplate): RequestBatch {
    const builder = this.#builder;
    const out = new RequestBatch();
    out.template = template;
    out.uniqueIds = builder.settings.idColumn === undefined;
    const perRow = this.#madeRows > 0 ? this.#madeBytes / this.#madeRows : FIRST_GUESS_BYTES_PER_ROW;
    const writer = new ByteWriter(Math.ceil(perRow * rows.length * HEADROOM), LINES_POOL);
    const resolved = this.#resolve(rows, template);
    const { pieces, slots } = template;
    const emptyCheck = builder.settings.endpoint === '/v1/embeddings' && builder.templateIsAllPlaceholders;
    const warnings = template.warnings;
    for (let i = 0; i < rows.length; i++) {
      const rejected = rows.rejection(i);
      if (rejected) {
        out.addRejection(rejected);
        continue;
      }
      const at: SourcePosition = { index: rows.index(i), file: rows.file(i), line: rows.line(i) };
      if (builder.atFirstRow) builder.checkFirst(rows.keys(i), (name) => has(rows, i, rows.ref(name)), at);
      const id = builder.customId(
        at.index,
        resolved.id === undefined ? undefined : rows.value(i, resolved.id),
      );
      const missing = resolved.prompt.find(([, ref]) => !has(rows, i, ref));
      if (missing) {
        out.addRejection(reject(at, id, builder.missingMessage(missing[0])));
        continue;
      }
      const start = writer.pos;
      for (let s = 0; s < slots.length; s++) {
        writer.writeBytes(pieces[s]!);
        const slot = slots[s]!;
        if (slot === ID_SLOT) writeId(writer, id);
        else {
          const ref = resolved.refs[slot];
          if (ref !== undefined) rows.writeJsonText(i, ref, writer);
        }
      }
      writer.writeBytes(pieces[slots.length]!);
      let emptyInput = false;
      if (emptyCheck)
        emptyInput = resolved.refs.every((ref) => ref === undefined || textIsEmpty(rows, i, ref));
      for (const w of warnings)
        builder.warnings.warn(w.code, w.message, {
          file: at.file,
          line: at.line,
          row: at.index,
          custom_id: id,
        });
      // Positions only: the buffer may still grow (and move) before the batch is done.
      out.addRendered(at, id, start, writer.pos, emptyInput);
    }
    out.data = writer.buffer;
    this.#madeBytes += writer.pos;
    this.#madeRows += rows.length;
    // Every line is in the request batch now: the rows' buffers are used again.
    rows.release();
    return out;
  }

  /** Resolves the template's columns for the batch's layout (once per layout). */
  #resolve(rows: RowBatch, template: LineTemplate): Resolved {
    if (this.#resolved?.layout === rows.layout) return this.#resolved;
    const refs = template.columns.map((name) => rows.ref(name));
    const idColumn = this.#builder.settings.idColumn;
    const prompt = this.#builder.promptColumns.map((name): [string, CellRef | undefined] => [
      name,
      rows.ref(name),
    ]);
    this.#resolved = {
      layout: rows.layout,
      refs,
      id: idColumn === undefined ? undefined : rows.ref(idColumn),
      prompt,
    };
    return this.#resolved;
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

function add(out: RequestBatch, built: RequestItem | Rejection): void {
  if (built.kind === 'rejection') out.addRejection(built);
  else out.addRequest(built, built.request);
}

function has(rows: RowBatch, i: number, ref: CellRef | undefined): boolean {
  return ref !== undefined && rows.has(i, ref);
}

function textIsEmpty(rows: RowBatch, i: number, ref: CellRef): boolean {
  const value = rows.value(i, ref);
  return value === undefined || value === null || value === '';
}

/** Plain ids (letters, digits, most punctuation) are written as they are; others JSON-escaped. */
function writeId(writer: ByteWriter, id: string): void {
  for (let k = 0; k < id.length; k++) {
    const c = id.charCodeAt(k);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) {
      writer.writeText(JSON.stringify(id).slice(1, -1));
      return;
    }
  }
  const buffer = writer.ensure(id.length);
  writer.pos += buffer.write(id, writer.pos, 'latin1');
}

function reject(at: SourcePosition, custom_id: string, message: string): Rejection {
  return { kind: 'rejection', ...at, custom_id, code: 'BP_TEMPLATE_MISSING_COLUMN', message };
}
