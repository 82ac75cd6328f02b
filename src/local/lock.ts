import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchpipeError } from '../errors.js';
import { DirLock } from '../internal/dir-lock.js';
import { writeFileAtomic } from '../internal/durable-write.js';

const LOCK_FILE = 'service.lock';

/**
 * One service per data dir: two would both resume the same batches and write the same files. The
 * lock names the process; a lock left by a process that is gone (a crash, kill -9) is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lock = await DirLock.acquire(join(dataDir, LOCK_FILE), {
    inUse: (holder, note) =>
      new BatchpipeError(
        'BP_SERVICE_START',
        `the data dir ${dataDir} is in use by another local service (process ${holder.pid}${note ? `, ${note}` : ''}); stop it or use another data dir`,
      ),
    failed: (message, cause) => startError(dataDir, cause ?? new Error(message)),
  }).catch((error: unknown) => {
    // A data dir the file system refuses (full, read-only) means the service cannot start.
    throw (error as BatchpipeError).code === 'BP_SERVICE_START' ? error : startError(dataDir, error);
  });
  return () => lock.release();
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function startError(dataDir: string, error: unknown): BatchpipeError {
  return new BatchpipeError(
    'BP_SERVICE_START',
    `cannot use the data dir ${dataDir}: ${(error as Error).message}`,
    {},
    { cause: error },
  );
}

const SERVICE_FILE = 'service.json';

/** Tells other processes where the service on this data dir answers (never its key). */
export async function announce(dataDir: string, url: string): Promise<void> {
  await writeFileAtomic(join(dataDir, SERVICE_FILE), `${JSON.stringify({ pid: process.pid, url })}\n`);
}

export async function unannounce(dataDir: string): Promise<void> {
  await rm(join(dataDir, SERVICE_FILE), { force: true });
}

/** The URL of the service running on a data dir, if one is (its process alive). */
export async function runningService(dataDir: string): Promise<string | undefined> {
  try {
    const { pid, url } = JSON.parse(await readFile(join(dataDir, SERVICE_FILE), 'utf8')) as {
      pid?: unknown;
      url?: unknown;
    };
    if (typeof pid === 'number' && typeof url === 'string' && isAlive(pid)) return url;
  } catch {
    // No announcement, or a damaged one: no running service to join.
  }
  return undefined;
}
