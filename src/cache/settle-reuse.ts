import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { customIdValueRange } from '../core/requests/request-key.js';
import { ResultParser } from '../core/results/result-parser.js';
import { BufferedFile } from '../internal/buffered-file.js';
import { writeFileAtomic } from '../internal/durable-write.js';
import { readChunks } from '../internal/input.js';
import { withCustomId } from './custom-id-line.js';
import { REQUEST_KEYS_FILE } from './request-reuse.js';
import { CacheWriter, DEFAULT_CACHE_MAX_BYTES } from './result-cache.js';

/** Answers for the duplicates of a run's requests, each under the duplicate row's own custom_id. */
export const FANOUT_FILE = 'fanout.jsonl';
/** Written once a run's answers are stored and its duplicates answered: a second join stores nothing again. */
const SETTLED_FILE = 'reuse-settled.json';
/** Sent requests held in memory per pass (id and key, about 150 bytes each): more take more passes. */
const SENT_PER_PASS = 250_000;

export interface SettleOptions {
  /** Where answers are stored for later runs; undefined: none are. */
  cacheDir: string | undefined;
  cacheMaxBytes?: number | undefined;
}

export interface Settled {
  /** Answers added to the cache. */
  stored: number;
  /** Result lines written for duplicate rows. */
  fannedOut: number;
  /** The fan-out file, when there were duplicates. */
  fanout: string | undefined;
}

/**
 * After a run ended: each sent keyed request's final result (request-keys.tsv joined with the results
 * by custom_id) is stored in the cache when it is an answer (status `ok`: not failed, truncated,
 * expired or cancelled), and copied under the id of every duplicate row that asked the same
 * (fanout.jsonl), failures included, so every row comes out with its request's result. Memory is
 * bounded: the keys are taken a partition at a time (by key), each pass reading the results again.
 * Safe to run again (a resumed run does): the fan-out file is made afresh, and an answer stored twice
 * is only stored twice.
 */
export async function settleReuse(runDir: string, results: string, options: SettleOptions): Promise<Settled> {
  const keysFile = join(runDir, REQUEST_KEYS_FILE);
  const settled: Settled = { stored: 0, fannedOut: 0, fanout: undefined };
  if (!existsSync(keysFile)) return settled;
  // Settled before (the same command again, after the run ended): the answers are stored already.
  const marker = join(runDir, SETTLED_FILE);
  if (existsSync(marker)) {
    const done = JSON.parse(await readFile(marker, 'utf8')) as Settled;
    if (done.fanout === undefined || existsSync(done.fanout)) return done;
  }
  let sent = 0;
  let duplicates = 0;
  for await (const record of keyRecords(keysFile)) {
    if (record.kind === 's') sent++;
    else if (record.kind === 'd') duplicates++;
  }
  const storing = options.cacheDir !== undefined;
  if (sent === 0 || (!storing && duplicates === 0)) return settled;
  const passes = Math.max(1, Math.ceil(sent / SENT_PER_PASS));
  const writer = storing ? new CacheWriter(options.cacheDir!) : undefined;
  const fanoutPath = join(runDir, FANOUT_FILE);
  const fanout = duplicates > 0 ? new BufferedFile(fanoutPath) : undefined;
  const parser = new ResultParser({ badLines: 'report' });
  try {
    for (let pass = 0; pass < passes; pass++) {
      const keyOf = new Map<string, string>();
      const dups = new Map<string, string[]>();
      for await (const { id, hex, kind } of keyRecords(keysFile)) {
        if (passes > 1 && Number.parseInt(hex.slice(0, 8), 16) % passes !== pass) continue;
        if (kind === 's') keyOf.set(id, hex);
        else if (kind === 'd') {
          const list = dups.get(hex);
          if (list) list.push(id);
          else dups.set(hex, [id]);
        }
      }
      for await (const line of lines(results)) {
        const id = idOf(line);
        const hex = id === undefined ? undefined : keyOf.get(id);
        if (hex === undefined) continue;
        if (writer && parser.fromText(line.toString('utf8'), results, 0)?.status === 'ok') {
          const waiting = writer.add(Buffer.from(hex, 'hex'), line);
          if (waiting) await waiting;
        }
        for (const dup of dups.get(hex) ?? []) {
          const text = withCustomId(line, dup, false, true);
          const waiting = fanout!.appendBytes(text, 0, text.length);
          settled.fannedOut++;
          if (waiting) await waiting;
        }
      }
    }
    if (fanout) {
      await fanout.close();
      settled.fanout = fanoutPath;
    }
    if (writer) settled.stored = await writer.commit(options.cacheMaxBytes ?? DEFAULT_CACHE_MAX_BYTES);
    await writeFileAtomic(marker, JSON.stringify(settled));
    return settled;
  } catch (error) {
    await fanout?.discard();
    await writer?.discard();
    throw error;
  }
}

/** The records of request-keys.tsv. */
async function* keyRecords(path: string): AsyncGenerator<{ id: string; hex: string; kind: string }> {
  for await (const line of lines(path)) {
    const text = line.toString('utf8');
    const tab = text.lastIndexOf('\t', text.length - 2);
    const first = text.lastIndexOf('\t', tab - 1);
    yield {
      id: JSON.parse(text.slice(0, first)) as string,
      hex: text.slice(first + 1, tab),
      kind: text.slice(tab + 1),
    };
  }
}

/** A file's non-empty lines (no newline), each a copy: a line outlives the next read. */
async function* lines(path: string): AsyncGenerator<Buffer> {
  let rest: Buffer | undefined;
  for await (const chunk of readChunks(path, path)) {
    const data = rest ? Buffer.concat([rest, chunk]) : chunk;
    let start = 0;
    for (let lf = data.indexOf(LF, start); lf !== -1; lf = data.indexOf(LF, start)) {
      const end = lf > start && data[lf - 1] === CR ? lf - 1 : lf;
      if (end > start) yield Buffer.from(data.subarray(start, end));
      start = lf + 1;
    }
    rest = start < data.length ? Buffer.from(data.subarray(start)) : undefined;
  }
  if (rest?.length) yield rest;
}

const LF = 0x0a;
const CR = 0x0d;

/** The custom_id of a result line. */
function idOf(line: Buffer): string | undefined {
  const range = customIdValueRange(line);
  if (range) {
    const raw = line.toString('utf8', range[0], range[1]);
    return raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw;
  }
  try {
    const value = JSON.parse(line.toString('utf8')) as { custom_id?: unknown };
    return typeof value.custom_id === 'string' ? value.custom_id : undefined;
  } catch {
    return undefined;
  }
}
