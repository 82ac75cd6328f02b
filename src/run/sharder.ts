import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type RequestReuse, type ReuseSummary, SEND_KEYED, TAKEN } from '../cache/request-reuse.js';
import { embeddingInputCount } from '../core/requests/embedding-inputs.js';
import type { RequestBatch } from '../core/requests/request-batch.js';
import { hashedColumns, type RowHashesHeader, writeRowHashLine } from '../core/requests/row-hash.js';
import type { Slice } from '../core/rows/row-slice.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { ByteWriter } from '../internal/byte-writer.js';
import { makeDir } from '../internal/durable-write.js';
import { settledAll } from '../internal/settled-all.js';
import type { FileLimits } from '../providers/profile.js';
import type { Rejection, RequestItem, SourcePosition } from '../types.js';

/** One request file, as later stages record it in a run manifest. */
export interface ShardSummary {
  /** File name inside the output directory. */
  file: string;
  model: string;
  endpoint: string;
  lines: number;
  bytes: number;
  sha256: string;
  /** Source row numbers of the first and last request in the file. */
  first_row: number;
  last_row: number;
  /**
   * Holds only requests the result cache and deduplication apply to (which of them are sent depends on
   * the cache): a run's identity takes these files' requests from `reuse.digest` instead.
   */
  keyed?: true;
}

/** What `shardRequests` wrote, also saved as `shards.json` in the output directory. */
export interface PreparedSummary {
  version: 1;
  /** Rows seen: requests + rejected. */
  rows: number;
  requests: number;
  rejected: number;
  shards: ShardSummary[];
  rejections: { file: string; count: number; by_code: Record<string, number> };
  /** The slice of the table these requests are of (absent: the whole table). */
  slice?: Slice;
  /** With deduplication or the result cache on: what they saved (rows = requests + rejected + duplicates + cached). */
  reuse?: ReuseSummary;
}

export const SUMMARY_FILE = 'shards.json';
export const REJECTIONS_FILE = 'rejections.jsonl';
/**
 * Beside the request files of a template's requests: a header naming the columns hashed, then each
 * request's row hash (`"custom_id"\t<hash>` a line), what the join checks rows against.
 */
export const ROW_HASHES_FILE = 'row-hashes.tsv';

/**
 * Full files closing at once, at most: each holds its two write buffers until its data is on disk, and
 * waiting for each in turn left the run idle while it synced (a fifth of `prepare`'s time at a
 * million rows).
 */
const MAX_CLOSING = 2;

interface OpenShard {
  /** Its place in the open files: the model, and whether it holds keyed requests. */
  slot: string;
  summary: ShardSummary;
  file: BufferedFile;
  /** Embedding inputs in the file (what `maxEmbeddingInputsPerFile` counts; a line may hold many). */
  inputs: number;
}

/**
 * Cuts request lines into files within the provider's per-file limits (lines and bytes), one model per
 * file, named `<prefix>-00001.jsonl` in order of creation, so the same input gives the same files;
 * rejections go to `rejections.jsonl`. The engine behind `shardRequests` and the batch sink. Every
 * method returns a promise only when the caller must wait (a full write buffer) before adding more.
 */
export class Sharder {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #limits: FileLimits;
  readonly #reuse: RequestReuse | undefined;
  /** What reuse decided for each line of the batch being added. */
  #verdicts = new Uint8Array(0);
  readonly #open = new Map<string, OpenShard>();
  readonly #done: ShardSummary[] = [];
  readonly #byCode: Record<string, number> = {};
  readonly #closing = new Set<Promise<void>>();
  #closeFailure: unknown;
  #ready: Promise<string[]> | undefined;
  #rejections: BufferedFile | undefined;
  #rowHashes: BufferedFile | undefined;
  /** A batch's lines of `row-hashes.tsv`, as bytes. */
  readonly #rowHashLines = new ByteWriter(64 * 1024);
  #rejected = 0;
  #requests = 0;

  /** Rows handled so far (requests and rejections), for progress. */
  get rows(): number {
    return this.#requests + this.#rejected;
  }
  #count = 0;
  #finished = false;
  readonly #slice: Slice | undefined;

  /** `reuse`: requests answered by the cache or by an identical request of the run are not written. */
  constructor(dir: string, prefix: string, limits: FileLimits, slice?: Slice, reuse?: RequestReuse) {
    this.#dir = dir;
    this.#prefix = prefix;
    this.#limits = limits;
    this.#slice = slice;
    this.#reuse = reuse;
  }

