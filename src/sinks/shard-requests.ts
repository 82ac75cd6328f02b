import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { BufferedFile } from '../internal/buffered-file.js';
import { byteSize, parseOptions } from '../options.js';
import { type FileLimits, PROVIDER_NAMES, type ProviderProfile } from '../providers/profile.js';
import { resolveProfile } from '../providers/resolve-profile.js';
import { isProfile } from '../transforms/to-requests.js';
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
}

export const SUMMARY_FILE = 'shards.json';
export const REJECTIONS_FILE = 'rejections.jsonl';

const ShardRequestsOptions = z.strictObject({
  /** Directory for the request files, `rejections.jsonl` and `shards.json` (created if missing). */
  outDir: z.string().min(1),
  /** Provider whose per-file limits apply. Default "local" (DashScope's limits). */
  provider: z.union([z.enum(PROVIDER_NAMES), z.custom<ProviderProfile>(isProfile)]).default('local'),
  /** Requests per file; default the provider's (50,000). */
  maxLinesPerFile: z.number().int().positive().optional(),
  /** Bytes per file; default the provider's (500 MB for DashScope). */
  maxBytesPerFile: byteSize.optional(),
  /** File name prefix. Default "requests". */
  prefix: z
    .string()
    .regex(/^[\w.-]+$/, 'expected letters, digits, ".", "_" or "-"')
    .default('requests'),
});
export type ShardRequestsOptions = z.input<typeof ShardRequestsOptions>;

/** The Writable `shardRequests` returns; `summary` is set once it has finished. */
export interface ShardRequestsStream extends Writable {
  readonly summary: PreparedSummary | undefined;
}

/**
 * Cuts request lines into files within the provider's per-file limits (lines and bytes), one model per
 * file, named `<prefix>-00001.jsonl` in order of creation, so the same input gives the same files.
 * Rejections go to `rejections.jsonl`. On finish it writes `shards.json` (lines, bytes and sha256 per
 * file) and removes files an earlier run listed there that this run did not write again. Files are
 * written under a temporary name and renamed when complete.
 */
export function shardRequests(options: ShardRequestsOptions): ShardRequestsStream {
  const opts = parseOptions(ShardRequestsOptions, options, 'shardRequests');
  const profile = typeof opts.provider === 'string' ? resolveProfile(opts.provider) : opts.provider;
  const limits: FileLimits = {
    ...profile.limits,
    maxLinesPerFile: opts.maxLinesPerFile ?? profile.limits.maxLinesPerFile,
    maxBytesPerFile: opts.maxBytesPerFile ?? profile.limits.maxBytesPerFile,
  };
  const sharder = new Sharder(opts.outDir, opts.prefix, limits);
  let summary: PreparedSummary | undefined;
  const stream = new Writable({
    objectMode: true,
    highWaterMark: 1024,
    write(item: RequestItem | Rejection, _encoding, done) {
      let pending: Promise<void> | undefined;
      try {
        pending = sharder.add(item);
      } catch (error) {
        return done(error as Error);
      }
      if (pending) pending.then(() => done(), done);
      else done();
    },
    final(done) {
      sharder.finish().then((result) => {
        summary = result;
        done();
      }, done);
    },
    destroy(error, done) {
      sharder.abort().then(
        () => done(error),
        () => done(error),
      );
    },
  }) as ShardRequestsStream;
  Object.defineProperty(stream, 'summary', { get: () => summary, enumerable: true });
  return stream;
}

interface OpenShard {
  summary: ShardSummary;
  file: BufferedFile;
}

/** The sharding engine behind `shardRequests`, also used by the batch sink. */
export class Sharder {
  readonly #dir: string;
  readonly #prefix: string;
  readonly #limits: FileLimits;
  readonly #open = new Map<string, OpenShard>();
  readonly #done: ShardSummary[] = [];
  readonly #byCode: Record<string, number> = {};
  #ready: Promise<string[]> | undefined;
  #rejections: BufferedFile | undefined;
  #closing: Promise<void> | undefined;
  #rejected = 0;
  #requests = 0;
  #count = 0;

