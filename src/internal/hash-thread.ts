import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/**
 * The thread that hashes large files while the main thread makes them. sha256 of a million request
 * lines (880 MB) took 0.58 s of the main thread's 3.7 s in `prepare`; on a thread of its own it runs
 * beside the work that fills the next buffer. Bytes in shared memory are hashed where they are (the
 * writer waits for the thread's word before reusing them); others are copied into the message.
 * Written as a plain script so it runs the same from the build and from the sources.
 */
const SCRIPT = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (m) => {
  if (m.data) {
    let hash = hashes.get(m.id);
    if (!hash) hashes.set(m.id, (hash = createHash('sha256')));
    hash.update(m.data);
    if (m.ack) parentPort.postMessage({ id: m.id, ack: true });
  }
  if (m.digest) {
    const hash = hashes.get(m.id) || createHash('sha256');
    hashes.delete(m.id);
    parentPort.postMessage({ id: m.id, digest: hash.digest('hex') });
  }
});`;

interface Pending {
  /** Shared parts the thread has yet to hash, oldest first. */
  acks: Array<() => void>;
  digest?: (digest: string) => void;
  fail: Array<(error: Error) => void>;
}

interface HashThread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Calls awaiting an answer: the thread keeps the process alive only then. */
  waiting: number;
}

let thread: HashThread | undefined;
let nextId = 1;

function hashThread(): HashThread {
  if (thread) return thread;
  // Small heaps: the thread keeps nothing but hash states (the bytes it reads are shared).
  const worker = new Worker(SCRIPT, {
    eval: true,
    resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
  });
  const current: HashThread = { worker, pending: new Map(), waiting: 0 };
  const settled = () => {
    if (--current.waiting === 0) worker.unref();
  };
  worker.on('message', (m: { id: number; ack?: true; digest?: string }) => {
    const pending = current.pending.get(m.id);
    if (!pending) return;
    if (m.ack) {
      pending.fail.shift();
      pending.acks.shift()?.();
      settled();
    } else if (m.digest !== undefined) {
      current.pending.delete(m.id);
      pending.digest?.(m.digest);
      settled();
    }
  });
  const fail = (error: Error) => {
    if (thread === current) thread = undefined;
    for (const pending of current.pending.values()) for (const reject of pending.fail) reject(error);
    current.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', () => fail(new Error('the hashing thread stopped')));
  worker.unref();
  thread = current;
  return current;
}

/** Ties a call to an answer from the thread, keeping the process alive until it comes. */
function expect(current: HashThread): void {
  if (current.waiting++ === 0) current.worker.ref();
}

/**
 * An incremental sha256 that moves to the hashing thread once it is fed a large part (the first
 * part decides: a file flushed in full buffers is large), and stays on this thread for small ones,
 * where starting a thread would cost more than the hash.
 */
export class StreamHash {
  readonly #threadAbove: number;
  #local: Hash | undefined;
  #remote: number | undefined;
  /** The thread holding this hash's state. */
  #thread: HashThread | undefined;

  /** `threadAbove`: parts of at least this many bytes send the hash to the thread. */
  constructor(threadAbove: number) {
    this.#threadAbove = threadAbove;
  }

  /**
   * Hashes the bytes. Bytes in a SharedArrayBuffer are read by the thread where they are: the promise
   * says when they may be written again. Other bytes are copied before this returns.
   */
  update(data: Uint8Array): Promise<void> | undefined {
    this.#decide(data.length);
    if (this.#remote === undefined) {
      this.#local!.update(data);
      return undefined;
    }
    const current = this.#thread!;
    if (current !== thread) return Promise.reject(stopped());
    const pending = current.pending.get(this.#remote)!;
    if (!(data.buffer instanceof SharedArrayBuffer)) {
      current.worker.postMessage({ id: this.#remote, data });
      return undefined;
    }
    const done = new Promise<void>((resolve, reject) => {
      pending.acks.push(resolve);
      pending.fail.push(reject);
    });
    expect(current);
    current.worker.postMessage({ id: this.#remote, data, ack: true });
    return done;
  }

  /**
   * Says that at least `bytes` will be hashed: enough of them send the hash to the thread before its
   * first part, which may be small (a file that begins with the end of a batch, then takes whole
   * ones, was hashed on this thread to its end).
   */
  expect(bytes: number): void {
    if (bytes >= this.#threadAbove) this.#decide(bytes);
  }

  /** Where the hash is made, decided once: on the thread when its first part (or what is expected) is large. */
  #decide(bytes: number): void {
    if (this.#remote !== undefined || this.#local !== undefined) return;
    if (bytes >= this.#threadAbove) {
      this.#remote = nextId++;
      this.#thread = hashThread();
      this.#thread.pending.set(this.#remote, { acks: [], fail: [] });
    } else this.#local = createHash('sha256');
  }

  /** The hex digest of everything hashed. */
  digest(): Promise<string> {
    if (this.#remote === undefined)
      return Promise.resolve((this.#local ?? createHash('sha256')).digest('hex'));
    const current = this.#thread!;
    // A thread that stopped took this hash's state with it.
    if (current !== thread) return Promise.reject(stopped());
    const pending = current.pending.get(this.#remote)!;
    const digest = new Promise<string>((resolve, reject) => {
      pending.digest = resolve;
      pending.fail.push(reject);
    });
    expect(current);
    current.worker.postMessage({ id: this.#remote, digest: true });
    return digest;
  }
}

function stopped(): Error {
  return new Error('the hashing thread stopped');
}
