/**
 * Issue 12, item 1: a write that did not complete is never reported as done. The generic writers
 * (writeAll, writeFileAtomic, BufferedFile, makeParentDir) meet real refusals: /dev/full, a 1 MB tmpfs
 * filled up, and a file handle that takes fewer bytes than asked and then refuses.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBatchpipeError } from '../../src/errors.js';
import { BufferedFile } from '../../src/internal/buffered-file.js';
import { makeParentDir, writeAll, writeFileAtomic } from '../../src/internal/durable-write.js';
import { tempDir } from '../helpers.js';
import { writeToFullDisk } from '../support/full-disk.js';
import { mountSmallDisk } from '../support/small-disk.js';

const dir = tempDir('bp-durable-');

/** A handle that takes `takes` bytes per write at most, for `writes` writes, then fails with `code`. */
function failingHandle(takes: number, writes: number, code: string | null) {
  const got: Buffer[] = [];
  let calls = 0;
  const handle = {
    async write(data: Uint8Array, offset: number, length: number) {
      if (calls++ >= writes) {
        if (code === null) return { bytesWritten: 0 };
        throw Object.assign(new Error(`${code}: refused, write`), { code });
      }
      const n = Math.min(takes, length);
      got.push(Buffer.from(data.subarray(offset, offset + n)));
      return { bytesWritten: n };
    },
  };
  return { handle: handle as unknown as FileHandle, got };
}

async function refusal(work: Promise<unknown>) {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isBatchpipeError(error), String(error)).toBe(true);
  return error as { code: string; message: string; context: { file?: string } };
}

describe('writeAll', () => {
  it('writes the rest after a short write, and every byte arrives in order', async () => {
    const { handle, got } = failingHandle(3, 100, 'ENOSPC');
    await writeAll(handle, Buffer.from('0123456789'));
    expect(Buffer.concat(got).toString()).toBe('0123456789');
  });

  it('surfaces the refusal that follows a short write (the disk filling up), never a file cut short', async () => {
    for (const code of ['ENOSPC', 'EIO', 'EDQUOT', 'EFBIG']) {
      const { handle, got } = failingHandle(4, 1, code);
      await expect(writeAll(handle, Buffer.from('0123456789'))).rejects.toMatchObject({ code });
      expect(Buffer.concat(got).length).toBe(4);
    }
  });

  it('fails when a write takes no bytes and raises nothing', async () => {
    const { handle } = failingHandle(4, 1, null);
    await expect(writeAll(handle, Buffer.from('0123456789'))).rejects.toMatchObject({ code: 'ESHORT' });
  });

  it('gets ENOSPC from /dev/full', async () => {
    const handle = await open('/dev/full', 'w');
    try {
      await expect(writeAll(handle, Buffer.alloc(1000, 1))).rejects.toMatchObject({ code: 'ENOSPC' });
    } finally {
      await handle.close();
    }
  });
});

