import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { outputError, shortWriteError } from './output-error.js';

/**
 * Writes a file whole and atomically: a temporary file, fsync, rename over the old one, fsync of
 * the directory. A crash leaves the old version or the new one, never a torn one; a failed write
 * (a full disk) leaves the old one and no temporary file, and throws BP_OUTPUT_WRITE naming `path`.
 */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'w');
    await writeAll(handle, typeof data === 'string' ? Buffer.from(data) : data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw outputError(path, error);
  }
  await fsyncDir(dirname(path));
}

/**
 * Writes all of `data` (at `position`, when given, else at the file's position). A write may take
 * fewer bytes than asked (a disk filling up takes what fits, then refuses): the rest is written
 * again, so the refusal surfaces as its error (ENOSPC) instead of a file cut short; a write that
 * takes nothing and raises nothing is an error too.
 */
export async function writeAll(handle: FileHandle, data: Uint8Array, position?: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(
      data,
      done,
      data.length - done,
      position === undefined ? null : position + done,
    );
    if (bytesWritten <= 0) throw shortWriteError(done, data.length);
    done += bytesWritten;
  }
}

/**
 * Makes the directory an output goes to (and its parents), or says in a coded error why it cannot:
 * a part of the path is a file, permission, a full disk (BP_OUTPUT_PATH, BP_OUTPUT_WRITE).
 */
export async function makeDir(dir: string): Promise<void> {
  try {
    await mkdirs(dir);
  } catch (error) {
    throw outputError(dir, error);
  }
}

/**
 * `mkdir -p`, with the real reason when it fails: Node's recursive mkdir answers ENOENT where a
 * parent was refused (a read-only file system, permissions), so the missing ones are made one by one
 * again to find out why.
 */
async function mkdirs(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const missing: string[] = [];
    for (let at = resolve(dir); !(await present(at)); at = dirname(at)) {
      missing.unshift(at);
      if (dirname(at) === at) break;
    }
    for (const each of missing) {
      await mkdir(each).catch((refused: NodeJS.ErrnoException) => {
        if (refused.code !== 'EEXIST') throw refused;
      });
    }
  }
}

function present(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Readies `path` to be written as a file: makes its directory, and refuses at once (BP_OUTPUT_PATH)
 * when the path is a directory, before any work that would be lost at the final rename.
 */
export async function makeParentDir(path: string): Promise<void> {
  try {
    await mkdirs(dirname(path));
  } catch (error) {
    // Named for the file asked for; mkdir's EEXIST means its directory is a file.
    const code = (error as NodeJS.ErrnoException).code;
    throw outputError(
      path,
      code === 'EEXIST' ? Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }) : error,
    );
  }
  const found = await stat(path).catch(() => undefined);
  if (found?.isDirectory())
    throw outputError(path, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
}

/** Makes a rename or a new entry in `dir` durable, where the platform allows fsync on a directory. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms and filesystems refuse fsync on directories; the rename itself stands.
  } finally {
    await handle?.close();
  }
}

/** Flushes a file's data to disk (a failure, EIO or ENOSPC on a lazy file system, is BP_OUTPUT_WRITE). */
export async function fsyncFile(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r+');
    await handle.sync();
  } catch (error) {
    throw outputError(path, error);
  } finally {
    await handle?.close().catch(() => {});
  }
}
