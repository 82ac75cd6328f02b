import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KEY_ALGORITHM, KEY_BYTES } from '../core/requests/request-key.js';
import { BatchpipeError } from '../errors.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { DirLock } from '../internal/dir-lock.js';
import { makeDir, writeFileAtomic } from '../internal/durable-write.js';

/** The cache's directory inside a runs directory: every run there shares it. */
export const CACHE_DIR_NAME = '.cache';
/** Default size bound: past it, the oldest segments go when a run adds one. */
export const DEFAULT_CACHE_MAX_BYTES = 1024 ** 3;
/** An index entry: key (16 bytes), offset (float64), length (uint32), 4 bytes of padding. */
const ENTRY_BYTES = 32;
/**
 * A segment's files are named for the hash its keys were made with (`<name>.xxh128.idx`), so files of
 * another are never read as answers, whatever their keys. Those of the first format (`<name>.idx`,
 * `<name>.seg`: SHA-256 keys) answer nothing now, and any prune removes them.
 */
const SEGMENT = `.${KEY_ALGORITHM}.seg`;
const INDEX = `.${KEY_ALGORITHM}.idx`;
const SHA256_FORMAT = /^\d+-\d+-[0-9a-f]+\.(idx|seg)$/;
const LOCK = 'prune.lock';
/** Files no index names (a writer that died) are removed by a prune once this old. */
const ORPHAN_MS = 3_600_000;

/** Where an answer is: its segment (in this cache's list), offset and length. */
export interface CacheHit {
  segment: number;
  offset: number;
  length: number;
}

/** Answers this close in a segment are read in one call (the bytes between read and dropped). */
const READ_GAP = 16 * 1024;
/** Bytes read in one call at most. */
const MAX_READ = 4 * 1024 * 1024;

