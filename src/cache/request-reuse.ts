import { join } from 'node:path';
import { customIdFor } from '../core/requests/custom-id.js';
import { UNDECIDED, writeKeyHex } from '../core/requests/key-records.js';
import { KEY_NEW, KEY_NONE, KEY_REPEAT, KEY_UNKEPT, KeySet } from '../core/requests/key-set.js';
import type { RequestBatch } from '../core/requests/request-batch.js';
import { isSameDraw, KEY_BYTES, requestKey } from '../core/requests/request-key.js';
import { writeRowIdBytes } from '../core/requests/row-hash.js';
import { BatchpipeError } from '../errors.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { StreamHash } from '../internal/hash-thread.js';
import { MAX_ESCAPE_GROWTH, writeJsonId } from '../internal/json-bytes.js';
import { settledAll } from '../internal/settled-all.js';
import { withCustomId } from './custom-id-line.js';
import type { CacheHit, ResultCache } from './result-cache.js';

/** Per keyed request: its custom_id (JSON), its key, and what became of it (`s`ent, `d`uplicate, `c`ached). */
export const REQUEST_KEYS_FILE = 'request-keys.tsv';
/** Cached answers, each under the custom_id of the row that asked. */
export const CACHED_FILE = 'cached.jsonl';
/** The request lines not sent (duplicates, cached), for re-asking their rows. */
export const REUSED_REQUESTS_FILE = 'reused.requests.jsonl';

/**
 * When identical requests are sent once: `auto` when a repeat would be the same draw (the body sets
 * `temperature: 0` or a `seed`), `on` always, `off` never.
 */
export type DedupMode = 'auto' | 'on' | 'off';

export interface ReuseSettings {
  dedup: DedupMode;
  /** Answers of earlier runs, looked up under the same rule; undefined: no cache. */
  cache: ResultCache | undefined;
  /** About how many requests will come (the table's estimated rows): the key table starts that large. */
  expectedKeys?: number | undefined;
}

/** What reuse did, in `shards.json` (`reuse`). */
export interface ReuseSummary {
  dedup: DedupMode;
  cache: boolean;
  /** Requests the rule applied to (keyed). */
  keyed: number;
  /** Keyed requests sent (in the request files). */
  sent: number;
  /** Rows not sent because an identical request of this run was: answered from it after the run. */
  duplicates: number;
  /** Rows answered from the cache (in cached.jsonl). */
  cached: number;
  /** Keyed requests past the key table's bound, sent without being remembered. */
  unkept: number;
  /**
   * Hash of every keyed request's id and key, in order: the run's identity with its unkeyed files.
   * SHA-256 of request-keys.tsv with each record's kind read as `*` (what became of a request depends
   * on the cache; the run does not).
   */
  digest: string;
}

/** What to do with a line. */
export const SEND = 0;
export const SEND_KEYED = 1;
export const TAKEN = 2;
export type Verdict = typeof SEND | typeof SEND_KEYED | typeof TAKEN;

/**
 * Decides, request by request as the sharder meets them, which are sent: a keyed request (see
 * DedupMode) answered by the cache goes to cached.jsonl with its own id, one identical to a request
 * already sent in this run is recorded as its duplicate; the rest are sent. Every keyed request gets a
 * line in request-keys.tsv, what the run reads after it ended to fill the cache and fan answers out.
 * Memory: the key table (KeySet, bounded) and the cache's indexes.
 */
