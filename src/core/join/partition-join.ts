import { SpillFile } from './spill-file.js';

// Step 3 of HashJoin (see hash-join.ts), one partition at a time, on whichever thread is given a
// share of the partitions: a module of its own so that a join thread loads only this and SpillFile.

/** A joined line's mark for a stale row (after the tab, where a result's rank digit would be). */
export const STALE_MARK = 'S';
/** A key line's verdict on its row (see `HashJoin.key`): its hash differs, or must be looked up. */
export const MISMATCH = '!'.charCodeAt(0);
export const LOOK_UP = '#'.charCodeAt(0);
const TAB = 0x09;
const LF = 0x0a;
const NOTHING = Buffer.alloc(0);
const STALE_BYTES = Buffer.from(STALE_MARK);

/** A spill file as another thread opens it: its path and its index (`SpillFile.index`). */
export interface SpillRef {
  path: string;
  index: number[][];
}

/** Step 3 as other threads do it: the files to read, all written and flushed. */
export interface JoinShareTask {
  partitions: number;
  /** Result files in the order their lines count ("the later line wins a tie"). */
  results: SpillRef[];
  keys: SpillRef;
  /** The row hashes the key pass met out of order, when rows are checked. */
  expected: SpillRef | undefined;
}

/** What one thread joined: its file (its partitions only) and counts. */
export interface JoinedShare {
  joined: SpillRef;
  partitions: number[];
  duplicates: number;
  orphans: number;
}

/** One thread's share of step 3: every `threads`-th partition from `thread`, into the file `out`. */
export type JoinShare = JoinShareTask & { thread: number; threads: number; out: string };

/**
 * Where `byte` first is in `bytes[from, to)`, or `to`: a loop here, as lines are short (a native
 * search costs more to call than these few bytes take to read).
 */
function byteAt(bytes: Buffer, byte: number, from: number, to: number): number {
  while (from < to && bytes[from] !== byte) from++;
  return from;
}

/** What step 3 made of one partition. */
export interface JoinedPartition {
  /**
   * The best result's rank per id (the id's JSON form, its UTF-8 bytes one character a byte: see
   * `latin1Id`), for the re-asks.
   */
  rank: (id: string) => number | undefined;
  duplicates: number;
  orphans: number;
}

/**
 * Buffers step 3 reuses from partition to partition (off the JS heap: a partition's results read
 * as strings, each line sliced and kept in a map, grew a thread's heap by tens of MB a join).
 */
export class JoinScratch {
  results = Buffer.alloc(0);
  keys = Buffer.alloc(0);
}

/** An id as step 3 keys its map: the bytes of its JSON form, one character a byte. */
export function latin1Id(json: string): string {
  return Buffer.from(json, 'utf8').toString('latin1');
}

/**
 * Step 3 for one partition: its results (from every file, in order) into a map, best status per id,
 * then its keys in order, each answered with its result (or nothing) into `joined`'s partition.
 * `expectedHashes` is given when rows are checked (see `HashJoin.key`). Works on bytes: the map
 * holds each id (as `latin1Id`) and where its best line starts in the partition's results.
 */
