import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCK_FILE, type LockHolder, RunLock } from '../../src/run/run-lock.js';
import { tempDir } from '../helpers.js';

const root = tempDir('bp-lock-');
let dirs = 0;

async function runDir(): Promise<string> {
  const dir = join(root, `run-${++dirs}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** The pid of a process that has ended. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(child.stdout);
}

function writeHolder(dir: string, holder: Partial<LockHolder>): void {
  writeFileSync(
    join(dir, LOCK_FILE),
    JSON.stringify({
      pid: 1,
      hostname: hostname(),
      started_at: '2026-01-01T00:00:00.000Z',
      proc_start: null,
      token: 'theirs',
      ...holder,
    }),
  );
}

describe('RunLock', () => {
  it('names its holder, refuses a second taker while held, and frees the directory on release', async () => {
    const dir = await runDir();
    const lock = await RunLock.acquire(dir);
    const holder = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as LockHolder;
    expect(holder).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(Date.parse(holder.started_at)).toBeGreaterThan(Date.now() - 60_000);

    const refused = await RunLock.acquire(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'BP_RUN_LOCKED',
      message: expect.stringContaining(`in use by process ${process.pid} on ${hostname()}`),
    });
    await lock.release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    await (await RunLock.acquire(dir)).release();
  });

  it('takes over a lock whose process is gone (kill -9), and says so', async () => {
    const dir = await runDir();
    const pid = deadPid();
    writeHolder(dir, { pid });
    const taken: LockHolder[] = [];
    const lock = await RunLock.acquire(dir, (stale) => taken.push(stale));
    expect(taken.map((h) => h.pid)).toEqual([pid]);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('takes over a lock whose pid now belongs to another process (its start time differs)', async () => {
    const dir = await runDir();
    writeHolder(dir, { pid: process.pid, proc_start: '1' });
    const taken: LockHolder[] = [];
    const lock = await RunLock.acquire(dir, (stale) => taken.push(stale));
    expect(taken).toHaveLength(process.platform === 'linux' ? 1 : 0);
    await lock.release();
  });

  it('never takes over a lock from another host: it cannot tell whether that process runs', async () => {
    const dir = await runDir();
    writeHolder(dir, { pid: deadPid(), hostname: 'elsewhere.example' });
    const refused = await RunLock.acquire(dir).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'BP_RUN_LOCKED',
      message: expect.stringMatching(/on elsewhere\.example \(on another host\).*remove .*run\.lock/),
    });
  });

  it('takes over a lock file left empty long ago (a kill between creating and writing it)', async () => {
    const dir = await runDir();
    writeFileSync(join(dir, LOCK_FILE), '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, LOCK_FILE), old, old);
    const lock = await RunLock.acquire(dir);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).token).toBe(lock.holder.token);
    await lock.release();
  });

  it('lets one of two takers have a stale lock, and refuses the other', async () => {
    const dir = await runDir();
    writeHolder(dir, { pid: deadPid() });
    const results = await Promise.allSettled([RunLock.acquire(dir), RunLock.acquire(dir)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as { code: string }).code)).toEqual(['BP_RUN_LOCKED']);
    await (won[0] as PromiseFulfilledResult<RunLock>).value.release();
  });

  it('release leaves alone a lock that is no longer its own', async () => {
    const dir = await runDir();
    const lock = await RunLock.acquire(dir);
    writeHolder(dir, { pid: process.pid, token: 'someone-else' });
    await lock.release();
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).token).toBe('someone-else');
  });
});
