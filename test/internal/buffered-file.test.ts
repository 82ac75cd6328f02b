import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { BufferPool } from '../../src/internal/buffer-pool.js';
import { BufferedFile } from '../../src/internal/buffered-file.js';
import { tempDir } from '../helpers.js';
import { writeToFullDisk } from '../support/full-disk.js';

const dir = tempDir('bp-buffered-file-');

describe('BufferedFile with several writes in flight (writesAhead)', () => {
  it('writes every byte once, in order, across many buffers, text and byte ranges and a piece larger than a buffer', async () => {
    const path = join(dir, 'ahead.csv');
    const file = new BufferedFile(path, { writesAhead: 3 });
    const expected: Buffer[] = [];
    const source = Buffer.from(Array.from({ length: 5000 }, (_, i) => `bytes ${i} ✓\n`).join(''));
    for (let i = 0; i < 60_000; i++) {
      let waiting: Promise<void> | undefined;
      if (i % 3 === 0) {
        const start = (i * 7) % 1000;
        waiting = file.appendBytes(source, start, start + 500);
        expected.push(source.subarray(start, start + 500));
      } else {
        const text = `row ${i},"ünï ${i}"\n`;
        waiting = file.append(text, Buffer.byteLength(text));
        expected.push(Buffer.from(text));
      }
      if (i === 30_000) {
        // More than a buffer at once: written on its own, after what came before.
        const big = Buffer.alloc(3 * 1024 * 1024 + 17, 0x61);
        await waiting;
        waiting = file.appendBytes(big, 0, big.length);
        expected.push(big);
      }
      if (waiting) await waiting;
    }
    await file.close();
    expect(readFileSync(path).equals(Buffer.concat(expected))).toBe(true);
    expect(existsSync(`${path}.partial`)).toBe(false);
  });

  it('fails with BP_OUTPUT_WRITE naming the file when the disk refuses, and leaves nothing under either name', async () => {
    const path = join(dir, 'full.csv');
    const failed = await writeToFullDisk(path, 80_000, { writesAhead: 3 });
    expect(failed).toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.partial`)).toBe(false);
  });
});

describe('BufferedFile appending in place', () => {
  it('writes parts where they are between copied ones, in order, hashed as one file', async () => {
    const path = join(dir, 'in-place.tsv');
    const file = new BufferedFile(path, { hash: true, writesAhead: 2 });
    const expected: Buffer[] = [];
    // Shared memory at odd offsets, as a render thread's key records are.
    const shared = Buffer.from(new SharedArrayBuffer(200_000));
    shared.write(Array.from({ length: 8000 }, (_, i) => `"row-${i}"\tkey ${i}\t*\n`).join(''));
    for (let i = 0; i < 3000; i++) {
      const text = `copied ${i} ✓\n`;
      let waiting = file.append(text, Buffer.byteLength(text));
      expected.push(Buffer.from(text));
      if (waiting) await waiting;
      if (i % 7 === 3) {
        const start = (i * 13) % 50_000;
        const end = start + 1 + ((i * 31) % 70_000);
        waiting = file.appendInPlace(shared, start, end);
        expected.push(Buffer.from(shared.subarray(start, end)));
        await waiting;
      }
    }
    const digest = await file.close();
    const whole = Buffer.concat(expected);
    expect(readFileSync(path).equals(whole)).toBe(true);
    expect(digest).toBe(createHash('sha256').update(whole).digest('hex'));
  });
});

describe('BufferedFile syncs a large file in the background as it writes', () => {
  /** The prototype of Node's FileHandle, whose datasync the tests watch. */
  const fileHandlePrototype = async (): Promise<FileHandle> => {
    const handle = await open(join(dir, 'probe'), 'w');
    await handle.close();
    return Object.getPrototypeOf(handle) as FileHandle;
  };

  it('syncs while writing, and the file holds every byte once, in order', async () => {
    const path = join(dir, 'synced.csv');
    // A sync every 256 KiB of about 7 MB: many run beside the writes.
    const file = new BufferedFile(path, { writesAhead: 3, syncEveryBytes: 256 * 1024 });
    const lines: string[] = [];
    for (let i = 0; i < 400_000; i++) {
      const text = `row ${i},"ünï"\n`;
      lines.push(text);
      const waiting = file.append(text, Buffer.byteLength(text));
      if (waiting) await waiting;
    }
    await file.close();
    expect(readFileSync(path, 'utf8')).toBe(lines.join(''));
  });

  it('a background sync that fails fails close with BP_OUTPUT_WRITE, and leaves nothing under either name', async () => {
    const proto = await fileHandlePrototype();
    const sync = vi
      .spyOn(proto, 'datasync')
      .mockRejectedValueOnce(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    try {
      const path = join(dir, 'sync-failed.csv');
      const file = new BufferedFile(path, { syncEveryBytes: 1024 * 1024 });
      for (let i = 0; i < 200_000; i++) {
        const waiting = file.append(`row ${i}\n`, `row ${i}\n`.length);
        if (waiting) await waiting;
      }
      await expect(file.close()).rejects.toMatchObject({ code: 'BP_OUTPUT_WRITE', context: { file: path } });
      expect(existsSync(path)).toBe(false);
      expect(existsSync(`${path}.partial`)).toBe(false);
    } finally {
      sync.mockRestore();
    }
  });
});

describe('BufferPool', () => {
  it('hands a buffer given back twice out once', () => {
    const pool = new BufferPool(64, 8);
    const buffer = pool.take();
    pool.give(buffer);
    pool.give(buffer);
    const first = pool.take();
    const second = pool.take();
    expect(first).toBe(buffer);
    expect(second).not.toBe(buffer);
  });

  it('after a file failed on a full disk, the next files share no buffer: each holds its own bytes', async () => {
    expect(await writeToFullDisk(join(dir, 'full-again.csv'), 80_000, { writesAhead: 3 })).toMatchObject({
      code: 'BP_OUTPUT_WRITE',
    });
    const files = [0, 1].map((f) => ({
      path: join(dir, `after-full-${f}.csv`),
      file: new BufferedFile(join(dir, `after-full-${f}.csv`), { writesAhead: 3 }),
      text: '',
    }));
    // Interleaved, so buffers handed out twice would mix the two files' bytes.
    for (let i = 0; i < 100_000; i++) {
      for (const f of files) {
        const line = `${f.path} ${i}\n`;
        f.text += line;
        const waiting = f.file.append(line, Buffer.byteLength(line));
        if (waiting) await waiting;
      }
    }
    for (const f of files) await f.file.close();
    for (const f of files) expect(readFileSync(f.path, 'utf8') === f.text).toBe(true);
  });
});
