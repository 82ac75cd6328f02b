import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
