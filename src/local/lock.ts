import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchpipeError } from '../errors.js';

const LOCK_FILE = 'service.lock';

/**
 * One service per data dir: two would both resume the same batches and write the same files. The
 * lock names the process; a lock left by a process that is gone (a crash, kill -9) is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const path = join(dataDir, LOCK_FILE);
  const body = JSON.stringify({ pid: process.pid });
  try {
    await writeFile(path, body, { flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw startError(dataDir, error);
    const holder = await readHolder(path);
    if (holder !== null && isAlive(holder))
      throw new BatchpipeError(
        'BP_SERVICE_START',
        `the data dir ${dataDir} is in use by another local service (process ${holder}); stop it or use another data dir`,
      );
    await writeFile(path, body);
  }
  return () => rm(path, { force: true });
}

async function readHolder(path: string): Promise<number | null> {
  try {
    const { pid } = JSON.parse(await readFile(path, 'utf8')) as { pid?: unknown };
    return typeof pid === 'number' && Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
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