  /** Adds every entry of a batch, in order. */
  addBatch(batch: RequestBatch): Promise<void> | undefined {
    this.#reuse?.follow(batch);
    const hashing = this.#addRowHashes(batch);
    return hashing ? hashing.then(() => this.#addFrom(batch, 0)) : this.#addFrom(batch, 0);
  }

  /**
   * A template's batch: each request's row hash into `row-hashes.tsv`, what the join checks rows
   * against (a result answers the row only while its cells are the ones its request was made from).
   */
  #addRowHashes(batch: RequestBatch): Promise<void> | undefined {
    const hashes = batch.rowHashes;
    const template = batch.template;
    if (!hashes || !template) return undefined;
    if (!this.#ready) return this.#startThen(() => this.#addRowHashes(batch));
    // Reused: the file has copied (or written) the last batch's lines before the next batch comes.
    const out = this.#rowHashLines;
    out.pos = 0;
    if (!this.#rowHashes) {
      this.#rowHashes = new BufferedFile(join(this.#dir, ROW_HASHES_FILE));
      out.writeText(
        `${JSON.stringify({ row_hashes: 1, columns: hashedColumns(template) } satisfies RowHashesHeader)}\n`,
      );
    }
    for (let i = 0; i < batch.length; i++)
      if (!batch.rejection(i) && batch.rendered(i))
        writeRowHashLine(out, batch.madeId(i), batch.index(i), hashes[i]!);
    return this.#rowHashes.appendBytes(out.buffer, 0, out.pos);
  }

  #addFrom(batch: RequestBatch, from: number): Promise<void> | undefined {
    for (let i = from; i < batch.length; i++) {
      let waiting: Promise<void> | undefined;
      const rejected = batch.rejection(i);
      if (rejected) {
        this.#reuse?.rejected(batch, i);
        waiting = this.reject(rejected);
      } else if (this.#reuse && batch.rendered(i)) {
        const done = this.#addReused(batch, i);
        if (typeof done === 'number') {
          i = done - 1;
          continue;
        }
        return done.then((next) => this.#addFrom(batch, next));
      } else if (batch.rendered(i)) {
        // Lines rendered back to back for one model go into their file with one copy.
        const model = batch.model(i);
        let to = i + 1;
        while (
          to < batch.length &&
          !batch.rejection(to) &&
          batch.rendered(to) &&
          batch.start(to) === batch.end(to - 1) &&
          batch.model(to) === model
        )
          to++;
        const done = this.#addRun(batch, i, to);
        if (typeof done === 'number') {
          i = done - 1;
          continue;
        }
        return done.then((next) => this.#addFrom(batch, next));
      } else {
        const text = batch.text(i);
        const url = batch.url(i);
        waiting = this.#addText(
          batch.model(i),
          url,
          batch.position(i),
          batch.id(i),
          text,
          Buffer.byteLength(text),
          url === '/v1/embeddings' ? embeddingInputCount(batch.request(i).body.input) : 1,
        );
      }
      if (waiting) return waiting.then(() => this.#addFrom(batch, i + 1));
    }
    // Every line is copied into its file (or written): the batch's buffer is used again.
    batch.release();
    return undefined;
  }

  /**
   * Decides rendered lines from `from` on with the reuse rule (until a rejected or unrendered line, or
   * until a record write must wait), then appends the lines sent in runs, as #addRun does: a line a
   * call cost more than the keys themselves. Returns where it got to, or a promise of it.
   */
  #addReused(batch: RequestBatch, from: number): number | Promise<number> {
    const reuse = this.#reuse!;
    if (this.#verdicts.length < batch.length) this.#verdicts = new Uint8Array(batch.length);
    const verdicts = this.#verdicts;
    const to = reuse.takeBatch(batch, from, verdicts);
    const taking = reuse.waiting();
    const sent = this.#addSent(batch, verdicts, from, to);
    if (typeof sent === 'number') return taking ? taking.then(() => to) : to;
    return taking ? Promise.all([sent, taking]).then(() => to) : sent;
  }

  /** Appends the lines of `from`..`to` their verdicts send, runs of one kind back to back at a time. */
  #addSent(batch: RequestBatch, verdicts: Uint8Array, from: number, to: number): number | Promise<number> {
    let k = from;
    while (k < to) {
      const verdict = verdicts[k]!;
      if (verdict === TAKEN) {
        k++;
        continue;
      }
      const model = batch.model(k);
      let m = k + 1;
      while (
        m < to &&
        verdicts[m] === verdict &&
        batch.start(m) === batch.end(m - 1) &&
        batch.model(m) === model
      )
        m++;
      const done = this.#addRun(batch, k, m, verdict === SEND_KEYED);
      // The verdicts stay put while waiting: the next batch comes only once this one is added.
      if (typeof done !== 'number') return done.then((next) => this.#addSent(batch, verdicts, next, to));
      k = m;
    }
    return to;
  }

  /**
   * Adds rendered lines `from`..`to` of a batch, back to back in its data, as few copies as the file
   * limits allow. Returns where it got to, or a promise of it when it must wait (a full buffer, a file
   * closing, the directory being made).
   */
  #addRun(batch: RequestBatch, from: number, to: number, keyed = false): number | Promise<number> {
    if (!this.#ready)
      return this.#startThen(() => undefined).then(() => this.#addRun(batch, from, to, keyed));
    const limits = this.#limits;
    const data = batch.data!;
    const model = batch.model(from);
    const url = batch.url(from);
    let k = from;
    while (k < to) {
      const bytes = batch.end(k) - batch.start(k);
      if (bytes > limits.maxBytesPerFile) {
        const waiting = this.#tooLarge(batch.position(k), batch.id(k), bytes);
        k++;
        if (waiting) return waiting.then(() => k);
        continue;
      }
      // A rendered line holds one input (a template makes one text per row).
      const file = this.#fileFor(model, url, batch.index(k), bytes, 1, keyed);
      const shard = this.#open.get(slotOf(model, keyed))!;
      const maxInputs = this.#maxInputs(url);
      // As many more lines as the file takes.
      let size = bytes;
      let m = k + 1;
      while (m < to && shard.summary.lines < limits.maxLinesPerFile && shard.inputs < maxInputs) {
        const next = batch.end(m) - batch.start(m);
        if (file.bytes + size + next > limits.maxBytesPerFile) break;
        size += next;
        shard.inputs++;
        shard.summary.lines++;
        shard.summary.last_row = batch.index(m);
        this.#requests++;
        m++;
      }
      const waiting = this.#afterClose(file.appendBytes(data, batch.start(k), batch.end(m - 1)));
      k = m;
      if (waiting) return waiting.then(() => k);
    }
    return k;
  }

  /** Adds a request line or a rejection (one stream item). */
  add(item: RequestItem | Rejection): Promise<void> | undefined {
    if (item.kind === 'rejection') return this.reject(item);
    const text = item.text ?? JSON.stringify(item.request);
    const bytes = item.bytes ?? Buffer.byteLength(text);
    const request = item.request;
    return this.#addText(
      String(request.body.model),
      request.url,
      item,
      request.custom_id,
      text,
      bytes,
      request.url === '/v1/embeddings' ? embeddingInputCount(request.body.input) : 1,
    );
  }

  #addText(
    model: string,
    url: string,
    at: SourcePosition,
    custom_id: string,
    text: string,
    bytes: number,
    inputs = 1,
  ): Promise<void> | undefined {
    if (!this.#ready)
      return this.#startThen(() => this.#addText(model, url, at, custom_id, text, bytes, inputs));
    let keyed = false;
    let taking: Promise<void> | undefined;
    if (this.#reuse) {
      const verdict = this.#reuse.take(Buffer.from(text), 0, bytes, custom_id);
      taking = this.#reuse.waiting();
      if (verdict === TAKEN) return taking;
      keyed = verdict === SEND_KEYED;
    }
    if (bytes + 1 > this.#limits.maxBytesPerFile) return this.#tooLarge(at, custom_id, bytes + 1);
    const writing = this.#afterClose(
      this.#fileFor(model, url, at.index, bytes + 1, inputs, keyed).append(`${text}\n`, bytes + 1),
    );
    return taking && writing ? Promise.all([taking, writing]).then(() => undefined) : (taking ?? writing);
  }

  /** The most embedding inputs a file of `url` may hold (OpenAI: 50,000 a batch); unlimited otherwise. */
  #maxInputs(url: string): number {
    const max = this.#limits.maxEmbeddingInputsPerFile;
    return url === '/v1/embeddings' && max !== undefined ? max : Number.POSITIVE_INFINITY;
  }