export class RequestReuse {
  readonly #dir: string;
  readonly #settings: ReuseSettings;
  /** Deduplication is on: a request identical to one sent is not sent again. */
  readonly #dedups: boolean;
  /** The keys of this run's requests, when no stage marked them (made when first needed). */
  #seen: KeySet | undefined;
  /**
   * Batches whose repeats a stage marked (RequestBatch.keySeen): their stream, and the place the
   * next must have in it (a mark is only true of the lines before it, every one of them here).
   */
  #markedStream: object | undefined;
  #nextMarked = 0;
  /**
   * Keys of lines marked new that were rejected after they were marked (validation): a later line
   * marked a repeat of one may be the first sent. Those first sent after such a rejection.
   */
  #rejectedNew: KeySet | undefined;
  #sentAfterRejected: KeySet | undefined;
  /**
   * SHA-256 on the hashing thread once the records are many (~20 ms of the main thread at a million
   * rows): a batch's records are read where they are, in shared memory, and their kinds set after.
   */
  readonly #digest = new StreamHash(RECORDS_BLOCK);
  readonly #templates = new WeakMap<object, boolean>();
  /** Where the kinds of the records gathered are: the digest reads the block with each one as `*`. */
  #kindsAt = new Int32Array(RECORDS_BLOCK / 4);
  #kinds = 0;
  /**
   * request-keys.tsv records gathered before one append: an append a record (a call and a copy of
   * ~50 bytes) cost more than making the record.
   */
  #records = Buffer.allocUnsafe(RECORDS_BLOCK);
  /** Cached answers found and not yet read, with the ids of the rows they answer. */
  #hits: CacheHit[] = [];
  #hitIds: string[] = [];
  #recordsPos = 0;
  /** The kinds flushRecords sets aside while the digest reads the block. */
  #savedKinds = new Uint8Array(0);
  #keys: BufferedFile | undefined;
  #cached: BufferedFile | undefined;
  #reused: BufferedFile | undefined;
  #waiting: Array<Promise<void>> = [];
  /**
   * Appends to request-keys.tsv under way, oldest first, each started once the one before it ended:
   * the sharder goes on while they run (see #appendRecords).
   */
  #recordWrites: Array<Promise<void>> = [];
  /** The first of them that failed: thrown by `waiting`, so the run stops at its next batch. */
  #recordsFailure: { error: unknown } | undefined;
  readonly #counts = { keyed: 0, sent: 0, duplicates: 0, cached: 0, unkept: 0 };

  constructor(dir: string, settings: ReuseSettings) {
    this.#dir = dir;
    this.#settings = settings;
    this.#dedups = settings.dedup !== 'off';
    // A large table's records are digested on the hashing thread from the first (a first batch's
    // may be smaller than the part that decides).
    this.#digest.expect((settings.expectedKeys ?? 0) * RECORD_BYTES_ABOUT);
  }

