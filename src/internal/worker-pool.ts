import { parentPort, type Worker, type WorkerOptions } from 'node:worker_threads';
import { BatchpipeError, type ErrorCode, type ErrorContext, errorData } from '../errors.js';
import { moduleWorker } from './module-worker.js';

/** A pool thread's answer to job `id`: its result, or the error it threw (as errorData makes it). */
export interface PoolReply<Result> {
  id: number;
  result?: Result;
  error?: { code: ErrorCode; message: string; context: ErrorContext };
}

/** What a pool thread is sent: job `id` and its input. */
export interface PoolJob<Input> {
  id: number;
  input: Input;
}

interface Waiting<Result> {
  resolve: (result: Result) => void;
  reject: (error: Error) => void;
}

interface Thread {
  worker: Worker;
  pending: number;
}

/**
 * Threads running one module (`name`, beside `callerUrl`) that each answer the jobs they are sent,
 * in order. A job goes to the thread with the least work; answers come back as they are done (the
 * caller keeps them in order). A thread that fails fails every job in work and every later one. The
 * threads do not keep the process alive while they wait for work.
 */
export class WorkerPool<Input, Result> {
  readonly #threads: Thread[] = [];
  readonly #waiting = new Map<number, Waiting<Result>>();
  readonly #what: string;
  #nextId = 1;
  #failure: Error | undefined;

  constructor(
    callerUrl: string,
    name: string,
    threads: number,
    options: Pick<WorkerOptions, 'workerData' | 'resourceLimits'>,
    what: string,
  ) {
    this.#what = what;
    for (let t = 0; t < threads; t++) this.#threads.push(this.#start(callerUrl, name, options));
  }

  /** Threads in the pool. */
  get size(): number {
    return this.#threads.length;
  }

  #start(callerUrl: string, name: string, options: WorkerOptions): Thread {
    const worker = moduleWorker(callerUrl, name, options);
    const thread: Thread = { worker, pending: 0 };
    worker.unref();
    worker.on('message', (reply: PoolReply<Result>) => {
      const waiting = this.#waiting.get(reply.id);
      if (!waiting) return;
      this.#waiting.delete(reply.id);
      if (--thread.pending === 0) worker.unref();
      if (reply.error)
        waiting.reject(new BatchpipeError(reply.error.code, reply.error.message, reply.error.context));
      else waiting.resolve(reply.result!);
    });
    const fail = (error: Error) => {
      this.#failure ??= error;
      for (const waiting of this.#waiting.values()) waiting.reject(error);
      this.#waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`${this.#what} thread stopped (exit code ${code})`)));
    return thread;
  }

  /** Sends `input` to a thread; resolves with its answer. */
  run(input: Input): Promise<Result> {
    if (this.#failure) return Promise.reject(this.#failure);
    const id = this.#nextId++;
    const thread = this.#threads.reduce((least, t) => (t.pending < least.pending ? t : least));
    return new Promise<Result>((resolve, reject) => {
      if (thread.pending++ === 0) thread.worker.ref();
      this.#waiting.set(id, { resolve, reject });
      thread.worker.postMessage({ id, input } satisfies PoolJob<Input>);
    });
  }

  /** Stops the threads. */
  async close(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}

/**
 * The thread side of a WorkerPool: answers each job with what `handle` makes of its input (or the
 * error it throws). Called once, by the module a pool runs.
 */
export function serveJobs<Input, Result>(handle: (input: Input) => Result | Promise<Result>): void {
  const port = parentPort!;
  port.on('message', ({ id, input }: PoolJob<Input>) => {
    const answer = (result: Result) => port.postMessage({ id, result } satisfies PoolReply<Result>);
    const fail = (error: unknown) =>
      port.postMessage({ id, error: errorData(error) } satisfies PoolReply<Result>);
    try {
      const result = handle(input);
      if (result instanceof Promise) result.then(answer, fail);
      else answer(result);
    } catch (error) {
      fail(error);
    }
  });
}