  /**
   * Adds a request line already serialized as bytes: `data[start, end)`, newline included, left
   * untouched until written.
   */
  addBytes(
    model: string,
    url: string,
    at: SourcePosition,
    custom_id: string,
    data: Buffer,
    start: number,
    end: number,
    inputs = 1,
  ): Promise<void> | undefined {
    if (!this.#ready)
      return this.#startThen(() => this.addBytes(model, url, at, custom_id, data, start, end, inputs));
    const bytes = end - start;
    let keyed = false;
    let taking: Promise<void> | undefined;
    if (this.#reuse) {
      const verdict = this.#reuse.take(data, start, end, custom_id);
      taking = this.#reuse.waiting();
      if (verdict === TAKEN) return taking;
      keyed = verdict === SEND_KEYED;
    }
    if (bytes > this.#limits.maxBytesPerFile) return this.#tooLarge(at, custom_id, bytes);
    const writing = this.#afterClose(
      this.#fileFor(model, url, at.index, bytes, inputs, keyed).appendBytes(data, start, end),
    );
    return taking && writing ? Promise.all([taking, writing]).then(() => undefined) : (taking ?? writing);
  }

  #startThen(next: () => Promise<void> | undefined): Promise<void> {
    this.#ready = this.#start();
    return this.#ready.then(next);
  }

