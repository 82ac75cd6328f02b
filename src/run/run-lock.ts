import { join } from 'node:path';
import { BatchpipeError } from '../errors.js';
import { DirLock, type LockHolder } from '../internal/dir-lock.js';

export type { LockHolder } from '../internal/dir-lock.js';

export const LOCK_FILE = 'run.lock';

/**
 * One process at a time per run directory: two would both upload and create for the same jobs and
 * overwrite each other's manifest. A lock left by a process that is gone (kill -9, a crash) on this
 * host is taken over, and `onTakeover` says so; a live holder, or one on another host, is
 * BP_RUN_LOCKED naming it.
 */
export type RunLock = DirLock;
export const RunLock = {
  acquire(dir: string, onTakeover?: (stale: LockHolder) => void): Promise<RunLock> {
    const path = join(dir, LOCK_FILE);
    return DirLock.acquire(path, {
      onTakeover,
      inUse: (holder, note) => lockedError(dir, path, holder, note),
      failed: (message, cause) =>
        new BatchpipeError('BP_RUN_LOCKED', `cannot take the lock of ${dir}: ${message}`, {}, { cause }),
    });
  },
};

/** What a command says when it takes over a lock a dead process left. */
export function takeoverNote(dir: string, stale: LockHolder): string {
  return `took over the lock of ${dir} from process ${stale.pid} on ${stale.hostname} (since ${stale.started_at}), which is no longer running`;
}

function lockedError(dir: string, path: string, holder: LockHolder, note: string): BatchpipeError {
  const who = `process ${holder.pid} on ${holder.hostname}${note ? ` (${note})` : ''}, since ${holder.started_at}`;
  const fix =
    note === 'on another host'
      ? `if that process is gone, remove ${path}`
      : 'wait for it to finish, or stop it (Ctrl-C detaches) and run the command again';
  return new BatchpipeError('BP_RUN_LOCKED', `${dir} is in use by ${who}; ${fix}`);
}
