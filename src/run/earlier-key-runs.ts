import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { REQUEST_KEYS_FILE } from '../cache/request-reuse.js';
import type { Slice } from '../core/rows/row-slice.js';
import { type RunManifest, readManifest } from './manifest.js';
import { exists, hasManifest } from './run-dir.js';

/**
 * How this version keys requests (docs/cache.md), recorded in a keyed run's manifest. A keyed run's
 * id takes a digest of its keys, so the same keyed work made by a version that keyed otherwise
 * (SHA-256, before this field) has another id: run again after an upgrade, it would be sent again.
 */
export const REQUEST_KEYS_FORMAT = 'xxh3-128';

/** What a keyed run is of, apart from its keys: what an earlier version's run of the same work shares. */
export interface KeyedWork {
  provider: string;
  baseURL: string | null;
  endpoint: string;
  completionWindow: string;
  rows: number;
  slice: Slice | undefined;
}

/**
 * An unfinished keyed run in `runsDir` that an earlier version made (its keys in another format) of
 * work like `work` (same provider, endpoint, window, slice and rows), other than `runDir`: the same
 * command, run again after an upgrade, must not send its work twice. Undefined when there is none.
 */
export async function earlierKeyedRun(
  runsDir: string,
  runDir: string,
  work: KeyedWork,
): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(runsDir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!name.startsWith('run-')) continue;
    const dir = resolve(runsDir, name);
    if (dir === resolve(runDir)) continue;
    if (!(await exists(join(dir, REQUEST_KEYS_FILE))) || !(await hasManifest(dir))) continue;
    let manifest: RunManifest;
    try {
      manifest = await readManifest(dir);
    } catch {
      continue;
    }
    if (manifest.request_keys !== undefined) continue;
    if (manifest.jobs.length > 0 && manifest.jobs.every((job) => job.state === 'done')) continue;
    if (manifest.cancelled_at) continue;
    const same =
      manifest.provider.name === work.provider &&
      manifest.provider.base_url === work.baseURL &&
      manifest.endpoint === work.endpoint &&
      manifest.completion_window === work.completionWindow &&
      manifest.rows === work.rows &&
      JSON.stringify(manifest.slice ?? null) === JSON.stringify(work.slice ?? null);
    if (same) return dir;
  }
  return undefined;
}
