import { createHash, randomBytes } from 'node:crypto';
import { access, copyFile, link, readdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type Slice, sliceTag } from '../core/rows/row-slice.js';
import { fsyncDir, fsyncFile, makeDir } from '../internal/durable-write.js';
import { outputError } from '../internal/output-error.js';
import { MANIFEST_FILE } from './manifest.js';
import type { ShardSummary } from './sharder.js';

/** Where runs live unless told otherwise. */
export const RUNS_DIR = join('.batchpipe', 'runs');

/** The results file a finished run writes: one line per request, its final result. */
export const RESULTS_FILE = 'results.jsonl';

/** What makes two runs the same run: the request files and what is done with them. */
export interface RunIdentity {
  shards: Array<Pick<ShardSummary, 'sha256' | 'lines'>>;
  provider: string;
  baseURL: string | null;
  endpoint: string;
  completionWindow: string;
  /** The digest of the keyed requests (ids and keys), whose files depend on the result cache. */
  requests?: string;
  /** A random part, for a run forced fresh (`newRun`): nothing else names the same run. */
  fresh?: string;
  /** The slice of a table the shards are of. */
  slice?: Slice | undefined;
}

/**
 * The run id: a hash of the shards' contents and the options that shape the batches. The same command
 * on the same input gives the same id (and resumes that run); an edited input is a new run. A slice's
 * run ends in its tag (`run-<hash>-s2of8`), so every name given to the provider says which slice it
 * is, and no two slices' names can be the same whatever their shards hold.
 */
export function runIdFor(identity: RunIdentity): string {
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify([identity.provider, identity.baseURL, identity.endpoint, identity.completionWindow]),
  );
  for (const shard of identity.shards) hash.update(`\n${shard.sha256}:${shard.lines}`);
  if (identity.requests !== undefined) hash.update(`\nrequests:${identity.requests}`);
  if (identity.fresh !== undefined) hash.update(`\nfresh:${identity.fresh}`);
  if (identity.slice === undefined) return `run-${hash.digest('hex').slice(0, 16)}`;
  hash.update(`\nslice:${identity.slice.index}/${identity.slice.count}`);
  return `run-${hash.digest('hex').slice(0, 16)}-${sliceTag(identity.slice)}`;
}

/** Staging left by a process killed mid-way is removed once it is this old. */
const STALE_STAGING_MS = 24 * 3_600_000;

/**
 * A fresh staging directory beside the runs, for shards whose run id is not known yet. Staging
 * directories a killed process left behind (older than a day) are removed on the way.
 */
export async function stagingDir(runsDir: string): Promise<string> {
  await makeDir(runsDir);
  for (const name of await readdir(runsDir)) {
    const started = /^\.staging-(\d+)-/.exec(name)?.[1];
    if (started && Date.now() - Number(started) > STALE_STAGING_MS)
      await rm(join(runsDir, name), { recursive: true, force: true });
  }
  const dir = join(runsDir, `.staging-${Date.now()}-${randomBytes(4).toString('hex')}`);
  await makeDir(dir);
  return dir;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** True when `dir` holds a run manifest. */
export function hasManifest(dir: string): Promise<boolean> {
  return exists(join(dir, MANIFEST_FILE));
}

/**
 * Moves a staged run into place when its directory does not exist yet; returns false when it does
 * (the same run, resumed, or one whose first process died before its manifest): the staging stays
 * for the caller, who decides under the run's lock.
 */
export async function promoteStaging(staging: string, runDir: string): Promise<boolean> {
  await makeDir(resolve(runDir, '..'));
  const found = await stat(runDir).catch(() => undefined);
  if (found && !found.isDirectory())
    throw outputError(runDir, Object.assign(new Error('not a directory'), { code: 'EEXIST' }));
  if (found) return false;
  try {
    await rename(staging, runDir);
  } catch (error) {
    // Another process promoted the same run a moment ago.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw outputError(runDir, error);
  }
  await fsyncDir(resolve(runDir, '..'));
  return true;
}

/** Puts a file into the run dir: a hard link when the filesystem allows (no copy), else a copy. */
export async function adoptFile(from: string, to: string): Promise<void> {
  await rm(to, { force: true });
  try {
    await link(from, to);
    return;
  } catch {
    // Another file system, or one without hard links: a copy, under a temporary name until whole.
  }
  const temp = `${to}.partial`;
  try {
    await copyFile(from, temp);
    await fsyncFile(temp);
    await rename(temp, to);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw outputError(to, error);
  }
}