/** The four bytes at `at` (a key's first, in a key or an index entry), as a big-endian unsigned number. */
function headAt(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** Reads `into.length` bytes at `offset` (fewer where the file ends); returns how many were read. */
function readFully(fd: number, into: Buffer, offset: number): number {
  let read = 0;
  while (read < into.length) {
    const n = readSync(fd, into, read, into.length - read, offset + read);
    if (n <= 0) break;
    read += n;
  }
  return read;
}

interface Segment {
  name: string;
  fd: number;
  index: Buffer;
  /** The segment's bytes: an entry past them (a damaged segment) answers nothing. */
  size: number;
}

/** What `cacheStats` reports. */
export interface CacheStats {
  dir: string;
  segments: number;
  /** Answers held (a key stored by two runs counts twice). */
  entries: number;
  /** Bytes on disk: answers and their indexes. */
  bytes: number;
  /** When the oldest and newest segment were written (ISO), null when empty. */
  oldest: string | null;
  newest: string | null;
  /** Bytes of segments with SHA-256 keys (an older batchpipe's): they answer nothing; a prune removes them. */
  staleBytes: number;
}

/**
 * Answers by request key, on disk: a directory of immutable segments, each a JSON Lines file of result
 * lines (`<time>-<pid>-<random>.seg`) and its sorted index of keys (`.idx`, 32 bytes an entry), written
 * under temporary names and renamed when whole, the index last. Readers list the indexes and never
 * see half a segment; writers only add files, so runs sharing the directory never write the same
 * file; `prune` removes whole segments, oldest first, under a lock. A reader holds its segments open:
 * a segment pruned while it is being read stays readable through the open descriptor (POSIX).
 * Lookup is a binary search in each segment's index (the indexes sit in memory: 32 bytes an entry).
 */
export class ResultCache {
  readonly dir: string;
  readonly #segments: Segment[];

  private constructor(dir: string, segments: Segment[]) {
    this.dir = dir;
    this.#segments = segments;
  }

  /** Opens the cache in `dir` (none there yet: an empty cache). Close it when done. */
  static async open(dir: string): Promise<ResultCache> {
    const segments: Segment[] = [];
    for (const name of await segmentNames(dir)) {
      let fd: number;
      let index: Buffer;
      let size: number;
      try {
        index = await readFile(join(dir, name + INDEX));
        fd = openSync(join(dir, name + SEGMENT), 'r');
      } catch {
        // Pruned between the listing and the open: its answers are gone, not wrong.
        continue;
      }
      try {
        size = fstatSync(fd).size;
      } catch {
        closeSync(fd);
        continue;
      }
      segments.push({ name, fd, index, size });
    }
    // Newest first: a key stored twice answers with its latest answer.
    segments.reverse();
    return new ResultCache(dir, segments);
  }

  /** Answers held. */
  get entries(): number {
    let n = 0;
    for (const s of this.#segments) n += s.index.length / ENTRY_BYTES;
    return n;
  }

  /** The result line stored for the key at `key[at, at + 16)` (without its newline), or undefined. */
  lookup(key: Uint8Array, at = 0): Buffer | undefined {
    const hit = this.locate(key, at);
    return hit && this.readAll([hit])[0];
  }

  /** Where the answer for the key at `key[at, at + 16)` is (read it with readAll), or undefined. */
  locate(key: Uint8Array, at = 0): CacheHit | undefined {
    const segments = this.#segments;
    if (segments.length === 0) return undefined;
    // Keys sort as bytes: their first four as a big-endian number order them but for ties. Compared
    // here, not by Buffer#compare (a native call a step cost four fifths of a cached row's time).
    const head = headAt(key, at);
    for (let s = 0; s < segments.length; s++) {
      const index = segments[s]!.index;
      // The first entry whose head is not below the key's.
      let lo = 0;
      let hi = index.length / ENTRY_BYTES;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (headAt(index, mid * ENTRY_BYTES) < head) lo = mid + 1;
        else hi = mid;
      }
      const count = index.length / ENTRY_BYTES;
      for (let e = lo; e < count && headAt(index, e * ENTRY_BYTES) === head; e++) {
        const entry = e * ENTRY_BYTES;
        let same = true;
        for (let b = 4; b < KEY_BYTES; b++)
          if (index[entry + b] !== key[at + b]) {
            same = false;
            break;
          }
        if (!same) continue;
        const offset = index.readDoubleLE(entry + KEY_BYTES);
        const length = index.readUInt32LE(entry + KEY_BYTES + 8);
        // Readable whole (the segment never changes once its index is there), or no answer here.
        if (offset + length <= segments[s]!.size) return { segment: s, offset, length };
        break;
      }
    }
    return undefined;
  }

  /**
   * The answers at `hits`, in their order (undefined where the segment ends short). Answers that lie
   * near each other in a segment are read together, in the segment's order: a run re-asking the rows
   * of an earlier one finds its answers in the order they were stored, and a read an answer cost
   * more than everything else a cached row costs (measured: 1M reads, 0.3x of prepare's speed).
   */
  readAll(hits: readonly CacheHit[]): Array<Buffer | undefined> {
    const answers: Array<Buffer | undefined> = new Array(hits.length);
    const order = hits.map((_, i) => i);
    order.sort((a, b) => hits[a]!.segment - hits[b]!.segment || hits[a]!.offset - hits[b]!.offset);
    let k = 0;
    while (k < order.length) {
      const first = hits[order[k]!]!;
      let end = first.offset + first.length;
      let m = k + 1;
      for (; m < order.length; m++) {
        const next = hits[order[m]!]!;
        if (next.segment !== first.segment || next.offset > end + READ_GAP) break;
        const nextEnd = Math.max(end, next.offset + next.length);
        if (nextEnd - first.offset > MAX_READ) break;
        end = nextEnd;
      }
      const span = Buffer.allocUnsafe(end - first.offset);
      const read = readFully(this.#segments[first.segment]!.fd, span, first.offset);
      for (let j = k; j < m; j++) {
        const hit = hits[order[j]!]!;
        const from = hit.offset - first.offset;
        if (from + hit.length <= read) answers[order[j]!] = span.subarray(from, from + hit.length);
      }
      k = m;
    }
    return answers;
  }

  close(): void {
    for (const s of this.#segments) closeSync(s.fd);
    this.#segments.length = 0;
  }
}

/**
 * Adds answers to a cache as one new segment: `add` each, then `commit` (the segment and its index
 * appear) or `discard` (nothing appears). Entries wait in memory as index entries only (32 bytes each).
 */
export class CacheWriter {
  readonly #dir: string;
  readonly #name: string;
  #file: BufferedFile | undefined;
  #entries: Buffer[] = [];
  #bytes = 0;

  constructor(dir: string) {
    this.#dir = dir;
    const time = String(Date.now()).padStart(14, '0');
    this.#name = `${time}-${process.pid}-${randomBytes(4).toString('hex')}`;
  }

  get count(): number {
    return this.#entries.length;
  }

  /** Adds a result line (no newline) under `key`; a promise when the write buffer is full. */
  add(key: Uint8Array, line: Buffer): Promise<void> | undefined {
    // The directory first: the segment's first full buffer is written before the commit.
    if (!this.#file)
      return makeDir(this.#dir).then(() => {
        this.#file ??= new BufferedFile(join(this.#dir, this.#name + SEGMENT));
        return this.#add(key, line);
      });
    return this.#add(key, line);
  }

  #add(key: Uint8Array, line: Buffer): Promise<void> | undefined {
    const file = this.#file!;
    const entry = Buffer.alloc(ENTRY_BYTES);
    entry.set(key.subarray(0, KEY_BYTES), 0);
    entry.writeDoubleLE(this.#bytes, KEY_BYTES);
    entry.writeUInt32LE(line.length, KEY_BYTES + 8);
    this.#entries.push(entry);
    this.#bytes += line.length + 1;
    const text = Buffer.concat([line, NEWLINE]);
    return file.appendBytes(text, 0, text.length);
  }

  /** Makes the segment visible; returns how many answers it holds. Prunes past `maxBytes`. */
  async commit(maxBytes = DEFAULT_CACHE_MAX_BYTES): Promise<number> {
    if (!this.#file) return 0;
    await makeDir(this.#dir);
    await this.#file.close();
    this.#entries.sort((a, b) => a.compare(b, 0, KEY_BYTES, 0, KEY_BYTES));
    await writeFileAtomic(join(this.#dir, this.#name + INDEX), Buffer.concat(this.#entries));
    const count = this.#entries.length;
    this.#entries = [];
    const stats = await cacheStats(this.#dir);
    if (stats.bytes > maxBytes || stats.staleBytes > 0) await pruneCache(this.#dir, { maxBytes });
    return count;
  }

  async discard(): Promise<void> {
    this.#entries = [];
    await this.#file?.discard();
  }
}

const NEWLINE = Buffer.from('\n');

/** Segment names (without extension), oldest first: those with an index. */
async function segmentNames(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new BatchpipeError('BP_CACHE', `cannot read the result cache ${dir}: ${(error as Error).message}`, {
      file: dir,
    });
  }
  return names
    .filter((n) => n.endsWith(INDEX) && !n.startsWith('.'))
    .map((n) => n.slice(0, -INDEX.length))
    .sort();
}

/** Segment files of the SHA-256 format (no writer of this version writes one: none is half-written). */
async function otherFormatFiles(dir: string): Promise<string[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return [];
  }
  return files.filter((f) => SHA256_FORMAT.test(f));
}

/** When a segment was written, from its name. */
function segmentTime(name: string): number {
  return Number(name.split('-')[0]);
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Counts what the cache in `dir` holds. */
export async function cacheStats(dir: string): Promise<CacheStats> {
  const names = await segmentNames(dir);
  let entries = 0;
  let bytes = 0;
  for (const name of names) {
    const index = await sizeOf(join(dir, name + INDEX));
    entries += index / ENTRY_BYTES;
    bytes += index + (await sizeOf(join(dir, name + SEGMENT)));
  }
  let staleBytes = 0;
  for (const file of await otherFormatFiles(dir)) staleBytes += await sizeOf(join(dir, file));
  const iso = (name: string | undefined) => (name ? new Date(segmentTime(name)).toISOString() : null);
  return {
    dir,
    segments: names.length,
    entries,
    bytes,
    oldest: iso(names[0]),
    newest: iso(names.at(-1)),
    staleBytes,
  };
}

/** What a prune removed. */
export interface PruneResult {
  segments: number;
  entries: number;
  bytes: number;
}

/**
 * Removes whole segments, oldest first: those written before `olderThanMs` ago, then as many as it
 * takes to bring the cache within `maxBytes` (and files a writer that died left behind). One prune at
 * a time (a lock file); runs reading or adding meanwhile are safe: an index goes before its segment,
 * so a reader sees both or neither, and one that already opened the segment still reads it.
 */
export async function pruneCache(
  dir: string,
  options: { maxBytes?: number; olderThanMs?: number; all?: boolean },
): Promise<PruneResult> {
  const removed: PruneResult = { segments: 0, entries: 0, bytes: 0 };
  const names = await segmentNames(dir);
  const stale = await otherFormatFiles(dir);
  if (names.length === 0 && stale.length === 0) return removed;
  const lock = await DirLock.acquire(join(dir, LOCK), {
    inUse: (holder) =>
      new BatchpipeError(
        'BP_CACHE',
        `the result cache ${dir} is being pruned by process ${holder.pid}; try again`,
      ),
    failed: (message, cause) =>
      new BatchpipeError('BP_CACHE', `cannot lock the result cache ${dir}: ${message}`, {}, { cause }),
  });
  try {
    const sizes = new Map<string, { index: number; segment: number }>();
    let total = 0;
    for (const name of await segmentNames(dir)) {
      const size = {
        index: await sizeOf(join(dir, name + INDEX)),
        segment: await sizeOf(join(dir, name + SEGMENT)),
      };
      sizes.set(name, size);
      total += size.index + size.segment;
    }
    const cutoff = options.olderThanMs === undefined ? -Infinity : Date.now() - options.olderThanMs;
    for (const [name, size] of sizes) {
      const old = options.all || segmentTime(name) < cutoff;
      const over = options.maxBytes !== undefined && total > options.maxBytes;
      if (!old && !over) continue;
      await rm(join(dir, name + INDEX), { force: true });
      await rm(join(dir, name + SEGMENT), { force: true });
      removed.segments++;
      removed.entries += size.index / ENTRY_BYTES;
      removed.bytes += size.index + size.segment;
      total -= size.index + size.segment;
    }
    // Segments of another key hash answer nothing here: removed whatever their age.
    for (const file of stale) {
      const size = await sizeOf(join(dir, file));
      await rm(join(dir, file), { force: true });
      removed.bytes += size;
      if (file.endsWith('.idx')) {
        removed.segments++;
        removed.entries += size / ENTRY_BYTES;
      }
    }
    // Leftovers of writers that died: segments no index names, half-written files.
    const kept = new Set(await segmentNames(dir));
    for (const file of await readdir(dir)) {
      if (file === LOCK || file.endsWith(INDEX)) continue;
      const base = file.endsWith(SEGMENT) ? file.slice(0, -SEGMENT.length) : undefined;
      if (base !== undefined && kept.has(base)) continue;
      const path = join(dir, file);
      const info = await stat(path).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > ORPHAN_MS) {
        await rm(path, { force: true });
        removed.bytes += info.size;
      }
    }
    return removed;
  } finally {
    await lock.release();
  }
}
