import type { RequestBatch } from '../core/requests/request-batch.js';
import { RequestBuilder } from '../core/requests/request-builder.js';
import { RequestMaker } from '../core/requests/request-maker.js';
import type { ToRequestsOptions } from '../core/requests/request-options.js';
import { ObjectRowBatch } from '../core/rows/object-row-batch.js';
import { isRowBatch, type RowBatch } from '../core/rows/row-batch.js';
import type { WarningLog } from '../internal/warnings.js';
import { BatchTransform } from '../streams/batch-transform.js';
import type { Rejection, Row } from '../types.js';

export type { Mapper, MapperBody, ToRequestsOptions } from '../core/requests/request-options.js';

/** The Transform `toRequests` returns; `warnings` lists what it warned about, with counts. */
export interface ToRequestsStream extends BatchTransform<RowBatch, RequestBatch> {
  readonly warnings: WarningLog;
}

/**
 * Row -> request line `{custom_id, method: "POST", url, body}`, one per row, from a template over the
 * row's columns or from a mapper. Rejections from the source pass through. Run-level mistakes throw
 * at the first row (a column the template names is missing there, the mapper fails there); later rows
 * that lack a column or make the mapper throw become rejections, so one odd row never stops a run.
 * Takes Rows (or batches of them from a batchpipe source) and emits RequestItems (or, to batchpipe's
 * own stages, batches of lines already serialized: a template's lines are its bytes with each row's
 * cells escaped into place, never an object).
 */
export function toRequests(options: ToRequestsOptions): ToRequestsStream {
  return new ToRequests(RequestBuilder.create(options));
}

class ToRequests extends BatchTransform<RowBatch, RequestBatch> implements ToRequestsStream {
  readonly warnings: WarningLog;
  readonly #maker: RequestMaker;

  constructor(builder: RequestBuilder) {
    super();
    this.warnings = builder.warnings;
    this.#maker = new RequestMaker(builder);
  }

  protected toBatch(chunk: unknown): RowBatch {
    return isRowBatch(chunk) ? chunk : new ObjectRowBatch([chunk as Row | Rejection]);
  }

  protected process(rows: RowBatch): RequestBatch | Promise<RequestBatch> {
    return this.#maker.make(rows);
  }

  protected override concurrency(): number {
    return this.#maker.concurrency;
  }

  protected override finish(done: (error?: Error | null) => void): void {
    this.#maker.close().then(() => done(), done);
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    this.#maker.close().then(
      () => done(error),
      () => done(error),
    );
  }
}