export async function joinPartition(
  p: number,
  results: readonly SpillFile[],
  keys: SpillFile,
  joined: SpillFile,
  expectedHashes: SpillFile | undefined,
  scratch: JoinScratch = new JoinScratch(),
): Promise<JoinedPartition> {
  let size = 0;
  for (const file of results) size += file.partitionLength(p);
  if (scratch.results.length < size)
    scratch.results = Buffer.allocUnsafe(Math.max(size, 2 * scratch.results.length));
  const data = scratch.results;
  let filled = 0;
  for (const file of results) {
    for (let b = 0; b < file.blockCount(p); b++) {
      await file.readBlockInto(p, b, data.subarray(filled));
      filled += file.blockLength(p, b);
    }
  }
  // id -> 1 + where its entry starts (after the tab); negated once a key has used it.
  const best = new Map<string, number>();
  let duplicates = 0;
  for (let at = 0; at < filled; ) {
    const tab = byteAt(data, TAB, at, filled);
    const nl = byteAt(data, LF, tab, filled);
    const id = data.toString('latin1', at, tab);
    const seen = best.get(id);
    if (seen === undefined) best.set(id, tab + 2);
    else {
      duplicates++;
      // Lower rank is better; on a tie the later line wins.
      if (data[tab + 1]! <= data[seen - 1]!) best.set(id, tab + 2);
    }
    at = nl + 1;
  }
  const checks = expectedHashes !== undefined;
  // Only rows met out of order look their hash up (few or none), so the map is usually empty.
  const expected = checks ? await rowHashesOf(expectedHashes, p) : undefined;
  let used = 0;
  for (let b = 0; b < keys.blockCount(p); b++) {
    const length = keys.blockLength(p, b);
    if (scratch.keys.length < length) scratch.keys = Buffer.allocUnsafe(Math.max(length, 64 * 1024));
    const lines = scratch.keys;
    await keys.readBlockInto(p, b, lines);
    for (let at = 0; at < length; ) {
      const nl = byteAt(lines, LF, at, length);
      // `"id"`, or with checks `"id"\t<verdict>`: the id ends at the last tab.
      const idEnd = checks ? lines.lastIndexOf(TAB, nl) : nl;
      const id = lines.toString('latin1', at, idEnd);
      const found = best.get(id);
      let waiting: Promise<void> | undefined;
      if (found === undefined) waiting = joined.appendLine(p, lines, at, idEnd, NOTHING, 0, 0);
      else {
        const start = Math.abs(found) - 1;
        if (found > 0) {
          used++;
          best.set(id, -found);
        }
        // A result answers the row only while its cells are those its request was made from.
        const mark = checks ? lines[idEnd + 1] : 0;
        const stale =
          checks &&
          (mark === MISMATCH ||
            (mark === LOOK_UP && expected!.get(id) !== lines.toString('latin1', idEnd + 2, nl)));
        if (stale) waiting = joined.appendLine(p, lines, at, idEnd, STALE_BYTES, 0, 1);
        else {
          const end = byteAt(data, LF, start, filled);
          waiting = joined.appendLine(p, lines, at, idEnd, data, start, end);
        }
      }
      if (waiting) await waiting;
      at = nl + 1;
    }
  }
  const waiting = joined.flushPartition(p);
  if (waiting) await waiting;
  return {
    rank: (id) => {
      const found = best.get(id);
      return found === undefined ? undefined : data[Math.abs(found) - 1]!;
    },
    duplicates,
    orphans: best.size - used,
  };
}

/** One thread's share of step 3 (see `JoinShare`). */
export async function joinShare(task: JoinShare): Promise<JoinedShare> {
  const open = (ref: SpillRef) => SpillFile.written(ref.path, ref.index);
  const results = task.results.map(open);
  const keys = open(task.keys);
  const expected = task.expected ? open(task.expected) : undefined;
  const joined = new SpillFile(task.out, task.partitions);
  const partitions: number[] = [];
  let duplicates = 0;
  let orphans = 0;
  const scratch = new JoinScratch();
  try {
    for (let p = task.thread; p < task.partitions; p += task.threads) {
      const done = await joinPartition(p, results, keys, joined, expected, scratch);
      partitions.push(p);
      duplicates += done.duplicates;
      orphans += done.orphans;
    }
    await joined.flush();
  } finally {
    for (const file of [...results, keys, expected, joined]) await file?.close();
  }
  return { joined: { path: task.out, index: joined.index }, partitions, duplicates, orphans };
}

/** All lines of a partition of a spill file. */
export async function lines(spill: SpillFile, p: number): Promise<string[]> {
  const out: string[] = [];
  for (let b = 0; b < spill.blockCount(p); b++) {
    const block = (await spill.readBlock(p, b)).split('\n');
    block.pop();
    for (const line of block) out.push(line);
  }
  return out;
}

/** A partition's row hashes: the JSON form of each custom_id (as `latin1Id`) -> its hash. */
async function rowHashesOf(spill: SpillFile, p: number): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of await lines(spill, p)) {
    const tab = line.lastIndexOf('\t');
    out.set(latin1Id(line.slice(0, tab)), line.slice(tab + 1));
  }
  return out;
}