  #tooLarge(at: SourcePosition, custom_id: string, bytes: number): Promise<void> | undefined {
    return this.reject({
      kind: 'rejection',
      index: at.index,
      file: at.file,
      line: at.line,
      custom_id,
      code: 'BP_LINE_TOO_LARGE',
      message: `line is ${bytes - 1} bytes, more than a whole file may hold (${this.#limits.maxBytesPerFile})`,
    });
  }

  /**
   * The file a line of `bytes` goes to: the model's open file, or a new one when it is full (the full
   * one starts closing in the background). Counts the line.
   */
  #fileFor(
    model: string,
    url: string,
    row: number,
    bytes: number,
    inputs: number,
    keyed = false,
  ): BufferedFile {
    const slot = slotOf(model, keyed);
    let shard = this.#open.get(slot);
    if (
      shard &&
      (shard.summary.lines >= this.#limits.maxLinesPerFile ||
        shard.file.bytes + bytes > this.#limits.maxBytesPerFile ||
        shard.inputs + inputs > this.#maxInputs(url))
    ) {
      this.#startClose(shard);
      shard = undefined;
    }
    if (!shard) {
      shard = this.#create(model, url, row, slot);
      if (keyed) shard.summary.keyed = true;
      this.#open.set(slot, shard);
    }
    shard.summary.lines++;
    shard.summary.last_row = row;
    shard.inputs += inputs;
    this.#requests++;
    return shard.file;
  }

  #startClose(shard: OpenShard): void {
    const closing = this.#close(shard).catch((error: unknown) => {
      this.#closeFailure ??= error;
    });
    this.#closing.add(closing);
    void closing.then(() => this.#closing.delete(closing));
  }

  /** A write's wait, joined with room among the closing files (a file that failed to close stops the run). */
  #afterClose(writing: Promise<void> | undefined): Promise<void> | undefined {
    if (this.#closeFailure !== undefined) return Promise.reject(this.#closeFailure);
    if (this.#closing.size < MAX_CLOSING) return writing;
    const room = Promise.race(this.#closing).then(() => {
      if (this.#closeFailure !== undefined) throw this.#closeFailure;
    });
    return writing ? Promise.all([room, writing]).then(() => undefined) : room;
  }

  #create(model: string, url: string, row: number, slot: string): OpenShard {
    const name = `${this.#prefix}-${String(++this.#count).padStart(5, '0')}.jsonl`;
    return {
      slot,
      file: new BufferedFile(join(this.#dir, name), { hash: true }),
      inputs: 0,
      summary: {
        file: name,
        model,
        endpoint: url,
        lines: 0,
        bytes: 0,
        sha256: '',
        first_row: row,
        last_row: row,
      },
    };
  }

  async #close(shard: OpenShard): Promise<void> {
    this.#open.delete(shard.slot);
    shard.summary.bytes = shard.file.bytes;
    shard.summary.sha256 = await shard.file.close();
    this.#done.push(shard.summary);
  }

  /** Records a rejected row in rejections.jsonl. */
  reject(rejection: Rejection): Promise<void> | undefined {
    if (!this.#ready) return this.#startThen(() => this.reject(rejection));
    this.#rejected++;
    this.#byCode[rejection.code] = (this.#byCode[rejection.code] ?? 0) + 1;
    this.#rejections ??= new BufferedFile(join(this.#dir, REJECTIONS_FILE));
    const { kind: _kind, index, ...rest } = rejection;
    const text = `${JSON.stringify({ row: index, ...rest })}\n`;
    return this.#rejections.append(text, Buffer.byteLength(text));
  }

  /** Creates the directory and reads what an earlier run listed (to clean up after it). */
  async #start(): Promise<string[]> {
    await makeDir(this.#dir);
    try {
      const earlier = JSON.parse(await readFile(join(this.#dir, SUMMARY_FILE), 'utf8')) as PreparedSummary;
      return earlier.shards.map((s) => s.file);
    } catch {
      return [];
    }
  }

  async finish(): Promise<PreparedSummary> {
    this.#ready ??= this.#start();
    const earlier = await this.#ready;
    for (const shard of [...this.#open.values()]) this.#startClose(shard);
    await Promise.all(this.#closing);
    if (this.#closeFailure !== undefined) throw this.#closeFailure;
    this.#rejections ??= new BufferedFile(join(this.#dir, REJECTIONS_FILE));
    // The shards first: on a full disk they are what does not fit, and no other file of this run
    // has replaced an earlier one yet. Then the rest together, not one after another (their syncs'
    // waits added up), every close let finish before a failure is thrown (abort() must not discard a
    // file mid-close), all before shards.json, which says they are whole.
    const [, , reuse] = await settledAll([
      this.#rejections.close(),
      // Row hashes of an earlier prepare here must not stand for these requests.
      this.#rowHashes ? this.#rowHashes.close() : rm(join(this.#dir, ROW_HASHES_FILE), { force: true }),
      this.#reuse?.finish(),
    ] as const);
    this.#done.sort((a, b) => a.file.localeCompare(b.file));
    const summary: PreparedSummary = {
      version: 1,
      rows: this.#requests + this.#rejected + (reuse ? reuse.duplicates + reuse.cached : 0),
      requests: this.#requests,
      rejected: this.#rejected,
      shards: this.#done,
      rejections: { file: REJECTIONS_FILE, count: this.#rejected, by_code: this.#byCode },
      ...(this.#slice && { slice: this.#slice }),
      ...(reuse && { reuse }),
    };
    const kept = new Set(this.#done.map((s) => s.file));
    for (const file of earlier) if (!kept.has(file)) await rm(join(this.#dir, file), { force: true });
    const summaryFile = new BufferedFile(join(this.#dir, SUMMARY_FILE));
    const text = `${JSON.stringify(summary, null, 2)}\n`;
    await summaryFile.append(text, Buffer.byteLength(text));
    await summaryFile.close();
    this.#finished = true;
    return summary;
  }

  /**
   * Stops after a failure (a full disk, an upstream error): no file of this run is left, not even the
   * shards that were already whole. An earlier run's `shards.json` goes too once a shard of this run
   * replaced one of its files (it would list what is no longer there); until then its directory is
   * left as it was.
   */
  async abort(): Promise<void> {
    // After a finish that succeeded (a stream is destroyed once it has finished): nothing to undo.
    if (this.#finished) return;
    await Promise.all(this.#closing);
    for (const shard of this.#open.values()) await shard.file.discard();
    this.#open.clear();
    await this.#rejections?.discard();
    await this.#rowHashes?.discard();
    await this.#reuse?.abort();
    if (!this.#ready) return;
    await this.#ready.catch(() => undefined);
    if (this.#done.length === 0) return;
    for (const shard of this.#done) await rm(join(this.#dir, shard.file), { force: true }).catch(() => {});
    await rm(join(this.#dir, SUMMARY_FILE), { force: true }).catch(() => {});
  }
}

/** The open-files slot of a model's requests: keyed ones apart, so the other files never depend on the cache. */
function slotOf(model: string, keyed: boolean): string {
  return keyed ? `${model}\u0000keyed` : model;
}
