import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real, small file system (tmpfs) that fills up: what a full disk does to a writer, for real. */
export interface SmallDisk {
  dir: string;
  /** Bytes free now. */
  free(): number;
  /** Grows or shrinks the file system (what freeing space looks like to a process that runs again). */
  resize(bytes: number): void;
  /** Makes it read-only (EROFS for every write, whoever asks: root included), or writable again. */
  readOnly(on: boolean): void;
  /** Fills it, leaving about `leave` bytes free (a filler file, removed by `empty`). */
  fill(leave?: number): void;
  /** Removes the filler `fill` made (what freeing space looks like). */
  unfill(): void;
  /** Removes everything on it. */
  empty(): void;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `bytes` (root, or a container that allows it), or returns why it cannot: the
 * caller skips its tests and prints the reason.
 */
export function mountSmallDisk(bytes: number): SmallDisk | string {
  const dir = mkdtempSync(join(tmpdir(), 'bp-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs here (${stderr || (error as Error).message}); run as root to test full disks`;
  }
  const free = () => {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  };
  return {
    dir,
    free,
    resize(size) {
      execFileSync('mount', ['-o', `remount,size=${size}`, dir], { stdio: 'pipe' });
    },
    readOnly(on) {
      execFileSync('mount', ['-o', `remount,${on ? 'ro' : 'rw'}`, dir], { stdio: 'pipe' });
    },
    fill(leave = 0) {
      const filler = join(dir, '.filler');
      const room = free() - leave;
      if (room > 0) writeFileSync(filler, Buffer.alloc(room));
    },
    unfill() {
      rmSync(join(dir, '.filler'), { force: true });
    },
    empty() {
      execFileSync('sh', ['-c', `rm -rf "${dir}"/* "${dir}"/.[!.]*`], { stdio: 'pipe' });
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
      } catch {
        // Still busy (a file a failed test left open): detach it now, it goes once released.
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The files on a directory tree, relative paths, sorted (to show nothing was left behind). */
export function filesUnder(dir: string): string[] {
  const out = execFileSync('find', [dir, '-type', 'f', '-o', '-type', 'l'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((p) => p.slice(dir.length + 1))
    .sort();
}
