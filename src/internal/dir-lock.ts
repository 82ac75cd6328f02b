import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { BatchpipeError } from '../errors.js';
import { errnoOf, outputError } from './output-error.js';

/** Who holds a lock. */
export interface LockHolder {
  pid: number;
  hostname: string;
  /** When the lock was taken (ISO time). */
  started_at: string;
  /** The process's start in clock ticks since boot (Linux), so a reused pid is not taken for the holder. */
  proc_start: string | null;
  /** Unique to this holding: a release or a takeover touches only the lock it read. */
  token: string;
}

/** A lock file that cannot be read yet is being written; after this long it was left half-made. */
const HALF_WRITTEN_MS = 5_000;
/** The takeover guard is held for a few file operations; one this old was left by a killed process. */
const STALE_GUARD_MS = 30_000;

/** What a lock says when it cannot be had, in the words of what it guards. */
export interface DirLockOptions {
  /** Called when a lock a dead process left is taken over. */
  onTakeover?: ((stale: LockHolder) => void) | undefined;
  /** The error for a live holder; `note` is '', 'this process' or 'on another host'. */
  inUse: (holder: LockHolder, note: string) => BatchpipeError;
  /** The error when the lock file cannot be made at all (`cause` the file system's error, if any). */
  failed: (message: string, cause?: unknown) => BatchpipeError;
}

/**
 * One process at a time on a directory: the lock file is created with O_EXCL and names its holder
 * (pid, host, start time). A lock left by a process that is gone (kill -9, a crash) on this host is
 * taken over, and `onTakeover` says so; a live holder, or one on another host, is `inUse`. Runs and
 * the local service's data dir both stand on it.
 */
export class DirLock {
  readonly path: string;
  readonly holder: LockHolder;
  #released = false;

  private constructor(path: string, holder: LockHolder) {
    this.path = path;
    this.holder = holder;
  }

  static async acquire(path: string, options: DirLockOptions): Promise<DirLock> {
    const mine: LockHolder = {
      pid: process.pid,
      hostname: hostname(),
      started_at: new Date().toISOString(),
      proc_start: procStart(process.pid),
      token: randomBytes(8).toString('hex'),
    };
    // A few rounds: a half-written lock, or another process taking over a stale one at the same moment.
    for (let round = 0; round < 50; round++) {
      if (await createExclusive(path, mine, options)) return new DirLock(path, mine);
      const found = await readHolder(path);
      if (found === 'missing') continue;
      if (found === 'unreadable') {
        if (!(await olderThan(path, HALF_WRITTEN_MS))) await pause(50);
        else if (await takeOver(path, undefined, mine, options)) return new DirLock(path, mine);
        continue;
      }
      if (found.hostname !== mine.hostname) throw options.inUse(found, 'on another host');
      if (holderAlive(found)) throw options.inUse(found, found.pid === process.pid ? 'this process' : '');
      if (await takeOver(path, found, mine, options)) {
        options.onTakeover?.(found);
        return new DirLock(path, mine);
      }
    }
    throw options.failed(`${path} keeps changing hands; try again`);
  }

  /** Removes the lock if it is still this one (never another process's). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const found = await readHolder(this.path);
    if (typeof found === 'object' && found.token === this.holder.token) await rm(this.path, { force: true });
  }
}

async function createExclusive(
  path: string,
  holder: LockHolder,
  options: Pick<DirLockOptions, 'failed'>,
): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    // The file system refused (a full disk, a removed directory): say that, not "locked".
    if (errnoOf(error)) throw outputError(path, error);
    throw options.failed(`cannot create the lock ${path}: ${(error as Error).message}`, error);
  }
  try {
    await handle.writeFile(`${JSON.stringify(holder)}\n`);
    await handle.sync();
  } catch (error) {
    // An empty or torn lock would hold the directory for nobody until it is old enough to take over.
    await handle.close().catch(() => {});
    await rm(path, { force: true }).catch(() => {});
    throw outputError(path, error);
  }
  await handle.close();
  return true;
}

async function readHolder(path: string): Promise<LockHolder | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (
      typeof value.pid !== 'number' ||
      typeof value.hostname !== 'string' ||
      typeof value.token !== 'string'
    )
      return 'unreadable';
    return {
      pid: value.pid,
      hostname: value.hostname,
      started_at: String(value.started_at ?? ''),
      proc_start: typeof value.proc_start === 'string' ? value.proc_start : null,
      token: value.token,
    };
  } catch {
    return 'unreadable';
  }
}

/**
 * Replaces a stale lock with ours. Two processes may find the same stale lock at once: a guard file
 * (O_EXCL too) lets one of them at a time look again and replace it, so neither removes a lock the
 * other has just taken. Returns false when the lock changed meanwhile (the caller looks again).
 */
async function takeOver(
  path: string,
  stale: LockHolder | undefined,
  mine: LockHolder,
  options: Pick<DirLockOptions, 'failed'>,
): Promise<boolean> {
  const guard = `${path}.takeover`;
  if (!(await createExclusive(guard, mine, options))) {
    const other = await readHolder(guard);
    const abandoned =
      (typeof other === 'object' && !holderAlive(other)) || (await olderThan(guard, STALE_GUARD_MS));
    if (abandoned) await rm(guard, { force: true });
    else await pause(20);
    return false;
  }
  try {
    const now = await readHolder(path);
    const same =
      stale === undefined ? now === 'unreadable' : typeof now === 'object' && now.token === stale.token;
    if (!same && now !== 'missing') return false;
    await rm(path, { force: true });
    return createExclusive(path, mine, options);
  } finally {
    await rm(guard, { force: true });
  }
}

/** True while the holder's process runs (and is the same process: its start time matches, where known). */
function holderAlive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.proc_start === null) return true;
  const now = procStart(holder.pid);
  return now === null || now === holder.proc_start;
}

/** Field 22 of /proc/<pid>/stat (start time since boot), or null where there is no /proc. */
function procStart(pid: number): string | null {
  try {
    const line = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    return line.slice(line.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