  /**
   * Decides the request `line[start, end)` (newline included or not) of row `id` (a number: the id is
   * `row-<id>`, written as digits without making the string, as the renderer wrote it). `template`: the line
   * was rendered from it, whose fixed parts hold every body parameter (a row's cells are escaped
   * strings in its slots), so whether its lines are same draws is read from its first line only.
   * `made[madeAt, madeAt + 16)`: the key made where the line was rendered (a batch's keys in one array),
   * `mark` what the table there said of it (RequestBatch.keySeen).
   */
  take(
    line: Buffer,
    start: number,
    end: number,
    id: string | number,
    template?: object,
    made?: Uint8Array,
    madeAt = 0,
    mark: number = KEY_NONE,
  ): Verdict {
    // A key made where the line was rendered says the rule applies (requestKeys, under the same mode).
    if (!made && this.#settings.dedup !== 'on' && !this.#sameDraw(line, start, end, template)) return SEND;
    const key = made ?? requestKey(line, start, end);
    const at = made ? madeAt : 0;
    const named = this.#named(id, key, at);
    const kind = this.#decide(key, at, id, line, start, end, made ? mark : KEY_NONE);
    // The record: the id and key written by #named, then what became of the request.
    const records = this.#records;
    records[named] = kind;
    records[named + 1] = LF;
    if (this.#kinds === this.#kindsAt.length) {
      const more = new Int32Array(this.#kindsAt.length * 2);
      more.set(this.#kindsAt);
      this.#kindsAt = more;
    }
    this.#kindsAt[this.#kinds++] = named;
    this.#recordsPos = named + 2;
    return kind === KIND_BYTES.s ? SEND_KEYED : TAKEN;
  }

  /**
   * What becomes of the keyed request `line[start, end)` of row `id` (see `take`), its key at
   * `key[at, at + 16)`, as its record's kind: cached (its answer read with the next hits), a
   * duplicate of one sent earlier, or sent. A request not sent is set aside (reused.requests.jsonl).
   */
  #decide(
    key: Uint8Array,
    at: number,
    id: string | number,
    line: Buffer,
    start: number,
    end: number,
    mark: number = KEY_NONE,
  ): number {
    const counts = this.#counts;
    counts.keyed++;
    let kind: number = KIND_BYTES.s;
    const hit = this.#settings.cache?.locate(key, at);
    if (hit) {
      kind = KIND_BYTES.c;
      counts.cached++;
      // Read and written with the next ones (see ResultCache.readAll).
      this.#hits.push(hit);
      this.#hitIds.push(typeof id === 'number' ? customIdFor(id) : id);
      if (this.#hits.length >= HITS_READ_TOGETHER) this.#writeCached();
    } else if (this.#dedups) {
      const added = mark === KEY_NONE ? this.#table().add(key, at) : this.#marked(mark, key, at);
      if (added === 'present') {
        kind = KIND_BYTES.d;
        counts.duplicates++;
      } else if (added === 'full') counts.unkept++;
    }
    if (kind === KIND_BYTES.s) counts.sent++;
    else this.#setAside(line, start, end);
    return kind;
  }

  /**
   * Decides a batch's rendered lines from `from` on, as `take` each (until a rejected or unrendered
   * entry, or until a write must wait: see `waiting`), each verdict into `verdicts[i]`; returns where
   * it got to. A batch rendered with its key records (RequestBatch.keyRecordAt) has each line's
   * record made already, after its lines, but for its kind: here a line costs the lookup, the key
   * table and a byte.
   */
  takeBatch(batch: RequestBatch, from: number, verdicts: Uint8Array): number {
    const keys = batch.requestKeys;
    const recordAt = batch.keyRecordAt;
    const data = batch.data!;
    const n = batch.length;
    // Marked where rendered, or looked up in the table here (its places read first).
    const seen = keys ? batch.keySeen : undefined;
    if (keys && !seen) this.prefetch(keys, from, n);
    let to = from;
    if (!keys || !recordAt) {
      while (to < n && !batch.rejection(to) && batch.rendered(to)) {
        const id = batch.madeId(to) ?? batch.index(to);
        verdicts[to] = this.take(
          data,
          batch.start(to),
          batch.end(to),
          id,
          batch.template,
          keys,
          to * KEY_BYTES,
          seen ? seen[to] : KEY_NONE,
        );
        to++;
        if (this.#waiting.length > 0) break;
      }
      return to;
    }
    // Records gathered one by one go first (request-keys.tsv takes one append at a time).
    if (this.#recordsPos > 0) {
      this.#flushRecords();
      if (this.#waiting.length > 0) return from;
    }
    if (this.#batchKinds.length < n)
      this.#batchKinds = new Uint8Array(Math.max(n, this.#batchKinds.length * 2));
    const kinds = this.#batchKinds;
    while (to < n && !batch.rejection(to) && batch.rendered(to)) {
      const kind = this.#decide(
        keys,
        to * KEY_BYTES,
        batch.madeId(to) ?? batch.index(to),
        data,
        batch.start(to),
        batch.end(to),
        seen ? seen[to]! : KEY_NONE,
      );
      kinds[to] = kind;
      verdicts[to] = kind === KIND_BYTES.s ? SEND_KEYED : TAKEN;
      to++;
      if (this.#waiting.length > 0) break;
    }
    if (to === from) return to;
    // The digest reads the records with their kinds undecided (`*`), as they came (on the hashing
    // thread, where they are: the promise says when it has); then the kinds go in, and the records
    // are written from where they are (not copied: see appendInPlace). The batch's buffer is given
    // back only after that (holdData), while the sharder goes on with the next batches.
    const start = recordAt[from]!;
    const end = recordAt[to]!;
    const hashed = this.#digest.update(data.subarray(start, end));
    const decided = kinds.slice(from, to);
    this.#keys ??= new BufferedFile(join(this.#dir, REQUEST_KEYS_FILE));
    const file = this.#keys;
    const written = this.#appendRecords(hashed, () => {
      for (let k = from; k < to; k++) data[recordAt[k + 1]! - 2] = decided[k - from]!;
      return file.appendInPlace(data, start, end);
    });
    if (written) batch.holdData(written);
    return to;
  }

  /**
   * Runs `append` (to request-keys.tsv) once the appends started before it have ended, and `after`
   * (the digest's reading of the bytes) has. Not waited for by the sharder: the hashing thread also
   * hashes every request file, so a batch's records can wait there behind megabytes of lines, and
   * waiting for them left the main thread idle (measured at 1M rows: ~0.12 s of 2.3). At most
   * RECORD_WRITES_AHEAD run at once (each holds a lines buffer); past that the sharder waits for the
   * oldest. Returns the append's promise, or undefined when it was done at once.
   */
  #appendRecords(
    after: Promise<void> | undefined,
    append: () => Promise<void> | undefined,
  ): Promise<void> | undefined {
    const writes = this.#recordWrites;
    const last = writes.at(-1);
    const ready = last && after ? Promise.all([last, after]) : (last ?? after);
    const done = ready ? ready.then(append) : append();
    if (!done) return undefined;
    writes.push(done);
    const ended = () => {
      const at = writes.indexOf(done);
      if (at >= 0) writes.splice(at, 1);
    };
    done.then(ended, (error: unknown) => {
      this.#recordsFailure ??= { error };
      ended();
    });
    if (writes.length > RECORD_WRITES_AHEAD) this.#wait(writes[0]);
    return done;
  }

  /**
   * A batch's kinds as takeBatch decides them, before they go into its records. Large enough for
   * the usual batch from the start: its growth, met late, undid takeBatch's optimized code.
   */
  #batchKinds = new Uint8Array(8192);

  /** Writes a line not sent to reused.requests.jsonl (the request its row is re-asked from). */
  #setAside(line: Buffer, start: number, end: number): void {
    this.#reused ??= new BufferedFile(join(this.#dir, REUSED_REQUESTS_FILE));
    // One write a line: a second append to the same file must wait for the first.
    if (line[end - 1] === NEWLINE[0]) this.#wait(this.#reused.appendBytes(line, start, end));
    else {
      const text = Buffer.concat([line.subarray(start, end), NEWLINE]);
      this.#wait(this.#reused.appendBytes(text, 0, text.length));
    }
  }

  /**
   * Made keys `from`..`to` of a batch's key array (16 bytes each) are about to be taken: their places
   * in the key table are read first, all at once (KeySet.touch), so `take` finds them in the CPU's cache.
   */
  prefetch(keys: Uint8Array, from: number, to: number): void {
    if (keys === this.#prefetched && from < this.#prefetchedTo) from = this.#prefetchedTo;
    if (from >= to) return;
    if (this.#dedups) this.#table().touch(keys, from, to);
    this.#prefetched = keys;
    this.#prefetchedTo = to;
  }

  /** This run's key table (for lines no stage marked). */
  #table(): KeySet {
    this.#seen ??= new KeySet(undefined, this.#settings.expectedKeys);
    return this.#seen;
  }

  /**
   * What a line marked where it was rendered is here, as `KeySet.add` says it: a repeat is one of a
   * request sent (or answered by the cache, as it is then), unless the line marked new with its key
   * was rejected after it was marked: the first of its repeats that comes is sent.
   */
  #marked(mark: number, key: Uint8Array, at: number): 'added' | 'present' | 'full' {
    if (mark === KEY_NEW) return 'added';
    if (mark === KEY_UNKEPT) return 'full';
    if (mark !== KEY_REPEAT || !this.#rejectedNew?.has(key, at)) return 'present';
    this.#sentAfterRejected ??= new KeySet();
    return this.#sentAfterRejected.add(key, at);
  }

  /**
   * A batch is about to be added: one whose lines were marked (RequestBatch.keySeenOrder) must be the
   * next of its stream, or the marks may name lines that never came here (a stage between dropped or
   * reordered batches): refused, as their duplicates would be answered by nothing.
   */
  follow(batch: RequestBatch): void {
    const order = batch.keySeenOrder;
    if (!order || !this.#dedups) return;
    this.#markedStream ??= order.stream;
    if (order.stream !== this.#markedStream || order.batch !== this.#nextMarked)
      throw new BatchpipeError(
        'BP_INVALID_OPTION',
        `request batch ${order.batch} of a stream with markRepeats reached shardRequests ${order.stream === this.#markedStream ? `where batch ${this.#nextMarked} was due` : 'from a second stream'}: markRepeats needs every batch toRequests made, in order (a stage between may reject lines, not drop or reorder batches)`,
        {},
      );
    this.#nextMarked++;
  }

  /** Entry `i` of a batch was rejected after it was rendered: see #marked. */
  rejected(batch: RequestBatch, i: number): void {
    if (!this.#dedups || batch.keySeen?.[i] !== KEY_NEW || !batch.requestKeys) return;
    this.#rejectedNew ??= new KeySet();
    this.#rejectedNew.add(batch.requestKeys, i * KEY_BYTES);
  }

  /** The key array last prefetched, and how far: a batch taken in parts (writes waited for) is read once. */
  #prefetched: Uint8Array = new Uint8Array(0);
  #prefetchedTo = 0;

  /**
   * Writes `<id as JSON>\t<key in hex>\t` at the end of the records block (no string a request but the
   * id's JSON); returns where the record's kind goes.
   */
  #named(id: string | number, key: Uint8Array, at: number): number {
    // The id's room (writeJsonId; `"row-` and 16 digits), the key's 32 digits, two tabs, the kind and a newline.
    const most = (typeof id === 'number' ? 22 : id.length * MAX_ESCAPE_GROWTH + 2) + 36;
    if (this.#recordsPos + most > this.#records.length) {
      this.#flushRecords();
      if (most > this.#records.length) this.#records = Buffer.allocUnsafe(most);
    }
    const records = this.#records;
    const from = this.#recordsPos;
    let n =
      typeof id === 'number'
        ? writeRowIdBytes(records, from, id, true)
        : writeJsonId(records, from, id, true);
    records[n++] = TAB;
    n = writeKeyHex(records, n, key, at);
    records[n++] = TAB;
    return n;
  }

  /** Writes the cached answers found so far to cached.jsonl, each under its row's id: one append. */
  #writeCached(): void {
    const hits = this.#hits;
    if (hits.length === 0) return;
    const ids = this.#hitIds;
    const answers = this.#settings.cache!.readAll(hits);
    const lines: Buffer[] = new Array(hits.length);
    for (let i = 0; i < hits.length; i++) {
      const answer = answers[i];
      // Found within the segment's size at lookup: only a failing disk ends it short.
      if (!answer)
        throw new BatchpipeError(
          'BP_CACHE',
          `cannot read the cached answer for ${JSON.stringify(ids[i])} from the result cache ${this.#settings.cache!.dir}: the segment ends short`,
          { custom_id: ids[i]!, file: this.#settings.cache!.dir },
        );
      lines[i] = withCustomId(answer, ids[i]!, true, true);
    }
    this.#hits = [];
    this.#hitIds = [];
    this.#cached ??= new BufferedFile(join(this.#dir, CACHED_FILE));
    const text = Buffer.concat(lines);
    this.#wait(this.#cached.appendBytes(text, 0, text.length));
  }

  /** Appends the records gathered to request-keys.tsv. */
  #flushRecords(): void {
    if (this.#recordsPos === 0) return;
    // The digest reads the block in place with the kinds as `*` (a copy of each record without its
    // kind, for the digest, cost the main thread as much as making the record).
    const records = this.#records;
    const kindsAt = this.#kindsAt;
    const kinds = this.#kinds;
    if (this.#savedKinds.length < kinds) this.#savedKinds = new Uint8Array(kinds);
    const saved = this.#savedKinds;
    for (let k = 0; k < kinds; k++) {
      saved[k] = records[kindsAt[k]!]!;
      records[kindsAt[k]!] = UNDECIDED;
    }
    this.#digest.update(records.subarray(0, this.#recordsPos));
    for (let k = 0; k < kinds; k++) records[kindsAt[k]!] = saved[k]!;
    this.#kinds = 0;
    this.#keys ??= new BufferedFile(join(this.#dir, REQUEST_KEYS_FILE));
    const file = this.#keys;
    const block = this.#records;
    const end = this.#recordsPos;
    this.#recordsPos = 0;
    const pending = this.#appendRecords(undefined, () => file.appendBytes(block, 0, end));
    if (!pending) return;
    // Not copied yet (the file's buffer was full, or appends before it are under way): the next
    // records go into a new block.
    this.#wait(pending);
    this.#records = Buffer.allocUnsafe(block.length);
  }

  #sameDraw(line: Buffer, start: number, end: number, template: object | undefined): boolean {
    if (!template) return isSameDraw(line, start, end);
    let verdict = this.#templates.get(template);
    if (verdict === undefined) {
      verdict = isSameDraw(line, start, end);
      this.#templates.set(template, verdict);
    }
    return verdict;
  }

  #wait(pending: Promise<void> | undefined): void {
    if (pending) this.#waiting.push(pending);
  }

  /** The writes `take` started that must end before more are added; undefined when none. */
  waiting(): Promise<void> | undefined {
    if (this.#recordsFailure) return Promise.reject(this.#recordsFailure.error);
    if (this.#waiting.length === 0) return undefined;
    const all = Promise.all(this.#waiting).then(() => undefined);
    this.#waiting = [];
    return all;
  }

  async finish(): Promise<ReuseSummary> {
    this.#flushRecords();
    this.#writeCached();
    await this.waiting();
    // A failed append leaves the list as it settles: its failure is kept apart.
    await Promise.allSettled(this.#recordWrites);
    if (this.#recordsFailure) throw this.#recordsFailure.error;
    // Made durable together (see Sharder.finish).
    await settledAll([this.#keys?.close(), this.#cached?.close(), this.#reused?.close()]);
    return {
      dedup: this.#settings.dedup,
      cache: this.#settings.cache !== undefined,
      ...this.#counts,
      digest: await this.#digest.digest(),
    };
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.#waiting);
    await Promise.allSettled(this.#recordWrites);
    // Lets the hashing thread drop the digest's state.
    await this.#digest.digest().catch(() => undefined);
    await this.#keys?.discard();
    await this.#cached?.discard();
    await this.#reused?.discard();
  }
}

const NEWLINE = Buffer.from('\n');
const RECORDS_BLOCK = 64 * 1024;
/**
 * Appends of key records under way before the sharder waits: each holds its batch's lines buffer
 * (LINES_POOL keeps 16, and a render thread has about 3 in use).
 */
const RECORD_WRITES_AHEAD = 4;
/** About the bytes of a record (`"row-123456"`, a tab, 32 hex digits, a tab, the kind, a newline). */
const RECORD_BYTES_ABOUT = 48;
/** Cached answers read at once (a few MB of answers at most, read in as few calls as their places allow). */
const HITS_READ_TOGETHER = 4096;
const TAB = 0x09;
const LF = 0x0a;
const KIND_BYTES = { s: 0x73, d: 0x64, c: 0x63 } as const;