  constructor(dir: string, prefix: string, limits: FileLimits) {
    this.#dir = dir;
    this.#prefix = prefix;
    this.#limits = limits;
  }

  /** Adds a request line or a rejection (the stream path). */
  add(item: RequestItem | Rejection): Promise<void> | undefined {
    if (!this.#ready) return this.#startThen(() => this.add(item));
    if (item.kind === 'rejection') return this.reject(item);
    const text = item.text ?? JSON.stringify(item.request);
    const bytes = item.bytes ?? Buffer.byteLength(text);
    const request = item.request;
    if (bytes + 1 > this.#limits.maxBytesPerFile) return this.#tooLarge(item, request.custom_id, bytes + 1);
    const file = this.#fileFor(String(request.body.model), request.url, item.index, bytes + 1);
    return this.#afterClose(file.append(`${text}\n`, bytes + 1));
  }

  /**
   * Adds a request line already serialized as bytes (the prepare fast path): `data[start, end)`,
   * newline included, left untouched until written.
   */
  addBytes(
    model: string,
    url: string,
    at: SourcePosition,
    custom_id: string,
    data: Buffer,
    start: number,
    end: number,
  ): Promise<void> | undefined {
    if (!this.#ready)
      return this.#startThen(() => this.addBytes(model, url, at, custom_id, data, start, end));
    const bytes = end - start;
    if (bytes > this.#limits.maxBytesPerFile) return this.#tooLarge(at, custom_id, bytes);
    return this.#afterClose(this.#fileFor(model, url, at.index, bytes).appendBytes(data, start, end));
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
   * one starts closing; `#afterClose` waits for it). Counts the line.
   */
  #fileFor(model: string, url: string, row: number, bytes: number): BufferedFile {
    let shard = this.#open.get(model);
    if (
      shard &&
      (shard.summary.lines >= this.#limits.maxLinesPerFile ||
        shard.file.bytes + bytes > this.#limits.maxBytesPerFile)
    ) {
      this.#closing = this.#close(shard);
      shard = undefined;
    }
    if (!shard) {
      shard = this.#create(model, url, row);
      this.#open.set(model, shard);
    }
    shard.summary.lines++;
    shard.summary.last_row = row;
    this.#requests++;
    return shard.file;
  }

  /** A write's wait, joined with the close of the file it filled, if one was closed for it. */
  #afterClose(writing: Promise<void> | undefined): Promise<void> | undefined {
    const closing = this.#closing;
    if (!closing) return writing;
    this.#closing = undefined;
    return writing ? Promise.all([closing, writing]).then(() => undefined) : closing;
  }

  #create(model: string, url: string, row: number): OpenShard {
    const name = `${this.#prefix}-${String(++this.#count).padStart(5, '0')}.jsonl`;
    return {
      file: new BufferedFile(join(this.#dir, name)),
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
    this.#open.delete(shard.summary.model);
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
    await mkdir(this.#dir, { recursive: true });
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
    for (const shard of [...this.#open.values()]) await this.#close(shard);
    this.#done.sort((a, b) => a.file.localeCompare(b.file));
    this.#rejections ??= new BufferedFile(join(this.#dir, REJECTIONS_FILE));
    await this.#rejections.close();
    const summary: PreparedSummary = {
      version: 1,
      rows: this.#requests + this.#rejected,
      requests: this.#requests,
      rejected: this.#rejected,
      shards: this.#done,
      rejections: { file: REJECTIONS_FILE, count: this.#rejected, by_code: this.#byCode },
    };
    const kept = new Set(this.#done.map((s) => s.file));
    for (const file of earlier) if (!kept.has(file)) await rm(join(this.#dir, file), { force: true });
    const summaryFile = new BufferedFile(join(this.#dir, SUMMARY_FILE));
    const text = `${JSON.stringify(summary, null, 2)}\n`;
    await summaryFile.append(text, Buffer.byteLength(text));
    await summaryFile.close();
    return summary;
  }

  async abort(): Promise<void> {
    for (const shard of this.#open.values()) await shard.file.discard();
    this.#open.clear();
    await this.#rejections?.discard();
  }
}