describe('BufferedFile on /dev/full (its temporary name is a link to it)', () => {
  it('fails with BP_OUTPUT_WRITE naming the file, and leaves nothing under either name', async () => {
    const path = join(dir, 'full.csv');
    // More than one buffer, so writes happen before close, and a tail that only close writes.
    const failed = await writeToFullDisk(path, 30_000);
    expect(failed).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
    expect((failed as Error).message).toContain(
      `${path}: cannot be written: no space left on the device (ENOSPC)`,
    );
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.partial`)).toBe(false);
  });
});

describe('injected refusals a tmpfs cannot make (EIO, EDQUOT, EFBIG)', () => {
  /** Every FileHandle write takes half of what it is given, then the next one fails with `code`. */
  async function refusingWrites<T>(code: string, work: () => Promise<T>): Promise<T> {
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => Promise<unknown> };
    await probe.close();
    const original = proto.write;
    let calls = 0;
    proto.write = function (
      this: FileHandle,
      data: unknown,
      offset?: unknown,
      length?: unknown,
      position?: unknown,
    ) {
      if (calls++ % 2 === 1)
        return Promise.reject(Object.assign(new Error(`${code}: refused, write`), { code }));
      const half = Math.max(1, Math.floor(((length as number | undefined) ?? (data as Buffer).length) / 2));
      return original.call(this, data, offset ?? 0, half, position ?? null);
    };
    try {
      return await work();
    } finally {
      proto.write = original;
    }
  }

  it.each([
    ['EIO', 'an I/O error (the disk or the file system failed)'],
    ['EDQUOT', 'the disk quota is used up'],
    ['EFBIG', 'the file would be larger than the file system allows'],
  ])(
    '%s: BufferedFile fails naming the file and the reason, nothing left; writeFileAtomic keeps the old file',
    async (code, reason) => {
      const path = join(dir, `injected-${code}.jsonl`);
      const failed = await refusingWrites(code, async () => {
        const file = new BufferedFile(path);
        try {
          await file.append('{"a":1}\n', 8);
          await file.close();
        } catch (error) {
          await file.discard();
          return error;
        }
        return undefined;
      });
      expect(failed).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
      expect((failed as Error).message).toBe(`${path}: cannot be written: ${reason} (${code})`);
      expect(existsSync(path)).toBe(false);
      expect(existsSync(`${path}.partial`)).toBe(false);

      const manifest = join(dir, `manifest-${code}.json`);
      await writeFileAtomic(manifest, 'old\n');
      const refused = await refusingWrites(code, () => refusal(writeFileAtomic(manifest, 'new content\n')));
      expect(refused).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: manifest } });
      expect(readFileSync(manifest, 'utf8')).toBe('old\n');
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    },
  );
});

describe('makeParentDir: paths the file system refuses', () => {
  it('names a path that is a directory, or sits under a file', async () => {
    mkdirSync(join(dir, 'a-dir.csv'));
    writeFileSync(join(dir, 'a-file'), 'x');
    const isDir = await refusal(makeParentDir(join(dir, 'a-dir.csv')));
    expect(isDir).toMatchObject({ code: 'BP_OUTPUT_PATH', context: { file: join(dir, 'a-dir.csv') } });
    expect(isDir.message).toContain('it is a directory');
    for (const path of [join(dir, 'a-file', 'out.csv'), join(dir, 'a-file', 'deeper', 'out.csv')]) {
      const under = await refusal(makeParentDir(path));
      expect(under).toMatchObject({ code: 'BP_OUTPUT_PATH', context: { file: path } });
      expect(under.message).toContain('a part of its path is a file, not a directory');
    }
  });
});

const disk = mountSmallDisk(1024 * 1024);
if (typeof disk === 'string') console.warn(`skipped the tmpfs tests: ${disk}`);
afterAll(() => {
  if (typeof disk !== 'string') disk.unmount();
});

describe.skipIf(typeof disk === 'string')('on a full 1 MB tmpfs', () => {
  const small = disk as Exclude<typeof disk, string>;

  it('writeFileAtomic keeps the old content and leaves no temporary file', async () => {
    small.empty();
    const path = join(small.dir, 'manifest.json');
    await writeFileAtomic(path, '{"version":1}\n');
    small.fill(4096);
    const error = await refusal(writeFileAtomic(path, JSON.stringify({ big: 'y'.repeat(64 * 1024) })));
    expect(error).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
    expect(readFileSync(path, 'utf8')).toBe('{"version":1}\n');
    expect(readdirSync(small.dir).sort()).toEqual(['.filler', 'manifest.json']);
  });

  it('BufferedFile: the disk filling mid-file is BP_OUTPUT_WRITE, never a truncated file renamed into place', async () => {
    // The case of the issue: a file a little larger than the room left, whose last write is short.
    for (const lines of [11_000, 20_000]) {
      small.empty();
      const path = join(small.dir, 'out.csv');
      const file = new BufferedFile(path);
      let failed: unknown;
      try {
        for (let i = 0; i < lines; i++) {
          const waiting = file.append(`${'z'.repeat(95)}\n`, 96);
          if (waiting) await waiting;
        }
        await file.close();
      } catch (error) {
        failed = error;
        await file.discard();
      }
      expect(failed, `${lines} lines`).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
      expect(readdirSync(small.dir)).toEqual([]);
    }
  });

  it('BufferedFile: a file that fits is written whole', async () => {
    small.empty();
    const path = join(small.dir, 'fits.csv');
    const file = new BufferedFile(path);
    for (let i = 0; i < 5000; i++) await file.append(`${i}\n`, String(i).length + 1);
    await file.close();
    expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(5001);
  });
});
