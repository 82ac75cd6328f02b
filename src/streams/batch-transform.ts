import { Transform, type TransformCallback } from 'node:stream';
import { type BatchEmitter, type ItemBatch, kEmitBatches, takeBatches } from './batch-protocol.js';

/**
 * The Transform behind batchpipe's transforms: it takes batches from a batchpipe stage before it (or
 * single items from anything else, each as a batch of one), makes an output batch of each, and hands
 * that on whole to a batchpipe stage after it, or item by item to anything else.
 */
export abstract class BatchTransform<In, Out extends ItemBatch<unknown>>
  extends Transform
  implements BatchEmitter
{
  #batches = false;

  constructor() {
    super({ objectMode: true, highWaterMark: 1 });
    takeBatches(this);
  }

  [kEmitBatches](): void {
    this.#batches = true;
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
    if (out instanceof Promise) out.then((batch) => this.#emit(batch, done), done);
    else this.#emit(out, done);
  }

  #emit(batch: Out, done: TransformCallback): void {
    if (this.#batches) {
      if (batch.length > 0) this.push(batch);
    } else {
      for (let i = 0; i < batch.length; i++) this.push(this.itemOf(batch, i));
      // Its items are copies: what the batch holds can be used again.
      batch.release?.();
    }
    done();
  }
}
