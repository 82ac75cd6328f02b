import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Slice } from '../core/rows/row-slice.js';
import { BatchpipeError } from '../errors.js';
import { ENDPOINTS, type Endpoint } from '../providers/profile.js';
import { readManifest } from '../run/manifest.js';
import { ROW_HASHES_FILE } from '../run/sharder.js';

/** What a set of `--results` paths holds, by role. */
export interface ResultFiles {
  /** Output and error files (JSONL). */
  results: string[];
  /** `rejections.jsonl` files from prepare. */
  rejections: string[];
  /** Request files (listed in a `shards.json`, or whose lines are requests): inputs of a re-ask. */
  requests: string[];
  /** The endpoint the requests went to, when a `shards.json` or run manifest says. */
  endpoint: Endpoint | undefined;
  /** `row-hashes.tsv` files (a prepared or run directory's): what the join checks rows against. */
  rowHashes: string[];
  /** The directories given that hold one slice of a table (`--slice`), in the order given. */
  slices: SliceDir[];
}

/** A prepared or run directory of one slice of a table. */
export interface SliceDir {
  dir: string;
  slice: Slice;
  /** A run directory whose run has not finished (no results.jsonl yet): its rows may lack results. */
  unfinished: boolean;
}

const REJECTIONS = 'rejections.jsonl';
const SHARDS = 'shards.json';
/** A run directory: its manifest, and the final result of each request once the run has finished. */
const RUN_MANIFEST = 'manifest.json';
const RUN_RESULTS = 'results.jsonl';
/** A run directory's per-attempt downloads, which its results.jsonl supersedes. */
const RUN_DOWNLOADS = 'results';
/** How deep a run directory is searched (run dir -> downloads -> batch). */
const MAX_DEPTH = 3;
/** Bytes read to tell a request file from a result file. */
const SNIFF_BYTES = 64 * 1024;

/**
 * Sorts paths given as results into roles. A file is a result file (or a rejections file by name);
 * a directory (a prepared directory, a run directory, a folder of downloads) is searched for JSONL
 * files: `rejections.jsonl` holds rejections, files a `shards.json` lists and files whose first line
 * is a request (`method`, `url`, `body`, no `response` or `error`) are requests, the rest are output
 * and error files; in a finished run directory (`manifest.json` and `results.jsonl`) the per-attempt
 * downloads under `results/` are left out; `row-hashes.tsv` holds the row hashes. Files come in path order, so runs are repeatable. The
 * endpoint is read from the first `shards.json` or `manifest.json` that names one.
 */
export async function findResultFiles(
  paths: readonly string[],
  /** What a path naming a file (not a directory) holds. */
  files: 'results' | 'requests' = 'results',
): Promise<ResultFiles> {
  const found: ResultFiles = {
    results: [],
    rejections: [],
    requests: [],
    endpoint: undefined,
    rowHashes: [],
    slices: [],
  };
  for (const path of paths) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch (error) {
      throw new BatchpipeError(
        'BP_INPUT_NOT_FOUND',
        `no such file or directory: ${path}`,
        {},
        { cause: error },
      );
    }
    if (info.isDirectory()) {
      const manifest = await runManifest(path);
      const slice = await sliceOfDir(path, manifest);
      if (slice) found.slices.push(slice);
      await walk(resolve(path), 0, found, manifest);
    } else if (basename(path) === REJECTIONS) found.rejections.push(path);
    else found[files].push(path);
  }
  return found;
}

/** A run directory's manifest, read with its journal; undefined when there is none or it is unreadable. */
async function runManifest(dir: string): Promise<RunManifestFields | undefined> {
  if (!(await isFile(join(dir, RUN_MANIFEST)))) return undefined;
  return (await readManifest(dir).catch(() => undefined)) as RunManifestFields | undefined;
}

interface RunManifestFields {
  endpoint?: unknown;
  slice?: unknown;
  jobs?: unknown;
}

async function walk(
  dir: string,
  depth: number,
  found: ResultFiles,
  /** The manifest of `dir`, when the caller has read it already. */
  known?: RunManifestFields,
): Promise<void> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
  const listed = new Set<string>();
  if (entries.some((e) => e.isFile() && e.name === SHARDS)) {
    try {
      const summary = JSON.parse(await readFile(join(dir, SHARDS), 'utf8')) as {
        shards?: Array<{ file?: unknown; endpoint?: unknown }>;
      };
      for (const shard of summary.shards ?? []) {
        if (typeof shard.file === 'string') listed.add(shard.file);
        found.endpoint ??= endpointOf(shard.endpoint);
      }
    } catch {
      // Not prepare's summary: its files are judged by their first line instead.
    }
  }
  // A finished run's results.jsonl holds each request's final line (retries resolved); the attempts'
  // output and error files beside it would only repeat it.
  const manifest = entries.some((e) => e.isFile() && e.name === RUN_MANIFEST);
  const finished = manifest && entries.some((e) => e.isFile() && e.name === RUN_RESULTS);
  // Not a run manifest when unreadable: the endpoint stays unknown (the join's default, chat).
  if (manifest && found.endpoint === undefined)
    found.endpoint = endpointOf((known ?? (await runManifest(dir)))?.endpoint);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (depth + 1 < MAX_DEPTH && !(finished && entry.name === RUN_DOWNLOADS))
        await walk(path, depth + 1, found);
      continue;
    }
    if (entry.isFile() && entry.name === ROW_HASHES_FILE) found.rowHashes.push(path);
    if (!entry.isFile() || !/\.jsonl$/i.test(entry.name)) continue;
    if (entry.name === REJECTIONS) found.rejections.push(path);
    else if (listed.has(entry.name) || (await holdsRequests(path))) found.requests.push(path);
    else found.results.push(path);
  }
}

/** The slice a prepared or run directory holds (its manifest's or shards.json's `slice`), if any. */
async function sliceOfDir(
  dir: string,
  // Read with its journal: the snapshot alone may hold jobs as they were generations ago.
  manifest: RunManifestFields | undefined,
): Promise<SliceDir | undefined> {
  const slice = sliceOf(manifest?.slice) ?? sliceOf((await readJson(join(dir, SHARDS)))?.slice);
  if (!slice) return undefined;
  // Finished: every job done (after submit), or its results.jsonl written (after run or download).
  const jobs = manifest?.jobs;
  const done = Array.isArray(jobs) && jobs.every((j: { state?: unknown }) => j.state === 'done');
  const unfinished = manifest !== undefined && !done && !(await isFile(join(dir, RUN_RESULTS)));
  return { dir, slice, unfinished };
}

function sliceOf(value: unknown): Slice | undefined {
  const s = value as Partial<Slice> | null | undefined;
  return Number.isInteger(s?.index) && Number.isInteger(s?.count)
    ? { index: s!.index!, count: s!.count! }
    : undefined;
}

/** A small JSON file's value; undefined when it is absent or not JSON. */
async function readJson(path: string): Promise<{ slice?: unknown; jobs?: unknown } | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as { slice?: unknown; jobs?: unknown };
  } catch {
    return undefined;
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

function endpointOf(value: unknown): Endpoint | undefined {
  return (ENDPOINTS as readonly unknown[]).includes(value) ? (value as Endpoint) : undefined;
}

/** True when the file's first line is a request line rather than a result. */
async function holdsRequests(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    const text = buffer.toString('utf8', 0, bytesRead);
    const first = text.split('\n').find((line) => line.trim() !== '');
    if (first === undefined) return false;
    const value = JSON.parse(first) as Record<string, unknown>;
    return 'body' in value && 'url' in value && !('response' in value) && !('error' in value);
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}
