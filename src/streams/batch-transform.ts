import { Transform, type TransformCallback } from 'node:stream';
import { type BatchEmitter, type ItemBatch, kEmitBatches, takeBatches } from './batch-protocol.js';

/**
 * The Transform behind batchpipe's transforms: it takes batches from a batchpipe stage before it (or
 * single items from anything else, each as a batch of one), makes an output batch of each, and hands
 * that on whole to a batchpipe stage after it, or item by item to anything else. Work that goes to
 * another thread may run for `concurrency` batches at once; outputs still leave in input order.
 */
export abstract class BatchTransform<In, Out extends ItemBatch<unknown>>
  extends Transform
  implements BatchEmitter
{
  #batches = false;
  /** Outputs on their way, in input order. */
  readonly #pending: Array<Promise<Out>> = [];
  /** Called when there is room for another input. */
  #room: TransformCallback | undefined;
  /** The end of input came while outputs were on their way: called once the last is out. */
  #flushing: TransformCallback | undefined;

  constructor() {
    super({ objectMode: true, highWaterMark: 1 });
    takeBatches(this);
  }

  [kEmitBatches](): void {
    this.#batches = true;
  }

  /** Batches in work at once (1: one after another). */
  protected concurrency(): number {
    return 1;
  }

  /** An incoming chunk (a batch, or one item) as a batch. */
  protected abstract toBatch(chunk: unknown): In;

  /** The work: one output batch per input batch (a promise when it must wait). */
  protected abstract process(batch: In): Out | Promise<Out>;

  /** Entry `i` of an output batch as a single item. */
  protected itemOf(batch: Out, i: number): unknown {
    return batch.item(i);
  }

  override _transform(chunk: unknown, _encoding: BufferEncoding, done: TransformCallback): void {
    let out: Out | Promise<Out>;
    try {
      out = this.process(this.toBatch(chunk));
    } catch (error) {
      done(error as Error);
      return;
    }
    if (!(out instanceof Promise) && this.#pending.length === 0) {
      this.#emit(out);
      done();
      return;
    }
    const settled = out instanceof Promise ? out : Promise.resolve(out);
    // Handled in #next; this only keeps an early failure from counting as unhandled.
    settled.catch(() => undefined);
    this.#pending.push(settled);
    if (this.#pending.length === 1) this.#next();
    if (this.#pending.length < this.concurrency()) done();
    else this.#room = done;
  }

  /** Emits the oldest output once it is ready, then the next. */
  #next(): void {
    const head = this.#pending[0];
    if (!head) return;
    head.then(
      (batch) => {
        this.#pending.shift();
        this.#emit(batch);
        const room = this.#room;
        this.#room = undefined;
        room?.();
        if (this.#pending.length > 0) this.#next();
        else if (this.#flushing) {
          const flushing = this.#flushing;
          this.#flushing = undefined;
          this.finish(flushing);
        }
      },
      (error: unknown) => this.destroy(error as Error),
    );
  }

  override _flush(done: TransformCallback): void {
    if (this.#pending.length === 0) this.finish(done);
    else this.#flushing = done;
  }

  /** After the last output (a subclass lets go of what it holds). */
  protected finish(done: TransformCallback): void {
    done();
  }

  /**
   * Hands an output batch on before `process` returns its last one (in order: call it only from the
   * work on the current input, which is the only one in work with concurrency 1).
   */
  protected emitBatch(batch: Out): void {
    this.#emit(batch);
  }

  #emit(batch: Out): void {
    if (this.#batches) {
      if (batch.length > 0) this.push(batch);
    } else {
      for (let i = 0; i < batch.length; i++) this.push(this.itemOf(batch, i));
      // Its items are copies: what the batch holds can be used again.
      batch.release?.();
    }
  }
}
