import { symlinkSync } from 'node:fs';
import { BufferedFile, type BufferedFileOptions } from '../../src/internal/buffered-file.js';

/**
 * Writes `lines` lines of 100 bytes to `path` through a BufferedFile whose partial file is
 * /dev/full (every write fails with ENOSPC), closing it, or discarding it on the error: the error,
 * or undefined when none came.
 */
export async function writeToFullDisk(
  path: string,
  lines: number,
  options: BufferedFileOptions = {},
): Promise<unknown> {
  symlinkSync('/dev/full', `${path}.partial`);
  const file = new BufferedFile(path, options);
  const line = `${'x'.repeat(99)}\n`;
  try {
    for (let i = 0; i < lines; i++) {
      const waiting = file.append(line, 100);
      if (waiting) await waiting;
    }
    await file.close();
    return undefined;
  } catch (error) {
    await file.discard();
    return error;
  }
}
